"""A partner revokes an indicator we accepted: it leaves every export, and the pull (or the
sync's log) says so instead of the blocklist shrinking silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.exchange.conftest import Exchange, one_indicator_bundle

OBJECT_ID = "indicator--5c0ffee0-1d2e-4f3a-8b9c-0d1e2f3a4b5c"
LATER = "2026-11-21T10:00:00.000Z"  # after the first version (one_indicator_bundle)


def _bundle(path: Path, **changes: Any) -> Path:
    return one_indicator_bundle(path, OBJECT_ID, "203.0.113.91", **changes)


def test_a_pull_says_when_an_accepted_indicator_was_revoked_by_its_source(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    assert (
        fr.run("push", str(_bundle(tmp_path / "a.json")), "--to", "cert-in", "--tlp", "green").exit_code == 0
    )
    assert india.run("pull").exit_code == 0
    assert india.run("triage", "accept", OBJECT_ID).exit_code == 0
    assert "203.0.113.91" in india.run("export").stdout

    revoked = _bundle(tmp_path / "b.json", modified=LATER, revoked=True)
    assert fr.run("push", str(revoked), "--to", "cert-in", "--tlp", "green").exit_code == 0
    pulled = india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    assert f"cert-fr revoked 1 object(s) we had accepted (first: {OBJECT_ID})" in pulled.stderr
    assert "they leave every export" in pulled.stderr
    assert "203.0.113.91" not in india.run("export").stdout

    # Once only: pulling again says nothing more; the --json key lists it the time it happens.
    assert "revoked" not in india.run("pull").stderr
    again = _bundle(tmp_path / "c.json", modified="2026-11-22T10:00:00.000Z", revoked=True, name="x")
    assert fr.run("push", str(again), "--to", "cert-in", "--tlp", "green").exit_code == 0
    quiet = india.run("pull", "--json")
    assert quiet.exit_code == 0, quiet.stderr
    (only,) = quiet.json()["partners"]
    assert only["accepted_objects_revoked"] == []  # already revoked: nothing left the exports now


def test_sync_logs_it(exchange: Exchange, tmp_path: Path) -> None:
    fr, india = exchange.fr, exchange.india
    assert (
        fr.run("push", str(_bundle(tmp_path / "a.json")), "--to", "cert-in", "--tlp", "green").exit_code == 0
    )
    assert india.run("sync").exit_code == 0
    assert india.run("triage", "accept", OBJECT_ID).exit_code == 0
    revoked = _bundle(tmp_path / "b.json", modified=LATER, revoked=True)
    assert fr.run("push", str(revoked), "--to", "cert-in", "--tlp", "green").exit_code == 0
    synced = india.run("sync", "--json")
    assert synced.exit_code == 0, synced.stderr
    (pulled,) = synced.json()["pulled"]
    assert pulled["accepted_objects_revoked"] == [OBJECT_ID]
    log = "\n".join(p.read_text() for p in (india.home / "logs").glob("*.log*"))
    assert "cert-fr revoked 1 object(s) we had accepted" in log
    pulls = india.run("audit", "show", "--action", "pull", "--json").json()
    assert pulls[-1]["details"]["accepted_objects_revoked"] == [OBJECT_ID]  # the trail keeps it
