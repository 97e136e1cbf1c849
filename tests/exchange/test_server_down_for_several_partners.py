"""Three partners whose API roots are on one server, and that server stopped: each partner
waited out a retry budget of its own against the same dead server, one after the other (a pull
took 5 min 37 s with the default 120 s, longer than the */5 cron interval), and the error
named a collection, not the server. Now the first partner's budget decides for the others on
that server, in the same run; a partner on another server is unaffected, and nothing is lost:
the next run, with the server back, delivers everything."""

from __future__ import annotations

import re
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cti_exchange.exchange.pull import pull
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.server.provisioning import plan_exchange, provision
from cti_exchange.server.runner import ServerProcess
from tests.conftest import PASSPHRASE, Agency, make_agency, pin
from tests.exchange.conftest import Exchange, received_values, store_rows, write_iocs

BUDGET = 4  # seconds: --retry-budget of cert-in's three partners on the server that stops
ON_A = ("cert-fr", "cert-de", "cert-xx")  # cert-in's partners on server A (stopped)


@dataclass
class Setup:
    india: Agency
    on_a: dict[str, Agency]  # by agency id
    jp: Agency  # on server B, which keeps running
    server_a: ServerProcess
    server_b: ServerProcess


@pytest.fixture
def setup(tmp_path: Path, partnered: tuple[Agency, Agency]) -> Iterator[Setup]:
    fr, india = partnered
    de = make_agency(tmp_path, "cert-de", "CERT-DE")
    xx = make_agency(tmp_path, "cert-xx", "CERT-XX")
    jp = make_agency(tmp_path, "cert-jp", "CERT-JP")
    for other in (de, xx, jp):
        pin(india, other, tmp_path)
        pin(other, india, tmp_path)
    agencies = (india, fr, de, xx, jp)
    passwords = {a.agency_id: secrets.token_urlsafe(16) for a in agencies}
    on_a = [india, fr, de, xx]
    provision(
        tmp_path / "server-a",
        plan_exchange([(a.agency_id, a.name) for a in on_a]),
        passwords={a.agency_id: passwords[a.agency_id] for a in on_a},
    )
    provision(
        tmp_path / "server-b",
        plan_exchange([(a.agency_id, a.name) for a in (india, jp)]),
        passwords={a.agency_id: passwords[a.agency_id] for a in (india, jp)},
    )
    server_a = ServerProcess(tmp_path / "server-a").start()
    server_b = ServerProcess(tmp_path / "server-b").start()
    try:
        wiring = Exchange(fr, india, server_a, passwords)
        for partner in (fr, de, xx):
            wiring.wire(india, partner, server_a.api_root_url)
            wiring.wire(partner, india, server_a.api_root_url)
        wiring.wire(india, jp, server_b.api_root_url)
        wiring.wire(jp, india, server_b.api_root_url)
        yield Setup(india, {a.agency_id: a for a in (fr, de, xx)}, jp, server_a, server_b)
    finally:
        server_a.stop()
        server_b.stop()


def _timed(agency: Agency, *args: str) -> tuple[float, int, str]:
    started = time.monotonic()
    result = agency.run(*args)
    return time.monotonic() - started, result.exit_code, result.stderr


def _outbox(agency: Agency, partner: str) -> dict[str, int]:
    rows = store_rows(
        agency, "SELECT status, COUNT(*) FROM deliveries WHERE partner = ? GROUP BY status", partner
    )
    return {str(status): int(count) for status, count in rows}


def test_partners_on_one_dead_server_cost_one_retry_budget_and_lose_nothing(
    setup: Setup, tmp_path: Path
) -> None:
    india, jp = setup.india, setup.jp
    # Something to pull from every partner, and something queued for each.
    for n, agency in enumerate([*setup.on_a.values(), jp]):
        sent = agency.run("push", str(write_iocs(tmp_path / f"{n}.csv", 2, start=10 * n)), "--to", "cert-in")
        assert sent.exit_code == 0, sent.stderr
    to_all = [arg for name in (*ON_A, "cert-jp") for arg in ("--to", name)]
    queued = india.run("push", str(write_iocs(tmp_path / "in.csv", 2, start=100)), *to_all, "--queue")
    assert queued.exit_code == 0, queued.stderr

    setup.server_a.stop()
    dead = setup.server_a.url.rstrip("/")  # http://127.0.0.1:PORT
    for name in ON_A:
        changed = india.run("partners", "set", name, "--retry-budget", str(BUDGET))
        assert changed.exit_code == 0, changed.stderr

    # pull: one budget for the three, exit 7 (network failure), the server named in the error.
    pulled_from = [arg for name in ON_A for arg in ("--from", name)]
    took, code, stderr = _timed(india, "pull", *pulled_from)
    assert code == 7, stderr
    assert took < 2 * BUDGET, f"the pull took {took:.1f} s: one retry budget per partner"
    assert stderr.count(f"server {dead} unreachable") == 3, stderr
    assert stderr.count("already tried for") == 2, stderr  # cert-de and cert-xx, not retried
    assert "resumes next run" in stderr
    assert received_values(india) == []

    # push to the three: sealed and kept in the outbox (exit 7), within one budget too.
    took, code, stderr = _timed(
        india, "push", str(write_iocs(tmp_path / "in2.csv", 2, start=200)), *to_all[:6]
    )
    assert code == 7, stderr
    assert took < 2 * BUDGET, f"the push took {took:.1f} s"
    assert dead in stderr

    # sync: cert-jp, on another server, is pulled from and posted to; the others fail fast,
    # pulling and posting alike (one budget for the whole run, not six).
    took, code, stderr = _timed(india, "sync")
    assert code == 1, stderr  # partial: cert-jp went through
    assert took < 2 * BUDGET, f"the sync took {took:.1f} s"
    assert sorted(received_values(india)) == sorted(_values(tmp_path / "3.csv"))
    assert set(_outbox(india, "cert-jp")) == {"posted"}  # the queued envelope, and a receipt
    for name in ON_A:
        assert _outbox(india, name) == {"failed": 2}, name  # kept: the queued one, the pushed one
    log = (india.home / "logs" / "cti-exchange.log").read_text()
    retrying = re.findall(
        rf"(cert-\w+): server {re.escape(dead)} unreachable \(connection refused\); retrying for up to", log
    )
    assert len(set(retrying)) == 1, log  # one partner retried, in pull; the others not at all
    assert "are not tried again in this run" in log

    # The server back: the next run delivers everything, both ways.
    setup.server_a.start()
    took, code, stderr = _timed(india, "sync")
    assert code == 0, stderr
    expected = [v for n in range(4) for v in _values(tmp_path / f"{n}.csv")]
    assert sorted(received_values(india)) == sorted(expected)
    for name, agency in setup.on_a.items():
        assert set(_outbox(india, name)) == {"posted"}, name  # nothing left in the outbox
        pulled = agency.run("pull")
        assert pulled.exit_code == 0, pulled.stderr
        assert sorted(received_values(agency)) == sorted(
            _values(tmp_path / "in.csv") + _values(tmp_path / "in2.csv")
        )


def _values(csv: Path) -> list[str]:
    return [line.split(",")[0] for line in csv.read_text().splitlines()[1:]]


class _Recorder:
    def __init__(self) -> None:
        self.steps: list[str] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def advance(self, count: int = 1) -> None:
        pass


def test_the_progress_reporter_is_told_which_server_is_retried_and_for_how_long(
    partnered: tuple[Agency, Agency], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spinner said "pulling from cert-fr" for the whole budget. The CLI's reporter shows
    these lines on a terminal only (cli/progress.py)."""
    fr, _ = partnered
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}/exchange/"
    result = fr.run(
        "partners",
        "set",
        "cert-in",
        "--api-root",
        url,
        "--read-collection",
        str(uuid.uuid4()),
        "--retry-budget",
        "2",
    )
    assert result.exit_code == 0, result.stderr
    monkeypatch.setenv("CTI_EXCHANGE_PASSPHRASE", PASSPHRASE)
    recorder = _Recorder()
    pulled = pull(ProfileHome(fr.home), ["cert-in"], reporter=recorder)
    (outcome,) = pulled.partners
    assert outcome.error and f"server http://127.0.0.1:{port} unreachable" in outcome.error
    retrying = [s for s in recorder.steps if "retrying" in s]
    assert retrying, recorder.steps
    assert retrying[0].startswith(
        f"cert-in: server http://127.0.0.1:{port} unreachable (connection refused); "
    )
    assert re.search(r"retrying for up to \d+ s$", retrying[0])
    assert recorder.steps[0] == recorder.steps[-1] == "pulling from cert-in"  # then back to the step
