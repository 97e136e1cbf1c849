"""A partner rotates its keys and pushes before we pin its new ones, as a five-minute cron
makes likely: its envelope is held, not dropped, and goes through once `partners update-keys`
pins the new keys, with the envelopes held behind it. Through the CLI, real server."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.exchange.conftest import Exchange, received_values, write_iocs


def _quarantine(store: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(store)
    try:
        return conn.execute("SELECT reason, resolved_at IS NOT NULL FROM quarantine ORDER BY id").fetchall()
    finally:
        conn.close()


def test_an_envelope_signed_with_a_key_not_pinned_yet_goes_through_once_it_is(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 0
    assert fr.run("keys", "rotate").exit_code == 0
    assert fr.run("push", str(write_iocs(tmp_path / "b.csv", 2, start=10)), "--to", "cert-in").exit_code == 0

    early = india.run("sync")
    assert early.exit_code == 4 and "unknown-key" in early.stderr  # an alert: a key we do not know
    # ... and it says what most often fixes it (the sync summary counted it as "rejected").
    assert "signed with a key of cert-fr not pinned yet" in early.stderr
    assert "cti-exchange partners update-keys NAME --jwks FILE" in early.stderr
    assert fr.run("push", str(write_iocs(tmp_path / "c.csv", 2, start=20)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 4  # signed with the new key too
    store = india.home / "store.sqlite"
    assert _quarantine(store) == [("unknown-key", 0), ("unknown-key", 0)]
    quiet = india.run("sync")  # held, retried: not a new alert
    assert quiet.exit_code == 0, quiet.stderr
    assert len(received_values(india)) == 2

    document = fr.export_keys(tmp_path / "cert-fr-rotated.json")
    updated = india.run("partners", "update-keys", "cert-fr", "--jwks", str(document))
    assert updated.exit_code == 0, updated.stderr
    synced = india.run("sync", "--json")
    assert synced.exit_code == 0, synced.stderr
    assert len(received_values(india)) == 6
    assert _quarantine(store) == [("unknown-key", 1), ("unknown-key", 1)]
