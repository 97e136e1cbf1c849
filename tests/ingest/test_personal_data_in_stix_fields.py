"""Personal data in STIX places the scrubber did not look at (found on a walkthrough): custom
properties (`x_victim_email`), labels, a `user-account` with its `credential`, and a pattern
comparing `user-account:credential` reached the partner with no warning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Agency

CREATED = "2026-01-01T00:00:00Z"


def _indicator(n: int, pattern: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--4a2b9c9e-1111-4c1e-8a11-00000000000{n}",
        "created": CREATED,
        "modified": CREATED,
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": CREATED,
        **extra,
    }


def _bundle(tmp_path: Path) -> Path:
    objects = [
        _indicator(
            1,
            "[domain-name:value = 'c2-fields.example']",
            x_victim_email="jean.dupont@gmail.com",
            x_victim_phone="+33 6 12 34 56 78",
            labels=["reported by ravi.kumar@gmail.com", "c2"],
        ),
        _indicator(2, "[user-account:credential = 'Hunter2']"),
        {
            "type": "user-account",
            "spec_version": "2.1",
            "id": "user-account--0d5b424b-93b8-5cd8-ac36-306e1789d63c",
            "account_login": "svc-backup",
            "credential": "Hunter2",
        },
        _indicator(3, "[domain-name:value = 'plain-fields.example']", labels=["c2"]),
    ]
    path = tmp_path / "fields.json"
    path.write_text(
        json.dumps(
            {"type": "bundle", "id": "bundle--0b1f9a1e-7f57-4f53-9c2c-444444444444", "objects": objects}
        )
    )
    return path


def test_custom_properties_labels_and_credentials_are_not_shared(cert_fr: Agency, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = cert_fr.run("convert", str(_bundle(tmp_path)), "--tlp", "green", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    for secret in ("jean.dupont", "12 34 56 78", "ravi.kumar", "Hunter2"):
        assert secret not in text, secret
    objects = {o["id"]: o for o in json.loads(text)["objects"]}
    first = objects["indicator--4a2b9c9e-1111-4c1e-8a11-000000000001"]
    assert first["x_victim_email"] == "[e-mail address removed]" and first["labels"][1] == "c2"
    assert "indicator--4a2b9c9e-1111-4c1e-8a11-000000000003" in objects
    assert "x_victim_email, x_victim_phone, labels" in result.stderr
    assert (
        "compares a user account's credential" in result.stderr
        and "holds an account's credential" in result.stderr
    )

    kept = cert_fr.run(
        "convert", str(_bundle(tmp_path)), "--tlp", "green", "-o", str(out), "--keep-personal-data"
    )
    assert kept.exit_code == 0, kept.stderr
    assert "Hunter2" in out.read_text() and "jean.dupont" in out.read_text()
