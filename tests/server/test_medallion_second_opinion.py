"""A second opinion on the filter semantics: the same objects posted to our server and to
plain medallion on its memory backend (the OASIS reference implementation) must come back
the same for the same filters.

Deliberate differences are not compared: duplicates (medallion reports a failure, we report
success), the order of the versions list (medallion: descending; TAXII: ascending) and
DELETE without filters (medallion removes the latest version, we remove the object).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cti_exchange.server.runner import ServerProcess

from .conftest import SANDBOX_ID, TAXII, Exchange, StixFactory

MEMORY_COLLECTION = "365fed99-08fa-fdcd-a1b3-fb247eb41d01"
V1, V2, V3 = "2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"


@pytest.fixture(scope="module")
def memory_medallion(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, tuple[str, str]]]:
    """Plain medallion on its memory backend: (collection URL, credentials)."""
    work = tmp_path_factory.mktemp("medallion")
    data = {
        "/discovery": {"title": "medallion", "api_roots": ["/api1/"], "default": "/api1/"},
        "api1": {
            "information": {"title": "api1", "versions": [TAXII], "max_content_length": 10485760},
            "status": [],
            "collections": [
                {
                    "id": MEMORY_COLLECTION,
                    "title": "rw",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": [],
                }
            ],
        },
    }
    (work / "data.json").write_text(json.dumps(data))
    password = secrets.token_urlsafe(12)
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(work / "data.json"),
        },
        "users": {"tester": password},
        "taxii": {"max_page_size": 1000},
    }
    (work / "config.json").write_text(json.dumps(config))
    with ServerProcess.plain_medallion(work / "config.json", work, api_root="api1") as server:
        yield f"{server.api_root_url}collections/{MEMORY_COLLECTION}/", ("tester", password)


class Side:
    """One server's collection, spoken to the same way."""

    def __init__(self, url: str, auth: tuple[str, str]) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers["Accept"] = TAXII

    def post(self, objects: list[dict[str, Any]]) -> str:
        response = self.session.post(
            self.url + "objects/",
            data=json.dumps({"objects": objects}),
            headers={"Content-Type": TAXII},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        return str(response.json()["request_timestamp"])

    def get(self, endpoint: str, **params: str) -> Any:
        response = self.session.get(self.url + endpoint, params=params, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def date_added(self, object_id: str) -> list[str]:
        records = self.get("manifest/", **{"match[id]": object_id, "match[version]": "all"})["objects"]
        return sorted({r["date_added"] for r in records})


@pytest.fixture(scope="module")
def scenario(
    memory_medallion: tuple[str, tuple[str, str]], exchange: Exchange, stix: StixFactory
) -> dict[str, Any]:
    v1 = stix.indicator(modified=V1)
    v3 = stix.version_of(v1, V3, name="third")
    v2 = stix.version_of(v1, V2, name="second")
    legacy = {k: v for k, v in stix.version_of(stix.malware(), V3).items() if k != "spec_version"}
    modern_of_legacy = {**legacy, "spec_version": "2.1", "modified": V1}
    batch1 = [v1, v3, stix.malware(), stix.ipv4(), legacy, modern_of_legacy]
    batch2 = [v2, stix.indicator(), stix.ipv4()]
    sides = {
        "ours": Side(exchange.collection_url(SANDBOX_ID), ("cert-fr", exchange.passwords["cert-fr"])),
        "medallion": Side(*memory_medallion),
    }
    for side in sides.values():
        side.post(batch1)
        side.post(batch2)
    ids = ",".join(dict.fromkeys(o["id"] for o in batch1 + batch2))
    return {"sides": sides, "ids": ids, "v1": v1, "legacy": legacy, "batch2": batch2}


def picked(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, version) of what came back, ordered (ties in date_added broken by id)."""
    items = body.get("objects", [])
    return sorted((o["id"], o.get("version") or o.get("modified") or o.get("created") or "") for o in items)


FILTERS = [
    {},
    {"match[version]": "all"},
    {"match[version]": "first"},
    {"match[version]": "last"},
    {"match[version]": V2},
    {"match[version]": f"first,{V3}"},
    {"match[type]": "malware"},
    {"match[type]": "indicator,ipv4-addr", "match[version]": "all"},
    {"match[spec_version]": "2.0"},
    {"match[spec_version]": "2.1", "match[version]": "all"},
]


@pytest.mark.parametrize("endpoint", ["objects/", "manifest/"])
@pytest.mark.parametrize("filters", FILTERS, ids=[json.dumps(f) for f in FILTERS])
def test_same_answers_as_medallion(scenario: dict[str, Any], endpoint: str, filters: dict[str, str]) -> None:
    params = {"match[id]": scenario["ids"], **filters}
    ours, theirs = (scenario["sides"][name].get(endpoint, **params) for name in ("ours", "medallion"))
    # SCO versions are each server's own date_added: only their ids are compared.
    assert _without_sco_versions(picked(ours)) == _without_sco_versions(picked(theirs))
    assert picked(ours)  # every filter here selects something


def _without_sco_versions(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted((i, "" if i.startswith("ipv4-addr--") else v) for i, v in pairs)


def test_added_after_same_as_medallion(scenario: dict[str, Any]) -> None:
    answers = {}
    for name, side in scenario["sides"].items():
        first_post = side.date_added(scenario["v1"]["id"])[0]
        answers[name] = _without_sco_versions(
            picked(
                side.get(
                    "objects/",
                    **{
                        "match[id]": scenario["ids"],
                        "added_after": first_post,
                        "match[version]": "all",
                    },
                )
            )
        )
    assert answers["ours"] == answers["medallion"]
    assert {i for i, _ in answers["ours"]} == {o["id"] for o in scenario["batch2"]}


def test_versions_same_set_as_medallion(scenario: dict[str, Any]) -> None:
    oid = scenario["v1"]["id"]
    ours, theirs = (side.get(f"objects/{oid}/versions/") for side in scenario["sides"].values())
    assert ours["versions"] == [V1, V2, V3]  # ascending
    assert sorted(theirs["versions"]) == ours["versions"]


def test_object_endpoint_same_as_medallion(scenario: dict[str, Any]) -> None:
    oid = scenario["v1"]["id"]
    for version in ("last", "first", "all"):
        ours, theirs = (
            side.get(f"objects/{oid}/", **{"match[version]": version}) for side in scenario["sides"].values()
        )
        assert picked(ours) == picked(theirs), version


def test_paged_read_same_as_medallion(scenario: dict[str, Any]) -> None:
    results = {}
    for name, side in scenario["sides"].items():
        params: dict[str, str] = {
            "match[id]": scenario["ids"],
            "match[version]": "all",
            "limit": "2",
        }
        items: list[dict[str, Any]] = []
        while True:
            body = side.get("objects/", **params)
            items.extend(body.get("objects", []))
            if not body.get("more"):
                break
            params["next"] = body["next"]
        results[name] = _without_sco_versions(picked({"objects": items}))
        assert len(items) == len(results[name])
    assert results["ours"] == results["medallion"]
