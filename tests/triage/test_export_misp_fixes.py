"""MISP exports exported again: the event keeps its title (`info`) for the same selection,
which each run used to change with the moment of the export, and `to_ids` follows MISP's
defaults for the type (PyMISP describeTypes.json `sane_defaults`): false for `AS`,
`email-subject` and `mac-address`, which MISP keeps out of its IDS exports, true for the
rest."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put

PATTERNS = {
    "64496": "[autonomous-system:number = 64496]",
    "Re: Invoice overdue": "[email-message:subject = 'Re: Invoice overdue']",
    "00:1a:2b:3c:4d:5e": "[mac-addr:value = '00:1a:2b:3c:4d:5e']",
    "c2.example": "[domain-name:value = 'c2.example']",
    "http://c2.example/gate": "[url:value = 'http://c2.example/gate']",
}


def _stored(value: str, pattern: str) -> dict[str, Any]:
    obj = indicator(value, tlp="green")
    obj["pattern"] = pattern
    return obj


def _event(agency: Agency, *args: str) -> dict[str, Any]:
    result = agency.run("export", "--format", "misp", *args)
    assert result.exit_code == 0, result.stderr
    event: dict[str, Any] = json.loads(result.stdout)["Event"]
    return event


def test_misp_to_ids_follows_misp_defaults_and_the_title_stays(cert_in: Agency) -> None:
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *(_stored(v, p) for v, p in PATTERNS.items())])
    assert cert_in.run("triage", "accept", *PATTERNS).exit_code == 0

    first = _event(cert_in)
    again = _event(cert_in)

    to_ids = {a["type"]: a["to_ids"] for a in first["Attribute"]}
    assert to_ids == {"AS": False, "email-subject": False, "mac-address": False, "domain": True, "url": True}
    # The same selection: the same event, under the same title, whatever the moment.
    assert again["uuid"] == first["uuid"] and again["info"] == first["info"]
    assert first["info"].startswith("cti-exchange export by cert-in")
    assert first["date"] not in first["info"]
    # Another selection says so in its title.
    only_urls = _event(cert_in, "--type", "url")
    assert only_urls["info"] != first["info"] and "types=url" in only_urls["info"]
