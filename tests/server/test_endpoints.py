"""Every TAXII 2.1 endpoint the exchange server routes, through HTTP with taxii2-client."""

from __future__ import annotations

import re

from taxii2client.v21 import Server

from cti_exchange.server.provisioning import DEFAULT_MAX_CONTENT_LENGTH, collection_id_for

from .conftest import SANDBOX_ID, TAXII, Exchange, StixFactory

DATE_ADDED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
FR_TO_IN = collection_id_for("cert-fr", "cert-in")
IN_TO_FR = collection_id_for("cert-in", "cert-fr")


def test_discovery_lists_the_exchange_api_root(exchange: Exchange) -> None:
    server = Server(exchange.server.discovery_url, user="cert-fr", password=exchange.passwords["cert-fr"])
    assert server.title == "cti-exchange TAXII server"
    assert [root.url for root in server.api_roots] == [exchange.server.api_root_url]
    assert server.default.url == exchange.server.api_root_url


def test_api_root_information(exchange: Exchange) -> None:
    root = exchange.api_root(user="cert-in")
    assert root.title == "cti-exchange"
    assert root.versions == [TAXII]
    assert root.max_content_length == DEFAULT_MAX_CONTENT_LENGTH


def test_collections_show_each_account_its_own_rights(exchange: Exchange) -> None:
    seen = {
        user: {c.id: (c.can_read, c.can_write) for c in exchange.api_root(user=user).collections}
        for user in ("cert-fr", "cert-in")
    }
    # Write-only outbound, read-only inbound; the sandbox belongs to cert-fr alone.
    assert seen["cert-fr"] == {
        FR_TO_IN: (False, True),
        IN_TO_FR: (True, False),
        SANDBOX_ID: (True, True),
    }
    assert seen["cert-in"] == {FR_TO_IN: (True, False), IN_TO_FR: (False, True)}


def test_collection_resource(exchange: Exchange) -> None:
    response = exchange.get(exchange.collection_url(FR_TO_IN), user="cert-in")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == TAXII
    assert response.json() == {
        "id": FR_TO_IN,
        "title": "CERT-FR to CERT-In",
        "description": "Envelopes from CERT-FR for CERT-In: written by cert-fr, read by cert-in",
        "alias": "cert-fr-to-cert-in",
        "can_read": True,
        "can_write": False,
        "media_types": ["application/stix+json;version=2.1"],
    }


def test_post_then_get_objects_manifest_object_versions_and_status(
    exchange: Exchange, stix: StixFactory
) -> None:
    first = stix.indicator()
    second = stix.version_of(first, "2026-02-01T00:00:00.000Z", name="updated")
    outbound = exchange.collection(FR_TO_IN, user="cert-fr")
    inbound = exchange.collection(FR_TO_IN, user="cert-in")

    status = outbound.add_objects({"objects": [first, second]})
    assert status.status == "complete"
    assert (status.total_count, status.success_count, status.failure_count) == (2, 2, 0)
    assert {(s["id"], s["version"]) for s in status.successes} == {
        (first["id"], first["modified"]),
        (second["id"], second["modified"]),
    }
    status.refresh()  # GET status/<id>/ as the poster
    assert status.success_count == 2

    objects = inbound.get_objects(id=first["id"])["objects"]
    assert objects == [second]  # latest version by default, exactly as posted

    one = inbound.get_object(first["id"])
    assert one["objects"] == [second]
    assert one["more"] is False

    versions = inbound.object_versions(first["id"])
    assert versions == {"versions": [first["modified"], second["modified"]], "more": False}

    manifest = inbound.get_manifest(id=first["id"], version="all")["objects"]
    assert [(m["id"], m["version"], m["media_type"]) for m in manifest] == [
        (first["id"], first["modified"], "application/stix+json;version=2.1"),
        (second["id"], second["modified"], "application/stix+json;version=2.1"),
    ]
    # One POST, one date_added.
    assert manifest[0]["date_added"] == manifest[1]["date_added"]
    assert DATE_ADDED.match(manifest[0]["date_added"])


def test_date_added_headers_on_objects_manifest_and_versions(exchange: Exchange, stix: StixFactory) -> None:
    obj = stix.indicator()
    exchange.post(exchange.collection_url(SANDBOX_ID) + "objects/", {"objects": [obj]}, user="cert-fr")
    base = exchange.collection_url(SANDBOX_ID)
    for url in (base + "objects/", base + "manifest/", base + f"objects/{obj['id']}/versions/"):
        response = exchange.get(url, user="cert-fr", params={"match[id]": obj["id"]})
        assert response.status_code == 200, url
        first = response.headers["X-TAXII-Date-Added-First"]
        last = response.headers["X-TAXII-Date-Added-Last"]
        assert DATE_ADDED.match(first) and first == last


def test_empty_results_are_empty_envelopes_without_date_headers(exchange: Exchange) -> None:
    response = exchange.get(
        exchange.collection_url(SANDBOX_ID) + "objects/",
        user="cert-fr",
        params={"match[id]": "indicator--00000000-0000-4000-8000-000000000000"},
    )
    assert response.status_code == 200
    assert response.json() == {}
    assert "X-TAXII-Date-Added-First" not in response.headers


def test_get_unknown_object_and_versions_are_404(exchange: Exchange) -> None:
    url = exchange.collection_url(SANDBOX_ID) + "objects/indicator--00000000-0000-4000-8000-000000000000/"
    assert exchange.get(url, user="cert-fr").status_code == 404
    assert exchange.get(url + "versions/", user="cert-fr").status_code == 404


def test_delete_object_removes_every_version_by_default(exchange: Exchange, stix: StixFactory) -> None:
    first = stix.indicator()
    second = stix.version_of(first, "2026-03-01T00:00:00.000Z")
    sandbox = exchange.collection(SANDBOX_ID, user="cert-fr")
    sandbox.add_objects({"objects": [first, second]})

    sandbox.delete_object(first["id"])

    assert exchange.get(sandbox.objects_url + f"{first['id']}/", user="cert-fr").status_code == 404
    assert sandbox.get_manifest(id=first["id"], version="all") == {}


def test_delete_object_with_match_version_removes_only_that_version(
    exchange: Exchange, stix: StixFactory
) -> None:
    first = stix.indicator()
    second = stix.version_of(first, "2026-03-01T00:00:00.000Z")
    sandbox = exchange.collection(SANDBOX_ID, user="cert-fr")
    sandbox.add_objects({"objects": [first, second]})

    sandbox.delete_object(first["id"], version=second["modified"])

    # The earlier version is now the latest one.
    assert sandbox.get_object(first["id"])["objects"] == [first]
    assert sandbox.object_versions(first["id"])["versions"] == [first["modified"]]


def test_delete_unknown_object_is_404(exchange: Exchange) -> None:
    url = exchange.collection_url(SANDBOX_ID) + "objects/indicator--00000000-0000-4000-8000-000000000000/"
    response = exchange._session("cert-fr").delete(url, headers={"Accept": TAXII})
    assert response.status_code == 404
