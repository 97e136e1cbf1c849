"""The same sighting is sent once: `sight` run twice with the same indicator, count, first and
last seen and note sent two sightings, and the partner's `triage list --sighted` showed both.
Run again it now says when it was sent and in which envelope and sends nothing (exit 0); a
different count or time is a new sighting; `--reshare` sends it again; a run killed anywhere
and run again is resumed: nothing lost, nothing doubled. Real server, real crypto."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Agency
from tests.exchange.conftest import Exchange, run_in_own_process

ADDRESS = "185.178.209.193"
WINDOW = ("--first-seen", "2026-11-22T08:00:00Z", "--last-seen", "2026-11-23T09:30:00Z")


def _sight(*extra: str, count: int = 12, reference: str = ADDRESS) -> tuple[str, ...]:
    return ("sight", reference, "--count", str(count), *WINDOW, "--note", "outbound proxy logs", *extra)


def _shared(exchange: Exchange, tmp_path: Path) -> None:
    """CERT-FR shares the address; CERT-In pulls it."""
    iocs = tmp_path / "iocs.csv"
    iocs.write_text(f"value,type,tlp\n{ADDRESS},ipv4-addr,amber\n")
    pushed = exchange.fr.run("push", str(iocs), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr
    pulled = exchange.india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr


def _sightings_received(agency: Agency) -> list[dict[str, Any]]:
    pulled = agency.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    listed = agency.run("triage", "list", "--sighted", "--limit", "1000", "--json")
    assert listed.exit_code == 0, listed.stderr
    return list(listed.json()["sightings"])


def _audited(agency: Agency) -> int:
    conn = sqlite3.connect(agency.home / "store.sqlite")
    try:
        return int(conn.execute("SELECT count(*) FROM audit_log WHERE action = 'sighting'").fetchone()[0])
    finally:
        conn.close()


def test_the_same_sighting_again_is_not_sent(exchange: Exchange, tmp_path: Path) -> None:
    _shared(exchange, tmp_path)
    india = exchange.india

    first = india.run(*_sight("--json"))
    assert first.exit_code == 0, first.stderr
    (sent,) = first.json()["sightings"]
    assert sent["delivered"] and sent["already_sent_at"] is None
    envelope = sent["envelopes"][0]

    again = india.run(*_sight())
    assert again.exit_code == 0, again.stderr
    assert "Already sent to cert-fr on " in again.stdout
    assert envelope in again.stdout and sent["sighting_id"] in again.stdout
    assert "nothing sent (use --reshare" in again.stdout
    assert "outbox" not in again.stdout

    # Pasted defanged, named by its id: the same indicator, the same sighting.
    for reference in ("185.178.209[.]193", sent["sighting_of_ref"]):
        same = india.run(*_sight("--json", reference=reference))
        assert same.exit_code == 0, same.stderr
        (record,) = same.json()["sightings"]
        assert record["already_sent_at"] and record["envelopes"] == [envelope]
        assert record["sighting_id"] == sent["sighting_id"] and record["delivered"] == []
    assert _audited(india) == 1

    seen = _sightings_received(exchange.fr)
    assert [(s["count"], s["description"]) for s in seen] == [(12, "outbound proxy logs")]

    # Another count is another sighting; --reshare sends the same one again.
    other = india.run(*_sight("--json", count=13))
    assert other.exit_code == 0, other.stderr
    assert other.json()["sightings"][0]["already_sent_at"] is None
    resent = india.run(*_sight("--reshare", "--json"))
    assert resent.exit_code == 0, resent.stderr
    (record,) = resent.json()["sightings"]
    assert record["already_sent_at"] is None and record["delivered"]
    assert record["sighting_id"] != sent["sighting_id"] and record["envelopes"] != [envelope]
    assert _audited(india) == 3

    seen = _sightings_received(exchange.fr)
    assert sorted(s["count"] for s in seen) == [12, 12, 13]
    assert len({s["sighting_id"] for s in seen}) == 3


def test_a_queued_sighting_is_not_sealed_again(exchange: Exchange, tmp_path: Path) -> None:
    _shared(exchange, tmp_path)
    india = exchange.india
    queued = india.run(*_sight("--queue", "--json"))
    assert queued.exit_code == 0, queued.stderr
    envelope = queued.json()["sightings"][0]["envelopes"][0]

    again = india.run(*_sight())
    assert again.exit_code == 0, again.stderr
    assert "Already sent to cert-fr" in again.stdout and envelope in again.stdout
    assert "still in the outbox: `cti-exchange sync` posts it" in again.stdout
    document = india.run(*_sight("--json")).json()
    assert document["sightings"][0]["outbox"] == [envelope]

    synced = india.run("sync")
    assert synced.exit_code == 0, synced.stderr
    assert "outbox" not in india.run(*_sight()).stdout
    assert [s["count"] for s in _sightings_received(exchange.fr)] == [12]


@pytest.mark.slow
def test_killed_anywhere_then_run_again_sends_each_sighting_once(exchange: Exchange, tmp_path: Path) -> None:
    """SIGKILL at each store commit and HTTP request of a sighting, then the same command again:
    each sighting reaches the partner once (before, each rerun sealed a new sighting)."""
    _shared(exchange, tmp_path)
    india = exchange.india
    kills, count = 0, 0
    for point in ("commit-before", "commit-after", "http-before", "http-after"):
        for n in range(1, 12):
            count += 1
            if run_in_own_process(india, *_sight(count=count), failpoint=f"{point}:{n}") == 0:
                break
            kills += 1
            assert run_in_own_process(india, *_sight(count=count)) == 0
            again = india.run(*_sight(count=count))
            assert again.exit_code == 0 and "Already sent" in again.stdout, again.stdout + again.stderr
    assert kills >= 8

    seen = _sightings_received(exchange.fr)
    assert sorted(s["count"] for s in seen) == list(range(1, count + 1))
    conn = sqlite3.connect(india.home / "store.sqlite")
    try:
        per_request = conn.execute(
            "SELECT count(*) FROM sent_envelopes WHERE request_id LIKE 'sight-%' GROUP BY request_id"
        ).fetchall()
        audited = conn.execute(
            "SELECT json_extract(details, '$.count') FROM audit_log WHERE action = 'sighting'"
        ).fetchall()
    finally:
        conn.close()
    assert len(per_request) == count and all(n == 1 for (n,) in per_request)
    assert sorted(c for (c,) in audited) == list(range(1, count + 1))
