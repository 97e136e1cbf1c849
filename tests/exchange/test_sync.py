"""sync: unattended, idempotent, single-instance, logged; delivery receipts close the loop."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

from tests.conftest import PASSPHRASE
from tests.exchange.conftest import Exchange, received_values, write_iocs


def _counts(agency_home: Path) -> dict[str, int]:
    conn = sqlite3.connect(agency_home / "store.sqlite")
    try:
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("objects", "envelopes_in", "sent_envelopes", "deliveries", "quarantine")
        }
    finally:
        conn.close()


def test_sync_round_trip_with_receipts_and_idempotence(exchange: Exchange, tmp_path: Path) -> None:
    fr, india = exchange.fr, exchange.india
    queued = fr.run("push", str(write_iocs(tmp_path / "a.csv", 12)), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr
    assert fr.run("sent", "--json").json()[0]["status"] == "sealed"

    first = fr.run("sync", "--json")
    assert first.exit_code == 0, first.stderr
    assert sum(len(v) for v in first.json()["posted"].values()) == 1

    india_sync = india.run("sync")
    assert india_sync.exit_code == 0, india_sync.stderr
    assert india_sync.stdout.startswith("sync: pulled 1 envelope(s)")
    assert "1 receipt(s) queued" in india_sync.stdout
    assert len(received_values(india)) == 12

    back = fr.run("sync", "--json")
    assert back.exit_code == 0, back.stderr
    sent = fr.run("sent", "--json").json()
    assert [d["status"] for d in sent] == ["received"] and sent[0]["received_at"]
    assert fr.run("status", "--json").json()["undelivered"] == []

    # Nothing new: a second round changes nothing on either side (no receipts for receipts).
    before = (_counts(fr.home), _counts(india.home))
    for agency in (india, fr, india, fr):
        again = agency.run("sync", "--json")
        assert again.exit_code == 0, again.stderr
    assert (_counts(fr.home), _counts(india.home)) == before


def test_second_sync_exits_at_once_while_one_runs(exchange: Exchange) -> None:
    lock = os.open(exchange.fr.home / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = exchange.fr.run("sync")
        assert result.exit_code == 5
        assert "another cti-exchange process" in result.stderr
    finally:
        os.close(lock)
    assert exchange.fr.run("sync").exit_code == 0
    # cron mails stderr at best: the log has the ending of the refused run too.
    log = (exchange.fr.home / "logs" / "cti-exchange.log").read_text()
    assert "sync ended with exit code 5: another cti-exchange process" in log


def test_a_sync_starting_while_the_lock_is_only_probed_still_runs(exchange: Exchange) -> None:
    # `audit verify` and `export` test the lock by taking it for an instant (lock_held); a cron
    # sync starting in that instant ended with exit 5, "another process is working", when none
    # was (concurrency walkthrough F5). A hold of a tenth of a second stands for that instant.
    log = exchange.fr.home / "logs" / "cti-exchange.log"
    log.unlink(missing_ok=True)
    lock = os.open(exchange.fr.home / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)

    def probe_ends() -> None:
        # sync opens its log, then takes the lock: the probe's instant ends just after.
        deadline = time.monotonic() + 30
        while not log.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.1)
        os.close(lock)

    prober = threading.Thread(target=probe_ends)
    prober.start()
    try:
        result = exchange.fr.run("sync")
    finally:
        prober.join()
    assert result.exit_code == 0, result.stderr


def test_sync_logs_to_a_private_rotating_file(exchange: Exchange, tmp_path: Path) -> None:
    exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in")
    assert exchange.india.run("sync").exit_code == 0
    log = exchange.india.home / "logs" / "cti-exchange.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert "sync: pulled 1 envelope(s)" in text
    secret = (exchange.india.home / "taxii.secret").read_text()
    assert secret not in text and PASSPHRASE not in text


def test_sync_never_prompts_without_a_terminal(exchange: Exchange) -> None:
    result = exchange.fr.run("sync", env={"CTI_EXCHANGE_PASSPHRASE": ""})
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1 and "no terminal" in result.stderr


def test_sync_reports_integrity_alerts(exchange: Exchange, tmp_path: Path) -> None:
    exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in")
    conn = sqlite3.connect(exchange.india.home / "store.sqlite")
    # CERT-In's store believes it already accepted 5 envelopes from CERT-FR: the next one (1)
    # is then out of order. (Editing the store stands in for a replayed or reordered channel.)
    conn.execute(
        "INSERT INTO channels_in (sender, sequence, digest, updated_at) VALUES ('cert-fr', 5, 'x', 'now')"
    )
    conn.commit()
    conn.close()
    result = exchange.india.run("sync", "--json")
    assert result.exit_code == 4
    assert result.json()["pulled"][0]["quarantined"][0]["reason"] == "sequence-reorder"


def test_status_lists_what_is_undelivered_after_the_threshold(exchange: Exchange, tmp_path: Path) -> None:
    exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in", "--queue")
    assert exchange.fr.run("status", "--json").json()["undelivered"] == []  # not late yet
    conn = sqlite3.connect(exchange.fr.home / "store.sqlite")
    conn.execute("UPDATE sent_envelopes SET created_at = '2020-01-01T00:00:00.000Z'")
    conn.commit()
    conn.close()
    late = exchange.fr.run("status", "--json").json()["undelivered"]
    assert [d["status"] for d in late] == ["sealed"] and late[0]["partner"] == "cert-in"
    text = exchange.fr.run("status")
    assert "without a receipt" in text.stdout


def test_status_does_not_wait_for_a_receipt_to_a_receipt_envelope(exchange: Exchange, tmp_path: Path) -> None:
    """An envelope holding only our receipts is never acknowledged (no receipts for receipts):
    once its partner's server took it, status listed it 'without a receipt' for good, one more
    after every sync that accepted something."""
    fr, india = exchange.fr, exchange.india
    pushed = fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr
    synced = india.run("sync")
    assert synced.exit_code == 0 and "1 receipt(s) queued" in synced.stdout, synced.stderr
    assert [d["status"] for d in india.run("sent", "--json").json()] == ["posted"]
    conn = sqlite3.connect(india.home / "store.sqlite")
    conn.execute("UPDATE sent_envelopes SET created_at = '2020-01-01T00:00:00.000Z'")
    conn.commit()
    conn.close()
    status = india.run("status", "--json")
    assert status.exit_code == 0, status.stderr
    assert status.json()["undelivered"] == []
    # Counted apart: the posted column kept growing by one a sync with nothing to wait for.
    # Every count, zeros included: a script reading ["posted"] gets 0, not a KeyError.
    assert status.json()["deliveries_by_partner"] == {
        "cert-fr": {
            "sealed": 0,
            "posted": 0,
            "received": 0,
            "failed": 0,
            "exported": 0,
            "resealed": 0,
            "dropped": 0,
            "receipts_posted": 1,
        }
    }
    table = india.run("status").stdout.splitlines()
    sent = table.index("Sent envelopes:")
    assert table[sent + 1].split("\t")[2] == "posted" and table[sent + 1].endswith("our receipts posted")
    assert table[sent + 2].split("\t") == ["cert-fr", "0", "0", "0", "0", "0", "1"]
    assert "Every envelope older than 24 h has a receipt" in india.run("status").stdout
    # cert-fr's envelope is a day younger than that and has no receipt yet: said so, with the
    # threshold in hours (the line read "older than the threshold" beside "received 0").
    assert "Every envelope older than 24 h has a receipt (1 younger one(s) still wait for theirs)." in (
        fr.run("status").stdout
    )
    counted = fr.run("status", "--json").json()["deliveries_by_partner"]["cert-in"]
    assert counted["posted"] == 1 and counted["received"] == 0 and counted["receipts_posted"] == 0


def test_receipts_are_not_items_to_triage_or_export(exchange: Exchange, tmp_path: Path) -> None:
    """A receipt is the exchange's own acknowledgement, not intelligence: it marks our sent log
    and stops there. It used to be stored as an object, listed by `triage list` as `new`, one
    per receipt envelope, for the analyst to decide on."""
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 0  # pulls, and sends its receipt
    assert fr.run("sync").exit_code == 0  # the receipt arrives
    assert [d["status"] for d in fr.run("sent", "--json").json()] == ["received"]
    listed = fr.run("triage", "list", "--json")  # every status
    assert listed.exit_code == 0, listed.stderr
    assert [item["type"] for item in listed.json()["items"]] == []
    conn = sqlite3.connect(fr.home / "store.sqlite")
    try:
        assert conn.execute(
            "SELECT COUNT(*) FROM objects WHERE type = 'x-cti-exchange-receipt'"
        ).fetchone() == (0,)
    finally:
        conn.close()
