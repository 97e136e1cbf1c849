"""Commands that change partners or our keys wait for a running sync or push (the profile
lock), as push and pull already did. Before, `partners remove --drop-outbox` during a sync
that was posting the outbox said the envelopes "will not be delivered" while the sync
delivered them to the partner being removed, and `keys rotate` during a push made the push
fail with an internal error (exit 70) when it signed the audit head with a key it had not
unlocked.

The sync or push runs in a process of its own, against the real server behind a proxy that
holds its POST for a few seconds: the change is made while it is mid-delivery.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import PASSPHRASE, Agency, pin
from tests.exchange.conftest import Exchange, received_values, store_rows, write_iocs
from tests.fault_proxy import FaultProxy

HOLD_SECONDS = 3.0


def _start(agency: Agency, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    env.pop("CTI_EXCHANGE_FAILPOINT", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cti_exchange", "--home", str(agency.home), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _hold_posts(proxy: FaultProxy) -> None:
    proxy.script.rule = lambda method, path, number: f"delay:{HOLD_SECONDS}" if method == "POST" else None


def _wait_for_post(proxy: FaultProxy, running: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not any(method == "POST" for method, _, _ in proxy.script.seen):
        assert running.poll() is None, running.communicate()
        assert time.monotonic() < deadline, "the run never posted"
        time.sleep(0.05)


def _statuses(agency: Agency) -> list[tuple[str, str]]:
    return store_rows(agency, "SELECT partner, status FROM deliveries ORDER BY envelope_id")


def _audit_actions(agency: Agency) -> list[str]:
    return [row[0] for row in store_rows(agency, "SELECT action FROM audit_log ORDER BY seq")]


def test_removing_a_partner_waits_for_the_sync_delivering_to_it(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fr = exchange.fr
    queued = fr.run("push", str(write_iocs(tmp_path / "iocs.csv", 3)), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr
    assert _statuses(fr) == [("cert-in", "sealed")]
    _hold_posts(fault_proxy)
    sync = _start(fr, "sync")
    try:
        _wait_for_post(fault_proxy, sync)
        removed = fr.run("partners", "remove", "cert-in", "--yes", "--drop-outbox")
    finally:
        out, err = sync.communicate(timeout=120)
    assert sync.returncode == 0, err
    assert removed.exit_code == 0, removed.stderr
    assert "waits for it to finish" in removed.stderr  # it said why it waited
    # The envelope went: nothing is said to be dropped, and the record says it was posted.
    assert "Dropped" not in removed.stdout + removed.stderr
    assert _statuses(fr) == [("cert-in", "posted")]
    assert "drop" not in _audit_actions(fr)
    assert exchange.india.run("pull").exit_code == 0  # it did arrive


def test_rotating_our_signing_key_waits_for_a_running_push(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fr = exchange.fr
    _hold_posts(fault_proxy)
    push = _start(fr, "push", str(write_iocs(tmp_path / "iocs.csv", 3)), "--to", "cert-in")
    try:
        _wait_for_post(fault_proxy, push)
        rotated = fr.run("keys", "rotate", "--use", "sig", "--json")
    finally:
        out, err = push.communicate(timeout=120)
    assert push.returncode == 0, err  # not 70, "internal error"
    assert "internal error" not in err
    assert rotated.exit_code == 0, rotated.stderr
    assert fr.run("audit", "verify").exit_code == 0


def test_a_push_dropped_with_its_partner_is_shared_again_once_the_partner_is_pinned_again(
    exchange: Exchange, tmp_path: Path
) -> None:
    """The only envelope carrying these indicators was dropped with the partner: pushing the
    same file again after pinning the partner again must send them, not say "Already shared"."""
    fr, india = exchange.fr, exchange.india
    iocs = write_iocs(tmp_path / "iocs.csv", 3)
    assert fr.run("push", str(iocs), "--to", "cert-in", "--queue").exit_code == 0
    assert fr.run("partners", "remove", "cert-in", "--yes", "--drop-outbox").exit_code == 0
    pin(fr, india, tmp_path)
    exchange.wire(fr, india, f"{exchange.server.url}exchange/")

    dry = fr.run("push", str(iocs), "--to", "cert-in", "--dry-run", "--json")
    assert dry.exit_code == 0 and not dry.json()["already_shared_at"], dry.stdout
    again = fr.run("push", str(iocs), "--to", "cert-in", "--json")
    assert again.exit_code == 0, again.stderr
    assert not again.json()["already_shared_at"] and again.json()["partners"][0]["objects"] == 3
    # The dropped envelope still held its place in the channel (docs/OPERATIONS.md, "Removing a
    # partner"): the partner sees the gap, and accepts it once told out of band.
    pulled = india.run("pull", "--json")
    assert pulled.exit_code == 4 and "sequence-gap" in pulled.stdout, pulled.stdout
    [held] = india.run("quarantine", "list", "--json").json()
    assert india.run("quarantine", "accept-gap", str(held["id"]), "--note", "dropped").exit_code == 0
    assert len(received_values(india)) == 3
    # And once delivered, the same push is done: nothing is sent a third time.
    third = fr.run("push", str(iocs), "--to", "cert-in", "--json")
    assert third.exit_code == 0 and third.json()["already_shared_at"]
