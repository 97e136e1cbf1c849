"""Erasures stick: what `triage erase` erased is not stored again when a partner sends it once
more (store/erasure_tombstones.py), until `triage unerase` lifts it; through the CLI, on
envelopes really sealed and opened, and pulled from a real TAXII server."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cti_exchange.exporters.value_forms import bundled_value_forms
from cti_exchange.store import migrations
from cti_exchange.store.erasure_tombstones import value_digest
from cti_exchange.store.store import Store
from tests.conftest import Agency, make_agency, pin
from tests.envelope.conftest import indicator
from tests.exchange.conftest import Exchange, store_rows
from tests.triage.test_erase import VICTIM, _email, _on_disk, _rows, _seal, _send

Pair = tuple[Agency, Agency]
LATER = "2026-11-24T10:00:00.000Z"


def _open(receiver: Agency, sender: Agency, objects: list[dict[str, Any]], path: Path) -> dict[str, Any]:
    opened = receiver.run("open", str(_seal(sender, receiver, objects, path)), "--json")
    assert opened.exit_code == 0, opened.stderr
    return dict(opened.json())


def _ids(agency: Agency) -> set[str]:
    return {r[0] for r in _rows(agency, "SELECT object_id FROM objects")}


def _about(kind: str, target: dict[str, Any], seed: str) -> dict[str, Any]:
    common = {
        "spec_version": "2.1",
        "created": LATER,
        "modified": LATER,
        "object_marking_refs": target["object_marking_refs"],
    }
    if kind == "relationship":
        malware = "malware--31b940d4-6f7f-459a-80ea-9c1f17b58abc"
        return common | {
            "type": "relationship",
            "id": f"relationship--{seed}",
            "relationship_type": "indicates",
            "source_ref": target["id"],
            "target_ref": malware,
        }
    return common | {
        "type": "sighting",
        "id": f"sighting--{seed}",
        "sighting_of_ref": target["id"],
        "count": 3,
    }


def test_an_erased_value_is_withheld_when_sent_again_until_lifted(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    first, kept = _email(1), indicator("198.51.100.7")
    _send(cert_fr, cert_in, [first, kept], tmp_path / "one.json")
    erased = cert_in.run("triage", "erase", VICTIM, "--note", "DPDP erasure request 2026-114", "--yes")
    assert erased.exit_code == 0, erased.stderr
    assert "is not stored (the envelope is accepted)" in erased.stderr

    # A new version of the same indicator; another object of the value in another spelling;
    # a relationship to the erased object; a sighting of it: each in an envelope of its own.
    spelled = indicator("x", seed=7) | {"pattern": "[email-addr:value = 'victim@EXAMPLE.ORG']"}
    sent = [
        [first | {"modified": LATER}, indicator("198.51.100.8")],
        [spelled],
        [_about("relationship", first, "9f0e2a3c-1b4d-4e5f-8a6b-7c8d9e0f1a2b")],
        [_about("sighting", first, "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d")],
    ]
    withheld = []
    for n, objects in enumerate(sent):
        result = _open(cert_in, cert_fr, objects, tmp_path / f"again-{n}.json")
        assert result["verdict"] == "accepted"
        assert result["withheld_as_erased"] == [objects[0]["id"]]
        withheld.append(objects[0]["id"])

    # Accepted as any envelope (nothing quarantined), the other object stored, nothing of
    # the value: not in the objects, not in the file, and no signed copy of those envelopes.
    assert _rows(cert_in, "SELECT count(*) FROM quarantine") == [(0,)]
    assert _ids(cert_in) == {kept["id"], indicator("198.51.100.8")["id"]}
    assert _rows(cert_in, "SELECT count(*) FROM envelopes_in WHERE length(jws_deflated) = 0") == [(5,)]
    on_disk = _on_disk(cert_in).lower()
    assert VICTIM.encode() not in on_disk and b"victim@" not in on_disk
    # The audit trail counts them by id, never by value; it stays whole.
    accepts = [
        json.loads(r[0]) for r in _rows(cert_in, "SELECT details FROM audit_log WHERE action = 'accept'")
    ]
    assert [a.get("withheld_as_erased") for a in accepts] == [None, 1, 1, 1, 1]
    assert [a["withheld_sample"] for a in accepts[1:]] == [[i] for i in withheld]
    assert "victim" not in json.dumps(accepts).lower()
    assert cert_in.run("audit", "verify").exit_code == 0

    # Listed without the value.
    listed = cert_in.run("triage", "erased", "--json")
    assert listed.exit_code == 0, listed.stderr
    [erasure] = listed.json()["erasures"]
    # The erased object, and the new one withheld for the value (remembered by id, so that
    # what a later envelope says about it is withheld too).
    assert erasure["object_ids"] == [first["id"], spelled["id"]]
    assert erasure["values"] == [{"type": "email-addr"}]
    assert erasure["partner"] is None and erasure["note"] == "DPDP erasure request 2026-114"
    assert "victim" not in listed.stdout.lower()
    table = cert_in.run("triage", "erased")
    assert "every partner" in table.stdout and "DPDP erasure request 2026-114" in table.stdout
    assert "victim" not in table.stdout.lower()

    # Lifted (the partner now reports it as the attacker's): the next envelope stores it.
    nothing = cert_in.run("triage", "unerase", "nobody@example.org", "--note", "x")
    assert nothing.exit_code == 2 and "no erasure withholds" in nothing.stderr
    assert nothing.stderr.count("\n") == 1
    assert cert_in.run("triage", "unerase", VICTIM).exit_code == 2  # no reason given
    lifted = cert_in.run(
        "triage", "unerase", "Victim@Example.ORG".lower(), "--note", "attacker's mailbox", "--json"
    )
    assert lifted.exit_code == 0, lifted.stderr
    assert lifted.json()["values"] == [{"type": "email-addr"}] and first["id"] in lifted.json()["object_ids"]
    record = _rows(cert_in, "SELECT details FROM audit_log WHERE action = 'unerase'")
    assert len(record) == 1 and "attacker's mailbox" in record[0][0] and "victim" not in record[0][0].lower()
    again = _open(
        cert_in, cert_fr, [first | {"modified": "2026-11-25T10:00:00.000Z"}], tmp_path / "lifted.json"
    )
    assert again["withheld_as_erased"] == [] and again["new_versions"] == 1
    assert first["id"] in _ids(cert_in)
    assert cert_in.run("triage", "erased", "--json").json() == {"erasures": []}


def test_a_partner_scoped_erasure_stops_only_that_partner(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    cert_de = make_agency(tmp_path, "cert-de", "CERT-DE")
    pin(cert_in, cert_de, tmp_path)
    pin(cert_de, cert_in, tmp_path)
    first = indicator("e", seed=1) | {"pattern": "[domain-name:value = 'evil.example']"}
    _send(cert_fr, cert_in, [first], tmp_path / "fr.json")
    erased = cert_in.run(
        "triage", "erase", "evil.example", "--partner", "cert-fr", "--note", "fr asked", "--yes"
    )
    assert erased.exit_code == 0, erased.stderr

    domain = {"pattern": "[domain-name:value = 'Evil.Example.']"}
    from_de = indicator("d", seed=2) | domain
    from_fr = indicator("f", seed=3) | domain
    assert _open(cert_in, cert_de, [from_de], tmp_path / "de.json")["withheld_as_erased"] == []
    assert _open(cert_in, cert_fr, [from_fr], tmp_path / "fr2.json")["withheld_as_erased"] == [from_fr["id"]]
    assert _ids(cert_in) == {from_de["id"]}
    [erasure] = cert_in.run("triage", "erased", "--json").json()["erasures"]
    assert erasure["partner"] == "cert-fr" and erasure["values"] == [{"type": "domain-name"}]


def test_an_id_erasure_withholds_that_object_not_the_partners_new_report(
    partnered: Pair, tmp_path: Path
) -> None:
    # An id names one object: its versions and what is about it stay out; the same value in
    # another object is a new report (erase the value to keep every one out).
    cert_fr, cert_in = partnered
    old = indicator("203.0.113.9", seed=1)
    _send(cert_fr, cert_in, [old], tmp_path / "one.json")
    assert cert_in.run("triage", "erase", old["id"], "--note", "fr asked", "--yes").exit_code == 0
    new = indicator("203.0.113.9", seed=2)
    opened = _open(cert_in, cert_fr, [old | {"modified": LATER}, new], tmp_path / "two.json")
    assert opened["withheld_as_erased"] == [old["id"]] and _ids(cert_in) == {new["id"]}
    # Its value was never erased as a value: `unerase VALUE` lifts nothing (it lifted the id
    # erasure, review of stop 28).
    by_value = cert_in.run("triage", "unerase", "203.0.113.9", "--note", "x")
    assert by_value.exit_code == 2 and "no erasure withholds" in by_value.stderr
    # Lifting the object by id lets it back.
    assert cert_in.run("triage", "unerase", old["id"], "--note", "sent by mistake").exit_code == 0
    _open(cert_in, cert_fr, [old | {"modified": "2026-11-25T10:00:00.000Z"}], tmp_path / "three.json")
    assert old["id"] in _ids(cert_in)


def test_a_store_without_erasures_stores_as_before(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    opened = _open(cert_in, cert_fr, [_email(1)], tmp_path / "one.json")
    assert opened["withheld_as_erased"] == [] and opened["new_versions"] == 1
    [details] = _rows(cert_in, "SELECT details FROM audit_log WHERE action = 'accept'")
    assert "withheld" not in details[0]
    assert _rows(cert_in, "SELECT length(jws_deflated) > 0 FROM envelopes_in") == [(1,)]
    assert _rows(cert_in, "SELECT count(*) FROM erased") == [(0,)]
    assert cert_in.run("triage", "erased").stdout.startswith("No erasure withholds anything")


def test_pull_withholds_an_erased_value_and_says_so(exchange: Exchange, tmp_path: Path) -> None:
    values = tmp_path / "iocs.txt"
    values.write_text("evil.example\nother.example\n")
    assert exchange.fr.run("push", str(values), "--to", "cert-in").exit_code == 0
    assert exchange.india.run("pull").exit_code == 0
    erased = exchange.india.run("triage", "erase", "evil.example", "--note", "a person's domain", "--yes")
    assert erased.exit_code == 0, erased.stderr
    [(evil_id,)] = store_rows(exchange.india, "SELECT object_id FROM erased WHERE object_id IS NOT NULL")

    # The partner shares both again (new versions of the same objects).
    assert exchange.fr.run("push", str(values), "--to", "cert-in", "--reshare").exit_code == 0
    pulled = exchange.india.run("pull", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    [partner] = pulled.json()["partners"]
    assert partner["withheld_as_erased"] == [evil_id] and partner["quarantined"] == []
    assert partner["new_versions"] == 1 and len(partner["accepted_envelopes"]) == 1
    [details] = store_rows(
        exchange.india, "SELECT details FROM audit_log WHERE action = 'pull' ORDER BY seq DESC LIMIT 1"
    )
    record = json.loads(details[0])
    assert record["withheld_as_erased"] == 1 and record["withheld_sample"] == [evil_id]
    assert "evil.example" not in details[0]

    assert exchange.fr.run("push", str(values), "--to", "cert-in", "--reshare").exit_code == 0
    plain = exchange.india.run("pull")
    assert plain.exit_code == 0, plain.stderr
    assert f"cert-fr: 1 object(s) not stored: erased on request (first: {evil_id})" in plain.stderr
    assert exchange.fr.run("push", str(values), "--to", "cert-in", "--reshare", "--queue").exit_code == 0
    assert exchange.fr.run("sync").exit_code == 0
    synced = exchange.india.run("sync", "--json")
    assert synced.exit_code == 0, synced.stderr
    assert "1 object(s) not stored: erased on request" in synced.json()["summary"]
    assert synced.json()["pulled"][0]["withheld_as_erased"] == [evil_id]
    assert "evil.example" not in [r[0] for r in store_rows(exchange.india, "SELECT value FROM objects")]


def test_the_tombstone_table_survives_its_migration_run_again(partnered: Pair, tmp_path: Path) -> None:
    # Migration 16 on a store whose version table was rolled back: the key stays the one
    # the digests were made with, and the tombstones stay.
    cert_fr, cert_in = partnered
    _send(cert_fr, cert_in, [_email(1)], tmp_path / "one.json")
    assert cert_in.run("triage", "erase", VICTIM, "--note", "request 1", "--yes").exit_code == 0
    path = cert_in.home / "store.sqlite"
    with sqlite3.connect(path) as conn:
        key = conn.execute("SELECT key FROM erasure_key").fetchone()
        conn.execute("DELETE FROM schema_migrations WHERE version = 16")
    with Store(path) as store:
        assert store.db.schema_version == migrations.MIGRATIONS[-1][0]
        assert store.db.conn.execute("SELECT key FROM erasure_key").fetchone() == key
    assert _open(cert_in, cert_fr, [_email(2)], tmp_path / "two.json")["withheld_as_erased"] == [
        _email(2)["id"]
    ]


_FORMS = bundled_value_forms()
_KEY = bytes(range(32))


def _digest(ioc_type: str, value: str) -> bytes:
    return value_digest(_KEY, ioc_type, _FORMS.of(ioc_type, value))


_LABEL = st.from_regex(r"[a-z][a-z0-9]{0,14}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(label=_LABEL, other=_LABEL)
def test_a_value_digest_matches_every_spelling_and_nothing_else(label: str, other: str) -> None:
    domain = f"{label}.example"
    for spelling in (domain.upper(), domain.title() + ".", domain + "."):
        assert _digest("domain-name", spelling) == _digest("domain-name", domain)
    assert _digest("url", f"HTTP://{domain.upper()}:80/x") == _digest("url", f"http://{domain}/x")
    if other != label:
        assert _digest("domain-name", f"{other}.example") != _digest("domain-name", domain)
    # The type is part of it, and so is the key.
    assert _digest("email-addr", domain) != _digest("domain-name", domain)
    assert value_digest(bytes(32), "domain-name", domain) != _digest("domain-name", domain)


def test_one_address_ranges_are_the_address() -> None:
    assert _digest("ipv4-addr", "203.0.113.9/32") == _digest("ipv4-addr", "203.0.113.9")
    assert _digest("ipv4-addr", "203.0.113.10") != _digest("ipv4-addr", "203.0.113.9")


def test_a_held_envelope_released_later_is_withheld_and_its_copy_not_kept(
    partnered: Pair, tmp_path: Path
) -> None:
    # Held behind a gap, then released when the missing envelope arrives: its quarantine
    # record's copy (readable: encrypted to our own key) holds the value, and goes.
    cert_fr, cert_in = partnered
    _send(cert_fr, cert_in, [_email(1)], tmp_path / "zero.json")
    assert cert_in.run("triage", "erase", VICTIM, "--note", "request 2", "--yes").exit_code == 0
    first = _seal(cert_fr, cert_in, [indicator("198.51.100.7")], tmp_path / "one.json")
    second = _seal(cert_fr, cert_in, [_email(2)], tmp_path / "two.json")
    assert cert_in.run("open", str(second)).exit_code != 0  # held for the gap
    released = cert_in.run("open", str(first), "--json")
    assert released.exit_code == 0, released.stderr
    assert released.json()["withheld_as_erased"] == [_email(2)["id"]]
    assert _rows(cert_in, "SELECT artifact, resolved_at IS NOT NULL FROM quarantine") == [("", 1)]
    assert VICTIM.encode() not in _on_disk(cert_in)


def test_what_a_later_envelope_says_about_a_new_object_withheld_for_its_value_is_withheld(
    partnered: Pair, tmp_path: Path
) -> None:
    """The partner re-shares an erased value in a new indicator (withheld for its value), then
    sends a sighting and a relationship about that indicator in a later envelope: they were
    stored, since only erased ids were remembered across envelopes (review of stop 28). The
    capitalised local part of an erased address is withheld too (`Victim@`: it was stored)."""
    cert_fr, cert_in = partnered
    _send(cert_fr, cert_in, [_email(1)], tmp_path / "one.json")
    assert cert_in.run("triage", "erase", VICTIM, "--note", "GDPR request 9", "--yes").exit_code == 0

    again = _email(2)
    capital = indicator("x", seed=3) | {"pattern": "[email-addr:value = 'Victim@example.org']"}
    assert set(_open(cert_in, cert_fr, [again, capital], tmp_path / "two.json")["withheld_as_erased"]) == {
        again["id"],
        capital["id"],
    }
    about = [
        _about("sighting", again, "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f"),
        _about("relationship", capital, "6d7e8f9a-0b1c-4d2e-9f3a-4b5c6d7e8f9a"),
    ]
    later = _open(cert_in, cert_fr, about, tmp_path / "three.json")
    assert set(later["withheld_as_erased"]) == {a["id"] for a in about}
    assert _ids(cert_in) == set()

    # Lifting the value lifts the objects withheld for it, and what is about them.
    assert (
        cert_in.run("triage", "unerase", VICTIM, "--note", "partner confirmed attacker mailbox").exit_code
        == 0
    )
    _open(
        cert_in,
        cert_fr,
        [again | {"modified": LATER}, about[0] | {"modified": "2026-11-25T10:00:00.000Z"}],
        tmp_path / "four.json",
    )
    assert _ids(cert_in) == {again["id"], about[0]["id"]}
