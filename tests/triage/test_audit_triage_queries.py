"""Audit regressions: vulnerabilities (stored with `ioc_type = 'cve'` and their name as value)
in received-order lists filtered by type, and in the text search's fallback plan."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cti_exchange.store import triage_queries
from cti_exchange.store.store import Store
from cti_exchange.triage import build_filter, iter_queue, list_objects
from tests.triage.conftest import FR_IDENTITY, indicator, put

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _vulnerability(number: int, name: str) -> dict[str, Any]:
    return {
        "type": "vulnerability",
        "spec_version": "2.1",
        "id": f"vulnerability--99999999-0000-4000-8000-{number:012d}",
        "created": "2026-01-10T10:00:00.000Z",
        "modified": "2026-01-10T10:00:00.000Z",
        "created_by_ref": FR_IDENTITY,
        "name": name,
    }


def test_type_vulnerability_lists_vulnerabilities_in_every_order(store_file: Path) -> None:
    put(store_file, [_vulnerability(1, "CVE-2026-1234"), _vulnerability(2, "Log4Shell")])
    put(store_file, [indicator("a.example")])
    store = Store(store_file)
    f = build_filter(types=["vulnerability"], now=NOW)
    for sort in ("received", "value"):
        page = list_objects(store, f, sort=sort, count=True)
        assert sorted(line.object.name or "" for line in page.lines) == ["CVE-2026-1234", "Log4Shell"]
        assert page.total == 2
    assert len(list(iter_queue(store, f))) == 2  # what `triage review --type vulnerability` reads
    # Other non-indicator types keep their narrow index.
    assert triage_queries._driving_index(build_filter(types=["malware"]))[0] == (
        "objects_current_other_by_type"
    )


def test_text_search_fallback_finds_a_vulnerability_by_its_name(store_file: Path) -> None:
    put(store_file, [_vulnerability(1, "Log4Shell")], received_at="2026-01-01T00:00:00.000Z")
    put(store_file, [indicator(f"bulk{n}.example") for n in range(300)])
    store = Store(store_file)

    def found(budget: float, **filters: Any) -> list[str]:
        rows, _ = triage_queries.list_page(
            store.db.conn,
            build_filter(now=NOW, **filters),
            triage_queries.PageRequest(limit=1000, scan_budget=budget),
        )
        return [row.name or "" for row in rows]

    for filters in ({"text": "log4shell"}, {"text": "LOG4", "types": ["cve"]}):
        # The ordered scan and the fallback plan (scan budget spent at once) agree.
        assert found(10.0, **filters) == found(-1.0, **filters) == ["Log4Shell"]
