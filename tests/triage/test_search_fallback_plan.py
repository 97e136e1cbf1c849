"""The fallback plan of a received-order `--search` (taken once the ordered scan passes its
budget, as on a big store) lists exactly what the ordered scan lists: values are stored as
partners spelled them, and `--type indicator` holds every IOC type."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cti_exchange.store.store import Store
from cti_exchange.store.triage_queries import PageRequest, TriageFilter, list_page
from tests.triage.conftest import indicator, put, stix_object


def _values(conn: sqlite3.Connection, f: TriageFilter, *, budget: float) -> list[str | None]:
    """The first page without the text index: the ordered scan (a budget it never reaches)
    or, with no budget at all, the fallback plan."""
    conn.execute("BEGIN")
    try:
        rows, _ = list_page(conn, f, PageRequest(scan_budget=budget, text_index=False, limit=100))
    finally:
        conn.execute("COMMIT")
    return [r.value or r.name for r in rows]


@pytest.fixture(scope="module")
def spelled_as_sent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store_file = tmp_path_factory.mktemp("fallback") / "store.sqlite"
    put(
        store_file,
        [
            indicator("fe80::1%eth0", "ipv6-addr", name="zone"),
            indicator("203.0.113.7 (c2)", "ipv4-addr", name="c2 box"),
            indicator("45.13.7.9", "ipv4-addr"),  # named by its value: only in the value index
            indicator("D41D8CD98F00B204E9800998ECF8427E ", "md5", name="hash"),
            indicator("evil.example", "domain-name"),
            stix_object(
                "vulnerability", "vulnerability--00000000-0000-4000-8000-000000000001", name="Log4Shell"
            ),
        ],
        received_at="2026-01-10T12:00:00.000Z",
    )
    # Newer filler, so that the ordered scan has rows to read before the ones above.
    put(
        store_file,
        [indicator(f"filler{n}.example") for n in range(300)],
        received_at="2026-01-10T12:30:00.000Z",
    )
    return store_file


@pytest.mark.parametrize(
    ("text", "types"),
    [
        ("eth0", ()),  # letters beyond f in an IPv6 address
        ("%", ()),
        ("t", ()),
        ("(c", ()),
        ("e ", ()),  # a hash with a trailing space
        ("45.1", ("domain-name", "indicator")),  # `indicator` holds ipv4-addr indicators too
        ("7.9", ("indicator",)),
        ("shell", ("vulnerability",)),
        ("eth", ("ipv6-addr",)),
        ("13", ("ipv4-addr", "url")),
    ],
)
def test_the_fallback_lists_what_the_ordered_scan_lists(
    spelled_as_sent: Path, text: str, types: tuple[str, ...]
) -> None:
    f = TriageFilter(text=text, types=types)
    with Store(spelled_as_sent) as store:
        scanned = _values(store.db.conn, f, budget=60.0)
        fallback = _values(store.db.conn, f, budget=0.0)
    assert scanned, "the case should match something"
    assert fallback == scanned
