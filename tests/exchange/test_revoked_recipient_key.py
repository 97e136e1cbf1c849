"""A partner revokes its encryption key while our envelopes to it wait in the outbox or sit,
unopened, on its server: they are re-addressed to its new key (envelope/readdress.py) and
nothing is lost, through the CLI against a real TAXII server."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Agency, make_agency, pin, revoke_encryption_key, update_keys
from tests.exchange.conftest import Exchange, received_values, write_iocs


def _rows(agency: Agency, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(agency.home / "store.sqlite")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_queued_envelope_reaches_a_partner_that_revoked_its_key(exchange: Exchange, tmp_path: Path) -> None:
    fr, india = exchange.fr, exchange.india
    queued = fr.run("push", str(write_iocs(tmp_path / "a.csv", 5)), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr
    revoked = revoke_encryption_key(india)
    assert update_keys(fr, india, tmp_path)["requeued_envelopes"] == []  # never posted

    posted = fr.run("sync", "--json")
    assert posted.exit_code == 0, posted.stderr

    pulled = india.run("sync", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    assert len(received_values(india)) == 5
    assert _rows(india, "SELECT reason FROM quarantine") == []
    readdressed = _rows(fr, "SELECT details FROM audit_log WHERE action = 'readdress'")
    assert len(readdressed) == 1 and revoked in readdressed[0][0]
    # The channel goes on from the re-addressed envelope: the next one is not a gap.
    assert fr.run("push", str(write_iocs(tmp_path / "b.csv", 2, start=10)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 0
    assert len(received_values(india)) == 7


def test_an_envelope_posted_to_a_revoked_key_is_posted_again_once_we_pin_the_new_one(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    revoked = revoke_encryption_key(india)
    pushed = fr.run("push", str(write_iocs(tmp_path / "a.csv", 4)), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr  # sealed for the key CERT-FR still has pinned

    # CERT-In cannot open it, and says why instead of skipping it as not for it.
    refused = india.run("sync")
    assert refused.exit_code == 4, refused.stderr
    [(reason, detail)] = _rows(india, "SELECT reason, detail FROM quarantine")
    assert reason == "encrypted-to-revoked-key" and revoked in detail
    assert received_values(india) == []

    update = update_keys(fr, india, tmp_path)
    [envelope_id] = update["requeued_envelopes"]
    assert fr.run("sent", "--json").json()[0]["status"] == "sealed"
    assert fr.run("sync").exit_code == 0

    accepted = india.run("sync", "--json")
    assert accepted.exit_code == 0, accepted.stderr
    assert len(received_values(india)) == 4
    [(resolved_at, resolution)] = _rows(india, "SELECT resolved_at, resolution FROM quarantine")
    assert resolved_at and "re-addressed" in resolution
    assert _rows(india, "SELECT envelope_id, sequence FROM envelopes_in") == [(envelope_id, 1)]
    assert fr.run("sync").exit_code == 0  # the receipt comes back
    assert fr.run("sent", "--json").json()[0]["status"] == "received"


def test_an_envelope_the_partner_confirmed_is_not_posted_again(exchange: Exchange, tmp_path: Path) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 0  # accepted, receipt sent
    assert fr.run("sync").exit_code == 0  # receipt read
    assert fr.run("sent", "--json").json()[0]["status"] == "received"
    revoke_encryption_key(india)
    assert update_keys(fr, india, tmp_path)["requeued_envelopes"] == []
    assert fr.run("sync").exit_code == 0
    assert india.run("sync").exit_code == 0
    assert _rows(india, "SELECT reason FROM quarantine") == []


@pytest.mark.parametrize("pushes", [1, 2])
def test_receipt_envelopes_posted_again_are_no_alert_where_they_were_read(
    exchange: Exchange, tmp_path: Path, pushes: int
) -> None:
    """Envelopes of receipts are never acknowledged (no receipts for receipts), so every one
    posted to a partner that revokes its encryption key goes back to the outbox, re-addressed
    with its channel position (a receipt envelope the partner could not open must not leave a
    gap). Where the partner had read them, the copies are the same signed envelopes it already
    accepted: skipped as duplicates, not refused as replays (exit 4 and a quarantine record
    apiece)."""
    fr, india = exchange.fr, exchange.india
    for n in range(pushes):
        pushed = fr.run("push", str(write_iocs(tmp_path / f"{n}.csv", 2, start=10 * n)), "--to", "cert-in")
        assert pushed.exit_code == 0, pushed.stderr
        assert india.run("sync").exit_code == 0  # accepted: a receipt envelope posted to CERT-FR
        assert fr.run("sync").exit_code == 0  # and read there
    assert [d["status"] for d in fr.run("sent", "--json").json()] == ["received"] * pushes
    revoke_encryption_key(fr)

    update = update_keys(india, fr, tmp_path)
    assert len(update["requeued_envelopes"]) == pushes
    assert india.run("sync").exit_code == 0  # posted again, re-addressed to CERT-FR's new key
    synced = fr.run("sync", "--json")
    assert synced.exit_code == 0, synced.stderr
    assert _rows(fr, "SELECT reason FROM quarantine") == []
    assert [d["status"] for d in fr.run("sent", "--json").json()] == ["received"] * pushes
    # The channel goes on: CERT-In's next receipt envelope is accepted, not held behind a gap.
    assert (
        fr.run("push", str(write_iocs(tmp_path / "next.csv", 2, start=90)), "--to", "cert-in").exit_code == 0
    )
    assert india.run("sync").exit_code == 0
    assert fr.run("sync").exit_code == 0
    assert _rows(fr, "SELECT reason FROM quarantine") == []
    assert [d["status"] for d in fr.run("sent", "--json").json()] == ["received"] * (pushes + 1)


def test_a_receipt_envelope_the_partner_could_not_open_reaches_it_re_addressed(
    exchange: Exchange, tmp_path: Path
) -> None:
    """A receipt envelope sealed to a key the partner revoked before reading it: it comes again,
    re-addressed, with its own channel position, so the envelopes after it are no gap."""
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in").exit_code == 0
    revoke_encryption_key(fr)
    assert india.run("sync").exit_code == 0  # accepted: a receipt envelope to CERT-FR's old key
    refused = fr.run("sync")
    assert refused.exit_code == 4  # it cannot open it
    assert [reason for (reason,) in _rows(fr, "SELECT reason FROM quarantine")] == [
        "encrypted-to-revoked-key"
    ]

    assert len(update_keys(india, fr, tmp_path)["requeued_envelopes"]) == 1
    assert india.run("sync").exit_code == 0
    assert fr.run("sync").exit_code == 0
    assert fr.run("sent", "--json").json()[0]["status"] == "received"
    assert fr.run("push", str(write_iocs(tmp_path / "b.csv", 2, start=10)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 0
    assert fr.run("sync").exit_code == 0  # the next receipt envelope: no gap
    assert [d["status"] for d in fr.run("sent", "--json").json()] == ["received", "received"]


def _three_envelopes_re_addressed(exchange: Exchange, tmp_path: Path) -> list[str]:
    """CERT-In revoked its encryption key; CERT-FR posted three envelopes sealed to it, then
    pinned the new key and posted the same three re-addressed. CERT-In has read none yet: its
    next run rejects the three and accepts their copies. The three envelope ids."""
    fr, india = exchange.fr, exchange.india
    revoke_encryption_key(india)
    for n in range(3):
        pushed = fr.run("push", str(write_iocs(tmp_path / f"{n}.csv", 2, start=10 * n)), "--to", "cert-in")
        assert pushed.exit_code == 0, pushed.stderr
    requeued = list(update_keys(fr, india, tmp_path)["requeued_envelopes"])
    assert len(requeued) == 3
    assert fr.run("sync").exit_code == 0
    return requeued


@pytest.mark.parametrize("command", [("sync",), ("sync", "--json"), ("pull",), ("pull", "--json")])
def test_an_alert_counts_only_what_stays_in_quarantine_once_re_addressed_copies_are_accepted(
    exchange: Exchange, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Three envelopes sealed to a revoked key and their re-addressed copies, read in one run,
    and an impostor's envelope: the run said "4 envelope(s) rejected (...); they are in
    quarantine" (and "4 rejected") when the copies had been accepted in the same run and their
    records closed; one record stayed open. Still exit 4 for that one."""
    india = exchange.india
    requeued = _three_envelopes_re_addressed(exchange, tmp_path)
    # An impostor posts to CERT-FR's collection for CERT-In, signing with a key CERT-In never
    # pinned: held as unknown-key, a real alert.
    impostor = make_agency(tmp_path / "impostor", "cert-fr", "Impostor")
    pin(impostor, india, tmp_path / "impostor")
    exchange.wire(impostor, india)
    forged = impostor.run("push", str(write_iocs(tmp_path / "forged.csv", 1, start=99)), "--to", "cert-in")
    assert forged.exit_code == 0, forged.stderr

    result = india.run(*command)
    assert result.exit_code == 4, result.stderr
    values = received_values(india)
    assert len(values) == len(set(values)) == 6  # the three re-addressed envelopes, two each
    (still,) = india.run("quarantine", "list", "--json").json()
    assert still["reason"] == "unknown-key"
    assert "1 envelope(s) rejected (1 still in quarantine; first: cert-fr" in result.stderr
    assert "unknown-key" in result.stderr
    assert "3 other envelope(s) rejected in this run were accepted since" in result.stderr
    # The error (one line), after pull's warning on the impostor's and its note on the three.
    assert result.stderr.count("\n") == (3 if command == ("pull",) else 1)
    if "--json" in command:
        (partner,) = result.json()["partners" if command[0] == "pull" else "pulled"]
        assert [q["record_id"] for q in partner["quarantined"]] == [still["id"]]
        assert sorted(q["envelope_id"] for q in partner["rejected_then_accepted"]) == sorted(requeued)
        assert {q["resolution"] for q in partner["rejected_then_accepted"]} == {
            "accepted when re-addressed to our current key"
        }
    elif command[0] == "sync":
        assert "1 rejected (3 more rejected, then accepted)" in result.stdout
    else:
        assert "3 envelope(s) rejected, then accepted in the same run" in result.stderr
        row = next(line for line in result.stdout.splitlines() if line.startswith("cert-fr"))
        assert (row.split("\t")[1], row.split("\t")[4]) == ("3", "1")  # accepted, rejected


def test_a_run_whose_rejected_envelopes_were_all_accepted_as_re_addressed_copies_is_no_alert(
    exchange: Exchange, tmp_path: Path
) -> None:
    """The same three envelopes and copies without the impostor: nothing is left in
    quarantine, every envelope arrived; the run ended with exit 4 saying "3 envelope(s)
    rejected ...; they are in quarantine"."""
    india = exchange.india
    _three_envelopes_re_addressed(exchange, tmp_path)

    result = india.run("sync")
    assert result.exit_code == 0, result.stderr
    assert "0 rejected (3 more rejected, then accepted)" in result.stdout
    assert india.run("quarantine", "list", "--json").json() == []
    assert len(received_values(india)) == 6
