"""MISP events exported again (stop 26): MISP never deletes an attribute missing from an event
update, so a value the selection held and now decided against (false-positive, rejected) or
revoked by its source is written again with its attribute UUID, `"deleted": true` and `to_ids`
false; and an attribute's `timestamp` changes only when what it says changes (MISP takes an
attribute only when its timestamp is later than its copy's), instead of being the moment of
every export, which made each import rewrite every attribute."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put, store_path


def _event(agency: Agency, *args: str) -> dict[str, Any]:
    result = agency.run("export", "--format", "misp", *args)
    assert result.exit_code == 0, result.stderr
    event: dict[str, Any] = json.loads(result.stdout)["Event"]
    return event


def _by_value(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["value"]: a for a in event["Attribute"]}


def _stix_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _epoch(stix: str) -> int:
    return int(datetime.fromisoformat(stix.replace("Z", "+00:00")).timestamp())


def test_values_decided_against_or_revoked_are_withdrawn_from_the_event(cert_in: Agency) -> None:
    kept, fp, rejected, revoked = (
        indicator(v, tlp="green") for v in ("kept.example", "fp.example", "rej.example", "gone.example")
    )
    # Revoked by cert-fr, still sent by cert-uk in another spelling: still written, not withdrawn.
    shared_fr, shared_uk = indicator("shared.example", tlp="green"), indicator("Shared.Example.", tlp="green")
    never = indicator("never.example", tlp="green")  # rejected before any export: MISP never had it
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), kept, fp, rejected, revoked, shared_fr, never])
    put(cert_in, [shared_uk], partner="cert-uk")
    accepted = [kept, fp, rejected, revoked, shared_fr, shared_uk]
    assert cert_in.run("triage", "accept", *(o["id"] for o in accepted)).exit_code == 0
    assert cert_in.run("triage", "reject", never["id"]).exit_code == 0

    first = _by_value(_event(cert_in))
    assert set(first) == {"kept.example", "fp.example", "rej.example", "gone.example", "shared.example"}
    assert not any(a.get("deleted") for a in first.values())

    assert cert_in.run("triage", "false-positive", fp["id"], "--note", "sinkhole").exit_code == 0
    assert cert_in.run("triage", "reject", rejected["id"]).exit_code == 0
    later = "2026-02-01T00:00:00.000Z"
    put(
        cert_in,
        [{**revoked, "modified": later, "revoked": True}, {**shared_fr, "modified": later, "revoked": True}],
        received_at="2026-02-01T12:00:00.000Z",
    )
    second = _event(cert_in)
    now = _by_value(second)

    assert set(now) == set(first)  # never.example, never exported, is not sent to MISP
    for value in ("fp.example", "rej.example", "gone.example"):
        assert now[value]["uuid"] == first[value]["uuid"]  # MISP updates that attribute
        assert now[value]["deleted"] is True and now[value]["to_ids"] is False, value
        assert int(now[value]["timestamp"]) > int(first[value]["timestamp"])
    for value in ("kept.example", "shared.example"):
        assert now[value]["deleted"] is False and now[value]["to_ids"] is True

    # Exported again, the withdrawals say the same: the same timestamps, MISP skips them.
    third = _by_value(_event(cert_in))
    assert {v: (a["timestamp"], a.get("deleted")) for v, a in third.items()} == {
        v: (a["timestamp"], a.get("deleted")) for v, a in now.items()
    }
    # Accepted again: written live again (MISP keeps a field an update leaves out: `deleted`
    # is said), with a later timestamp.
    assert cert_in.run("triage", "accept", fp["id"]).exit_code == 0
    back = _by_value(_event(cert_in))["fp.example"]
    assert back["deleted"] is False and back["to_ids"] is True
    assert int(back["timestamp"]) > int(now["fp.example"]["timestamp"])
    # Another selection is another event: it never held them, nothing to withdraw there.
    other = _event(cert_in, "--type", "domain-name", "--min-confidence", "1")
    assert not any(a.get("deleted") for a in other["Attribute"])


def test_an_attribute_timestamp_changes_only_with_what_it_says(cert_in: Agency) -> None:
    one, two = indicator("one.example", tlp="green"), indicator("two.example", tlp="green")
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), one, two])
    assert cert_in.run("triage", "accept", one["id"], two["id"]).exit_code == 0

    first = _event(cert_in)
    stamps = {a["value"]: int(a["timestamp"]) for a in first["Attribute"]}
    # A new event: no attribute below what earlier releases wrote (the moment of the export).
    assert set(stamps.values()) == {int(first["timestamp"])}

    time.sleep(1.1)
    # Nothing changed: every attribute as before, although the export is a later one.
    again = _event(cert_in)
    assert {a["value"]: int(a["timestamp"]) for a in again["Attribute"]} == stamps
    assert int(again["timestamp"]) > int(first["timestamp"])  # the event itself is updated

    # A new value: the time it was received.
    received = _stix_now()
    three = indicator("three.example", tlp="green")
    put(cert_in, [three], received_at=received)
    # cert-uk says two.example is TLP:AMBER, in an object received long ago and accepted now:
    # the attribute changes (tag, sources) without a newer received_at, and still gets a later
    # timestamp than the one MISP holds.
    two_uk = indicator("two.example", tlp="amber")
    put(cert_in, [two_uk], partner="cert-uk", received_at="2026-01-05T00:00:00.000Z")
    assert cert_in.run("triage", "accept", three["id"], two_uk["id"]).exit_code == 0
    time.sleep(1.1)
    third = _by_value(_event(cert_in))

    assert int(third["one.example"]["timestamp"]) == stamps["one.example"]
    assert int(third["three.example"]["timestamp"]) == max(_epoch(received), stamps["one.example"])
    assert third["two.example"]["Tag"] == [{"name": "tlp:amber"}]
    assert int(third["two.example"]["timestamp"]) > stamps["two.example"]


def test_an_event_an_earlier_release_exported_withdraws_nothing(cert_in: Agency) -> None:
    """An earlier release kept no records, so which values MISP holds is not known. Writing
    every value decided against as deleted (as a first version of this did) put values never
    exported into MISP (found on a review): nothing is withdrawn, and the value stays out."""
    kept, rejected = indicator("kept.example", tlp="green"), indicator("rej.example", tlp="green")
    never = indicator("never.example", tlp="green")
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), kept, rejected, never])
    assert cert_in.run("triage", "accept", kept["id"], rejected["id"]).exit_code == 0
    assert cert_in.run("triage", "reject", never["id"], "--note", "a victim's domain").exit_code == 0
    # Exported, and no records: the store as that release left it (before migration 15).
    _event(cert_in)
    with sqlite3.connect(store_path(cert_in)) as conn:
        conn.execute("DROP TABLE misp_attributes")
        conn.execute("DROP TABLE misp_events")
        conn.execute("DELETE FROM schema_migrations WHERE version = 15")
    assert cert_in.run("triage", "reject", rejected["id"]).exit_code == 0

    event = _by_value(_event(cert_in))

    assert "rej.example" not in event and "never.example" not in event
    assert event["kept.example"]["deleted"] is False


def test_a_red_value_rejected_before_any_export_does_not_stop_a_misp_export(cert_in: Agency) -> None:
    """Found on a review: the TLP gate judged the values to withdraw before asking whether MISP
    could hold them, so rejecting a TLP:RED value stopped every MISP export of its selection
    (exit 8, "the export holds TLP:RED content") though the file would not hold it."""
    kept, red = indicator("kept.example", tlp="green"), indicator("red.example", tlp="red")
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), kept, red])
    assert cert_in.run("triage", "accept", kept["id"]).exit_code == 0
    assert cert_in.run("triage", "reject", red["id"]).exit_code == 0
    event = _by_value(_event(cert_in))
    assert set(event) == {"kept.example"}
