"""Audit of `serve` against TAXII 2.1 as other clients speak it: content negotiation with the
media types section 1.6.8 defines, HEAD on the object endpoints, client-made `next` values and
empty POST bodies. Real HTTP against a real server (the session `exchange` fixture)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import requests

from .conftest import SANDBOX_ID, TAXII, Exchange, StixFactory
from .test_errors import assert_taxii_error

# TAXII 2.1 section 1.6.8: "application/taxii+json" is the latest version the server
# supports, and section 3.1: media types defined for an endpoint MUST NOT get 406 / 415.
ACCEPTABLE = [
    "application/taxii+json",
    "application/taxii+json;version=2.1;q=0.9",
    "Application/TAXII+JSON;version=2.1",
    'application/taxii+json;version="2.1"',
    # A client that can read both versions lists both; the server picks 2.1.
    "application/taxii+json;version=2.0, application/taxii+json;version=2.1",
]


@pytest.mark.parametrize("accept", ACCEPTABLE)
def test_taxii_media_ranges_in_accept_are_served(exchange: Exchange, accept: str) -> None:
    for path in ("objects/", "manifest/", ""):
        response = exchange.get(exchange.collection_url(SANDBOX_ID) + path, user="cert-fr", accept=accept)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["Content-Type"] == TAXII
    discovery = exchange.get(exchange.server.discovery_url, user="cert-fr", accept=accept)
    assert discovery.status_code == 200, discovery.text


@pytest.mark.parametrize(
    "content_type",
    [
        "application/taxii+json",
        "application/taxii+json; version=2.1",
        "application/taxii+json;version=2.1;charset=utf-8",
        "APPLICATION/taxii+json;version=2.1",
    ],
)
def test_taxii_content_types_are_taken(exchange: Exchange, stix: StixFactory, content_type: str) -> None:
    obj = stix.indicator()
    response = exchange.post(
        exchange.collection_url(SANDBOX_ID) + "objects/",
        {"objects": [obj]},
        user="cert-fr",
        content_type=content_type,
    )
    assert response.status_code == 202, response.text
    assert response.json()["success_count"] == 1


def test_head_is_answered_like_get_without_a_body(exchange: Exchange, stix: StixFactory) -> None:
    """Flask routes HEAD to every GET view; medallion's objects and object views only handle GET
    and POST / DELETE, so HEAD returned None: a 500 and a traceback in the log."""
    obj = stix.indicator()
    url = exchange.collection_url(SANDBOX_ID) + "objects/"
    assert exchange.post(url, {"objects": [obj]}, user="cert-fr").status_code == 202
    session = exchange._session("cert-fr")
    manifest = exchange.collection_url(SANDBOX_ID) + "manifest/"
    for target in (url, f"{url}{obj['id']}/", f"{url}{obj['id']}/versions/", manifest):
        head = session.head(target, headers={"Accept": TAXII}, timeout=60)
        get = exchange.get(target, user="cert-fr")
        assert head.status_code == get.status_code == 200, (target, head.status_code)
        assert head.content == b""
        assert head.headers["Content-Type"] == TAXII
        assert head.headers["X-TAXII-Date-Added-Last"] == get.headers["X-TAXII-Date-Added-Last"]
    unauthenticated = requests.head(url, headers={"Accept": TAXII}, timeout=60)
    assert unauthenticated.status_code == 401


def _next_token(scope: str, key: str, seq: str) -> str:
    """A `next` value made by the client, bound to the unfiltered objects query of `scope`
    (the fingerprint is not secret: the token is opaque, not authenticated)."""
    canonical = json.dumps([scope, None, [], [], ["last"], []])
    fingerprint = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return base64.urlsafe_b64encode(f"{key}|{seq}|{fingerprint}".encode()).decode().rstrip("=")


@pytest.mark.parametrize("seq", [str(2**63), "9" * 40])
def test_a_next_value_with_a_huge_position_is_400_not_500(exchange: Exchange, seq: str) -> None:
    token = _next_token(f"objects|{SANDBOX_ID}|", "2026-01-01T00:00:00.000000Z", seq)
    response = exchange.get(
        exchange.collection_url(SANDBOX_ID) + "objects/", user="cert-fr", params={"next": token}
    )
    assert_taxii_error(response, 400)


def test_a_next_value_with_the_largest_position_is_understood(exchange: Exchange) -> None:
    token = _next_token(f"objects|{SANDBOX_ID}|", "2026-01-01T00:00:00.000000Z", str(2**63 - 1))
    response = exchange.get(
        exchange.collection_url(SANDBOX_ID) + "objects/", user="cert-fr", params={"next": token}
    )
    assert response.status_code == 200, response.text


def test_an_empty_post_body_is_400_not_413(exchange: Exchange) -> None:
    """413 tells a client its POST is too large and to split it; an empty body is just not a
    TAXII envelope."""
    response = exchange.post(exchange.collection_url(SANDBOX_ID) + "objects/", b"", user="cert-fr")
    assert_taxii_error(response, 400)
    # Authentication and rights still come first.
    anonymous = exchange.post(exchange.collection_url(SANDBOX_ID) + "objects/", b"", user=None)
    assert anonymous.status_code == 401
