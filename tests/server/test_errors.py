"""Bad requests get TAXII error messages (title, http_status, description; TAXII media type)
with the status codes TAXII 2.1 gives them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from cti_exchange.server.provisioning import DEFAULT_MAX_CONTENT_LENGTH
from cti_exchange.server.runner import BODY_SLACK_BYTES

from .conftest import SANDBOX_ID, TAXII, Exchange, StixFactory


def assert_taxii_error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == TAXII
    body = response.json()
    assert body["http_status"] == str(status)
    assert isinstance(body["title"], str) and isinstance(body["description"], str)
    return body


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/taxii+json;version=2.0",
        "text/html",
        # TAXII media ranges that still do not take TAXII 2.1 (q=0 refuses it explicitly).
        "application/taxii+json;version=2.1;q=0",
        "*/*",
        "application/taxii+json;version=3.0",
    ],
)
def test_wrong_accept_media_type_is_406(exchange: Exchange, accept: str) -> None:
    response = exchange.get(exchange.collection_url(SANDBOX_ID) + "objects/", user="cert-fr", accept=accept)
    assert_taxii_error(response, 406)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/stix+json;version=2.1",
        "application/taxii+json;version=2.0",
        "application/taxii+json;version=2.1;charset=latin-1",  # TAXII, but not in UTF-8
    ],
)
def test_wrong_content_type_is_415(exchange: Exchange, stix: StixFactory, content_type: str) -> None:
    response = exchange.post(
        exchange.collection_url(SANDBOX_ID) + "objects/",
        {"objects": [stix.indicator()]},
        user="cert-fr",
        content_type=content_type,
    )
    assert_taxii_error(response, 415)


@pytest.mark.parametrize(
    "path",
    [
        "collections/00000000-0000-4000-8000-000000000000/",
        "collections/00000000-0000-4000-8000-000000000000/objects/",
        "collections/00000000-0000-4000-8000-000000000000/manifest/",
        "status/00000000-0000-4000-8000-000000000000/",
        "no/such/endpoint/",
    ],
)
def test_unknown_resources_are_404(exchange: Exchange, path: str) -> None:
    assert_taxii_error(exchange.get(exchange.server.api_root_url + path, user="cert-fr"), 404)


def test_unknown_api_root_is_404(exchange: Exchange) -> None:
    assert_taxii_error(exchange.get(exchange.server.url + "elsewhere/", user="cert-fr"), 404)


@pytest.mark.parametrize(
    "params",
    [
        {"added_after": "garbage"},
        {"added_after": "2026-13-01T00:00:00Z"},
        {"added_after": "2026-01-01 00:00:00"},
        {"limit": "-1"},
        {"limit": "0"},
        {"limit": "ten"},
        {"match[version]": "latest"},
        {"match[version]": "2026-01-01"},
        {"match[spec_version]": "two"},
        {"next": "garbage"},
        {"next": "MjAyNi0wMS0wMVQwMDowMDowMC4wMDAwMDBafDF8ZmZmZg"},  # a well-formed stranger
        {"match[id]": ",".join(f"indicator--{i:08d}-0000-4000-8000-000000000000" for i in range(1001))},
    ],
)
def test_bad_filter_values_are_400(exchange: Exchange, params: dict[str, str]) -> None:
    for endpoint in ("objects/", "manifest/"):
        response = exchange.get(exchange.collection_url(SANDBOX_ID) + endpoint, user="cert-fr", params=params)
        assert_taxii_error(response, 400)


def test_oversized_body_is_413_before_it_is_read(exchange: Exchange) -> None:
    body = b"x" * (DEFAULT_MAX_CONTENT_LENGTH + 1)
    response = exchange.post(exchange.collection_url(SANDBOX_ID) + "objects/", body, user="cert-fr")
    assert_taxii_error(response, 413)


def test_a_chunked_body_is_measured_too(exchange: Exchange) -> None:
    """waitress reassembles chunked bodies and sets their length, which medallion checks."""

    def chunks(total: int) -> Iterator[bytes]:
        sent = 0
        while sent < total:
            size = min(1024 * 1024, total - sent)
            yield b"x" * size
            sent += size

    def post(total: int) -> requests.Response:
        return exchange._session("cert-fr").post(
            exchange.collection_url(SANDBOX_ID) + "objects/",
            data=chunks(total),
            headers={"Accept": TAXII, "Content-Type": TAXII},
            timeout=60,
        )

    # Over max_content_length, within the slack waitress lets through to the app (runner.py);
    # a larger chunked body is cut by waitress itself (test_connection_limits.py).
    response = post(DEFAULT_MAX_CONTENT_LENGTH + BODY_SLACK_BYTES // 2)
    assert "Content-Length" not in response.request.headers
    assert_taxii_error(response, 413)


def test_a_lying_content_length_cannot_smuggle_a_larger_body(exchange: Exchange) -> None:
    """Declared small, sent large: the server reads only what was declared."""
    url = urlsplit(exchange.server.url)
    body = json.dumps({"objects": []}).encode()
    request = (
        f"POST /exchange/collections/{SANDBOX_ID}/objects/ HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\nAccept: {TAXII}\r\nContent-Type: {TAXII}\r\n"
        f"Authorization: Basic {_basic('cert-fr', exchange.passwords['cert-fr'])}\r\n"
        f"Content-Length: 5\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status_line = reply.split(b"\r\n", 1)[0]
    assert b" 400 " in status_line or b" 422 " in status_line, status_line


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_invalid_json_is_400(exchange: Exchange) -> None:
    response = exchange.post(exchange.collection_url(SANDBOX_ID) + "objects/", b"{not json", user="cert-fr")
    assert_taxii_error(response, 400)


@pytest.mark.parametrize("body", [[], {"objects": "none"}, {"type": "bundle"}, "text"])
def test_a_body_that_is_not_an_envelope_is_422(exchange: Exchange, body: object) -> None:
    response = exchange.post(
        exchange.collection_url(SANDBOX_ID) + "objects/", json.dumps(body).encode(), user="cert-fr"
    )
    assert_taxii_error(response, 422)


def test_malformed_objects_fail_alone(exchange: Exchange, stix: StixFactory) -> None:
    good = stix.indicator()
    bad = [
        {"type": "indicator", "id": "not-a-stix-id"},
        {**stix.indicator(), "type": "malware"},
        {**stix.indicator(), "modified": "yesterday"},
        "a string",
    ]
    response = exchange.post(
        exchange.collection_url(SANDBOX_ID) + "objects/", {"objects": [good, *bad]}, user="cert-fr"
    )
    assert response.status_code == 202
    status = response.json()
    assert (status["success_count"], status["failure_count"], status["total_count"]) == (1, 4, 5)
    assert all(failure["message"] for failure in status["failures"])


def test_duplicates_succeed_and_conflicting_versions_fail(exchange: Exchange, stix: StixFactory) -> None:
    obj, sco = stix.indicator(), stix.ipv4()
    url = exchange.collection_url(SANDBOX_ID) + "objects/"
    first = exchange.post(url, {"objects": [obj, sco]}, user="cert-fr").json()
    again = exchange.post(url, {"objects": [obj, sco, {**obj, "name": "changed"}]}, user="cert-fr").json()
    assert first["success_count"] == 2
    # A retried POST gets the same answer; a different object under the same version fails.
    assert (again["success_count"], again["failure_count"]) == (2, 1)
    assert again["failures"][0]["id"] == obj["id"]
    # The SCO keeps the version (date_added) of its first POST.
    first_sco = next(s for s in first["successes"] if s["id"] == sco["id"])
    again_sco = next(s for s in again["successes"] if s["id"] == sco["id"])
    assert first_sco["version"] == again_sco["version"]
    records = exchange.get(
        exchange.collection_url(SANDBOX_ID) + "manifest/",
        user="cert-fr",
        params={"match[id]": f"{obj['id']},{sco['id']}", "match[version]": "all"},
    ).json()["objects"]
    assert len(records) == 2


def test_wrong_method_is_405(exchange: Exchange) -> None:
    response = exchange._session("cert-fr").put(
        exchange.collection_url(SANDBOX_ID) + "objects/", data=b"{}", headers={"Accept": TAXII}
    )
    assert_taxii_error(response, 405)
