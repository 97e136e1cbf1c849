"""Every paged query is an index search, never a scan of the objects table: that is what keeps
the cost of a page independent of the size of the collection (benchmarked in
bench/bench_server.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import pytest

from cti_exchange.server.connection import open_database
from cti_exchange.server.queries import ObjectFilter, PageOrder, PagePosition, select_page
from cti_exchange.server.schema import ensure_schema

AFTER = PagePosition("2026-01-01T00:00:00.000000Z", 42)


class PageOptions(TypedDict, total=False):
    """The keyword arguments of `select_page` that a case sets."""

    object_id: str
    order: PageOrder
    after: PagePosition


CASES: dict[str, tuple[ObjectFilter, PageOptions]] = {
    "default": (ObjectFilter(), {}),
    "default, next page": (ObjectFilter(), {"after": AFTER}),
    "added_after": (ObjectFilter(added_after="2026-01-01T00:00:00.000000Z"), {"after": AFTER}),
    "all versions": (ObjectFilter(versions=("all",)), {"after": AFTER}),
    "first": (ObjectFilter(versions=("first",)), {}),
    "one type": (ObjectFilter(types=("indicator",)), {"after": AFTER}),
    "ids": (ObjectFilter(ids=("indicator--1", "malware--2")), {"after": AFTER}),
    "spec_version": (ObjectFilter(spec_versions=("2.1",)), {"after": AFTER}),
    "one object": (ObjectFilter(), {"object_id": "indicator--1"}),
    "versions": (
        ObjectFilter(versions=("all",)),
        {"object_id": "indicator--1", "order": PageOrder.VERSION, "after": AFTER},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_paged_queries_search_an_index(tmp_path: Path, case: str) -> None:
    conn = open_database(tmp_path / "plans.sqlite3")
    ensure_schema(conn)
    flt, options = CASES[case]
    sql, params = select_page(flt, columns="o.body", collection_id="c", limit=1001, **options)
    plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    conn.close()
    assert plan, sql
    assert not [step for step in plan if step.startswith("SCAN")], plan
    assert all(
        "INDEX" in step or "PRIMARY KEY" in step or "SUBQUERY" in step
        for step in plan
        if step.startswith("SEARCH") or "SUBQUERY" in step
    ), plan
    if case != "ids":  # the ids select a handful of rows, which are then sorted
        assert not [step for step in plan if "TEMP B-TREE" in step], plan
