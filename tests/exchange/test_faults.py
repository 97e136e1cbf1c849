"""push and pull through a fault-injecting proxy in front of the real server: resets, 500s,
429s, delays, truncated answers, lost acknowledgements and expired `next` tokens never lose or
double anything."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.exchange.conftest import Exchange, received_values, write_iocs
from tests.fault_proxy import FaultProxy


def _quarantine(exchange: Exchange) -> list[tuple[str]]:
    conn = sqlite3.connect(exchange.india.home / "store.sqlite")
    try:
        return conn.execute("SELECT reason FROM quarantine").fetchall()
    finally:
        conn.close()


def test_push_and_pull_survive_every_fault(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    posts = {"n": 0}
    gets = {"n": 0}
    post_faults = ["after-reset", "500", "429", "reset", None]
    get_faults = ["reset", "truncate", "500", "429", "delay:0.3", None]

    def rule(method: str, path: str, number: int) -> str | None:
        counter, faults = (posts, post_faults) if method == "POST" else (gets, get_faults)
        counter["n"] += 1
        return faults[counter["n"] - 1] if counter["n"] <= len(faults) else None

    fault_proxy.script.rule = rule
    iocs = write_iocs(tmp_path / "iocs.csv", 30)
    pushed = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    assert posts["n"] >= 5  # every POST fault was met and retried

    gets["n"] = 0
    exchange.wire(exchange.india, exchange.fr, f"{fault_proxy.url}exchange/", page_size="1")
    pulled = exchange.india.run("pull", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    values = received_values(exchange.india)
    assert len(values) == len(set(values)) == 30
    assert _quarantine(exchange) == []  # the doubled POST was recognised, not called a replay
    faults_seen = {fault for _, _, fault in fault_proxy.script.seen if fault}
    assert {"after-reset", "500", "429", "reset", "truncate"} <= faults_seen


def test_failed_push_stays_queued_and_goes_next_time(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    exchange.wire(exchange.fr, exchange.india, f"{fault_proxy.url}exchange/", retry_budget="1")
    fault_proxy.script.rule = lambda method, path, number: "503" if method == "POST" else None
    first = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 4)), "--to", "cert-in")
    assert first.exit_code == 7
    assert first.stderr.count("\n") == 1 and "still failing after" in first.stderr
    assert "kept in the outbox" in first.stderr

    fault_proxy.script.rule = None
    second = exchange.fr.run(
        "push", str(write_iocs(tmp_path / "b.csv", 4, start=4)), "--to", "cert-in", "--json"
    )
    assert second.exit_code == 0, second.stderr
    assert len(second.json()["partners"][0]["delivered"]) == 2
    assert exchange.india.run("pull").exit_code == 0
    assert len(received_values(exchange.india)) == 8


def test_expired_next_token_falls_back_to_the_cursor(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    for n in range(5):
        exchange.fr.run(
            "push",
            str(write_iocs(tmp_path / f"q{n}.csv", 2, start=2 * n)),
            "--to",
            "cert-in",
            "--queue",
        )
    exchange.fr.run("push", str(write_iocs(tmp_path / "q5.csv", 2, start=10)), "--to", "cert-in")
    fault_proxy.script.rule = lambda method, path, number: "expire-next"
    exchange.wire(exchange.india, exchange.fr, f"{fault_proxy.url}exchange/", page_size="2")
    pulled = exchange.india.run("pull", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    values = received_values(exchange.india)
    assert len(values) == len(set(values)) == 12


def test_wrong_credentials_are_an_auth_failure(exchange: Exchange, tmp_path: Path) -> None:
    secret = exchange.fr.home / "taxii.secret"
    secret.write_text("not the password")
    result = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in", "--json")
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1 and "refused our credentials" in result.stderr
    assert "not the password" not in result.stderr + result.stdout
    # Part of the work was done (sealed, kept in the outbox): the JSON report says so, as it
    # does when the server is down, and as `pull --json` reports its failures.
    plan = result.json()["partners"][0]
    assert len(plan["envelopes"]) == 1 and list(plan["failed"]) == plan["envelopes"]
    assert plan["delivered"] == [] and "refused our credentials (HTTP 401)" in plan["error"]
    pulled = exchange.fr.run("pull")
    assert pulled.exit_code == 3
    # An error before any work (a partner we do not have): nothing on stdout, one line on stderr.
    unknown = exchange.fr.run("push", str(tmp_path / "a.csv"), "--to", "cert-xx", "--json")
    assert unknown.exit_code == 2 and unknown.stdout == "" and unknown.stderr.count("\n") == 1

    secret.write_text(exchange.passwords["cert-fr"])  # fixed: the next sync posts what waited
    assert exchange.fr.run("sync").exit_code == 0
    assert exchange.india.run("pull").exit_code == 0
    assert len(received_values(exchange.india)) == 2


def test_plain_http_to_a_remote_host_is_refused(exchange: Exchange, tmp_path: Path) -> None:
    """Refused as a configuration error (exit 2) when set, and when used after a hand edit."""
    remote = "http://taxii.example.org/exchange/"
    refused = exchange.fr.run("partners", "set", "cert-in", "--api-root", remote)
    assert refused.exit_code == 2 and "plain HTTP" in refused.stderr
    config = exchange.fr.home / "config.toml"
    config.write_text(config.read_text().replace(exchange.server.api_root_url, remote))
    assert remote in config.read_text()
    pushed = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
    assert pushed.exit_code == 2 and "plain HTTP" in pushed.stderr
    pulled = exchange.fr.run("pull")
    assert pulled.exit_code == 2 and "plain HTTP" in pulled.stderr


def test_a_pending_status_is_followed_until_complete(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.script.rule = lambda method, path, number: "pending" if method == "POST" else None
    pushed = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    assert len(pushed.json()["partners"][0]["delivered"]) == 1
    status_reads = [p for m, p, _ in fault_proxy.script.seen if m == "GET" and "/status/" in p]
    assert status_reads  # the client asked for the status resource
