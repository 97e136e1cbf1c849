"""TAXII 2.1 filters through HTTP: added_after, match[id], match[type], match[version],
match[spec_version], on the objects, object, manifest and versions endpoints."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from .conftest import SANDBOX_ID, Exchange, StixFactory

V1, V2, V3 = "2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.5Z", "2026-03-01T00:00:00.000Z"


def post(exchange: Exchange, objects: list[dict[str, Any]]) -> str:
    """POST to the sandbox; the date_added the server gave this POST."""
    response = exchange.post(
        exchange.collection_url(SANDBOX_ID) + "objects/", {"objects": objects}, user="cert-fr"
    )
    assert response.status_code == 202, response.text
    assert response.json()["failure_count"] == 0, response.text
    manifest = exchange.get(
        exchange.collection_url(SANDBOX_ID) + "manifest/",
        user="cert-fr",
        params={"match[id]": objects[0]["id"], "match[version]": "all"},
    ).json()["objects"]
    return max(record["date_added"] for record in manifest)


def get(exchange: Exchange, endpoint: str = "objects/", **params: str) -> list[dict[str, Any]]:
    response = exchange.get(exchange.collection_url(SANDBOX_ID) + endpoint, user="cert-fr", params=params)
    assert response.status_code == 200, response.text
    return response.json().get("objects", [])


def versions_of(items: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(o["id"], o.get("modified") or o.get("version")) for o in items]


@pytest.fixture
def history(exchange: Exchange, stix: StixFactory) -> dict[str, Any]:
    """One indicator in three versions over two POSTs, plus a malware and an SCO."""
    v1 = stix.indicator(modified=V1)
    v3 = stix.version_of(v1, V3, name="third")
    malware = stix.malware()
    sco = stix.ipv4()
    first_added = post(exchange, [v1, v3, malware, sco])
    v2 = stix.version_of(v1, V2, name="second")  # an older version, posted later
    second_added = post(exchange, [v2])
    ids = ",".join([v1["id"], malware["id"], sco["id"]])
    return {
        "v1": v1,
        "v2": v2,
        "v3": v3,
        "malware": malware,
        "sco": sco,
        "ids": ids,
        "first_added": first_added,
        "second_added": second_added,
    }


def test_added_after_is_strictly_later(exchange: Exchange, history: dict[str, Any]) -> None:
    ids = history["ids"]
    assert get(
        exchange,
        **{"added_after": history["first_added"], "match[id]": ids, "match[version]": "all"},
    ) == [history["v2"]]
    just_before = (
        datetime.strptime(history["first_added"], "%Y-%m-%dT%H:%M:%S.%fZ") - timedelta(microseconds=1)
    ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    found = get(exchange, **{"added_after": just_before, "match[id]": ids, "match[version]": "all"})
    assert len(found) == 5
    assert get(exchange, **{"added_after": history["second_added"], "match[id]": ids}) == []


def test_added_after_accepts_any_stix_precision(exchange: Exchange, history: dict[str, Any]) -> None:
    seconds = history["first_added"][:19]  # "YYYY-MM-DDTHH:MM:SS"
    found = get(
        exchange,
        **{"added_after": seconds + "Z", "match[id]": history["ids"], "match[version]": "all"},
    )
    assert len(found) == 5


def test_match_version_last_is_the_default(exchange: Exchange, history: dict[str, Any]) -> None:
    v1 = history["v1"]
    assert get(exchange, **{"match[id]": v1["id"]}) == [history["v3"]]
    assert get(exchange, **{"match[id]": v1["id"], "match[version]": "last"}) == [history["v3"]]


def test_match_version_first_all_and_timestamps(exchange: Exchange, history: dict[str, Any]) -> None:
    v1 = history["v1"]
    assert get(exchange, **{"match[id]": v1["id"], "match[version]": "first"}) == [v1]
    # "all", in date_added order: v1 and v3 (first POST), then v2.
    assert versions_of(get(exchange, **{"match[id]": v1["id"], "match[version]": "all"})) == [
        (v1["id"], V1),
        (v1["id"], V3),
        (v1["id"], V2),
    ]
    # A timestamp matches whatever its precision: V2 was posted as ".5Z".
    assert get(exchange, **{"match[id]": v1["id"], "match[version]": "2026-02-01T00:00:00.500000Z"}) == [
        history["v2"]
    ]
    combined = get(exchange, **{"match[id]": v1["id"], "match[version]": f"first,{V2}"})
    assert versions_of(combined) == [(v1["id"], V1), (v1["id"], V2)]


def test_match_type_and_id_lists(exchange: Exchange, history: dict[str, Any]) -> None:
    ids = history["ids"]
    assert get(exchange, **{"match[id]": ids, "match[type]": "malware"}) == [history["malware"]]
    both = get(exchange, **{"match[id]": ids, "match[type]": "malware,ipv4-addr"})
    assert {o["id"] for o in both} == {history["malware"]["id"], history["sco"]["id"]}
    assert get(exchange, **{"match[id]": ids, "match[type]": "campaign"}) == []


def test_sco_version_is_its_date_added(exchange: Exchange, history: dict[str, Any]) -> None:
    sco = history["sco"]
    (record,) = get(exchange, "manifest/", **{"match[id]": sco["id"]})
    assert record["version"] == record["date_added"] == history["first_added"]
    assert get(exchange, **{"match[id]": sco["id"]}) == [sco]


def test_match_spec_version(exchange: Exchange, stix: StixFactory) -> None:
    modern = stix.indicator(modified=V1)
    legacy = {k: v for k, v in stix.version_of(modern, V3).items() if k != "spec_version"}  # 2.0
    post(exchange, [modern, legacy])
    oid = modern["id"]
    # Default: only the latest spec version of each object (2.1), even though the 2.0
    # version is the more recent one.
    assert get(exchange, **{"match[id]": oid}) == [modern]
    assert get(exchange, **{"match[id]": oid, "match[version]": "all"}) == [modern]
    assert get(exchange, **{"match[id]": oid, "match[spec_version]": "2.0"}) == [legacy]
    assert get(
        exchange, **{"match[id]": oid, "match[spec_version]": "2.0,2.1", "match[version]": "last"}
    ) == [legacy]
    assert get(exchange, **{"match[id]": oid, "match[spec_version]": "2.0,2.1", "match[version]": "all"}) == [
        modern,
        legacy,
    ]
    manifest = get(exchange, "manifest/", **{"match[id]": oid, "match[spec_version]": "2.0"})
    assert [m["media_type"] for m in manifest] == ["application/stix+json;version=2.0"]


def test_object_endpoint_filters(exchange: Exchange, history: dict[str, Any]) -> None:
    v1 = history["v1"]
    endpoint = f"objects/{v1['id']}/"
    assert get(exchange, endpoint) == [history["v3"]]
    assert get(exchange, endpoint, **{"match[version]": "first"}) == [v1]
    assert len(get(exchange, endpoint, **{"match[version]": "all"})) == 3
    # Filters the object endpoint does not support are ignored, as in medallion.
    assert get(exchange, endpoint, **{"match[type]": "malware"}) == [history["v3"]]


def test_versions_endpoint_lists_versions_in_ascending_order(
    exchange: Exchange, history: dict[str, Any]
) -> None:
    url = exchange.collection_url(SANDBOX_ID) + f"objects/{history['v1']['id']}/versions/"
    body = exchange.get(url, user="cert-fr").json()
    assert body == {"versions": [V1, V2, V3], "more": False}
    page = exchange.get(url, user="cert-fr", params={"limit": 2}).json()
    assert page["versions"] == [V1, V2] and page["more"] is True
    rest = exchange.get(url, user="cert-fr", params={"limit": 2, "next": page["next"]}).json()
    assert rest == {"versions": [V3], "more": False}
    later = exchange.get(url, user="cert-fr", params={"added_after": history["first_added"]}).json()
    assert later["versions"] == [V2]


def test_manifest_filters_and_paging(exchange: Exchange, history: dict[str, Any]) -> None:
    ids = history["ids"]
    records = get(exchange, "manifest/", **{"match[id]": ids, "match[version]": "all"})
    assert len(records) == 5
    assert [r["date_added"] for r in records] == sorted(r["date_added"] for r in records)
    page = exchange.get(
        exchange.collection_url(SANDBOX_ID) + "manifest/",
        user="cert-fr",
        params={"match[id]": ids, "match[version]": "all", "limit": 3},
    ).json()
    assert len(page["objects"]) == 3 and page["more"] is True
    rest = exchange.get(
        exchange.collection_url(SANDBOX_ID) + "manifest/",
        user="cert-fr",
        params={"match[id]": ids, "match[version]": "all", "limit": 3, "next": page["next"]},
    ).json()
    assert page["objects"] + rest["objects"] == records
    assert rest["more"] is False and "next" not in rest
