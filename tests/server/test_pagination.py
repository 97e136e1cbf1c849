"""Pagination: limit, more and next over many objects sharing one date_added, tokens that
survive a restart, and objects that arrive while a client is paging."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from taxii2client.v21 import as_pages

from cti_exchange.server.provisioning import collection_id_for, provision

from .conftest import TAXII, Exchange, StixFactory, exchange_layout, start_exchange

FR_TO_IN = collection_id_for("cert-fr", "cert-in")


def just_before_post_of(exchange: Exchange, obj: dict[str, Any]) -> str:
    """An added_after that selects the POST that carried `obj` and everything after it: every
    POST gets a date_added strictly later than the previous one."""
    (record,) = exchange.collection(FR_TO_IN, user="cert-in").get_manifest(id=obj["id"])["objects"]
    added = datetime.strptime(record["date_added"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return (added - timedelta(microseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_all(exchange: Exchange, per_request: int, **filters: Any) -> list[dict[str, Any]]:
    inbound = exchange.collection(FR_TO_IN, user="cert-in")
    objects: list[dict[str, Any]] = []
    for page in as_pages(inbound.get_objects, per_request=per_request, **filters):
        objects.extend(page.get("objects", []))
    return objects


@pytest.fixture
def one_big_post(exchange: Exchange, stix: StixFactory) -> tuple[str, list[dict[str, Any]]]:
    """2,500 objects in one POST (they all share one date_added), and an added_after that
    selects them and what later tests post, not what earlier tests left in the collection."""
    objects = [stix.indicator() for _ in range(2500)]
    status = exchange.collection(FR_TO_IN, user="cert-fr").add_objects({"objects": objects})
    assert status.success_count == 2500
    return just_before_post_of(exchange, objects[0]), objects


@pytest.mark.parametrize("per_request", [100, 1000, 999])
def test_paging_through_objects_sharing_one_date_added(
    exchange: Exchange, one_big_post: tuple[str, list[dict[str, Any]]], per_request: int
) -> None:
    start, posted = one_big_post
    read = read_all(exchange, per_request, added_after=start)
    assert len(read) == len(posted)  # nothing repeated...
    assert {o["id"] for o in read} == {o["id"] for o in posted}  # ...nothing skipped
    assert read == posted  # and in the order they were posted


def test_pages_are_full_until_the_last_and_carry_next(
    exchange: Exchange, one_big_post: tuple[str, list[dict[str, Any]]]
) -> None:
    start, _ = one_big_post
    params: dict[str, Any] = {"limit": 1000, "added_after": start}
    sizes, url = [], exchange.collection_url(FR_TO_IN) + "objects/"
    while True:
        body = exchange.get(url, user="cert-in", params=params).json()
        sizes.append(len(body["objects"]))
        if not body["more"]:
            assert "next" not in body
            break
        params["next"] = body["next"]
    assert sizes == [1000, 1000, 500]


def test_limit_above_max_page_size_is_capped(
    exchange: Exchange, one_big_post: tuple[str, list[dict[str, Any]]]
) -> None:
    start, _ = one_big_post
    body = exchange.get(
        exchange.collection_url(FR_TO_IN) + "objects/",
        user="cert-in",
        params={"limit": 5000, "added_after": start},
    ).json()
    assert len(body["objects"]) == 1000 and body["more"] is True


def test_objects_posted_while_paging_come_after_the_ones_already_there(
    exchange: Exchange, stix: StixFactory, one_big_post: tuple[str, list[dict[str, Any]]]
) -> None:
    start, posted = one_big_post
    inbound = exchange.collection(FR_TO_IN, user="cert-in")
    pages = as_pages(inbound.get_objects, per_request=1000, added_after=start)
    read = list(next(pages)["objects"])
    late = [stix.indicator() for _ in range(10)]
    exchange.collection(FR_TO_IN, user="cert-fr").add_objects({"objects": late})
    for page in pages:
        read.extend(page.get("objects", []))
    assert read == posted + late


def test_next_token_is_bound_to_its_query(
    exchange: Exchange, one_big_post: tuple[str, list[dict[str, Any]]]
) -> None:
    start, _ = one_big_post
    url = exchange.collection_url(FR_TO_IN) + "objects/"
    params = {"limit": 10, "added_after": start}
    token = exchange.get(url, user="cert-in", params=params).json()["next"]
    changed = exchange.get(url, user="cert-in", params={**params, "next": token, "match[type]": "malware"})
    assert changed.status_code == 400
    assert changed.json()["http_status"] == "400"
    elsewhere = exchange.get(
        exchange.collection_url(FR_TO_IN) + "manifest/",
        user="cert-in",
        params={**params, "next": token},
    )
    assert elsewhere.status_code == 400


def test_restart_in_the_middle_of_a_paginated_read(fresh_exchange: Exchange, stix: StixFactory) -> None:
    posted = [stix.indicator() for _ in range(2500)]
    fresh_exchange.collection(FR_TO_IN, user="cert-fr").add_objects({"objects": posted})
    url = fresh_exchange.collection_url(FR_TO_IN) + "objects/"
    first = fresh_exchange.get(url, user="cert-in", params={"limit": 1000}).json()
    assert first["more"] is True

    fresh_exchange.server.restart()
    fresh_exchange.close()  # drop the pooled connections to the old process

    read = list(first["objects"])
    params = {"limit": 1000, "next": first["next"]}
    while True:
        body = fresh_exchange.get(url, user="cert-in", params=params).json()
        read.extend(body["objects"])
        if not body["more"]:
            break
        params["next"] = body["next"]
    assert read == posted


def test_restart_with_kill_in_the_middle_of_a_paginated_read(
    fresh_exchange: Exchange, stix: StixFactory
) -> None:
    posted = [stix.indicator() for _ in range(300)]
    fresh_exchange.collection(FR_TO_IN, user="cert-fr").add_objects({"objects": posted})
    inbound = fresh_exchange.collection(FR_TO_IN, user="cert-in")
    first = inbound.get_manifest(limit=100)

    fresh_exchange.server.kill()
    fresh_exchange.server.start()
    fresh_exchange.close()

    inbound = fresh_exchange.collection(FR_TO_IN, user="cert-in")
    rest = inbound.get_manifest(limit=200, next=first["next"])
    assert rest["more"] is False
    ids = [m["id"] for m in first["objects"] + rest["objects"]]
    assert ids == [o["id"] for o in posted]


def test_a_client_tailing_with_added_after_misses_nothing_from_concurrent_posts(
    fresh_exchange: Exchange, stix: StixFactory
) -> None:
    """Several POSTs at once while a reader follows X-TAXII-Date-Added-Last: date_added is
    given under the write lock, so no POST can become visible behind the reader's cursor."""
    url = fresh_exchange.collection_url(FR_TO_IN) + "objects/"
    batches = [[stix.indicator() for _ in range(40)] for _ in range(30)]
    writers_done = threading.Event()

    def write(share: list[list[dict[str, Any]]]) -> None:
        for batch in share:
            response = fresh_exchange.post(url, {"objects": batch}, user="cert-fr")
            assert response.status_code == 202

    reader = requests.Session()
    reader.auth = ("cert-in", fresh_exchange.passwords["cert-in"])
    # Each account logs in once first: at most two password checks run at once, and a login
    # that finds none free is told to retry (503), which this plain client would not do.
    assert reader.get(url, headers={"Accept": TAXII}, timeout=60).status_code == 200
    assert fresh_exchange.get(fresh_exchange.server.api_root_url, user="cert-fr").status_code == 200
    writers = [threading.Thread(target=write, args=(batches[i::3],)) for i in range(3)]
    for writer in writers:
        writer.start()
    seen: list[str] = []
    cursor = "2000-01-01T00:00:00.000000Z"
    while True:
        finished = writers_done.is_set()
        params: dict[str, Any] = {"added_after": cursor, "limit": 100}
        while True:
            response = reader.get(url, params=params, headers={"Accept": TAXII}, timeout=60)
            body = response.json()
            seen.extend(o["id"] for o in body.get("objects", []))
            if body:
                cursor = max(cursor, response.headers["X-TAXII-Date-Added-Last"])
            if not body.get("more"):
                break
            params["next"] = body["next"]
        if finished:
            break
        if not any(writer.is_alive() for writer in writers):
            writers_done.set()  # one more pass after the last POST
    for writer in writers:
        writer.join()
    posted = [o["id"] for batch in batches for o in batch]
    assert len(seen) == len(set(seen)) == len(posted)
    assert set(seen) == set(posted)


def _pages(exchange: Exchange, url: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every page of a paginated read, following `next` until `more` is false."""
    params = dict(params or {})
    pages = []
    while True:
        body = exchange.get(url, user="cert-in", params=params).json()
        pages.append(body)
        if not body.get("more"):
            assert "next" not in body
            return pages
        params["next"] = body["next"]


def _size(obj: dict[str, Any]) -> int:
    return len(json.dumps(obj, separators=(",", ":")))


def test_a_page_of_objects_stops_at_max_content_length(tmp_path: Path, stix: StixFactory) -> None:
    """Pages are cut by bytes as well as by count: a collection of large objects is served in
    pages of at most the API root's max_content_length (always at least one object), and
    `next` continues exactly where a page stopped, also within the objects of one POST."""
    budget = 64 * 1024
    running = start_exchange(tmp_path / "exchange", max_content_length=budget)
    try:
        url = running.collection_url(FR_TO_IN) + "objects/"
        posted: list[dict[str, Any]] = []
        for _ in range(4):  # three objects of about 20 KB per POST, sharing one date_added
            batch = [stix.indicator(description="x" * 20_000) for _ in range(3)]
            assert running.post(url, {"objects": batch}, user="cert-fr").status_code == 202
            posted.extend(batch)

        pages = _pages(running, url)
        served = [o for page in pages for o in page["objects"]]
        assert [o["id"] for o in served] == [o["id"] for o in posted]  # each once, in order
        assert len(pages) > 1
        assert all(sum(map(_size, page["objects"])) <= budget for page in pages)
        assert all(len(page["objects"]) == 3 for page in pages)  # a fourth would not fit

        # With 50 KB two objects fit: pages stop inside a POST (whose objects share one
        # date_added) and continue from there, without a gap or a repeat.
        provision(running.data_dir, exchange_layout(max_content_length=50 * 1024), passwords={})
        pages = _pages(running, url)
        assert [len(page["objects"]) for page in pages] == [2] * 6
        assert [o["id"] for page in pages for o in page["objects"]] == [o["id"] for o in posted]

        # Objects larger than the budget (posted before it was lowered) come one per page.
        provision(running.data_dir, exchange_layout(max_content_length=8 * 1024), passwords={})
        pages = _pages(running, url, {"limit": 5})
        assert [len(page["objects"]) for page in pages] == [1] * len(posted)
        assert [o["id"] for page in pages for o in page["objects"]] == [o["id"] for o in posted]
    finally:
        running.close()
        running.server.stop()


def test_the_versions_of_one_object_are_paged_by_bytes_too(tmp_path: Path, stix: StixFactory) -> None:
    running = start_exchange(tmp_path / "exchange", max_content_length=64 * 1024)
    try:
        first = stix.indicator(description="x" * 25_000)
        versions = [stix.version_of(first, f"2026-01-0{day}T00:00:00.000Z") for day in (1, 2, 3)]
        url = running.collection_url(FR_TO_IN) + "objects/"
        for version in versions:
            assert running.post(url, {"objects": [version]}, user="cert-fr").status_code == 202
        pages = _pages(running, f"{url}{first['id']}/", {"match[version]": "all"})
        assert [len(page["objects"]) for page in pages] == [2, 1]
        assert [o["modified"] for page in pages for o in page["objects"]] == [v["modified"] for v in versions]
    finally:
        running.close()
        running.server.stop()
