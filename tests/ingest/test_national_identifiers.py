"""National identifiers and numbers in free text (GDPR, DPDP Act 2023): an Aadhaar number, an
IBAN, a French NIR, an individual's PAN and French or Indian phone numbers written the national
way reached partners in descriptions, since only e-mail addresses and international numbers
(`+33 ...`) were found. They are found only with a right check digit or in the forms people
write them in, and never in the values threat intelligence is made of."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti_exchange.stix import guardrails
from cti_exchange.stix.guardrails import holds_personal_data, scrub_personal_data
from tests.conftest import Agency

IBAN = "FR76 3000 6000 0112 3456 7890 189"
AADHAAR = "2345 6789 0124"
NIR = "1 85 05 78 006 084 91"
FRENCH_MOBILE = "06 12 34 56 78"
INDIAN_MOBILE = "98765 43210"
PAN = "ABCPE1234F"


def scrubbed(text: str) -> str:
    return scrub_personal_data(text)[0]


@pytest.mark.parametrize(
    ("text", "placeholder"),
    [
        (IBAN, "[IBAN removed]"),
        (IBAN.replace(" ", ""), "[IBAN removed]"),
        ("DE89 3704 0044 0532 0130 00", "[IBAN removed]"),
        ("GB82WEST12345698765432", "[IBAN removed]"),
        (AADHAAR, "[national id removed]"),
        ("2345-6789-0124", "[national id removed]"),
        ("234567890124", "[national id removed]"),
        (NIR, "[national id removed]"),
        ("185057800608491", "[national id removed]"),
        ("2 90 12 2A 004 123 67", "[national id removed]"),  # Corsica: 2A counts as 19
        ("2 90 12 2B 004 123 94", "[national id removed]"),  # and 2B as 18
        (PAN, "[national id removed]"),
        (FRENCH_MOBILE, "[phone number removed]"),
        ("06.12.34.56.78", "[phone number removed]"),
        ("06-12-34-56-78", "[phone number removed]"),
        ("0612345678", "[phone number removed]"),
        ("01 23 45 67 89", "[phone number removed]"),
        (INDIAN_MOBILE, "[phone number removed]"),
        ("98765-43210", "[phone number removed]"),
        ("09876543210", "[phone number removed]"),
        ("0 98765 43210", "[phone number removed]"),
        ("919876543210", "[phone number removed]"),
        ("91 98765 43210", "[phone number removed]"),
        ("+91 98765 43210", "[phone number removed]"),
        ("9876543210", "[phone number removed]"),
        ("mobile 62000 60001", "mobile [phone number removed]"),  # could be ports: said not
    ],
)
def test_found_and_replaced_in_prose(text: str, placeholder: str) -> None:
    result, count = scrub_personal_data(f"Victim ({text}), reported 2026-01-15.")
    assert (result, count) == (f"Victim ({placeholder}), reported 2026-01-15.", 1)
    assert holds_personal_data(text)


@pytest.mark.parametrize(
    "text",
    [
        "FR76 3000 6000 0112 3456 7890 188",  # wrong mod 97
        "FR7630006000011234567890188",
        "FR76 3000 6000 0112 3456 7890 18",  # FR IBANs have 27 characters
        "AB12345678901234567",  # no country AB
        "2345 6789 0123",  # wrong Verhoeff digit
        "234567890123",
        "1234 5678 9012",  # an Aadhaar number never starts with 0 or 1
        "1 85 05 78 006 084 36",  # wrong key
        "185057800608436",
        "3 85 05 78 006 084 91",  # sex is 1 or 2
        "AAACB1234C",  # a company's PAN (4th letter C), not an individual's
        "abcpe1234f",
        "06 12 34 56 7",
        "06 12.34 56 78",  # separators mixed
        "00 12 34 56 78",
        "0012345678",
        "58765 43210",  # Indian mobiles start with 6-9
        "987654321",
        "1234 5678 9012 3456",  # a card number is not found as an Aadhaar inside it
        "2345 6789 0124 5678",
    ],
)
def test_invalid_or_other_forms_are_kept(text: str) -> None:
    assert scrub_personal_data(f"seen: {text} here") == (f"seen: {text} here", 0)


@pytest.mark.parametrize(
    "text",
    [
        "ports 60000 60001",
        "seen 60000 10000 times",  # two numbers that could be ports or counts
        "ports 3805 3806 3807",
        "in 2019 2020 2021",
        "open ports: 80, 60000 60001, 443",
        "AWS account 234567890124",
        "size 7516192768 bytes",
        "file of 9876543210 B",
        "Telegram chat_id=6123456789",
        "ticket #0612345678",
        "sid:2019401 rev:3",
        "https://host.example/download?id=9876543210",
        "C:\\Users\\Public\\9876543210.exe",
        "v9.8765.43210",
        "1700000000",
        "CVE-2021-44228 CVE-2024-98765",
        "AS9829 AS4755 AS55836",
        "198.51.100.17:62000",
    ],
)
def test_threat_intel_that_looks_like_numbers_is_kept(text: str) -> None:
    assert scrub_personal_data(text) == (text, 0)


def test_each_item_is_counted_and_roles_still_kept() -> None:
    text = (
        f"Victim jean.dupont@gmail.com, {FRENCH_MOBILE}, IBAN {IBAN}; Indian victim {INDIAN_MOBILE}, "
        f"Aadhaar {AADHAAR}, PAN {PAN}, NIR {NIR}; abuse@registrar.example told"
    )
    result, count = scrub_personal_data(text)
    assert count == 7
    assert result == (
        "Victim [e-mail address removed], [phone number removed], IBAN [IBAN removed]; Indian victim "
        "[phone number removed], Aadhaar [national id removed], PAN [national id removed], NIR "
        "[national id removed]; abuse@registrar.example told"
    )


def test_check_digit_functions() -> None:
    # Through the module, so that the tests of the CLI still run on code without them.
    verhoeff_valid, iban_valid, nir_valid = (
        guardrails.verhoeff_valid,
        guardrails.iban_valid,
        guardrails.nir_valid,
    )
    assert verhoeff_valid("2363") and not verhoeff_valid("2364")
    assert verhoeff_valid("234567890124") and not verhoeff_valid("234567890125")
    assert iban_valid(IBAN) and iban_valid(IBAN.lower()) and not iban_valid(IBAN[:-1] + "8")
    assert nir_valid(NIR) and not nir_valid("1 85 05 78 006 084 36") and not nir_valid("12345")


# Property tests: values threat intelligence is made of, in prose, are never scrubbed.
hex_hashes = st.sampled_from([32, 40, 64, 128]).flatmap(
    lambda n: st.text(alphabet="0123456789abcdef", min_size=n, max_size=n)
)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535).map(str)
ip_with_port = st.tuples(ipv4, ports).map(lambda t: f"{t[0]}:{t[1]}")
timestamps = st.datetimes().map(lambda d: d.isoformat(timespec="seconds") + "Z")
epoch = st.integers(0, 4_294_967_295).map(str)
cves = st.tuples(st.integers(1999, 2099), st.integers(1, 9_999_999)).map(lambda t: f"CVE-{t[0]}-{t[1]:04d}")
asns = st.integers(0, 4_294_967_295).map(lambda n: f"AS{n}")
sids = st.integers(1, 99_999_999).map(lambda n: f"sid:{n};")
versions = st.lists(st.integers(0, 99999), min_size=2, max_size=5).map(
    lambda parts: "v" + ".".join(map(str, parts))
)
values = st.one_of(
    hex_hashes,
    hex_hashes.map(str.upper),
    ipv4,
    ipv6,
    ip_with_port,
    timestamps,
    epoch,
    cves,
    asns,
    sids,
    versions,
)
# Not a lone space: two or three bare numbers with only spaces between them are the very form
# Indian mobiles (`98765 43210`) and Aadhaar numbers (`2345 6789 0124`) are written in; that
# case is tested above (`seen 60000 10000 times`, `ports 3805 3806 3807`).
separators = st.sampled_from([", ", "; ", " (", ") ", "\n", " - ", " and ", " then "])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(values, separators), min_size=1, max_size=8))
def test_threat_intel_values_in_text_are_never_scrubbed(parts: list[tuple[str, str]]) -> None:
    text = "Seen: " + "".join(value + separator for value, separator in parts) + "end."
    assert scrub_personal_data(text) == (text, 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(ports, min_size=1, max_size=6))
def test_port_lists_are_never_scrubbed(numbers: list[str]) -> None:
    for text in (f"ports {' '.join(numbers)}", f"ports: {', '.join(numbers)}"):
        assert scrub_personal_data(text) == (text, 0)


# Through the CLI.
def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "victims.csv"
    path.write_text(
        "indicator,description\n"
        f'phish-nat.example,"Victim IBAN {IBAN}, Aadhaar {AADHAAR}, mobile {FRENCH_MOBILE}"\n'
        "c2-nat.example,C2 on 198.51.100.7:62000 (AS64500) since 2026-01-15T10:20:30Z\n"
    )
    return path


def _bundle(tmp_path: Path) -> Path:
    bundle: dict[str, Any] = {
        "type": "bundle",
        "id": "bundle--0b1f9a1e-7f57-4f53-9c2c-333333333333",
        "objects": [
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--4a2b9c9e-1111-4c1e-8a11-666666666666",
                "created": "2026-01-01T00:00:00Z",
                "modified": "2026-01-01T00:00:00Z",
                "description": f"Victim IBAN {IBAN}, Aadhaar {AADHAAR}, mobile {FRENCH_MOBILE}",
                "pattern": "[domain-name:value = 'phish-nat.example']",
                "pattern_type": "stix",
                "valid_from": "2026-01-01T00:00:00Z",
            }
        ],
    }
    path = tmp_path / "victims.json"
    path.write_text(json.dumps(bundle))
    return path


def _description(out: Path, value: str) -> str:
    objects = json.loads(out.read_text())["objects"]
    (found,) = [o for o in objects if o["type"] == "indicator" and value in o["pattern"]]
    return str(found["description"])


@pytest.mark.parametrize("source", [_csv, _bundle], ids=["csv", "stix"])
def test_convert_scrubs_them_and_says_so(cert_fr: Agency, tmp_path: Path, source: Any) -> None:
    out = tmp_path / "out.json"
    result = cert_fr.run("convert", str(source(tmp_path)), "--tlp", "green", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    assert IBAN not in text and AADHAAR not in text and FRENCH_MOBILE not in text
    assert _description(out, "phish-nat.example") == (
        "Victim IBAN [IBAN removed], Aadhaar [national id removed], mobile [phone number removed]"
    )
    assert "3 item(s) of personal data (e-mail, phone, id, IBAN) removed from the text" in result.stderr
    if source is _csv:
        assert _description(out, "c2-nat.example") == (
            "C2 on 198.51.100.7:62000 (AS64500) since 2026-01-15T10:20:30Z"
        )


def test_keep_personal_data_keeps_them_and_says_so(cert_fr: Agency, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = cert_fr.run(
        "convert", str(_bundle(tmp_path)), "--tlp", "green", "-o", str(out), "--keep-personal-data"
    )
    assert result.exit_code == 0, result.stderr
    assert IBAN in _description(out, "phish-nat.example")
    assert "3 item(s) of personal data (e-mail, phone, id, IBAN) kept in the text" in result.stderr
