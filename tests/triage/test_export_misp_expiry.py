"""A value that expires after a MISP export is withdrawn from the event in the next one (stop 27).

MISP never deletes an attribute missing from an event update: before, a value whose source
shortened its `valid_until` (the usual way to stop vouching for it) left a default export,
which selects valid values only, and stayed live in MISP, blocked by every SOC reading it."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put


def _attributes(agency: Agency, *args: str) -> dict[str, dict[str, Any]]:
    result = agency.run("export", "--format", "misp", *args)
    assert result.exit_code == 0, result.stderr
    return {a["value"]: a for a in json.loads(result.stdout)["Event"]["Attribute"]}


def test_a_value_expired_since_the_last_export_is_withdrawn(cert_in: Agency) -> None:
    kept, ending = indicator("kept.example", tlp="green"), indicator("ending.example", tlp="green")
    # cert-fr stops vouching for shared.example; cert-uk still does, in another spelling.
    shared_fr = indicator("shared.example", tlp="green")
    shared_uk = indicator("Shared.Example.", tlp="green")
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), kept, ending, shared_fr])
    put(cert_in, [shared_uk], partner="cert-uk")
    assert (
        cert_in.run("triage", "accept", kept["id"], ending["id"], shared_fr["id"], shared_uk["id"]).exit_code
        == 0
    )
    first = _attributes(cert_in)
    assert set(first) == {"kept.example", "ending.example", "shared.example"}

    # Their source ends their validity (a new version, valid until a past date).
    put(
        cert_in,
        [
            {**obj, "modified": "2026-02-01T00:00:00.000Z", "valid_until": "2026-02-01T00:00:00.000Z"}
            for obj in (ending, shared_fr)
        ],
        received_at="2026-02-01T12:00:00.000Z",
    )
    now = _attributes(cert_in)

    assert set(now) == set(first)
    gone = now["ending.example"]
    assert gone["uuid"] == first["ending.example"]["uuid"]  # MISP updates that attribute
    assert gone["deleted"] is True and gone["to_ids"] is False
    assert gone["comment"].endswith("withdrawn: decided against, revoked or expired")
    assert int(gone["timestamp"]) > int(first["ending.example"]["timestamp"])
    for value in ("kept.example", "shared.example"):  # still valid, in one spelling or another
        assert now[value]["deleted"] is False and now[value]["to_ids"] is True, value

    # Asked for, expired values are the selection: written live, in their own event.
    everything = _attributes(cert_in, "--include-expired")
    assert everything["ending.example"]["deleted"] is False
    assert everything["ending.example"]["uuid"] != gone["uuid"]
