"""Durability: what the server acknowledged is on disk, and kill -9 at any moment leaves the
database consistent, holding each POST entirely or not at all."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest
import requests

from cti_exchange.server.connection import DB_FILENAME
from cti_exchange.server.intake import max_envelope_items
from cti_exchange.server.provisioning import DEFAULT_MAX_CONTENT_LENGTH, collection_id_for

from .conftest import Exchange, StixFactory

FR_TO_IN = collection_id_for("cert-fr", "cert-in")


def stored_count(exchange: Exchange, ids: list[str]) -> int:
    """How many of `ids` the database file holds, read with sqlite3 directly."""
    conn = sqlite3.connect(exchange.data_dir / DB_FILENAME)
    try:
        conn.execute("CREATE TEMP TABLE wanted (object_id TEXT PRIMARY KEY)")
        conn.executemany("INSERT INTO wanted VALUES (?)", [(i,) for i in ids])
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM objects WHERE object_id IN (SELECT object_id FROM wanted)"
        ).fetchone()
        return int(count)
    finally:
        conn.close()


def integrity(exchange: Exchange) -> list[str]:
    conn = sqlite3.connect(exchange.data_dir / DB_FILENAME)
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        problems += [f"foreign key: {row}" for row in conn.execute("PRAGMA foreign_key_check")]
        return problems
    finally:
        conn.close()


def served_ids(exchange: Exchange) -> set[str]:
    url, params = exchange.collection_url(FR_TO_IN) + "manifest/", {"limit": 1000}
    ids: set[str] = set()
    while True:
        body = exchange.get(url, user="cert-in", params=params).json()
        ids.update(record["id"] for record in body.get("objects", []))
        if not body.get("more"):
            return ids
        params["next"] = body["next"]


def test_an_acknowledged_post_survives_kill_9(fresh_exchange: Exchange, stix: StixFactory) -> None:
    objects = [stix.indicator() for _ in range(200)]
    response = fresh_exchange.post(
        fresh_exchange.outbound_url("cert-fr", "cert-in") + "objects/",
        {"objects": objects},
        user="cert-fr",
    )
    assert response.status_code == 202
    fresh_exchange.server.kill()  # no chance to flush anything after the answer

    fresh_exchange.server.start()
    fresh_exchange.close()
    assert served_ids(fresh_exchange) == {o["id"] for o in objects}
    assert integrity(fresh_exchange) == ["ok"]
    status = fresh_exchange.get(
        fresh_exchange.server.api_root_url + f"status/{response.json()['id']}/", user="cert-fr"
    )
    assert status.json()["success_count"] == 200


def wait_for_wal_growth(exchange: Exchange, size_before: int, timeout: float = 30.0) -> None:
    """Until the POST's transaction spills uncommitted pages into the write-ahead log."""
    wal = exchange.data_dir / f"{DB_FILENAME}-wal"
    deadline = time.monotonic() + timeout
    while wal.stat().st_size <= size_before:
        assert time.monotonic() < deadline, "the POST never reached the database"
        time.sleep(0.002)


@pytest.mark.parametrize("moment", ["receiving", "parsing", "writing"])
def test_kill_9_during_a_large_post_keeps_all_or_nothing(
    fresh_exchange: Exchange, stix: StixFactory, moment: str
) -> None:
    url = fresh_exchange.outbound_url("cert-fr", "cert-in") + "objects/"
    acknowledged = [stix.indicator() for _ in range(300)]
    assert fresh_exchange.post(url, {"objects": acknowledged}, user="cert-fr").status_code == 202

    # About 8 MB, under the 10 MiB limit and the 10,000 objects a POST may hold: long enough
    # to be caught while being received, parsed or written.
    large = [stix.indicator(description="x" * 600) for _ in range(8_000)]
    body = requests.models.complexjson.dumps({"objects": large}).encode()
    assert len(body) < DEFAULT_MAX_CONTENT_LENGTH
    assert len(large) <= max_envelope_items(DEFAULT_MAX_CONTENT_LENGTH)
    outcome: dict[str, Any] = {}

    def post_large() -> None:
        try:
            outcome["status"] = fresh_exchange.post(url, body, user="cert-fr").status_code
        except requests.RequestException as exc:
            outcome["error"] = exc

    wal_size = (fresh_exchange.data_dir / f"{DB_FILENAME}-wal").stat().st_size
    poster = threading.Thread(target=post_large)
    poster.start()
    if moment == "writing":
        wait_for_wal_growth(fresh_exchange, wal_size)
    else:
        time.sleep({"receiving": 0.02, "parsing": 0.3}[moment])
    fresh_exchange.server.kill()
    poster.join(timeout=60)

    fresh_exchange.server.start()
    fresh_exchange.close()
    assert integrity(fresh_exchange) == ["ok"]
    stored = stored_count(fresh_exchange, [o["id"] for o in large])
    assert stored in (0, len(large)), f"a partial POST is visible: {stored} of {len(large)}"
    assert outcome.get("status") in (None, 202), outcome
    if outcome.get("status") == 202:
        assert stored == len(large)  # answered means durable
    served = served_ids(fresh_exchange)
    assert {o["id"] for o in acknowledged} <= served
    assert len(served) == len(acknowledged) + stored
