"""`push` as an analyst meets it (inputs, dry runs, counts), and `demo`'s clean-up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import Agency, run_cli
from tests.exchange.conftest import Exchange, write_iocs


def test_push_names_a_missing_or_directory_input_as_a_usage_error(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """README: a missing file is exit 2. It was an internal error (70) next to a good file,
    and "nothing usable" (6) alone."""
    fr, _ = partnered
    iocs = write_iocs(tmp_path / "iocs.csv", 2)
    for inputs in ([iocs, tmp_path / "nope.csv"], [tmp_path / "nope.csv"], [iocs, tmp_path]):
        result = fr.run("push", *map(str, inputs), "--to", "cert-in", "--dry-run")
        assert result.exit_code == 2, (inputs, result.stderr)
        assert "internal error" not in result.stderr


def test_dry_run_shows_the_plan_and_every_refused_object(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """A dry run refused by the TLP policy still says what would go to whom, and names each
    refused object and its rule (the error names 5 at most); it still exits 8."""
    fr, _ = partnered
    csv = tmp_path / "mixed.csv"
    csv.write_text("value,tlp\n" + "".join(f"red-{n}.example,red\n" for n in range(7)) + "ok.example,amber\n")
    text = fr.run("push", str(csv), "--to", "cert-in", "--dry-run")
    assert text.exit_code == 8, text.stderr
    assert "cert-in\t1\tTLP:AMBER 1" in text.stdout
    refused = [line for line in text.stderr.splitlines() if line.startswith("warning: not sent:")]
    assert len(refused) == 7 and all("tlp-red-needs-partner-and-flag" in line for line in refused)

    as_json = fr.run("push", str(csv), "--to", "cert-in", "--dry-run", "--json")
    assert as_json.exit_code == 8, as_json.stderr
    data = as_json.json()
    assert len(data["refused"]) == 7 and data["partners"][0]["objects"] == 1


def test_push_counts_every_rejected_row(partnered: tuple[Agency, Agency], tmp_path: Path) -> None:
    """Past the 10,000 rejections kept in detail, the count stays the true one; the text says
    how many it did not show, and --json lists the rejections it shows."""
    fr, _ = partnered
    bad = 10_005
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "value,tlp\n" + "".join(f"bad value {n},amber\n" for n in range(bad)) + "ok.example,amber\n"
    )
    text = fr.run("push", str(csv), "--to", "cert-in", "--dry-run")
    assert text.exit_code == 1
    assert "10,005 input row(s) were rejected" in text.stderr
    assert f"and {bad - 20:,} more" in text.stderr
    data = fr.run("push", str(csv), "--to", "cert-in", "--dry-run", "--json").json()
    assert data["rejected_rows"] == bad
    assert data["rejections"][0]["line"] == 2


def test_delivery_column_counts_this_pushs_envelopes(exchange: Exchange, tmp_path: Path) -> None:
    """A push also posts what waited in the outbox; the table said "2/1 delivered"."""
    queued = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr
    pushed = exchange.fr.run("push", str(write_iocs(tmp_path / "b.csv", 2, start=2)), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr
    assert "2/1" not in pushed.stdout
    row = pushed.stdout.splitlines()[1].split("\t")
    assert row[3:] == ["1 new, 1 queued earlier", "2 of 2 delivered"]


def test_delivery_column_with_the_server_down_counts_one_way(exchange: Exchange, tmp_path: Path) -> None:
    """With one envelope waiting and the server down, the table read "envelopes 1 ... 0/1
    delivered, 2 failed"."""
    queued = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr
    down = f"http://127.0.0.1:{_closed_port()}/exchange/"
    assert (
        exchange.fr.run("partners", "set", "cert-in", "--api-root", down, "--retry-budget", "0").exit_code
        == 0
    )
    iocs = write_iocs(tmp_path / "b.csv", 2, start=2)
    pushed = exchange.fr.run("push", str(iocs), "--to", "cert-in")
    assert pushed.exit_code == 7, pushed.stderr
    row = pushed.stdout.splitlines()[1].split("\t")
    assert row[3:] == ["1 new, 1 queued earlier", "0 of 2 delivered, 2 failed (kept in the outbox)"]
    # --json keeps its fields: this push's envelopes, and every one that failed.
    plan = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--json").json()["partners"][0]
    assert len(plan["envelopes"]) == 1 and len(plan["failed"]) == 2 and plan["delivered"] == []


def test_demo_keep_refuses_a_file_or_a_directory_in_use(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("mine\n")
    result = run_cli("demo", "--keep", str(a_file))
    assert result.exit_code == 2, result.stderr
    assert a_file.read_text() == "mine\n"

    kept = tmp_path / "kept"
    assert run_cli("demo", "--keep", str(kept), "--json").exit_code == 0
    credentials = {p: p.read_bytes() for p in kept.rglob("*.secret")}
    again = run_cli("demo", "--keep", str(kept))
    assert again.exit_code == 2 and str(kept) in again.stderr and "--home" not in again.stderr
    assert {p: p.read_bytes() for p in kept.rglob("*.secret")} == credentials  # left as it was


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_does_not_send_its_loopback_traffic_to_a_proxy() -> None:
    """Agency workstations set http_proxy; the demo's own server is on 127.0.0.1."""
    proxy = f"http://127.0.0.1:{_closed_port()}"
    result = run_cli(
        "demo", "--json", env={"http_proxy": proxy, "HTTP_PROXY": proxy, "NO_PROXY": "", "no_proxy": ""}
    )
    assert result.exit_code == 0, result.stderr
    assert result.json()["all_arrived"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_demo_cleans_up_when_terminated(tmp_path: Path, signum: int) -> None:
    """Stopped by SIGTERM (`timeout`, systemd) or SIGHUP (terminal closed), the demo removes
    its temporary directory (private keys, passwords) and stops its server."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "cti_exchange", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        first = demo.stdout.readline()
        assert first.startswith("1. TAXII"), first
        url = first.split("listening at ")[1].strip()
        demo.send_signal(signum)
        demo.wait(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, demo.stderr.read() if demo.stderr else ""
    assert list(temp.iterdir()) == []
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
