"""Hostile or broken input fails the object it is in (or, if the body cannot be read, is a
400), never a 500 that loses the whole POST; STIX values are checked as ASCII, whole."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests

from cti_exchange.server.provisioning import collection_id_for

from .conftest import SANDBOX_ID, Exchange, StixFactory
from .test_errors import assert_taxii_error

FR_TO_IN = collection_id_for("cert-fr", "cert-in")


def full_width(text: str) -> str:
    """The digits of `text` as full-width digits (U+FF10 to U+FF19), which \\d also matches."""
    return text.translate({ord(digit): 0xFF10 + int(digit) for digit in "0123456789"})


def post_raw(exchange: Exchange, body: bytes, collection_id: str = SANDBOX_ID) -> requests.Response:
    return exchange.post(exchange.collection_url(collection_id) + "objects/", body, user="cert-fr")


def envelope(*objects: Any) -> bytes:
    # ensure_ascii: a lone surrogate travels as the JSON escape "\ud800", as a client sends it.
    return json.dumps({"objects": list(objects)}, ensure_ascii=True).encode()


def test_lone_surrogates_fail_their_object_alone(exchange: Exchange, stix: StixFactory) -> None:
    good = stix.indicator()
    in_a_value = {"type": "x-a", "id": f"x-a--{uuid.uuid4()}", "v": "\ud800"}
    in_the_id = {"id": "\ud800"}
    response = post_raw(exchange, envelope(in_a_value, good, in_the_id))
    assert response.status_code == 202, response.text
    status = response.json()
    assert (status["success_count"], status["failure_count"]) == (1, 2)
    failures = {f["id"]: f["message"] for f in status["failures"]}
    assert "UTF-8" in failures[in_a_value["id"]]
    assert "\\ud800" in failures  # the id as text, not as an unencodable string
    # The status was stored and reads back the same.
    stored = exchange.get(exchange.server.api_root_url + f"status/{status['id']}/", user="cert-fr")
    assert stored.status_code == 200 and stored.json()["failures"] == status["failures"]
    url = exchange.collection_url(SANDBOX_ID) + "objects/"
    assert exchange.get(url + f"{good['id']}/", user="cert-fr").status_code == 200


def test_nan_and_infinity_fail_their_object(exchange: Exchange, stix: StixFactory) -> None:
    """Python's parser accepts them; they are not JSON, and readers' parsers would choke."""
    good = stix.indicator()
    bad_id = f"x-a--{uuid.uuid4()}"
    body = (
        b'{"objects":['
        + json.dumps(good).encode()
        + b',{"type":"x-a","id":"'
        + bad_id.encode()
        + b'","v":NaN}]}'
    )
    status = post_raw(exchange, body).json()
    assert (status["success_count"], status["failure_count"]) == (1, 1)
    assert status["failures"][0]["id"] == bad_id


@pytest.mark.parametrize(
    "body",
    [
        b'{"objects":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        b'{"objects":[{"type":"x-a","v":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}]}",
    ],
    ids=["arrays", "objects"],
)
def test_json_nested_too_deeply_to_read_is_400(exchange: Exchange, body: bytes) -> None:
    assert_taxii_error(post_raw(exchange, body), 400)


def test_stix_values_need_ascii_digits_and_nothing_after(exchange: Exchange, stix: StixFactory) -> None:
    uid = str(uuid.uuid4())
    bad = [
        stix.indicator(modified=full_width("2026") + "-01-01T00:00:00.000Z"),
        stix.indicator(modified="2026-01-01T00:00:00.000Z\n"),
        stix.indicator(spec_version=full_width("2.1")),
        stix.indicator(spec_version="2.1\n"),
        stix.indicator(id="indicator--" + "-" * 36),  # 36 characters, but not a UUID
        stix.indicator(id=f"indicator--{uid}\n"),
        stix.indicator(id=f"indicator--{full_width(uid)}"),
        stix.indicator(id=f"indicator--{uid[:-1]}"),
    ]
    status = post_raw(exchange, envelope(stix.indicator(), *bad)).json()
    assert (status["success_count"], status["failure_count"]) == (1, len(bad))


def test_a_full_width_version_is_not_stored_and_versions_page_fine(
    exchange: Exchange, stix: StixFactory
) -> None:
    """A full-width year sorted after every real one: stored, it became the latest version and
    made the versions endpoint fail (500) when paging past it."""
    first = stix.indicator()
    versions = [
        first,
        stix.version_of(first, full_width("2026") + "-01-01T00:00:00.000Z"),
        stix.version_of(first, full_width("2026") + "-01-01T00:00:01.000Z"),
        stix.version_of(first, "2026-02-01T00:00:00.000Z"),
    ]
    status = post_raw(exchange, envelope(*versions), FR_TO_IN).json()
    assert (status["success_count"], status["failure_count"]) == (2, 2)
    url = exchange.collection_url(FR_TO_IN) + f"objects/{first['id']}/"
    page = exchange.get(url + "versions/", user="cert-in", params={"limit": 1})
    assert page.status_code == 200 and page.json()["more"] is True
    rest = exchange.get(url + "versions/", user="cert-in", params={"limit": 1, "next": page.json()["next"]})
    assert rest.status_code == 200
    assert page.json()["versions"] + rest.json()["versions"] == [
        v["modified"] for v in (versions[0], versions[3])
    ]
    latest = exchange.get(url, user="cert-in").json()["objects"]
    assert [o["modified"] for o in latest] == ["2026-02-01T00:00:00.000Z"]


@pytest.mark.parametrize(
    "params",
    [
        {"added_after": full_width("2026") + "-01-01T00:00:00Z"},
        {"added_after": "2026-01-01T00:00:00Z\n"},
        {"match[version]": full_width("2026") + "-01-01T00:00:00Z"},
        {"match[spec_version]": full_width("2.1")},
        {"match[spec_version]": "2.1\n"},
    ],
)
def test_filters_need_ascii_digits_and_nothing_after(exchange: Exchange, params: dict[str, str]) -> None:
    response = exchange.get(exchange.collection_url(SANDBOX_ID) + "objects/", user="cert-fr", params=params)
    assert_taxii_error(response, 400)
