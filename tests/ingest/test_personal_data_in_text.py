"""Personal data in free text of STIX input (GDPR, DPDP Act): found on a walkthrough, where a
STIX bundle's descriptions and an individual's `contact_information` reached the partner with
the e-mail addresses and phone numbers that the CSV path removes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Agency
from tests.exchange.conftest import running_exchange
from tests.triage.conftest import store_path

EMAIL = "jean.dupont@gmail.com"
PHONE = "+33 6 12 34 56 78"
BUNDLE: dict[str, Any] = {
    "type": "bundle",
    "id": "bundle--0b1f9a1e-7f57-4f53-9c2c-111111111111",
    "objects": [
        {
            "type": "identity",
            "spec_version": "2.1",
            "id": "identity--2a2b9c9e-1111-4c1e-8a11-222222222222",
            "created": "2026-01-01T00:00:00Z",
            "modified": "2026-01-01T00:00:00Z",
            "name": "A researcher",
            "identity_class": "individual",
            "contact_information": f"{EMAIL}, {PHONE}",
        },
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--4a2b9c9e-1111-4c1e-8a11-444444444444",
            "created": "2026-01-01T00:00:00Z",
            "modified": "2026-01-01T00:00:00Z",
            "description": f"C2 reported by {EMAIL} ({PHONE}); abuse@registrar.example notified",
            "pattern": "[domain-name:value = 'c2-walk2.example']",
            "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z",
            "external_references": [{"source_name": "mail", "description": f"from {EMAIL}"}],
        },
    ],
}


def _bundle(tmp_path: Path) -> Path:
    path = tmp_path / "pd-stix.json"
    path.write_text(json.dumps(BUNDLE))
    return path


def _converted(agency: Agency, source: Path, out: Path, *extra: str) -> tuple[str, str]:
    result = agency.run("convert", str(source), "--tlp", "green", "-o", str(out), *extra)
    assert result.exit_code == 0, result.stderr
    return out.read_text(), result.stderr


def _converted_but_one(agency: Agency, source: Path, out: Path) -> tuple[str, str]:
    """`convert` of an input with one item rejected: exit 1, the rest in the bundle."""
    result = agency.run("convert", str(source), "--tlp", "green", "-o", str(out))
    assert result.exit_code == 1, result.stderr
    return out.read_text(), result.stderr


def test_stix_free_text_is_scrubbed_and_the_analyst_is_told(cert_fr: Agency, tmp_path: Path) -> None:
    text, stderr = _converted(cert_fr, _bundle(tmp_path), tmp_path / "out.json")
    assert EMAIL not in text and "+33" not in text
    assert "abuse@registrar.example" in text  # a role mailbox is not personal data
    assert "[e-mail address removed]" in text and "[phone number removed]" in text
    assert (
        "contact_information: 2 item(s) of personal data (e-mail, phone, id, IBAN) removed from the text"
        in stderr
    )
    assert "description, external_references.description: 3 item(s) of personal data" in stderr


def test_keep_personal_data_keeps_it_and_says_so(cert_fr: Agency, tmp_path: Path) -> None:
    text, stderr = _converted(cert_fr, _bundle(tmp_path), tmp_path / "out.json", "--keep-personal-data")
    assert EMAIL in text and PHONE in text
    assert "2 item(s) of personal data (e-mail, phone, id, IBAN) kept in the text" in stderr
    csv = tmp_path / "pd.csv"
    csv.write_text(f"indicator,description\nevil-walk2.example,registered by {EMAIL}\n")
    text, stderr = _converted(cert_fr, csv, tmp_path / "csv.json", "--keep-personal-data")
    assert EMAIL in text
    assert "1 item(s) of personal data (e-mail, phone, id, IBAN) kept in the text" in stderr


def test_the_partner_never_receives_it(partnered: tuple[Agency, Agency], tmp_path: Path) -> None:
    fr, india = partnered
    with running_exchange(tmp_path, fr, india):  # a real TAXII server on 127.0.0.1
        pushed = fr.run("push", str(_bundle(tmp_path)), "--to", "cert-in", "--tlp", "green")
        assert pushed.exit_code == 0, pushed.stderr
        pulled = india.run("pull")
        assert pulled.exit_code == 0, pulled.stderr
    stored = store_path(india).read_bytes()
    assert b"c2-walk2.example" in stored
    assert EMAIL.encode() not in stored and b"+33 6 12" not in stored
    shown = india.run("triage", "show", "c2-walk2.example")
    assert "[e-mail address removed]" in shown.stdout and EMAIL not in shown.stdout


def test_no_personal_data_warning_for_an_object_that_is_rejected(cert_fr: Agency, tmp_path: Path) -> None:
    """A rejected object shares nothing: the analyst is told why it was rejected, not that
    personal data was removed from it."""
    broken = {
        **BUNDLE["objects"][1],
        "id": "indicator--4a2b9c9e-1111-4c1e-8a11-555555555555",
        "pattern": "[domain-name:value = ",  # not a STIX pattern
    }
    kept = {key: value for key, value in BUNDLE["objects"][1].items() if key != "external_references"}
    kept["description"] = "C2"
    source = tmp_path / "one-broken.json"
    source.write_text(json.dumps({**BUNDLE, "objects": [kept, broken]}))
    text, stderr = _converted_but_one(cert_fr, source, tmp_path / "out.json")
    assert "c2-walk2.example" in text
    assert "rejected:" in stderr and "555555555555" in stderr
    assert "item(s) of personal data (e-mail, phone, id, IBAN)" not in stderr


def test_no_personal_data_warning_for_a_csv_row_that_is_rejected(cert_fr: Agency, tmp_path: Path) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text(
        "indicator,description,kill_chain_phases\n"
        "kept-walk2.example,C2,\n"
        f"rejected-walk2.example,registered by {EMAIL},not a phase\n"
    )
    text, stderr = _converted_but_one(cert_fr, csv, tmp_path / "out.json")
    assert "kept-walk2.example" in text
    assert "rejected:" in stderr and "kill_chain_phases" in stderr
    assert "item(s) of personal data (e-mail, phone, id, IBAN)" not in stderr
