"""sync, status, sent and doctor as cron runs them: exit codes, stdout for scripts, one-line
errors with their fix, for what an unattended run meets (a broken log directory, a partner
without a TAXII server, a server that is down, a dropped outbox)."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

from tests.conftest import Agency
from tests.exchange.conftest import write_iocs


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _set_taxii(agency: Agency, partner: str, api_root: str) -> None:
    result = agency.run(
        "partners",
        "set",
        partner,
        "--api-root",
        api_root,
        "--read-collection",
        "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d01",
        "--write-collection",
        "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d02",
        "--retry-budget",
        "0",
        "--timeout",
        "1",
    )
    assert result.exit_code == 0, result.stderr


def _age_outbox(agency: Agency) -> None:
    conn = sqlite3.connect(agency.home / "store.sqlite")
    conn.execute("UPDATE sent_envelopes SET created_at = '2020-01-01T00:00:00.000Z'")
    conn.commit()
    conn.close()


# -- the log directory ---------------------------------------------------------------------------


def test_sync_with_an_unusable_log_directory_is_a_configuration_error(cert_fr: Agency) -> None:
    """It was exit 70, 'internal error ... please report it', with no hint of the fix."""
    logs = cert_fr.home / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "cti-exchange.log").mkdir()  # the log file is a directory: cannot be opened
    result = cert_fr.run("sync")
    assert result.exit_code == 2, result.stderr
    assert "internal error" not in result.stderr
    assert result.stderr.count("\n") == 1 and str(logs / "cti-exchange.log") in result.stderr
    assert result.stdout == ""

    (logs / "cti-exchange.log").rmdir()
    logs.rmdir()
    logs.write_text("not a directory\n")  # `logs` itself is a file
    result = cert_fr.run("sync", "--json")
    assert result.exit_code == 2, result.stderr
    assert "internal error" not in result.stderr and str(logs) in result.stderr
    assert result.stdout == ""


def test_doctor_checks_the_log_that_sync_writes(cert_fr: Agency) -> None:
    """Doctor passed while every sync failed on the log."""
    result = cert_fr.run("doctor", "--offline", "--json")
    assert result.exit_code == 0, result.stderr
    checks = {c["name"]: c for c in result.json()["checks"]}
    assert checks["log"]["status"] == "ok"

    logs = cert_fr.home / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "cti-exchange.log").mkdir()
    result = cert_fr.run("doctor", "--offline", "--json")
    assert result.exit_code == 2
    log = {c["name"]: c for c in result.json()["checks"]}["log"]
    assert log["status"] == "fail" and str(logs / "cti-exchange.log") in log["detail"]
    assert log["fix"]
    assert cert_fr.run("sync").exit_code == 2  # what doctor predicted


# -- a partner sync cannot post to ---------------------------------------------------------------


def test_sync_says_when_envelopes_wait_for_a_partner_without_taxii_settings(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """It exited 0 with '0 left in the outbox' while the envelope waited there for good."""
    fr, _ = partnered
    queued = fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr

    result = fr.run("sync")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "cert-in" in result.stderr and "partners set cert-in" in result.stderr
    assert "1 envelope(s) waiting" in result.stdout

    result = fr.run("sync", "--json")
    assert result.exit_code == 2
    assert result.json()["waiting_without_taxii"] == {"cert-in": 1}
    log = (fr.home / "logs" / "cti-exchange.log").read_text()
    assert "sync ended with exit code 2" in log


def test_sync_summary_counts_what_waits_for_a_partner_without_taxii_settings(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """The summary said '0 left in the outbox' while two envelopes waited there for cert-in
    (the same run exited 2 saying so), in the output, in --json and in the log."""
    fr, _ = partnered
    for n in range(2):
        queued = fr.run(
            "push", str(write_iocs(tmp_path / f"{n}.csv", 2, start=10 * n)), "--to", "cert-in", "--queue"
        )
        assert queued.exit_code == 0, queued.stderr

    result = fr.run("sync")
    assert result.exit_code == 2, result.stderr
    assert "posted 0 envelope(s), 2 left in the outbox" in result.stdout
    assert "2 envelope(s) waiting for cert-in" in result.stdout
    summary = fr.run("sync", "--json").json()["summary"]
    assert "2 left in the outbox" in summary and "2 envelope(s) waiting for cert-in" in summary
    logged = [
        line
        for line in (fr.home / "logs" / "cti-exchange.log").read_text().splitlines()
        if "sync: pulled" in line
    ]
    assert logged and all("2 left in the outbox" in line for line in logged)


def test_sync_with_nothing_waiting_for_a_partner_without_taxii_settings_succeeds(
    partnered: tuple[Agency, Agency],
) -> None:
    fr, _ = partnered
    result = fr.run("sync", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["waiting_without_taxii"] == {}


# -- status --------------------------------------------------------------------------------------


def test_status_last_pull_is_the_last_pull_that_reached_the_server(
    partnered: tuple[Agency, Agency],
) -> None:
    """A pull that failed (server down) was shown as the partner's last pull."""
    fr, _ = partnered
    _set_taxii(fr, "cert-in", f"http://127.0.0.1:{_closed_port()}/exchange/")
    result = fr.run("sync", "--json")
    assert result.exit_code == 7, result.stderr
    assert result.json()["pulled"][0]["error"]

    status = fr.run("status", "--json")
    assert status.exit_code == 0, status.stderr
    assert status.json()["last_pull"] == {"cert-in": None}
    assert "unreachable (connection refused)" in status.json()["last_pull_error"]["cert-in"]
    text = fr.run("status")
    assert text.stdout.splitlines()[2].split("\t")[:2] == ["cert-in", "never"]  # after "Partners:"


def test_status_does_not_count_dropped_envelopes_as_undelivered(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """An envelope dropped with its partner (or resealed) was listed 'without a receipt'
    forever: nothing could clear it."""
    fr, _ = partnered
    queued = fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr
    removed = fr.run("partners", "remove", "cert-in", "--yes", "--drop-outbox")
    assert removed.exit_code == 0, removed.stderr
    # Pinned again later, cert-in sees a gap where they were: the command says so (it did not).
    assert "tell it to run `cti-exchange quarantine accept-gap`" in removed.stderr
    assert "from every agency served there, so tell them first" in removed.stderr
    _age_outbox(fr)
    assert [d["status"] for d in fr.run("sent", "--json").json()] == ["dropped"]
    status = fr.run("status", "--json")
    assert status.exit_code == 0, status.stderr
    assert status.json()["undelivered"] == []
    assert "Every envelope older than 24 h has a receipt" in fr.run("status").stdout
