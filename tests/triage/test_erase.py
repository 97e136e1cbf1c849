"""`triage erase`: partner data erased on request (GDPR article 17, DPDP Act section 12, or the
partner asking), through the CLI, on envelopes really sealed and opened."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.errors import UsageError
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.store import Store
from cti_exchange.triage_erasure import erase, erasure_preview
from tests.conftest import Agency, make_agency, pin
from tests.envelope.conftest import indicator, make_bundle

VICTIM = "victim@example.org"
Pair = tuple[Agency, Agency]


def _email(seed: int) -> dict[str, Any]:
    return indicator(VICTIM, seed=seed) | {"pattern": f"[email-addr:value = '{VICTIM}']", "name": "contact"}


def _seal(sender: Agency, receiver: Agency, objects: list[dict[str, Any]], path: Path) -> Path:
    path.write_bytes(make_bundle(objects).data)
    envelope = path.with_suffix(".envelope.json")
    sealed = sender.run(
        "seal", str(path), "--to", receiver.agency_id, "-o", str(envelope), "--keep-personal-data"
    )
    assert sealed.exit_code == 0, sealed.stderr
    return envelope


def _send(sender: Agency, receiver: Agency, objects: list[dict[str, Any]], path: Path) -> None:
    opened = receiver.run("open", str(_seal(sender, receiver, objects, path)))
    assert opened.exit_code == 0, opened.stderr


def _rows(agency: Agency, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{agency.home / 'store.sqlite'}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def _on_disk(agency: Agency) -> bytes:
    return b"".join(p.read_bytes() for p in agency.home.glob("store.sqlite*") if p.is_file())


def test_erase_removes_every_trace_of_a_value_in_the_store(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    first, again, kept = _email(1), _email(2), indicator("198.51.100.7")
    malware = {
        "type": "malware",
        "spec_version": "2.1",
        "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b58abc",
        "created": "2026-11-23T10:00:00.000Z",
        "modified": "2026-11-23T10:00:00.000Z",
        "name": "Stealer",
        "is_family": True,
        "object_marking_refs": first["object_marking_refs"],
    }
    related = {
        "type": "relationship",
        "spec_version": "2.1",
        "id": "relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad",
        "created": "2026-11-23T10:00:00.000Z",
        "modified": "2026-11-23T10:00:00.000Z",
        "relationship_type": "indicates",
        "source_ref": first["id"],
        "target_ref": malware["id"],
        "object_marking_refs": first["object_marking_refs"],
    }
    _send(cert_fr, cert_in, [first, kept, malware, related], tmp_path / "one.json")
    _send(cert_fr, cert_in, [again], tmp_path / "two.json")
    assert cert_in.run("triage", "accept", VICTIM, kept["id"], "--note", "phishing sender").exit_code == 0
    misp = cert_in.run("export", "--format", "misp", "-o", str(tmp_path / "event.json"))
    assert misp.exit_code == 0, misp.stderr
    rules = cert_in.run("export", "--format", "suricata", "-o", str(tmp_path / "rules"), "--i-understand-tlp")
    assert rules.exit_code == 0, rules.stderr
    assert cert_in.run("triage", "list", "--search", "victim@").exit_code == 0  # builds the text index
    attributes = _rows(cert_in, "SELECT count(*) FROM misp_attributes")[0][0]
    sids = _rows(cert_in, "SELECT rule_key FROM ids_sids")
    assert VICTIM.encode() in _on_disk(cert_in)

    # Off a terminal without --yes, or without a reason: refused, nothing changed.
    for args, expected in (
        (["--note", "DPDP erasure request 2026-114"], "without --yes"),
        (["--yes"], "say why with --note"),
    ):
        refused = cert_in.run("triage", "erase", VICTIM, *args)
        assert refused.exit_code == 2 and expected in refused.stderr, refused.stderr
        assert refused.stderr.count("\n") == 1
    assert _rows(cert_in, f"SELECT count(*) FROM objects WHERE object_id = '{first['id']}'") == [(1,)]

    result = cert_in.run(
        "triage", "erase", VICTIM, "--note", "DPDP erasure request 2026-114", "--yes", "--json"
    )

    assert result.exit_code == 0, result.stderr
    erased = json.loads(result.stdout)
    assert set(erased["object_ids"]) == {first["id"], again["id"], related["id"]}
    assert erased["values"] == [{"type": "email-addr", "value": VICTIM}]
    assert erased["signed_envelopes_erased"] == 2 and erased["partners"] == ["cert-fr"]
    assert erased["log_emptied"] is True
    gone = "','".join(erased["object_ids"])
    for table in ("objects", "object_sources", "triage_log"):
        assert _rows(cert_in, f"SELECT count(*) FROM {table} WHERE object_id IN ('{gone}')") == [(0,)], table
    # The other objects of those envelopes stay; their envelopes' signed copies do not; the
    # envelope records stay, so neither envelope is ever taken again.
    assert {r[0] for r in _rows(cert_in, "SELECT object_id FROM objects")} >= {kept["id"], malware["id"]}
    assert _rows(cert_in, "SELECT length(jws_deflated) FROM envelopes_in") == [(0,), (0,)]
    assert VICTIM not in json.dumps(_rows(cert_in, "SELECT rule_key FROM ids_sids"))
    assert {r for r in sids if VICTIM not in r[0]} == set(_rows(cert_in, "SELECT rule_key FROM ids_sids"))
    assert _rows(cert_in, "SELECT count(*) FROM misp_attributes")[0][0] == attributes - 1
    # Not in the file, nor in its log: rows, notes and text index overwritten, not just unlinked.
    assert VICTIM.encode() not in _on_disk(cert_in)
    # The audit trail stays whole and records the erasure, without the value.
    assert cert_in.run("audit", "verify").exit_code == 0
    record = _rows(cert_in, "SELECT actor, details FROM audit_log WHERE action = 'erase'")
    assert len(record) == 1 and "DPDP erasure request 2026-114" in record[0][1]
    assert VICTIM not in record[0][1]
    # Found nowhere any more; a search rebuilds the index without it.
    assert cert_in.run("triage", "show", VICTIM).exit_code == 2
    search = cert_in.run("triage", "list", "--search", "victim@", "--json")
    assert search.exit_code == 0 and VICTIM not in search.stdout


def test_erase_says_what_it_did_and_what_it_cannot_reach(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    other = indicator("198.51.100.7")
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": "report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3",
        "created": "2026-11-23T10:00:00.000Z",
        "modified": "2026-11-23T10:00:00.000Z",
        "name": "Phishing wave",
        "description": f"Mails sent from the hijacked mailbox {VICTIM}",
        "published": "2026-11-23T10:00:00.000Z",
        "object_refs": [other["id"]],
        "object_marking_refs": other["object_marking_refs"],
    }
    _send(cert_fr, cert_in, [_email(1), other, report], tmp_path / "one.json")
    noted = cert_in.run("triage", "reject", other["id"], "--note", f"same sender as {VICTIM}, see ticket 7")
    assert noted.exit_code == 0, noted.stderr

    result = cert_in.run("triage", "erase", VICTIM, "--note", "cert-fr asked us to delete it", "--yes")

    assert result.exit_code == 0, result.stderr
    assert "erased: 1 object(s), 1 version(s), by " in result.stdout and VICTIM in result.stdout
    assert "signed copies of 1 envelope(s)" in result.stderr + result.stdout
    assert "ask cert-fr to revoke them" in result.stderr + result.stdout
    # Text that names it is the analyst's call: said, with the id, not erased.
    assert f"still named in the text of 1 other object(s): {report['id']}" in result.stderr
    assert cert_in.run("triage", "show", report["id"]).exit_code == 0
    # An analyst's note on another object named it: redacted there (the audit trail's copy of
    # that note cannot be, docs/TRIAGE.md).
    notes = _rows(cert_in, f"SELECT note FROM triage_log WHERE object_id = '{other['id']}'")
    assert notes == [("same sender as [erased], see ticket 7",)]
    assert _rows(cert_in, f"SELECT status_note FROM objects WHERE object_id = '{other['id']}'") == notes
    again = cert_in.run("triage", "erase", VICTIM, "--note", "again", "--yes")
    assert again.exit_code == 2 and "no object" in again.stderr


def test_an_id_erases_that_object_and_partner_keeps_to_one_source(partnered: Pair, tmp_path: Path) -> None:
    # Found on the stop's review: an id (a partner asking us to forget its object) also took
    # another partner's report of the same value, and blanked the signed copy of its envelope.
    cert_fr, cert_in = partnered
    cert_de = make_agency(tmp_path, "cert-de", "CERT-DE")
    pin(cert_in, cert_de, tmp_path)
    pin(cert_de, cert_in, tmp_path)
    from_fr, from_de = indicator("203.0.113.9", seed=1), indicator("203.0.113.9", seed=2)
    _send(cert_fr, cert_in, [from_fr], tmp_path / "fr.json")
    _send(cert_de, cert_in, [from_de], tmp_path / "de.json")

    by_id = cert_in.run("triage", "erase", from_fr["id"], "--note", "cert-fr asked", "--yes", "--json")
    assert by_id.exit_code == 0, by_id.stderr
    assert json.loads(by_id.stdout)["object_ids"] == [from_fr["id"]]
    assert {r[0] for r in _rows(cert_in, "SELECT object_id FROM objects")} == {from_de["id"]}
    assert _rows(cert_in, "SELECT partner, length(jws_deflated) > 0 FROM envelopes_in ORDER BY partner") == [
        ("cert-de", 1),
        ("cert-fr", 0),
    ]
    # A value with --partner: that partner's objects of it only; an id of another's is refused.
    refused = cert_in.run("triage", "erase", from_de["id"], "--partner", "cert-fr", "--note", "x", "--yes")
    assert refused.exit_code == 2 and "was not sent by cert-fr" in refused.stderr
    _send(cert_fr, cert_in, [indicator("203.0.113.9", seed=3)], tmp_path / "fr2.json")
    by_value = cert_in.run(
        "triage", "erase", "203.0.113.9", "--partner", "cert-fr", "--note", "cert-fr asked", "--yes", "--json"
    )
    assert by_value.exit_code == 0, by_value.stderr
    assert json.loads(by_value.stdout)["partners"] == ["cert-fr"]
    assert {r[0] for r in _rows(cert_in, "SELECT object_id FROM objects")} == {from_de["id"]}


def test_notes_are_redacted_where_the_value_stands_whole_in_any_case(partnered: Pair, tmp_path: Path) -> None:
    # Found on the stop's review: a plain substring replace turned "10.0.0.15" in another
    # object's note into "[erased]5", and left an upper-case spelling of the value alone.
    cert_fr, cert_in = partnered
    victim, neighbour, other = _email(1), indicator("198.51.100.15"), indicator("198.51.100.7")
    _send(cert_fr, cert_in, [victim, neighbour, other], tmp_path / "one.json")
    for target, note in (
        (neighbour["id"], "same subnet as 198.51.100.1 but not it: 198.51.100.150"),
        (other["id"], f"sender {VICTIM.upper()}, see mailto:{VICTIM}, not alice+{VICTIM}."),
    ):
        assert cert_in.run("triage", "reject", target, "--note", note).exit_code == 0
    assert cert_in.run("triage", "erase", VICTIM, "--note", "DPDP request 9", "--yes").exit_code == 0

    notes = dict(_rows(cert_in, "SELECT object_id, status_note FROM objects"))
    assert notes[neighbour["id"]] == "same subnet as 198.51.100.1 but not it: 198.51.100.150"
    assert notes[other["id"]] == f"sender [erased], see mailto:[erased], not alice+{VICTIM}."


def test_the_copy_a_released_quarantine_record_keeps_is_erased_too(partnered: Pair, tmp_path: Path) -> None:
    # Found on the stop's review: an envelope held behind a gap and accepted once the gap
    # filled keeps its copy in its quarantine record, encrypted to our own key.
    cert_fr, cert_in = partnered
    first = _seal(cert_fr, cert_in, [indicator("198.51.100.7")], tmp_path / "one.json")
    second = _seal(cert_fr, cert_in, [_email(1)], tmp_path / "two.json")
    assert cert_in.run("open", str(second)).exit_code != 0  # held for the gap
    assert cert_in.run("open", str(first)).exit_code == 0  # and released
    assert _rows(cert_in, "SELECT length(artifact) > 0 FROM quarantine WHERE resolved_at IS NOT NULL") == [
        (1,)
    ]

    result = cert_in.run("triage", "erase", VICTIM, "--note", "DPDP request 10", "--yes", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["quarantined_copies_erased"] == 1
    assert _rows(cert_in, "SELECT artifact, reason FROM quarantine") == [("", "sequence-gap")]
    # The record still shows; its envelope is said to be erased (it was an internal error).
    assert cert_in.run("quarantine", "show", "1").exit_code == 0
    shown = cert_in.run("quarantine", "show", "1", "--artifact")
    assert shown.exit_code == 2 and "it was erased" in shown.stderr


def test_a_partner_that_sent_none_of_it_erases_nothing_and_records_nothing(
    partnered: Pair, tmp_path: Path
) -> None:
    # Found on the second review: a typo in --partner erased nothing, exit 0, and wrote an
    # erase record; an empty --partner was an internal error.
    cert_fr, cert_in = partnered
    _send(cert_fr, cert_in, [_email(1)], tmp_path / "one.json")
    for partner, said in (("cert-fx", "nothing to erase: cert-fx sent none of it"), ("", "--partner: give")):
        result = cert_in.run("triage", "erase", VICTIM, "--partner", partner, "--note", "x", "--yes")
        assert result.exit_code == 2 and said in result.stderr, result.stderr
    assert _rows(cert_in, "SELECT count(*) FROM audit_log WHERE action = 'erase'") == [(0,)]
    assert _rows(cert_in, "SELECT count(*) FROM objects") == [(1,)]


def test_a_value_with_letters_beyond_ascii_is_redacted_in_notes(partnered: Pair, tmp_path: Path) -> None:
    # Found on the second review: SQLite's lower() folds ASCII only, so a note holding
    # "http://x.example/Ölaf" in another case was never a candidate.
    cert_fr, cert_in = partnered
    page = indicator("x") | {"pattern": "[url:value = 'http://x.example/Ölaf']", "name": "page"}
    other = indicator("198.51.100.7")
    _send(cert_fr, cert_in, [page, other], tmp_path / "one.json")
    assert cert_in.run("triage", "reject", other["id"], "--note", "see HTTP://X.EXAMPLE/ÖLAF").exit_code == 0
    assert cert_in.run("triage", "erase", page["id"], "--note", "request 11", "--yes").exit_code == 0
    assert _rows(cert_in, f"SELECT status_note FROM objects WHERE object_id = '{other['id']}'") == [
        ("see [erased]",)
    ]


def test_what_changed_since_the_question_is_not_erased(partnered: Pair, tmp_path: Path) -> None:
    # On a terminal the question names a count; a pull storing more of the value before the
    # answer must not widen what the answer erases.
    cert_fr, cert_in = partnered
    _send(cert_fr, cert_in, [_email(1)], tmp_path / "one.json")
    with Store(cert_in.home / "store.sqlite") as store:
        asked = erasure_preview(store, [VICTIM])
    _send(cert_fr, cert_in, [_email(2)], tmp_path / "two.json")  # a pull meanwhile
    with (
        Store(cert_in.home / "store.sqlite") as store,
        pytest.raises(UsageError, match="changed since the question"),
    ):
        erase(store, [VICTIM], note="request 13", expected=asked.object_ids)
    assert _rows(cert_in, "SELECT count(*) FROM objects") == [(2,)]
    assert _rows(cert_in, "SELECT count(*) FROM audit_log WHERE action = 'erase'") == [(0,)]


def test_an_object_holding_no_indicator_value_is_erased_by_id(partnered: Pair, tmp_path: Path) -> None:
    """A threat actor named after a person, an identity: what erasure requests are about. Its
    erasure ended in an internal error (exit 70, "incomplete input"), nothing erased, when none
    of the objects erased held an indicator value (filters walkthrough, stop 28)."""
    cert_fr, cert_in = partnered
    actor_id = "threat-actor--7d1d5a3c-3d4e-4f7a-9d51-0f1e2d3c4b5a"
    actor: dict[str, Any] = {
        "type": "threat-actor",
        "spec_version": "2.1",
        "id": actor_id,
        "created": "2026-01-10T10:00:00.000Z",
        "modified": "2026-01-10T10:00:00.000Z",
        "name": "John Doe",
        "object_marking_refs": [Tlp.AMBER.marking_id],
    }
    _send(cert_fr, cert_in, [actor, indicator("203.0.113.10", seed=4)], tmp_path / "actor.json")
    erased = cert_in.run("triage", "erase", actor_id, "--note", "GDPR request 7", "--yes", "--json")
    assert erased.exit_code == 0, erased.stderr
    assert json.loads(erased.stdout)["object_ids"] == [actor_id]
    assert _rows(cert_in, "SELECT count(*) FROM objects WHERE type = 'threat-actor'") == [(0,)]
    assert b"John Doe" not in _on_disk(cert_in)
    assert _rows(cert_in, "SELECT count(*) FROM objects WHERE type = 'indicator'") == [(1,)]


def test_an_e_mail_address_is_erased_in_any_case(partnered: Pair, tmp_path: Path) -> None:
    """`Victim@example.org` is the person `victim@example.org` was erased for: it was left, only
    listed as naming the value (the canonical form keeps a local part's case), while its
    tombstone withholds it (review of stop 28)."""
    cert_fr, cert_in = partnered
    capital = indicator("x", seed=5) | {"pattern": "[email-addr:value = 'Victim@Example.org']"}
    _send(cert_fr, cert_in, [_email(1), capital], tmp_path / "one.json")
    erased = cert_in.run("triage", "erase", VICTIM, "--note", "GDPR request 11", "--yes", "--json")
    assert erased.exit_code == 0, erased.stderr
    assert set(json.loads(erased.stdout)["object_ids"]) == {_email(1)["id"], capital["id"]}
    assert _rows(cert_in, "SELECT count(*) FROM objects") == [(0,)]
    assert b"victim@" not in _on_disk(cert_in).lower()
