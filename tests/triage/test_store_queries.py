"""Triage queries on real SQLite files: filters, de-duplication, versions, sorting, paging."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cti_exchange.errors import UsageError
from cti_exchange.store import object_queries, triage_queries
from cti_exchange.store.store import Store
from cti_exchange.triage import build_filter, iter_queue, list_objects
from cti_exchange.triage_decisions import decide
from tests.triage.conftest import indicator, put

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _values(store: Store, **filters: object) -> list[str]:
    page = list_objects(store, build_filter(now=NOW, **filters), limit=1000)  # type: ignore[arg-type]
    return [line.object.value or line.object.name or "" for line in page.lines]


@pytest.fixture
def mixed(store_file: Path) -> Store:
    """Two partners, several types, TLPs, confidences, times; one expired, one revoked."""
    put(
        store_file,
        [
            indicator("a.example", tlp="green", confidence=90),
            indicator("203.0.113.5", "ipv4-addr", tlp="amber", confidence=40),
            indicator("http://c.example/x?y=1", "url", tlp="red", confidence=75),
            indicator("old.example", valid_until="2026-02-01T00:00:00.000Z"),
            indicator("gone.example", revoked=True),
        ],
        partner="cert-fr",
        received_at="2026-05-01T10:00:00.000Z",
    )
    put(
        store_file,
        [
            indicator("d.example", tlp="amber+strict", confidence=60, name="Tracker D"),
            indicator("e" * 64, "sha256", tlp="clear", confidence=None),
        ],
        partner="cert-in",
        received_at="2026-05-20T10:00:00.000Z",
    )
    return Store(store_file)


def test_migration_two_adds_indexes_and_sid_table(mixed: Store) -> None:
    names = {r[0] for r in mixed.db.conn.execute("SELECT name FROM sqlite_master")}
    assert {
        "ids_sids",
        "objects_current_by_partner",
        "objects_sighting_of",
        "objects_relationship_source",
        "objects_current_named",
    } <= names
    assert mixed.db.schema_version >= 2


def test_every_filter(mixed: Store) -> None:
    assert set(_values(mixed)) == {
        "a.example",
        "203.0.113.5",
        "http://c.example/x?y=1",
        "old.example",
        "d.example",
        "e" * 64,
    }
    assert set(_values(mixed, partners=["cert-in"])) == {"d.example", "e" * 64}
    assert set(_values(mixed, types=["domain-name"])) == {"a.example", "old.example", "d.example"}
    assert set(_values(mixed, types=["ipv4-addr", "url"])) == {
        "203.0.113.5",
        "http://c.example/x?y=1",
    }
    assert _values(mixed, tlps=["amber+strict"]) == ["d.example"]
    assert set(_values(mixed, max_tlp="green")) == {"a.example", "e" * 64}
    assert set(_values(mixed, min_confidence=70)) == {
        "a.example",
        "http://c.example/x?y=1",
        "old.example",
    }
    assert set(_values(mixed, since="2026-05-10T00:00:00Z")) == {"d.example", "e" * 64}
    assert set(_values(mixed, since="15d")) == {"d.example", "e" * 64}  # before NOW
    assert _values(mixed, text="C.EXAMPLE/X") == ["http://c.example/x?y=1"]  # any case
    assert _values(mixed, text="tracker") == ["d.example"]  # the name
    assert _values(mixed, text="100%_") == []  # LIKE wildcards are literal
    assert _values(mixed, expired=True) == ["old.example"]
    assert "old.example" not in _values(mixed, expired=False)
    assert "gone.example" in _values(mixed, include_revoked=True)
    decide(mixed, ["a.example"], "accept")
    assert _values(mixed, statuses=["accepted"]) == ["a.example"]
    assert "a.example" not in _values(mixed, statuses=["new"])


def test_bad_filter_values_name_the_option() -> None:
    for kwargs, option in (
        ({"statuses": ["maybe"]}, "--status"),
        ({"tlps": ["purple"]}, "--tlp"),
        ({"since": "yesterday-ish"}, "--since"),
        ({"min_confidence": 101}, "--min-confidence"),
        ({"types": ["Not A Type"]}, "--type"),
        ({"types": ["domain"]}, "--type: 'domain' is not"),  # used to list nothing
    ):
        with pytest.raises(UsageError, match=option):
            build_filter(**kwargs)
    for known in ("domain-name", "SHA256", "malware", "sighting", "x-acme-asset", "marking-definition"):
        assert build_filter(types=[known]).types == (known.lower(),)


def test_same_value_from_two_partners_is_one_line_with_both_sources(store_file: Path) -> None:
    put(
        store_file,
        [indicator("shared.example", tlp="green")],
        partner="cert-fr",
        received_at="2026-05-01T10:00:00.000Z",
    )
    put(
        store_file,
        [indicator("shared.example", tlp="amber", created_by="identity--x")],
        partner="cert-in",
        received_at="2026-05-02T10:00:00.000Z",
    )
    store = Store(store_file)
    lines = list_objects(store, build_filter(now=NOW)).lines
    assert len(lines) == 1 and lines[0].partners == ["cert-fr", "cert-in"]
    assert lines[0].object.tlp == "green" and lines[0].strictest_tlp == "amber"
    # Filtering on the second source still shows the value, once.
    only_in = list_objects(store, build_filter(partners=["cert-in"], now=NOW)).lines
    assert [line.object.partner for line in only_in] == ["cert-in"]
    # A decision covers both objects; the count counts values.
    decided = decide(store, [lines[0].object.object_id], "false-positive", note="CDN")
    assert len(decided.object_ids) == 2
    assert list_objects(store, build_filter(statuses=["new"], now=NOW)).lines == []
    assert triage_queries.count_matching(store.db.conn, build_filter(now=NOW)) == 1


def test_newer_version_is_current_older_kept_revocation_applied(store_file: Path) -> None:
    first = indicator("v.example", confidence=30, modified="2026-01-10T10:00:00.000Z")
    put(store_file, [first])
    store = Store(store_file)
    decide(store, ["v.example"], "accept", note="checked")
    newer = dict(first, confidence=80, modified="2026-02-10T10:00:00.000Z")
    older = dict(first, confidence=10, modified="2025-12-10T10:00:00.000Z")
    put(store_file, [newer])
    put(store_file, [older])  # arrives late: stored, not current
    [line] = list_objects(store, build_filter(now=NOW)).lines
    assert line.object.confidence == 80 and line.object.status == "accepted"  # decision kept
    versions = store.db.conn.execute(
        "SELECT version, is_current FROM objects WHERE object_id = ? ORDER BY version",
        (first["id"],),
    ).fetchall()
    assert [v[1] for v in versions] == [0, 0, 1]
    put(store_file, [dict(newer, revoked=True, modified="2026-03-10T10:00:00.000Z")])
    assert list_objects(store, build_filter(now=NOW)).lines == []
    assert len(list_objects(store, build_filter(include_revoked=True, now=NOW)).lines) == 1


def test_sorting(mixed: Store) -> None:
    def order(sort: str, descending: bool | None = None) -> list[str]:
        page = list_objects(mixed, build_filter(now=NOW), sort=sort, descending=descending)
        return [line.object.value or "" for line in page.lines]

    assert order("confidence")[:3] == ["a.example", "http://c.example/x?y=1", "old.example"]
    assert order("confidence")[-1] == "e" * 64  # no confidence: last
    assert order("value") == sorted(order("value"))
    assert order("value", descending=True) == sorted(order("value"), reverse=True)
    assert order("received")[:2] == sorted(["d.example", "e" * 64], reverse=True) or set(
        order("received")[:2]
    ) == {"d.example", "e" * 64}
    assert order("received", descending=False)[-1] in {"d.example", "e" * 64}
    assert order("valid-until")[0] == "old.example"
    assert order("partner")[-1] in {"d.example", "e" * 64}
    with pytest.raises(UsageError, match="--sort"):
        list_objects(mixed, build_filter(), sort="colour")


@pytest.mark.parametrize("sort", ["received", "confidence"])
def test_pages_cover_everything_once(store_file: Path, sort: str) -> None:
    for batch in range(3):  # equal received_at within a batch: the rowid breaks ties
        put(
            store_file,
            [indicator(f"p{batch}-{n}.example", confidence=n) for n in range(40)],
            received_at=f"2026-05-0{batch + 1}T10:00:00.000Z",
        )
    store = Store(store_file)
    seen: list[str] = []
    after = None
    while True:
        page = list_objects(store, build_filter(now=NOW), sort=sort, limit=17, after=after)
        seen += [line.object.value or "" for line in page.lines]
        if page.next_page is None:
            break
        after = page.next_page
    assert len(seen) == len(set(seen)) == 120
    # A pull between two pages neither repeats nor skips a line in received order.
    if sort == "received":
        first = list_objects(store, build_filter(now=NOW), limit=10)
        put(store_file, [indicator("late.example")], received_at="2026-05-09T10:00:00.000Z")
        second = list_objects(store, build_filter(now=NOW), limit=10, after=first.next_page)
        assert {line.object.value for line in first.lines}.isdisjoint(
            line.object.value for line in second.lines
        )
    with pytest.raises(UsageError, match="--after"):
        list_objects(store, build_filter(), after="not-a-token")
    stored = 121 if sort == "received" else 120
    assert len(list(iter_queue(store, build_filter(now=NOW), page_size=25))) == stored


def _fallback_values(store: Store, **filters: object) -> list[str]:
    """As `_values`, with an ordered scan that always gives up: the fallback plan answers."""
    rows, _ = triage_queries.list_page(
        store.db.conn,
        build_filter(now=NOW, **filters),  # type: ignore[arg-type]
        triage_queries.PageRequest(limit=1000, scan_budget=-1.0),
    )
    return [row.value or row.name or "" for row in rows]


def test_rare_text_falls_back_to_the_narrow_indexes(store_file: Path) -> None:
    put(
        store_file,
        [indicator(f"bulk{n}.example") for n in range(300)] + [indicator("needle.example")],
    )
    store = Store(store_file)
    expected = _values(store, text="needle")
    assert _fallback_values(store, text="needle") == expected == ["needle.example"]
    assert len(_fallback_values(store, types=["domain-name"])) == 301
    put(
        store_file,
        [
            indicator("ab" * 32, "sha256"),
            indicator("198.51.100.7", "ipv4-addr"),
            indicator("Trojan.Agent", "file-name", name="Dropper of the week"),
        ],
    )
    assert _fallback_values(store, text="ABAB") == ["ab" * 32]  # hashes only hold hex: looked at
    assert _fallback_values(store, text="51.100.") == ["198.51.100.7"]
    assert _fallback_values(store, text="of the WEEK") == ["Trojan.Agent"]  # the name
    # Every type's range: values are stored as partners spelled them, no alphabet is sure.
    assert triage_queries._ioc_types_searched(()) is None
    assert triage_queries._ioc_types_searched(("domain-name", "indicator")) is None
    assert triage_queries._ioc_types_searched(("md5", "malware")) == ("md5", "cve")


def test_first_pages_use_the_partial_indexes(mixed: Store) -> None:
    conn = mixed.db.conn
    for filters, index in (
        ({}, "objects_current_by_received"),
        ({"partners": ["cert-in"]}, "objects_current_by_partner"),
        ({"statuses": ["new"], "types": ["domain-name"]}, "objects_current_by_status"),
        ({"types": ["malware"]}, "objects_current_other_by_type"),
    ):
        f = build_filter(**filters)  # type: ignore[arg-type]
        where, params = triage_queries.filter_sql(f)
        chosen, extra, extra_params = triage_queries._driving_index(f)
        where += f" AND {extra}" if extra else ""
        params += extra_params
        plan = conn.execute(
            f"EXPLAIN QUERY PLAN SELECT o.rowid FROM objects o INDEXED BY {chosen} WHERE {where} "
            "ORDER BY o.received_at DESC, o.rowid DESC LIMIT 10",
            params,
        ).fetchall()
        text = " ".join(str(row[3]) for row in plan)
        assert chosen == index and index in text and "TEMP B-TREE FOR ORDER BY" not in text, text


def test_an_interrupted_write_leaves_the_previous_state(store_file: Path) -> None:
    put(store_file, [indicator("kept.example")])
    store = Store(store_file)
    with pytest.raises(RuntimeError), store.db.transaction() as conn:
        object_queries.record_decision(
            conn,
            [_ids(conn)[0]],
            decision="accepted",
            analyst="x",
            at="2026-01-01T00:00:00.000Z",
            note=None,
        )
        raise RuntimeError("power cut")
    assert _values(store, statuses=["new"]) == ["kept.example"]


def _ids(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT object_id FROM objects")]
