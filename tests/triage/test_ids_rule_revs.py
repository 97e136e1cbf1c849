"""IDS rules change their `rev` when their text changes under the same sid (found on an upgrade
walkthrough: every rule was written `rev:1`, so rule managers, SIEMs and alert records, which
key on (gid, sid, rev), took a changed rule for the one they had). The store keeps, per sid,
a digest of each text exported and its rev (exporters/sids.py, migration 17)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.store.migrations import MIGRATIONS
from cti_exchange.store.store import Store
from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put, store_path

_RULE = re.compile(r"^alert .*\(msg:\"cti-exchange (\S+) (\S+) .*; sid:(\d+); rev:(\d+); metadata:[^;]*;\)$")
ENGINES = ["suricata", "snort"]


def _accepted(agency: Agency, objects: list[dict[str, Any]], partner: str) -> None:
    put(agency, objects, partner=partner)
    result = agency.run("triage", "accept", *(o["id"] for o in objects if o["type"] == "indicator"))
    assert result.exit_code == 0, result.stderr


def _revs(agency: Agency, engine: str, *args: str) -> dict[tuple[str, int], int]:
    """(value, sid) -> rev of every rule the export writes."""
    result = agency.run("export", "--format", engine, *args)
    assert result.exit_code == 0, result.stderr
    rules = [line for line in result.stdout.splitlines() if line.startswith("alert")]
    matches = [_RULE.match(line) for line in rules]
    assert rules and all(matches), rules
    return {(m[2], int(m[3])): int(m[4]) for m in matches if m}


def _rows(agency: Agency, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store_path(agency)) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def fr_values(cert_in: Agency) -> Agency:
    _accepted(
        cert_in,
        [
            identity(FR_IDENTITY, "CERT-FR"),
            indicator("evil.example", tlp="green"),
            indicator("203.0.113.7", "ipv4-addr", tlp="green"),
            indicator("http://evil.example/gate.php", "url", tlp="green"),
        ],
        "cert-fr",
    )
    return cert_in


@pytest.mark.parametrize("engine", ENGINES)
def test_the_same_store_exported_again_keeps_every_rev(fr_values: Agency, engine: str) -> None:
    first = _revs(fr_values, engine)
    assert set(first.values()) == {1}
    assert _revs(fr_values, engine) == first


@pytest.mark.parametrize("engine", ENGINES)
def test_a_rule_whose_text_changes_gets_the_next_rev_and_keeps_it(fr_values: Agency, engine: str) -> None:
    before = _revs(fr_values, engine)
    # Another partner sends a value we have: its rules' msg and metadata name both sources.
    _accepted(fr_values, [indicator("evil.example", tlp="green", created_by="identity--x")], "cert-uk")

    after = _revs(fr_values, engine)

    assert after.keys() == before.keys()  # same sids
    changed = {key: rev for key, rev in after.items() if key[0] == "evil.example"}
    assert changed and set(changed.values()) == {2}
    assert {key: rev for key, rev in after.items() if key[0] != "evil.example"} == {
        key: rev for key, rev in before.items() if key[0] != "evil.example"
    }
    assert _revs(fr_values, engine) == after  # unchanged since: stays 2


def test_a_stricter_tlp_is_a_new_rev(fr_values: Agency) -> None:
    before = _revs(fr_values, "suricata")
    _accepted(
        fr_values, [indicator("203.0.113.7", "ipv4-addr", tlp="amber", created_by="identity--x")], "cert-uk"
    )
    after = _revs(fr_values, "suricata", "--i-understand-tlp")
    assert {key: rev for key, rev in after.items() if rev != before[key]} == {
        key: 2 for key in before if key[0] == "203.0.113.7"
    }


def test_two_selections_exported_in_turn_keep_their_own_revs(fr_values: Agency) -> None:
    """Two cron jobs exporting the value under two filters (the msg lists the sources each
    selection holds) write two texts under one sid: each keeps its rev, not one raised on
    every run."""
    _accepted(fr_values, [indicator("evil.example", tlp="green", created_by="identity--x")], "cert-uk")
    both = _revs(fr_values, "snort")
    only_fr = _revs(fr_values, "snort", "--partner", "cert-fr")
    assert only_fr.keys() == both.keys()
    assert {rev for key, rev in only_fr.items() if key[0] == "evil.example"} == {2}
    for _ in range(2):
        assert _revs(fr_values, "snort") == both
        assert _revs(fr_values, "snort", "--partner", "cert-fr") == only_fr


def test_rules_exported_for_both_engines_keep_a_rev_per_engine(fr_values: Agency) -> None:
    """A domain's DNS rule and a URL's HTTP rule have one key, so one sid, in Suricata and Snort
    files, and two texts: exporting both in turn does not raise their revs each time."""
    suricata = _revs(fr_values, "suricata")
    snort = _revs(fr_values, "snort")
    assert set(suricata.values()) == {1}
    shared = suricata.keys() & snort.keys()
    assert {key[0]: snort[key] for key in shared} == {
        "203.0.113.7": 1,  # an address rule is one text in both engines
        "evil.example": 2,
        "http://evil.example/gate.php": 2,
    }
    for _ in range(2):
        assert _revs(fr_values, "suricata") == suricata
        assert _revs(fr_values, "snort") == snort


def test_the_export_says_how_many_rules_were_revised(fr_values: Agency, tmp_path: Path) -> None:
    target = str(tmp_path / "cti.rules")
    first = fr_values.run("export", "--format", "suricata", "-o", target, "--json")
    assert first.exit_code == 0, first.stderr
    assert (first.json()["sids_assigned"], first.json()["rules_revised"]) == (4, 0)
    _accepted(fr_values, [indicator("evil.example", tlp="green", created_by="identity--x")], "cert-uk")
    again = fr_values.run("export", "--format", "suricata", "-o", target, "--json")
    assert (again.json()["sids_assigned"], again.json()["rules_revised"]) == (0, 2)  # DNS and TLS
    records = fr_values.run("audit", "show", "--action", "export", "--json")
    assert records.exit_code == 0, records.stderr
    details = [r["details"] for r in records.json()]
    assert [(d["sids_assigned"], d["rules_revised"]) for d in details] == [(4, 0), (0, 2)]


def test_sids_of_an_earlier_release_go_to_rev_2_once_and_the_migration_runs_again(
    fr_values: Agency,
) -> None:
    """A store whose sids an earlier release gave out (every rule `rev:1`, its text not kept):
    whether this release's text is the one written then cannot be told, so it is rev 2; a sid
    given out since starts at 1. Migration 17 run again (its version rolled back) changes
    nothing."""
    _revs(fr_values, "suricata")
    path = store_path(fr_values)
    with sqlite3.connect(path) as conn:  # the store as that release left it
        conn.execute("DROP TABLE ids_rule_revs")
        conn.execute("ALTER TABLE ids_sids DROP COLUMN digest")
        conn.execute("ALTER TABLE ids_sids DROP COLUMN rev")
        conn.execute("DELETE FROM schema_migrations WHERE version = 17")
    _accepted(fr_values, [indicator("new.example", tlp="green")], "cert-fr")

    upgraded = _revs(fr_values, "suricata")

    assert {key: rev for key, rev in upgraded.items() if key[0] != "new.example"} == dict.fromkeys(
        [key for key in upgraded if key[0] != "new.example"], 2
    )
    assert {rev for key, rev in upgraded.items() if key[0] == "new.example"} == {1}
    assert _revs(fr_values, "suricata") == upgraded
    # Run again: the columns and the table stay as they are.
    kept = sorted(_rows(fr_values, "SELECT * FROM ids_sids"))
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 17")
    with Store(path) as store:
        assert store.db.schema_version == MIGRATIONS[-1][0]
        assert sorted(store.db.conn.execute("SELECT * FROM ids_sids")) == kept
    assert _revs(fr_values, "suricata") == upgraded


def test_erasing_a_value_forgets_its_rules_texts(fr_values: Agency) -> None:
    _revs(fr_values, "suricata")
    second = [
        indicator("evil.example", tlp="green", created_by="identity--x"),
        indicator("203.0.113.7", "ipv4-addr", tlp="green", created_by="identity--x"),
    ]
    _accepted(fr_values, second, "cert-uk")
    _revs(fr_values, "suricata")  # each of their rules now has an earlier text
    sids = dict(_rows(fr_values, "SELECT rule_key, sid FROM ids_sids"))
    erased = fr_values.run("triage", "erase", "evil.example", "--note", "request 7", "--yes")
    assert erased.exit_code == 0, erased.stderr
    assert {row[0] for row in _rows(fr_values, "SELECT sid FROM ids_rule_revs")} == {
        sids["ipv4-addr:203.0.113.7:ip"]
    }
    assert not [
        key for (key,) in _rows(fr_values, "SELECT rule_key FROM ids_sids") if "name:evil.example" in key
    ]


def test_every_rule_is_measured_with_room_for_its_rev(cert_in: Agency, tmp_path: Path) -> None:
    """A rule is measured before its sid and rev are given out: with a rev of four digits, so
    no rule written is longer than 8,000 bytes whatever its rev. One of 7,999 bytes at rev 1
    is left out."""
    measured = indicator("http://evil.example/" + "a" * 7_000, "url", tlp="green")
    _accepted(cert_in, [identity(FR_IDENTITY, "CERT-FR"), measured], "cert-fr")
    (rule,) = _revs(cert_in, "suricata")  # the msg cuts the URL: only its content grows
    target = tmp_path / "cti.rules"
    assert cert_in.run("export", "--format", "suricata", "-o", str(target)).exit_code == 0
    size = len(next(line for line in target.read_text().splitlines() if line.startswith("alert"))) + 1
    longer = indicator("http://evil.example/" + "a" * (7_000 + 7_999 - size), "url", tlp="green")
    _accepted(cert_in, [longer], "cert-fr")

    result = cert_in.run("export", "--format", "suricata", "-o", str(target), "--json")

    assert result.exit_code == 0, result.stderr
    assert result.json()["files"][0]["skipped"] == {"url": 1}
    assert _revs(cert_in, "suricata") == {rule: 1}
