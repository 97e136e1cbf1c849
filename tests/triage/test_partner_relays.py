"""`--partner P` means sent by P: the first sender of an object version, or a partner that sent
the very same version again (a relay, recorded in `object_sources`), as the line's `partners`
say. In received order the first page still seeks the partner index."""

from __future__ import annotations

import sqlite3
from typing import Any

from cti_exchange.store.triage_queries import RELAYED_ROWIDS, TriageFilter, _driving_index, filter_sql
from tests.conftest import Agency
from tests.triage.conftest import indicator, put, store_path


def _ids(agency: Agency, *args: str) -> list[str]:
    """Every page of `triage list --json ARGS`, two lines a page: the values in order."""
    values: list[str] = []
    after: list[str] = []
    while True:
        listed = agency.run("triage", "list", "--json", "--limit", "2", "--count", *args, *after)
        assert listed.exit_code == 0, listed.stderr
        doc = listed.json()
        values += [item["value"] for item in doc["items"]]
        if doc["next"] is None:
            assert doc["total"] == len(values)
            return values
        after = ["--after", doc["next"]]


def test_partner_lists_what_it_sent_again(cert_in: Agency) -> None:
    relayed = indicator("relayed.example", tlp="green")
    put(cert_in, [indicator("fr-only.example")], partner="cert-fr", received_at="2026-01-10T11:00:00.000Z")
    put(cert_in, [indicator("in-old.example")], partner="cert-de", received_at="2026-01-10T11:30:00.000Z")
    put(cert_in, [relayed], partner="cert-fr", received_at="2026-01-10T12:00:00.000Z")
    put(cert_in, [indicator("in-1.example")], partner="cert-de", received_at="2026-01-10T12:30:00.000Z")
    put(cert_in, [relayed], partner="cert-de", received_at="2026-01-10T13:00:00.000Z")  # the same again
    put(cert_in, [indicator("in-2.example")], partner="cert-de", received_at="2026-01-10T14:00:00.000Z")

    # Newest first, the relayed line at its first arrival, between cert-de's own lines.
    expected = ["in-2.example", "in-1.example", "relayed.example", "in-old.example"]
    assert _ids(cert_in, "--partner", "cert-de") == expected
    assert _ids(cert_in, "--partner", "cert-de", "--asc") == expected[::-1]
    assert _ids(cert_in, "--partner", "cert-de", "--sort", "value") == sorted(expected)
    assert _ids(cert_in, "--partner", "cert-de", "--partner", "cert-uk") == expected
    assert _ids(cert_in, "--partner", "cert-fr") == ["relayed.example", "fr-only.example"]
    listed = cert_in.run("triage", "list", "--json", "--partner", "cert-de", "--search", "relayed")
    assert [i["partners"] for i in listed.json()["items"]] == [["cert-fr", "cert-de"]]

    accepted = cert_in.run("triage", "accept", relayed["id"])
    assert accepted.exit_code == 0, accepted.stderr
    exported = cert_in.run("export", "--partner", "cert-de")
    assert exported.exit_code == 0, exported.stderr
    assert "relayed.example" in exported.stdout.splitlines()


def test_the_first_page_of_one_partner_still_seeks_its_index(cert_in: Agency) -> None:
    put(cert_in, [indicator("a.example")], partner="cert-fr")
    f = TriageFilter(partners=("cert-de",))
    index, extra, extra_params = _driving_index(f)
    assert index == "objects_current_by_partner"
    where, params = filter_sql(f)
    where, params = f"{where} AND {extra}", [*params, *extra_params]
    plan = _plan(
        cert_in,
        "SELECT o.rowid FROM objects o INDEXED BY objects_current_by_partner "
        f"WHERE {where} ORDER BY o.received_at DESC LIMIT 51",
        params,
    )
    assert plan[0] == "SEARCH o USING INDEX objects_current_by_partner (partner=?)", plan
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan


def test_the_objects_a_partner_sent_again_are_read_by_partner(cert_in: Agency) -> None:
    """`_with_relayed` reads what P sent again after another partner from `object_sources`: by
    its partner index (migration 18), not the whole table, which grows by a row each time a
    partner sends an object version again."""
    put(cert_in, [indicator("a.example")], partner="cert-fr")
    plan = _plan(cert_in, RELAYED_ROWIDS, ["cert-de", "cert-de"])
    assert plan[0] == "SEARCH s USING INDEX object_sources_by_partner (partner=?)", plan


def _plan(agency: Agency, sql: str, params: list[Any]) -> list[str]:
    """SQLite's query plan of `sql` on the agency's store, one line per step."""
    conn = sqlite3.connect(store_path(agency))
    try:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    finally:
        conn.close()
