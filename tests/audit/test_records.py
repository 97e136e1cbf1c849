"""What the exchange writes into the audit trail, seen through `audit show` and `audit verify`."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Agency
from tests.exchange.conftest import Exchange, write_iocs


def _actions(agency: Agency, *filters: str) -> list[dict]:
    result = agency.run("audit", "show", "--json", *filters)
    assert result.exit_code == 0, result.stderr
    return result.json()


def test_push_pull_accept_reject_and_key_changes_are_recorded(exchange: Exchange, tmp_path: Path) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in").exit_code == 0
    assert india.run("pull").exit_code == 0
    # CERT-FR rotates its keys and pushes before CERT-In learns the new ones: CERT-In rejects
    # the envelope (unknown signing key).
    assert fr.run("keys", "rotate").exit_code == 0
    assert fr.run("push", str(write_iocs(tmp_path / "b.csv", 2, start=10)), "--to", "cert-in").exit_code == 0
    assert india.run("pull").exit_code == 4

    fr_records = _actions(fr)
    fr_actions = [r["action"] for r in fr_records]
    changes = [r["details"]["change"] for r in fr_records if r["action"] == "key-change"]
    assert changes == ["created", "partner-pinned", "rotated"]
    assert fr_actions.count("seal") == 2 and fr_actions.count("push") == 2

    india_records = _actions(india)
    india_actions = [r["action"] for r in india_records]
    assert india_actions.count("pull") == 2
    accepted = [r for r in india_records if r["action"] == "accept"]
    rejected = [r for r in india_records if r["action"] == "reject"]
    assert len(accepted) == 1 and len(rejected) == 1
    assert rejected[0]["details"]["reason"] == "unknown-key"
    sealed = [r for r in fr_records if r["action"] == "seal"]
    assert accepted[0]["details"]["envelope_id"] == sealed[0]["details"]["envelope_id"]
    assert rejected[0]["details"]["envelope_id"] == sealed[1]["details"]["envelope_id"]

    # Filters: by partner (a seal names every recipient) and by action.
    pushes = _actions(fr, "--partner", "cert-in", "--action", "push")
    assert [r["action"] for r in pushes] == ["push", "push"]
    accepts = _actions(india, "--partner", "cert-fr", "--action", "accept")
    assert [r["seq"] for r in accepts] == [accepted[0]["seq"]]

    # Push and pull sign the head: both trails verify with nothing, or little, unsigned.
    for agency in (fr, india):
        result = agency.run("audit", "verify", "--json", "--no-sign")
        assert result.exit_code == 0, result.stderr
        report = result.json()
        assert report["ok"] and report["signed_heads"] >= 1


def test_a_sighting_record_is_dated_when_written_after_its_push(exchange: Exchange, tmp_path: Path) -> None:
    """Before, the `sighting` record was dated with the sighting's creation, earlier than the
    `seal` and `push` records written before it: the trail's times ran backwards."""
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in").exit_code == 0
    assert india.run("pull").exit_code == 0
    assert india.run("triage", "accept", "203.0.0.0").exit_code == 0
    result = india.run("sight", "203.0.0.0")
    assert result.exit_code == 0, result.stderr

    records = _actions(india)
    times = [r["at"] for r in records]
    assert times == sorted(times), [(r["action"], r["at"]) for r in records]
    actions = [r["action"] for r in records]
    assert actions[-3:] == ["seal", "push", "sighting"]
    sighting = records[-1]
    assert sighting["details"]["created"] <= sighting["at"]
