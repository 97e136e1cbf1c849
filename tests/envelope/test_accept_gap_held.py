"""Quarantine: accepting a gap behind envelopes already held, what a gap record says it waits
for, and the refused envelope printed back as received. Real agencies, keys and store files;
envelopes travel as files (`seal` / `open`), on the same channels and quarantine as TAXII."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Agency

# The same helpers as the quarantine audit tests: list the records, seal envelopes 1..n.
from tests.exchange.clock_shift import clock_shifter
from tests.exchange.test_audit_quarantine import _envelopes, _records

from .conftest import indicator, make_bundle
from .test_cli_envelope import Pair, bundle_file, open_json, rows, seal, tampered_copy
from .test_quarantine_cli import _run_on_terminal

ANALYST = {"CTI_EXCHANGE_ANALYST": "a.dupont"}


def _held(agency: Agency, envelope: Path) -> dict[str, Any]:
    """`open` on an envelope that is held for a gap: its JSON verdict."""
    code, verdict, stderr = open_json(agency, envelope)
    assert (code, verdict["reason"]) == (4, "sequence-gap"), stderr
    return verdict


def _stored(agency: Agency, value: str) -> bool:
    result = agency.run("triage", "show", value, "--json")
    return result.exit_code == 0 and result.json()["value"] == value


def _accepted_sequences(agency: Agency) -> list[tuple[int, list[int]]]:
    """(sequence, gap accepted) of every `accept` audit record, in the order accepted."""
    details = [
        json.loads(d) for (d,) in rows(agency, "SELECT details FROM audit_log WHERE action = 'accept'")
    ]
    return [(d["sequence"], d["gap_accepted"]) for d in details]


# -- bug 1: accept-gap on a later record lost the envelopes held before it ------------------


def test_accepting_the_gap_on_a_later_record_loses_no_envelope_held_before_it(
    partnered: Pair, tmp_path: Path
) -> None:
    """CERT-FR lost envelope 2; 3 and 4 were held. `accept-gap` on 4 accepted 4 across 2 and
    3, then closed 3's record ("rejected again: sequence-reorder"): envelope 3, which CERT-In
    had, was lost. And 4's record listed 3 as missing although it was held. Now the gap
    accepted is 2 alone: 3 takes it, 4 follows, and the channel goes on from 4."""
    cert_fr, cert_in = partnered
    envelopes = _envelopes(cert_fr, tmp_path, 5)
    assert open_json(cert_in, envelopes[0])[0] == 0
    third = _held(cert_in, envelopes[2])
    fourth = _held(cert_in, envelopes[3])
    record_3, record_4 = third["quarantine_record"], fourth["quarantine_record"]
    assert third["detail"] == "missing sequence numbers 2 from cert-fr before 3"
    said = f"missing sequence numbers 2 from cert-fr before 4; held in quarantine before it: 3 as record {record_3}"
    assert fourth["detail"] == said
    assert [r["detail"] for r in _records(cert_in)] == [third["detail"], said]
    text = cert_in.run("open", str(envelopes[3]))  # the same file again: one record, same words
    assert text.exit_code == 4 and said in text.stderr and f"accept-gap {record_4}" in text.stderr

    result = cert_in.run("quarantine", "accept-gap", str(record_4), "--note", "lost", "--json", env=ANALYST)
    assert result.exit_code == 0, result.stderr
    accepted = result.json()
    assert (accepted["record_id"], accepted["requested_record_id"]) == (record_3, record_4)
    assert (accepted["sequence"], accepted["missing"]) == (3, [2])
    assert accepted["envelope_id"] == third["envelope_id"]
    assert accepted["released_envelopes"] == [fourth["envelope_id"]]
    assert accepted["closed_records"] == [] and accepted["still_held"] == []

    assert _records(cert_in) == []
    resolutions = {r["id"]: r["resolution"] for r in _records(cert_in, "--all")}
    assert resolutions == {
        record_3: f"gap accepted by a.dupont (asked on record {record_4}, held behind it): lost",
        record_4: "accepted when retried (held for sequence-gap)",
    }
    for value in ("198.51.3.1", "198.51.3.2", "198.51.4.1", "198.51.4.2"):
        assert _stored(cert_in, value), value
    assert _accepted_sequences(cert_in) == [(1, []), (3, [2]), (4, [])]
    assert rows(cert_in, "SELECT sequence FROM channels_in") == [(4,)]

    # The sequence bookkeeping goes on from 4: 5 opens normally, 3 and 4 are not taken again,
    # and the lost 2 turning up cannot slip in behind them.
    code, verdict, _ = open_json(cert_in, envelopes[4])
    assert (code, verdict["verdict"], verdict["gap_accepted"]) == (0, "accepted", [])
    for again in (envelopes[2], envelopes[3]):
        code, verdict, _ = open_json(cert_in, again)
        assert (code, verdict["verdict"]) == (0, "already-opened")
    code, verdict, _ = open_json(cert_in, envelopes[1])
    assert (code, verdict["reason"]) == (4, "sequence-reorder")
    assert rows(cert_in, "SELECT sequence FROM channels_in") == [(5,)]
    assert rows(cert_in, "SELECT count(*) FROM envelopes_in") == [(4,)]


def test_envelopes_held_out_of_order_are_released_in_sequence_order(partnered: Pair, tmp_path: Path) -> None:
    """4 is opened before 3 (files carried in any order), both behind a lost 2: 4's record
    first says 2 and 3 are missing, then, once 3 is held too, names 3 as held. `accept-gap`
    on 4 takes the gap on 3, and 4 follows it."""
    cert_fr, cert_in = partnered
    envelopes = _envelopes(cert_fr, tmp_path, 4)
    assert open_json(cert_in, envelopes[0])[0] == 0
    fourth = _held(cert_in, envelopes[3])
    assert fourth["detail"] == "missing sequence numbers 2, 3 from cert-fr before 4"
    third = _held(cert_in, envelopes[2])
    assert third["detail"] == "missing sequence numbers 2 from cert-fr before 3"
    record_3, record_4 = third["quarantine_record"], fourth["quarantine_record"]
    details = {r["id"]: r["detail"] for r in _records(cert_in)}
    assert details[record_4] == (
        f"missing sequence numbers 2 from cert-fr before 4; held in quarantine before it: 3 as record {record_3}"
    )

    result = cert_in.run("quarantine", "accept-gap", str(record_4))
    assert result.exit_code == 0, result.stderr
    assert f"the gap is accepted on the first of them, record {record_3}" in result.stderr
    assert "missing sequence numbers [2]" in result.stderr
    assert "Then 1 envelope(s) from cert-fr held behind it, accepted" in result.stdout
    assert _accepted_sequences(cert_in) == [(1, []), (3, [2]), (4, [])]
    assert _records(cert_in) == []


def test_a_held_envelope_that_cannot_be_opened_yet_stops_accept_gap_past_it(
    partnered: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CERT-FR's clock ran an hour ahead when it sealed 3 (held as issued-in-future) and its 2
    was lost; 4 is held for the gap. Accepting the gap on 4 would lose 3 for good: refused,
    nothing accepted, saying which record and why. Once the clocks agree, the same command
    takes the gap on 3 and 4 follows."""
    cert_fr, cert_in = partnered
    first, second = _envelopes(cert_fr, tmp_path, 2)
    shift = clock_shifter(monkeypatch)  # the process's clock (cti_exchange.clock)
    shift(timedelta(hours=1))
    bundle = make_bundle([indicator("198.51.3.1")])
    third = seal(cert_fr, bundle_file(tmp_path, "bundle-3.json", bundle), "cert-in", name="3.json")
    monkeypatch.undo()
    bundle = make_bundle([indicator("198.51.4.1")])
    fourth = seal(cert_fr, bundle_file(tmp_path, "bundle-4.json", bundle), "cert-in", name="4.json")

    assert open_json(cert_in, first)[0] == 0
    code, future, _ = open_json(cert_in, third)
    assert (code, future["reason"]) == (4, "issued-in-future")
    gap = _held(cert_in, fourth)
    record_3, record_4 = future["quarantine_record"], gap["quarantine_record"]
    assert gap["detail"] == (
        "missing sequence numbers 2 from cert-fr before 4; held in quarantine before it: "
        f"3 as record {record_3} (issued-in-future)"
    )

    refused = cert_in.run("quarantine", "accept-gap", str(record_4))
    assert refused.exit_code == 4, refused.stderr
    assert f"is held in quarantine as record {record_3}" in refused.stderr
    assert "issued-in-future" in refused.stderr and "nothing was accepted" in refused.stderr
    assert f"quarantine resolve {record_3} --discard" in refused.stderr and "Traceback" not in refused.stderr
    assert rows(cert_in, "SELECT count(*) FROM envelopes_in") == [(1,)]
    assert len(_records(cert_in)) == 2

    shift(timedelta(hours=2))
    result = cert_in.run("quarantine", "accept-gap", str(record_4), "--json")
    assert result.exit_code == 0, result.stderr
    accepted = result.json()
    assert (accepted["record_id"], accepted["sequence"], accepted["missing"]) == (record_3, 3, [2])
    assert accepted["released_envelopes"] == [gap["envelope_id"]]
    assert _records(cert_in) == []
    assert _stored(cert_in, "198.51.3.1") and second.exists()  # 2 stays lost


# -- bug 2: the envelope printed back is the envelope received --------------------------------


def test_show_artifact_prints_the_bytes_received_and_opening_them_keeps_one_record(
    partnered: Pair, tmp_path: Path
) -> None:
    """`quarantine show ID --artifact` printed the envelope written again (keys sorted,
    indented: 4,017 bytes for 3,908 received), and `open` on that output made a second
    record of the same refused envelope, which `status` counted twice. Now it prints the
    bytes received, and the same envelope written any other way keeps its one record."""
    cert_fr, cert_in = partnered
    (envelope,) = _envelopes(cert_fr, tmp_path, 1)
    tampered = tampered_copy(envelope)
    code, refused, _ = open_json(cert_in, tampered)
    assert (code, refused["reason"]) == (4, "decryption-failed")
    record = refused["quarantine_record"]

    shown = cert_in.run("quarantine", "show", str(record), "--artifact")
    assert shown.exit_code == 0 and "decryption-failed" in shown.stderr
    assert shown.stdout.encode() == tampered.read_bytes()
    assert "not the bytes as received" not in shown.stderr
    data = cert_in.run("quarantine", "show", str(record), "--artifact", "--json").json()
    assert data["artifact_as_received"] is True and data["artifact"] == json.loads(tampered.read_bytes())

    printed = tmp_path / "printed.json"
    printed.write_text(shown.stdout)
    indented = tmp_path / "indented.json"  # as a tool would write it again: another text, same JSON
    indented.write_text(json.dumps(json.loads(tampered.read_text()), indent=4, sort_keys=True))
    for copy in (printed, indented):
        code, again, _ = open_json(cert_in, copy)
        assert (code, again["reason"], again["quarantine_record"], again["recorded_before"]) == (
            4,
            "decryption-failed",
            record,
            True,
        )
    assert [r["id"] for r in _records(cert_in)] == [record]
    assert cert_in.run("status", "--json").json()["quarantined"] == 1

    # Another artifact under that envelope id is not the same envelope: a record of its own.
    other = json.loads(tampered.read_text())
    other["id"] = "artifact--00000000-0000-4000-8000-000000000001"
    different = tmp_path / "different.json"
    different.write_text(json.dumps(other))
    code, again, _ = open_json(cert_in, different)
    assert code == 4 and again["recorded_before"] is False and again["quarantine_record"] != record


def test_a_record_whose_bytes_were_not_kept_says_so(partnered: Pair, tmp_path: Path) -> None:
    """A record made before the bytes were kept holds the envelope parsed and written again:
    `show --artifact` prints that, says it is not the bytes received, and `open` on it finds
    the same record."""
    cert_fr, cert_in = partnered
    (envelope,) = _envelopes(cert_fr, tmp_path, 1)
    tampered = tampered_copy(envelope)
    record = open_json(cert_in, tampered)[1]["quarantine_record"]
    compact = json.dumps(json.loads(tampered.read_text()), separators=(",", ":"))
    with sqlite3.connect(cert_in.home / "store.sqlite") as db:  # as the earlier version wrote it
        db.execute("UPDATE quarantine SET artifact = ? WHERE id = ?", (compact, record))

    shown = cert_in.run("quarantine", "show", str(record), "--artifact")
    assert shown.exit_code == 0
    assert "not the bytes as received" in shown.stderr and "before they were kept" in shown.stderr
    assert shown.stdout == compact + "\n"
    printed = tmp_path / "printed.json"
    printed.write_text(shown.stdout)
    code, again, _ = open_json(cert_in, printed)
    assert (code, again["quarantine_record"], again["recorded_before"]) == (4, record, True)
    assert len(_records(cert_in)) == 1


def test_the_bytes_received_are_escaped_on_a_terminal(partnered: Pair, tmp_path: Path) -> None:
    """Bytes from a file may hold characters a terminal acts on (a C1 control in a string is
    valid JSON): written exactly to a file or a pipe, escaped on a terminal."""
    cert_fr, cert_in = partnered
    (envelope,) = _envelopes(cert_fr, tmp_path, 1)
    artifact = json.loads(tampered_copy(envelope).read_text())
    artifact["description"] = "look\u009b31m here"
    hostile = tmp_path / "hostile.json"
    hostile.write_bytes(json.dumps(artifact, ensure_ascii=False).encode())
    record = open_json(cert_in, hostile)[1]["quarantine_record"]

    piped = cert_in.run("quarantine", "show", str(record), "--artifact")
    assert piped.stdout.encode() == hostile.read_bytes()
    code, screen = _run_on_terminal(cert_in, "quarantine", "show", str(record), "--artifact")
    assert code == 0, screen
    assert "look\\x9b31m here" in screen and "\u009b" not in screen
