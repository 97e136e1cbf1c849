"""Our own keys past their lifetime (a year by default, `operations.key_lifetime_days`): an agency
left unattended must not seal with an expired signing key. Every partner would quarantine the
envelope as `expired-key` (its content lost) and hold each later one on the channel as a
sequence gap. push, sync and seal refuse instead, before a channel position is taken (exit 2,
naming the key and `keys rotate`). Real server, real keys; the clock is moved the way
/tmp/wt-ops/future.py moved it (cti_exchange.clock's datetime)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyUse
from tests.conftest import Agency, update_keys_confirmed
from tests.exchange.clock_shift import clock_shifter
from tests.exchange.conftest import Exchange, received_values, store_rows, write_iocs


@pytest.fixture
def shift_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """shift(days): every utc_now() in the process that many days ahead (or back)."""
    shift = clock_shifter(monkeypatch)
    return lambda days: shift(timedelta(days=days))


def _current_kid(agency: Agency, use: KeyUse) -> str:
    return ProfileHome(agency.home).keyring().current(use).kid


def test_push_refuses_an_expired_signing_key_without_taking_a_sequence_number(
    exchange: Exchange, tmp_path: Path, shift_clock: Callable[[float], None]
) -> None:
    fr, india = exchange.fr, exchange.india
    expired = _current_kid(fr, KeyUse.SIG)
    shift_clock(366)  # a year unattended
    refused = fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
    assert refused.exit_code == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()  # one line
    assert expired in line and "expired" in line and "cti-exchange keys rotate" in line
    assert store_rows(fr, "SELECT * FROM channels_out") == []  # no position taken
    assert store_rows(fr, "SELECT envelope_id FROM sent_envelopes") == []

    # Rotated, it goes: the partner takes the new keys (the expired one cannot vouch for them,
    # so the new fingerprint is read out of band) and the first envelope is sequence 1.
    assert fr.run("keys", "rotate").exit_code == 0
    document = fr.export_keys(tmp_path / "rotated.json")
    updated = update_keys_confirmed(india, fr, document)
    assert updated.exit_code == 0, updated.stderr
    pushed = fr.run("push", str(write_iocs(tmp_path / "b.csv", 2)), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr
    pulled = india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr  # no expired-key, no sequence gap
    assert len(received_values(india)) == 2
    assert store_rows(india, "SELECT reason FROM quarantine") == []


def test_sync_pulls_but_seals_no_receipt_with_an_expired_key(
    exchange: Exchange, tmp_path: Path, shift_clock: Callable[[float], None]
) -> None:
    fr, india = exchange.fr, exchange.india
    assert india.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-fr").exit_code == 0
    expired = _current_kid(fr, KeyUse.SIG)
    shift_clock(366)
    synced = fr.run("sync", "--json")
    assert synced.exit_code == 2, synced.stderr
    assert expired in synced.stderr and "cti-exchange keys rotate" in synced.stderr
    assert len(synced.stderr.strip().splitlines()) == 1
    assert expired in synced.json()["cannot_seal"]
    assert len(received_values(fr)) == 2  # receiving goes on: what partners sign is still valid
    # The receipt stays owed, and no channel position went to it.
    assert store_rows(fr, "SELECT receipt_envelope_id FROM receipts_owed") == [(None,)]
    assert store_rows(fr, "SELECT * FROM channels_out") == []
    log = (fr.home / "logs" / "cti-exchange.log").read_text()
    assert "sync ended with exit code 2" in log and expired in log


def test_seal_refuses_a_key_dated_after_our_clock(
    partnered: tuple[Agency, Agency], tmp_path: Path, shift_clock: Callable[[float], None]
) -> None:
    """A clock set back (a VM restored from a snapshot): the receiver would refuse what the key
    signs as `key-not-yet-valid`."""
    fr, _ = partnered
    shift_clock(-2)
    bundle = tmp_path / "bundle.json"
    converted = fr.run("convert", str(write_iocs(tmp_path / "a.csv", 1)), "--tlp", "amber", "-o", str(bundle))
    assert converted.exit_code == 0, converted.stderr
    refused = fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(tmp_path / "out.json"))
    assert refused.exit_code == 2, refused.stderr
    assert _current_kid(fr, KeyUse.SIG) in refused.stderr and "after our clock" in refused.stderr
    assert not (tmp_path / "out.json").exists()


def test_sync_logs_a_warning_two_weeks_before_our_keys_expire(
    exchange: Exchange, shift_clock: Callable[[float], None]
) -> None:
    fr = exchange.fr
    kid = _current_kid(fr, KeyUse.SIG)
    shift_clock(355)
    synced = fr.run("sync")
    assert synced.exit_code == 0, synced.stderr
    log = (fr.home / "logs" / "cti-exchange.log").read_text()
    assert f"our sig key {kid} expires at" in log and "keys rotate" in log
