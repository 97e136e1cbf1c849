"""A TAXII server that answers 404 or 403 for a configured collection (a wrong collection id,
or rights the server's operator withdrew: `cti-exchange serve` withdraws a removed partner's
rights, and the server then answers 404 "Collection ... not found") will answer the same next
time: pull, push and sync say so in one line naming the partner, the collection and the fix,
and exit 3 like `doctor`'s access check, never 7 "network failure" (a cron operator does nothing
on 7). What could not be posted stays in the outbox, and goes once the collection is fixed.

Through the CLI, against the real TAXII server (medallion and the SQLite backend) on 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cti_exchange.server.provisioning import collection_id_for
from tests.conftest import Agency
from tests.exchange.conftest import Exchange, received_values, write_iocs
from tests.exchange.serve_process import closed_port_url

WRONG = str(uuid.UUID(int=0x404))


def _set(agency: Agency, partner: str, option: str, collection: str) -> None:
    result = agency.run("partners", "set", partner, f"--{option}", collection)
    assert result.exit_code == 0, result.stderr


def _error_line(stderr: str) -> str:
    """The run's error: one line, the last on stderr."""
    lines = stderr.splitlines()
    assert lines, "nothing on stderr"
    return lines[-1]


def _outbox(agency: Agency, partner: str) -> dict[str, int]:
    status = agency.run("status", "--json")
    assert status.exit_code == 0, status.stderr
    counts: dict[str, int] = status.json()["deliveries_by_partner"][partner]
    # Every count is there, zeros included: the non-zero ones are what these tests compare.
    assert set(counts) == {
        "sealed",
        "posted",
        "received",
        "failed",
        "exported",
        "resealed",
        "dropped",
        "receipts_posted",
    }
    return {status: n for status, n in counts.items() if n}


def _assert_collection_refused(line: str, partner: str, collection: str, option: str, status: int) -> None:
    assert partner in line and collection in line, line
    assert f"HTTP {status}" in line, line
    assert f"--{option}" in line and "cti-exchange doctor" in line, line
    assert "still failing" not in line and "reachable" not in line, line


@pytest.mark.parametrize(
    ("collection", "status"),
    [
        (WRONG, 404),  # no such collection, or no right at all on it: the server hides it
        (collection_id_for("cert-in", "cert-fr"), 403),  # ours to write to, not to read
    ],
    ids=["not-found", "no-read-right"],
)
def test_pull_from_a_collection_refused_by_the_server_is_not_a_network_failure(
    exchange: Exchange, collection: str, status: int
) -> None:
    _set(exchange.india, "cert-fr", "read-collection", collection)
    pulled = exchange.india.run("pull")
    assert pulled.exit_code == 3, pulled.stderr
    line = _error_line(pulled.stderr)
    assert pulled.stderr.count("\n") == 1, pulled.stderr
    _assert_collection_refused(line, "cert-fr", collection, "read-collection", status)

    as_json = exchange.india.run("pull", "--json")
    assert as_json.exit_code == 3
    [partner] = as_json.json()["partners"]
    assert collection in partner["error"] and f"HTTP {status}" in partner["error"]


def test_sync_reading_a_collection_that_does_not_exist_exits_3(exchange: Exchange, tmp_path: Path) -> None:
    fr, india = exchange.fr, exchange.india
    pushed = fr.run("push", str(write_iocs(tmp_path / "a.csv", 4)), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr
    _set(india, "cert-fr", "read-collection", WRONG)
    synced = india.run("sync")
    assert synced.exit_code == 3, synced.stderr
    assert "errors with: cert-fr" in synced.stdout
    _assert_collection_refused(_error_line(synced.stderr), "cert-fr", WRONG, "read-collection", 404)
    log = (india.home / "logs" / "cti-exchange.log").read_text()
    assert "sync ended with exit code 3" in log and WRONG in log

    # Once the collection is put right, the next sync reads everything.
    _set(india, "cert-fr", "read-collection", collection_id_for("cert-fr", "cert-in"))
    again = india.run("sync")
    assert again.exit_code == 0, again.stderr
    assert len(received_values(india)) == 4


@pytest.mark.parametrize(
    ("collection", "status"),
    [
        (WRONG, 404),
        (collection_id_for("cert-in", "cert-fr"), 403),  # ours to read from, not to write to
    ],
    ids=["not-found", "no-write-right"],
)
def test_push_to_a_collection_refused_by_the_server_keeps_the_envelope_in_the_outbox(
    exchange: Exchange, tmp_path: Path, collection: str, status: int
) -> None:
    fr, india = exchange.fr, exchange.india
    _set(fr, "cert-in", "write-collection", collection)
    pushed = fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in")
    assert pushed.exit_code == 3, pushed.stderr
    line = _error_line(pushed.stderr)
    assert pushed.stderr.count("\n") == 1, pushed.stderr
    _assert_collection_refused(line, "cert-in", collection, "write-collection", status)
    assert "kept in the outbox" in line
    assert _outbox(fr, "cert-in") == {"failed": 1}

    _set(fr, "cert-in", "write-collection", collection_id_for("cert-fr", "cert-in"))
    synced = fr.run("sync", "--json")
    assert synced.exit_code == 0, synced.stderr
    assert len(synced.json()["posted"]["cert-in"]) == 1
    assert india.run("pull").exit_code == 0
    assert len(received_values(india)) == 3


def test_sync_posting_to_a_collection_that_does_not_exist_keeps_the_outbox(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    queued = fr.run("push", str(write_iocs(tmp_path / "a.csv", 5)), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr
    _set(fr, "cert-in", "write-collection", WRONG)
    synced = fr.run("sync")
    assert synced.exit_code == 3, synced.stderr
    assert "posted 0 envelope(s), 1 left in the outbox" in synced.stdout
    assert "errors with: cert-in" in synced.stdout
    _assert_collection_refused(_error_line(synced.stderr), "cert-in", WRONG, "write-collection", 404)
    assert _outbox(fr, "cert-in") == {"failed": 1}
    sent = fr.run("sent", "--json").json()
    assert [d["status"] for d in sent] == ["failed"] and WRONG in sent[0]["last_error"]

    _set(fr, "cert-in", "write-collection", collection_id_for("cert-fr", "cert-in"))
    again = fr.run("sync")
    assert again.exit_code == 0, again.stderr
    assert india.run("pull").exit_code == 0
    assert len(received_values(india)) == 5


def test_doctor_names_the_refused_collection_and_exits_3_too(exchange: Exchange) -> None:
    _set(exchange.fr, "cert-in", "write-collection", WRONG)
    doctor = exchange.fr.run("doctor", "--json")
    assert doctor.exit_code == 3, doctor.stderr
    checks = {c["name"]: c for c in doctor.json()["checks"]}
    access = checks["partner cert-in: access"]
    assert access["status"] == "fail" and WRONG in access["detail"] and "HTTP 404" in access["detail"]
    assert "--write-collection" in access["fix"]


def test_exit_7_only_when_every_failure_was_a_network_one(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    """cert-in's partners: cert-de, whose server is out of reach, and cert-fr, whose server
    answers 404 for the collection set. Unreachable alone is 7; with a refused collection, 3."""
    exchange, _ = trio
    india = exchange.india
    down = india.run("partners", "set", "cert-de", "--api-root", closed_port_url(), "--retry-budget", "1")
    assert down.exit_code == 0, down.stderr

    pulled = india.run("pull", "--from", "cert-de")
    assert pulled.exit_code == 7, pulled.stderr
    _set(india, "cert-fr", "read-collection", WRONG)
    pulled = india.run("pull")
    assert pulled.exit_code == 3, pulled.stderr
    assert "cert-de" in pulled.stderr and WRONG in pulled.stderr

    # Posting: sync pulls first and reports a failed pull first, so only cert-fr is read now.
    _set(india, "cert-fr", "read-collection", collection_id_for("cert-fr", "cert-in"))
    config = india.home / "config.toml"
    de_read = f'read_collection = "{collection_id_for("cert-de", "cert-in")}"\n'
    assert de_read in config.read_text()
    config.write_text(config.read_text().replace(de_read, ""))
    queued = india.run("push", str(write_iocs(tmp_path / "de.csv", 2)), "--to", "cert-de", "--queue")
    assert queued.exit_code == 0, queued.stderr
    pushed = india.run("push", str(write_iocs(tmp_path / "de2.csv", 2, start=2)), "--to", "cert-de")
    assert pushed.exit_code == 7, pushed.stderr

    _set(india, "cert-fr", "write-collection", WRONG)
    queued = india.run("push", str(write_iocs(tmp_path / "fr.csv", 2)), "--to", "cert-fr", "--queue")
    assert queued.exit_code == 0, queued.stderr
    synced = india.run("sync")
    assert synced.exit_code == 3, synced.stderr
    assert "cert-de" in synced.stderr and WRONG in synced.stderr
    assert _outbox(india, "cert-fr") == {"failed": 1}
    # The queued push's envelope, and the one the push sealed when the server was out of reach
    # (kept for the next sync rather than dropped: test_push_when_the_server_is_down.py).
    assert _outbox(india, "cert-de") == {"failed": 2}


def test_a_pull_where_every_partner_failed_is_not_a_network_failure_if_one_was_settings(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    """cert-de out of reach, cert-fr's entry without a read collection (settings to fix, exit 2
    alone): the pull exited 7, whose advice is to do nothing."""
    exchange, _ = trio
    india = exchange.india
    down = india.run("partners", "set", "cert-de", "--api-root", closed_port_url(), "--retry-budget", "1")
    assert down.exit_code == 0, down.stderr
    config = india.home / "config.toml"
    fr_read = f'read_collection = "{collection_id_for("cert-fr", "cert-in")}"\n'
    assert fr_read in config.read_text()
    config.write_text(config.read_text().replace(fr_read, ""))
    assert india.run("pull", "--from", "cert-fr").exit_code == 2
    pulled = india.run("pull", "--from", "cert-fr", "--from", "cert-de")
    assert pulled.exit_code == 2, pulled.stderr
    assert "cert-de" in pulled.stderr and "cert-fr has no read_collection" in pulled.stderr


def test_a_wrong_api_root_is_settings_to_fix_not_a_network_failure(
    exchange: Exchange, tmp_path: Path
) -> None:
    """A push to a server that answers 404 at the configured API root exited 7 "network
    failure", whose advice is to wait."""
    fr = exchange.fr
    _set(fr, "cert-in", "api-root", exchange.server.url + "/no-such-root/")
    pushed = fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
    assert pushed.exit_code == 2, pushed.stderr
    line = _error_line(pushed.stderr)
    assert "is not a TAXII 2.1 API root" in line and "--api-root URL" in line


def test_doctor_names_a_wrong_api_root_and_still_lists_every_check(exchange: Exchange) -> None:
    fr = exchange.fr
    _set(fr, "cert-in", "api-root", exchange.server.url + "/no-such-root/")
    result = fr.run("doctor", "--json")
    assert result.exit_code == 2, result.stderr
    checks = {c["name"]: c for c in result.json()["checks"]}
    reachable = checks["partner cert-in: reachable"]
    assert reachable["status"] == "fail" and "is not a TAXII 2.1 API root" in reachable["detail"]
    assert "--api-root URL" in reachable["fix"]
    assert checks["partner cert-in: TAXII settings"]["status"] == "ok"  # kept, not discarded
    assert checks["partner cert-in: access"]["status"] == "skip"


class _ApiRootFailing(BaseHTTPRequestHandler):
    """A server whose collections answer 404 and whose API root answers 503 (overloaded, or
    failing behind its front end): it counts the API root's requests."""

    protocol_version = "HTTP/1.1"
    api_root_requests = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/exchange"):
            type(self).api_root_requests += 1
            status, body = 503, b'{"title":"Service Unavailable"}'
        else:
            status, body = 404, b'{"title":"Collection not found"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/taxii+json;version=2.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_api_root_is_asked_once_after_a_collection_404_not_for_a_second_budget(
    exchange: Exchange,
) -> None:
    """The API root is read after a collection's 404 only to tell a wrong --api-root from a
    wrong collection: once. Failing, it says nothing of the URL, and the 404 is reported."""

    class Handler(_ApiRootFailing):
        api_root_requests = 0

    handler = Handler
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/exchange/"
        result = exchange.india.run("partners", "set", "cert-fr", "--api-root", url, "--retry-budget", "20")
        assert result.exit_code == 0, result.stderr
        started = time.monotonic()
        pulled = exchange.india.run("pull")
        took = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert pulled.exit_code == 3, pulled.stderr
    line = _error_line(pulled.stderr)
    assert "HTTP 404" in line and "--read-collection" in line, line
    assert handler.api_root_requests == 1
    assert took < 10, took  # not a second 20 s budget
