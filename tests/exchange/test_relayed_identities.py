"""Another agency's identity object in a STIX input passes through as it is (docs/INGEST.md):
cert-fr shares with cert-in over a real TAXII server, cert-in exports cert-fr's objects as STIX
(`export --format stix --partner cert-fr`), then converts the file and pushes it to cert-de.

cert-fr's identity says who made the objects; it is cert-fr's, not cert-in's. `convert` and
`push` must not attribute it to cert-in (`created_by_ref`) or mark it with cert-in's default
TLP, as `seal` does not: marked TLP:AMBER, it was refused for a partner whose max TLP is GREEN
("above-partner-max-tlp" for cert-fr's identity), and to a partner allowed AMBER it went out as
a version of cert-fr's identity authored by cert-in. The TLP policy still decides everything
else: cert-fr's AMBER indicator does not go on to cert-de."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cti_exchange.profile.model import identity_id_for
from tests.conftest import Agency
from tests.exchange.conftest import Exchange, received_values, store_rows

GREEN = "fr-green.evil.example"
AMBER = "fr-amber.evil.example"


def _india_exports_what_fr_sent(exchange: Exchange, tmp_path: Path) -> Path:
    fr, india = exchange.fr, exchange.india
    csv = tmp_path / "fr.csv"
    csv.write_text(f"value,type,tlp\n{GREEN},domain-name,green\n{AMBER},domain-name,amber\n")
    pushed = fr.run("push", str(csv), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr
    pulled = india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    exported = tmp_path / "from-fr.json"
    done = india.run(
        "export", "--format", "stix", "--any-status", "--partner", "cert-fr", "-o", str(exported)
    )
    assert done.exit_code == 0, done.stderr
    return exported


def _identity(objects: list[dict[str, Any]], identity_id: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["id"] == identity_id]
    return found


def test_convert_keeps_a_partners_identity_as_it_came(trio: tuple[Exchange, Agency], tmp_path: Path) -> None:
    exchange, _ = trio
    india = exchange.india
    exported = _india_exports_what_fr_sent(exchange, tmp_path)
    fr_identity = identity_id_for("cert-fr")
    as_exported = _identity(json.loads(exported.read_text())["objects"], fr_identity)
    assert "created_by_ref" not in as_exported and "object_marking_refs" not in as_exported

    converted = tmp_path / "converted.json"
    result = india.run("convert", str(exported), "-o", str(converted))
    assert result.exit_code == 0, result.stderr
    identity = _identity(json.loads(converted.read_text())["objects"], fr_identity)
    assert identity == as_exported  # not attributed to cert-in, not marked with its TLP
    # Nothing in our own export needed a default TLP or an author: read back without warnings.
    assert "had no TLP marking" not in result.stderr, result.stderr
    assert "had no created_by_ref" not in result.stderr, result.stderr


def test_a_partners_identity_is_no_refusal_when_its_objects_are_relayed(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    exchange, de = trio
    india = exchange.india
    exported = _india_exports_what_fr_sent(exchange, tmp_path)
    assert india.run("partners", "set", "cert-de", "--max-tlp", "green").exit_code == 0

    sent = india.run("push", str(exported), "--to", "cert-de", "--skip-refused", "--json")
    assert sent.exit_code == 0, sent.stderr
    refused = sent.json()["refused"]
    # cert-fr's AMBER indicator stays with cert-in; its identity is no refusal of its own.
    assert len(refused) == 1 and AMBER in refused[0], refused
    assert not any(r.startswith("identity--") for r in refused), refused

    pulled = de.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    assert received_values(de) == [GREEN]
    fr_identity = identity_id_for("cert-fr")
    ((stored,),) = store_rows(de, "SELECT json FROM objects WHERE object_id = ?", fr_identity)
    identity = json.loads(stored)
    assert "created_by_ref" not in identity and "object_marking_refs" not in identity


def test_an_identity_no_object_names_as_author_is_still_marked(cert_fr: Agency, tmp_path: Path) -> None:
    """Only authors pass through unmarked: a victim's identity that a relationship targets
    carries what the report says about it, and gets the default TLP like any object (so the
    policy refuses the relationship wherever it refuses the identity)."""
    when = "2026-11-20T10:00:00.000Z"
    author = "identity--0d0d0d0d-0000-4000-8000-000000000001"
    victim = "identity--0d0d0d0d-0000-4000-8000-000000000002"
    common = {"spec_version": "2.1", "created": when, "modified": when}
    objects = [
        {"type": "identity", "id": author, "name": "Some CERT", "identity_class": "organization", **common},
        {"type": "identity", "id": victim, "name": "A hospital", "identity_class": "organization", **common},
        {
            "type": "threat-actor",
            "id": "threat-actor--0d0d0d0d-0000-4000-8000-000000000003",
            "name": "Crew",
            "created_by_ref": author,
            **common,
        },
        {
            "type": "relationship",
            "id": "relationship--0d0d0d0d-0000-4000-8000-000000000004",
            "relationship_type": "targets",
            "source_ref": "threat-actor--0d0d0d0d-0000-4000-8000-000000000003",
            "target_ref": victim,
            "created_by_ref": author,
            **common,
        },
    ]
    bundle = tmp_path / "in.json"
    bundle.write_text(
        json.dumps({"type": "bundle", "id": "bundle--" + victim.split("--")[1], "objects": objects})
    )
    converted = tmp_path / "out.json"
    result = cert_fr.run("convert", str(bundle), "-o", str(converted), "--tlp", "amber")
    assert result.exit_code == 0, result.stderr
    out = {o["id"]: o for o in json.loads(converted.read_text())["objects"]}
    assert "object_marking_refs" not in out[author] and "created_by_ref" not in out[author]
    amber = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
    assert out[victim]["object_marking_refs"] == [amber]
    assert out[victim]["created_by_ref"] == identity_id_for("cert-fr")
    assert "3 object(s) had no TLP marking: marked TLP:AMBER" in result.stderr, result.stderr
