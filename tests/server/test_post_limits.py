"""What one POST may cost the server: a bounded number of items, a bounded number of
malformed ones, a write lock held only for the inserts (and 503, not 500, to a writer that
waited too long for it), and status resources that do not pile up forever."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cti_exchange.server.connection import DB_FILENAME
from cti_exchange.server.intake import (
    BYTES_PER_ITEM,
    MAX_MALFORMED_ITEMS,
    MIN_ENVELOPE_ITEMS,
    max_envelope_items,
)
from cti_exchange.server.provisioning import DEFAULT_MAX_CONTENT_LENGTH
from cti_exchange.server.timestamps import format_date_added
from tests.conftest import Agency

from .conftest import SANDBOX_ID, Exchange, StixFactory, start_exchange
from .test_errors import assert_taxii_error


def _statuses(exchange: Exchange) -> tuple[int, int]:
    """(statuses, status_details) rows in the database file."""
    conn = sqlite3.connect(exchange.data_dir / DB_FILENAME, timeout=30)
    try:
        (statuses,) = conn.execute("SELECT COUNT(*) FROM statuses").fetchone()
        (details,) = conn.execute("SELECT COUNT(*) FROM status_details").fetchone()
        return int(statuses), int(details)
    finally:
        conn.close()


def _sandbox_has(exchange: Exchange, object_id: str) -> bool:
    url = exchange.collection_url(SANDBOX_ID) + f"objects/{object_id}/"
    return exchange.get(url, user="cert-fr").status_code == 200


def test_the_item_cap_is_10000_and_grows_with_max_content_length() -> None:
    assert max_envelope_items(DEFAULT_MAX_CONTENT_LENGTH) == MIN_ENVELOPE_ITEMS == 10_000
    assert max_envelope_items(100 * 1024 * 1024) == 100 * 1024 * 1024 // BYTES_PER_ITEM


def test_an_envelope_over_the_item_cap_is_413_and_at_the_cap_is_taken(
    fresh_exchange: Exchange, stix: StixFactory
) -> None:
    url = fresh_exchange.collection_url(SANDBOX_ID) + "objects/"
    before = _statuses(fresh_exchange)
    # 10,001 items in 30 KB: refused before any of them is looked at.
    refused = fresh_exchange.post(url, {"objects": [{}] * (MIN_ENVELOPE_ITEMS + 1)}, user="cert-fr")
    body = assert_taxii_error(refused, 413)
    assert "at most 10,000" in body["description"]
    assert _statuses(fresh_exchange) == before

    obj = stix.indicator()  # 10,000 items: the first stored, the others duplicates of it
    taken = fresh_exchange.post(url, {"objects": [obj] * MIN_ENVELOPE_ITEMS}, user="cert-fr")
    assert taken.status_code == 202, taken.text
    assert taken.json()["success_count"] == MIN_ENVELOPE_ITEMS


def test_an_envelope_of_mostly_non_objects_is_422_and_stores_nothing(
    exchange: Exchange, stix: StixFactory
) -> None:
    """{"objects":[0,0,...]}: two bytes per item would otherwise cost a stored failure each."""
    url = exchange.collection_url(SANDBOX_ID) + "objects/"
    good = stix.indicator()
    before = _statuses(exchange)
    refused = exchange.post(url, {"objects": [good] + [0] * (MAX_MALFORMED_ITEMS + 1)}, user="cert-fr")
    body = assert_taxii_error(refused, 422)
    assert "nothing was stored" in body["description"]
    assert not _sandbox_has(exchange, good["id"])
    assert _statuses(exchange)[1] - before[1] < 100  # other tests may be posting; not one row per item

    # Up to the limit, each malformed item fails alone and the rest is stored.
    taken = exchange.post(url, {"objects": [good] + [0] * MAX_MALFORMED_ITEMS}, user="cert-fr")
    assert taken.status_code == 202
    assert (taken.json()["success_count"], taken.json()["failure_count"]) == (1, MAX_MALFORMED_ITEMS)
    assert _sandbox_has(exchange, good["id"])


def test_a_post_that_cannot_get_the_write_lock_is_503_with_retry_after(
    tmp_path: Path, stix: StixFactory
) -> None:
    running = start_exchange(tmp_path / "exchange", busy_timeout=0.5)
    url = running.collection_url(SANDBOX_ID) + "objects/"
    holder = sqlite3.connect(running.data_dir / DB_FILENAME, isolation_level=None, timeout=30)
    try:
        assert running.post(url, {"objects": [stix.indicator()]}, user="cert-fr").status_code == 202
        holder.execute("BEGIN IMMEDIATE")  # another writer holding the lock
        started = time.monotonic()
        busy = running.post(url, {"objects": [stix.indicator()]}, user="cert-fr")
        assert time.monotonic() - started >= 0.5
        assert_taxii_error(busy, 503)
        assert int(busy.headers["Retry-After"]) > 0
        holder.execute("ROLLBACK")
        # The connection that timed out is usable again: no transaction left open on it.
        again = [running.post(url, {"objects": [stix.indicator()]}, user="cert-fr") for _ in range(6)]
        assert [r.status_code for r in again] == [202] * 6
    finally:
        holder.close()
        running.close()
        running.server.stop()


def _insert_status(exchange: Exchange, age: timedelta) -> str:
    status_id = str(uuid.uuid4())
    conn = sqlite3.connect(exchange.data_dir / DB_FILENAME, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO statuses (id, api_root, collection_id, status, request_timestamp,"
            " total_count, success_count, failure_count, pending_count)"
            " VALUES (?, 'exchange', ?, 'complete', ?, 1, 0, 1, 0)",
            (status_id, SANDBOX_ID, format_date_added(datetime.now(UTC) - age)),
        )
        conn.execute(
            "INSERT INTO status_details (status_id, position, outcome, object_id, version, message)"
            " VALUES (?, 0, 'failure', '', '', 'not a JSON object')",
            (status_id,),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return status_id


def test_status_resources_older_than_seven_days_are_removed_by_later_posts(
    exchange: Exchange, stix: StixFactory
) -> None:
    old = _insert_status(exchange, timedelta(days=8))
    recent = _insert_status(exchange, timedelta(days=6))

    def status(status_id: str) -> int:
        return exchange.get(exchange.server.api_root_url + f"status/{status_id}/", user="cert-fr").status_code

    assert (status(old), status(recent)) == (200, 200)
    posted = exchange.post(
        exchange.collection_url(SANDBOX_ID) + "objects/", {"objects": [stix.indicator()]}, user="cert-fr"
    )
    assert posted.status_code == 202
    assert (status(old), status(recent), status(posted.json()["id"])) == (404, 200, 200)
    conn = sqlite3.connect(exchange.data_dir / DB_FILENAME, timeout=30)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM status_details WHERE status_id = ?", (old,)).fetchone()
        assert rows == (0,)
    finally:
        conn.close()


def _artifact_sizes(agency: Agency) -> list[int]:
    conn = sqlite3.connect(agency.home / "store.sqlite")
    try:
        return [
            len(json.dumps(json.loads(artifact), separators=(",", ":")))
            for (artifact,) in conn.execute("SELECT artifact FROM sent_envelopes")
        ]
    finally:
        conn.close()


def test_the_item_cap_cannot_split_a_cti_exchange_push(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """cti-exchange's push fills each POST up to max_content_length with envelope artifacts
    (exchange/delivery.py). The smallest artifact, one indicator, is larger than
    BYTES_PER_ITEM, so at any max_content_length a POST of artifacts is within the cap."""
    fr, _ = partnered
    iocs = tmp_path / "one.csv"
    iocs.write_text("value,type,tlp\n203.0.113.1,ipv4-addr,green\n")
    queued = fr.run("push", str(iocs), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr
    (smallest,) = _artifact_sizes(fr)
    assert smallest > BYTES_PER_ITEM
    for max_content_length in (1024, DEFAULT_MAX_CONTENT_LENGTH, 10**9):
        assert max_content_length // smallest <= max_envelope_items(max_content_length)
