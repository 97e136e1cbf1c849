"""The text-search index (store/text_index.py): built on the first search, kept current by
pull and sync, never in the way of storing, and never changing what a search finds."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_exchange.store import text_index
from cti_exchange.store.store import Store
from cti_exchange.store.triage_queries import PageRequest, TriageFilter, count_matching, list_page
from tests.conftest import Agency
from tests.exchange.conftest import Exchange, write_iocs
from tests.triage.conftest import indicator, put, store_path

# Case pairs LIKE folds (ASCII) and pairs only the index folds (Unicode), LIKE's own wildcards
# and escape, the phrase quote, and spaces.
_ALPHABET = "abcAB-._%\\\"' éÉßẞǅǆ\u0130i"
_names = st.text(_ALPHABET, min_size=3, max_size=12)


def _search(conn: sqlite3.Connection, text: str, *, use_index: bool, sort: str = "received") -> list[str]:
    f = TriageFilter(text=text)
    conn.execute("BEGIN")
    try:
        rows, _ = list_page(conn, f, PageRequest(sort=sort, limit=1000, text_index=use_index))
    finally:
        conn.execute("COMMIT")
    return sorted(r.object_id for r in rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    indexed=st.lists(_names, min_size=1, max_size=8),
    tail=st.lists(_names, max_size=4),
    picks=st.lists(st.tuples(st.integers(0, 11), st.integers(3, 6), st.booleans()), max_size=4),
    other=st.lists(st.text(_ALPHABET, min_size=3, max_size=5), max_size=2),
)
def test_the_index_finds_what_a_scan_finds(
    indexed: list[str], tail: list[str], picks: list[tuple[int, int, bool]], other: list[str]
) -> None:
    names = indexed + tail
    texts = list(other)
    for n, (which, length, swap) in enumerate(picks):
        name = names[n % len(names)]
        start = which % max(1, len(name) - 2)
        piece = name[start : start + length]
        if len(piece) >= 3:
            texts.append(piece.swapcase() if swap else piece)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "store.sqlite"
        # Names ride on mutex indicators (any text) and as the name of domain indicators.
        put(path, [indicator(name, "mutex") for name in indexed])
        put(path, [indicator(f"d{n}.example", name=name) for n, name in enumerate(indexed)])
        with Store(path) as store:
            conn = store.db.conn
            text_index.catch_up(conn)
            put(path, [indicator(name, "mutex") for name in tail])  # stored after: the tail
            assert text_index.serving(conn) is not None
            for text in texts:
                for sort in ("received", "value"):
                    assert _search(conn, text, use_index=True, sort=sort) == _search(
                        conn, text, use_index=False, sort=sort
                    ), text
                assert count_matching(conn, TriageFilter(text=text)) == len(
                    _search(conn, text, use_index=False)
                )


def test_rows_stored_after_the_index_are_found_and_superseded_versions_are_not(store_file: Path) -> None:
    first = indicator("v1.example", name="alpha-old-name", modified="2026-01-10T10:00:00.000Z")
    put(store_file, [first])
    with Store(store_file) as store:
        conn = store.db.conn
        assert text_index.catch_up(conn) == 1
        second = indicator(
            "v1.example", name="beta-new-name", modified="2026-02-10T10:00:00.000Z", object_id=first["id"]
        )
        put(store_file, [second])
        assert text_index.behind(conn) == 1
        for _ in range(2):  # in the tail, then indexed
            assert _search(conn, "beta-new", use_index=True) == [first["id"]]
            assert _search(conn, "alpha-old", use_index=True) == []  # indexed, no longer current
            text_index.catch_up(conn)
        assert text_index.behind(conn) == 0


def test_catch_up_commits_chunk_by_chunk(store_file: Path) -> None:
    put(store_file, [indicator(f"c{n}.example") for n in range(7)])
    with Store(store_file) as store:
        conn = store.db.conn
        # keeps an index current, makes none
        assert text_index.catch_up(conn, create=False, chunk_rows=3) == 0
        assert text_index.indexed_through(conn) is None
        statements: list[str] = []
        conn.set_trace_callback(statements.append)  # what this connection ran, as SQLite saw it
        try:
            assert text_index.catch_up(conn, chunk_rows=3) == 7
        finally:
            conn.set_trace_callback(None)
        assert text_index.indexed_through(conn) == 7
        # Three chunks of at most 3 rows, each in a transaction of its own; the last one
        # reached the last row, so no pause and no empty transaction after it.
        steps = [
            "index" if sql.startswith("INSERT INTO search_text (") else sql
            for sql in statements
            if sql in ("BEGIN IMMEDIATE", "COMMIT") or sql.startswith("INSERT INTO search_text (")
        ]
        assert steps == ["BEGIN IMMEDIATE", "index", "COMMIT"] * 3
        # Caught up, a catch-up finds nothing to do in one empty transaction.
        statements.clear()
        conn.set_trace_callback(statements.append)
        try:
            assert text_index.catch_up(conn, chunk_rows=3) == 0
        finally:
            conn.set_trace_callback(None)
        assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]
        assert _search(conn, "c6.exa", use_index=True) != []


def test_first_search_through_the_cli_builds_the_index_and_later_ones_use_it(cert_in: Agency) -> None:
    put(cert_in, [indicator(f"host-{n}.example") for n in range(30)] + [indicator("rare-needle.example")])
    found = cert_in.run("triage", "list", "--search", "NEEDLE", "--json")
    assert found.exit_code == 0, found.stderr
    assert [i["value"] for i in found.json()["items"]] == ["rare-needle.example"]
    conn = sqlite3.connect(store_path(cert_in))
    try:
        assert text_index.indexed_through(conn) == 31
        # Stored after the index: more rows than a search scans (TAIL_SCAN_ROWS) rather than
        # indexes first.
        filler = text_index.TAIL_SCAN_ROWS
        put(
            cert_in,
            [indicator(f"later-{n}.example") for n in range(20)]
            + [indicator(f"filler-{n}.example") for n in range(filler)],
        )
        assert text_index.behind(conn) > text_index.TAIL_SCAN_ROWS
        # Without a search term, or with text too short for trigrams, nothing is indexed.
        assert cert_in.run("triage", "list", "--search", "la", "--json").exit_code == 0
        assert text_index.indexed_through(conn) == 31
        later = cert_in.run("triage", "list", "--search", "later-1", "--json")
        assert sorted(i["value"] for i in later.json()["items"]) == [
            f"later-{n}.example" for n in (1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)
        ]
        assert text_index.indexed_through(conn) == 51 + filler
    finally:
        conn.close()


def test_a_search_while_a_writer_holds_the_store_scans_instead_of_waiting(cert_in: Agency) -> None:
    put(cert_in, [indicator(f"busy-{n}.example") for n in range(5)])
    writer = sqlite3.connect(store_path(cert_in), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a sync storing an envelope
    try:
        # No index yet: the search would build one before it answers (text_index.serving).
        found = cert_in.run("triage", "list", "--search", "busy-3", "--json")
        assert found.exit_code == 0, found.stderr
        assert [i["value"] for i in found.json()["items"]] == ["busy-3.example"]
        assert text_index.indexed_through(writer) is None
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_pull_and_sync_keep_an_index_current_once_a_search_made_one(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 4)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 0
    conn = sqlite3.connect(store_path(india))
    try:
        assert text_index.indexed_through(conn) is None  # nobody searched: nothing built
        assert india.run("triage", "list", "--search", "c2-1.", "--json").exit_code == 0
        built = text_index.indexed_through(conn) or 0
        assert built > 0 and text_index.behind(conn) == 0
        for n, command in enumerate(("pull", "sync"), start=1):
            csv = write_iocs(tmp_path / f"{command}.csv", 4, start=100 * n)
            pushed = fr.run("push", str(csv), "--to", "cert-in")
            assert pushed.exit_code == 0, pushed.stderr
            assert india.run(command).exit_code == 0
            now_through = text_index.indexed_through(conn) or 0
            assert text_index.behind(conn) == 0 and now_through > built
            built = now_through
    finally:
        conn.close()


def _as_if_opened_without(path: Path, what: str, instead: str) -> None:
    """As a SQLite without FTS5 or its trigram tokenizer sees a store indexed elsewhere (a
    home restored on an older host): it reports exactly this, "no such module/tokenizer"."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE name = 'search_text'", (what, instead)
    )
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("what", "instead"),
    [("tokenize='trigram'", "tokenize='trigram_missing'"), ("USING fts5(", "USING fts5_missing(")],
)
def test_a_search_scans_when_this_sqlite_cannot_read_the_index(
    cert_in: Agency, what: str, instead: str
) -> None:
    put(cert_in, [indicator("needle-1.example"), indicator("other.example")])
    assert cert_in.run("triage", "list", "--search", "needle", "--json").exit_code == 0  # builds it
    _as_if_opened_without(store_path(cert_in), what, instead)
    put(cert_in, [indicator("needle-2.example")])
    found = cert_in.run("triage", "list", "--search", "needle", "--json")
    assert found.exit_code == 0, found.stderr
    assert sorted(i["value"] for i in found.json()["items"]) == ["needle-1.example", "needle-2.example"]


def test_a_writer_waits_for_a_chunk_of_the_build_not_all_of_it(store_file: Path) -> None:
    chunk = 200
    put(store_file, [indicator(f"h-{n}.example", name=f"host {n} text") for n in range(3000)])

    def search() -> None:
        with Store(store_file) as store:
            text_index.prepare_for_search(store.db.conn, wait_ms=30_000, chunk_rows=chunk)  # 15 chunks

    builder = threading.Thread(target=search)
    builder.start()
    probe = sqlite3.connect(store_file, isolation_level=None)
    try:
        while (text_index.indexed_through(probe) or 0) < chunk:  # the build is under way
            time.sleep(0.001)
        seen = text_index.indexed_through(probe) or 0
        writer = sqlite3.connect(store_file, isolation_level=None, timeout=30)
        writer.execute("BEGIN IMMEDIATE")  # a sync storing an envelope
        got_in_at = text_index.indexed_through(writer) or 0
        writer.execute("ROLLBACK")
        writer.close()
    finally:
        probe.close()
        builder.join()
    assert (got_in_at - seen) // chunk <= 2, f"the writer waited {(got_in_at - seen) // chunk} chunks of 15"
    assert got_in_at < 3000, "the writer got in only once the whole build was done (one chunk?)"
    with sqlite3.connect(store_file) as check:
        assert text_index.behind(check) == 0  # and the build went on after it


def test_dropping_the_index_after_values_change_in_place_rebuilds_it(store_file: Path) -> None:
    """What a migration rewriting `objects.value` does (text_index.drop): the next search
    builds the index again, with the new values; a SQLite without FTS5, which cannot drop the
    table itself, still forgets it."""
    put(store_file, [indicator("old-value.example")])
    with Store(store_file) as store:
        conn = store.db.conn
        text_index.catch_up(conn)
        with store.db.transaction():
            conn.execute("UPDATE objects SET value = 'new-value.example'")
            text_index.drop(conn)
        assert text_index.indexed_through(conn) is None
        assert text_index.prepare_for_search(conn)
        assert _search(conn, "new-value", use_index=True) != []
    _as_if_opened_without(store_file, "USING fts5(", "USING fts5_missing(")
    with Store(store_file) as store, store.db.transaction() as conn:
        text_index.drop(conn)
        assert text_index.indexed_through(conn) is None
