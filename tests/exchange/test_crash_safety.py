"""SIGKILL at every point of push, pull and sync, against the real server, then run again:
nothing lost, nothing doubled, on our side and on the partner's.

Processes are killed by failpoints (cti_exchange/failpoints.py) before and after every store
commit and every HTTP request, one kill point per run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cti_exchange.server.provisioning import collection_id_for
from tests.conftest import Agency
from tests.exchange.conftest import Exchange, run_in_own_process, running_exchange, write_iocs

POINTS = ("commit-before", "commit-after", "http-before", "http-after")
pytestmark = pytest.mark.slow


def run(agency: Agency, *args: str, failpoint: str | None = None) -> int:
    return run_in_own_process(agency, *args, failpoint=failpoint)


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_kill_anywhere_then_rerun_loses_and_doubles_nothing(exchange: Exchange, tmp_path: Path) -> None:
    fr, india = exchange.fr, exchange.india
    expected: set[str] = set()
    kills = 0
    batch = 0

    # push: kill at the n-th passage of each point, then run the very same push again.
    for point in POINTS:
        for n in range(1, 12):
            iocs = write_iocs(tmp_path / f"push-{batch}.csv", 2, start=1000 + 2 * batch)
            batch += 1
            expected |= {line.split(",")[0] for line in iocs.read_text().splitlines()[1:]}
            if run(fr, "push", str(iocs), "--to", "cert-in", failpoint=f"{point}:{n}") == 0:
                break  # fewer than n passages: this point is covered
            kills += 1
            assert run(fr, "push", str(iocs), "--to", "cert-in") == 0

    # pull, then sync, on the receiver: kill at growing depths until a run completes; each
    # killed run has committed some envelopes, the next one carries on from there.
    for command, step in (("pull", 5), ("sync", 4)):
        for point in POINTS:
            for n in range(1, 60, step):
                if run(india, command, failpoint=f"{point}:{n}") == 0:
                    break
                kills += 1
    assert run(india, "sync") == 0
    for point in POINTS:  # the sender's sync: the receipts on their way back
        for n in range(1, 8):
            if run(fr, "sync", failpoint=f"{point}:{n}") == 0:
                break
            kills += 1
    assert run(fr, "sync") == 0
    assert kills >= 30

    # The partner has every indicator exactly once, and no false alarm.
    store = india.home / "store.sqlite"
    values = [v for (v,) in _rows(store, "SELECT value FROM objects WHERE type = 'indicator'")]
    assert len(values) == len(set(values))
    assert set(values) == expected
    assert _rows(store, "SELECT reason FROM quarantine") == []

    # We sealed each push once (a rerun resumed it), and every envelope was received.
    sent = fr.home / "store.sqlite"
    per_request = _rows(
        sent,
        "SELECT request_id, COUNT(*) FROM sent_envelopes WHERE request_id LIKE 'push-%' GROUP BY request_id",
    )
    assert len(per_request) == batch and all(count == 1 for _, count in per_request)
    statuses = _rows(
        sent,
        "SELECT DISTINCT d.status FROM deliveries d "
        "JOIN sent_envelopes s USING (envelope_id) WHERE s.request_id LIKE 'push-%'",
    )
    assert statuses == [("received",)]

    # The server holds each envelope once, although some POSTs were sent twice.
    server_db = exchange.server.data_dir / "taxii.sqlite3"
    collection = collection_id_for("cert-fr", "cert-in")
    stored = _rows(
        server_db,
        f"SELECT COUNT(*), COUNT(DISTINCT object_id) FROM objects WHERE collection_id = '{collection}'",
    )
    assert stored[0][0] == stored[0][1]


def test_kill_anywhere_while_sealing_queued_envelopes_again(
    tmp_path: Path, partnered: tuple[Agency, Agency]
) -> None:
    """Queued envelopes too large for the server are sealed again by `sync`
    (exchange/reseal.py): killed at any store commit or request and run again, the partner
    still gets every indicator once, on an unbroken channel."""
    fr, india = partnered
    with running_exchange(tmp_path, fr, india, max_content_length=48 * 1024):
        expected: set[str] = set()
        kills = 0
        for point in POINTS:
            for n in (1, 2, 3, 5, 8, 13):  # a sync here makes about 7 commits and 4 requests
                # Each round queues a large push (sealed for 1 MiB: the server was never read),
                # the first also a small one after it, whose channel position moves.
                for count in (600, 2) if n == 1 else (600,):
                    iocs = write_iocs(tmp_path / f"q-{len(expected)}.csv", count, start=len(expected))
                    expected |= {line.split(",")[0] for line in iocs.read_text().splitlines()[1:]}
                    assert run(fr, "push", str(iocs), "--to", "cert-in", "--queue") == 0
                if run(fr, "sync", failpoint=f"{point}:{n}") == 0:
                    break
                kills += 1
                assert run(fr, "sync") == 0
            assert run(india, "pull") == 0
        assert kills >= 8
        store = india.home / "store.sqlite"
        values = [v for (v,) in _rows(store, "SELECT value FROM objects WHERE type = 'indicator'")]
        assert len(values) == len(set(values)) and set(values) == expected
        assert _rows(store, "SELECT reason FROM quarantine") == []
        statuses = _rows(fr.home / "store.sqlite", "SELECT DISTINCT status FROM deliveries ORDER BY status")
        assert statuses == [("posted",), ("resealed",)]
