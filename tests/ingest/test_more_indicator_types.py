"""Autonomous systems, e-mail subjects, ssdeep hashes, X.509 certificate fingerprints and MAC
addresses: MISP has attributes for them (`AS`, `email-subject`, `ssdeep`,
`x509-fingerprint-md5`/`-sha1`/`-sha256`, `mac-address`) and STIX 2.1 patterns compare them
(`autonomous-system:number`, an integer; `email-message:subject`; `file:hashes.SSDEEP`;
`x509-certificate:hashes`; `mac-addr:value`). Before, ingest rejected every one of them ("MISP
type ... has no STIX indicator mapping"), and a certificate's SHA-1 typed "cert sha1" in a CSV
became a file's SHA-1 hash.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti_exchange.stix.ioc_types import IocType, detect_ioc_type
from cti_exchange.stix.normalise import normalise
from cti_exchange.stix.pattern_values import indicator_value
from cti_exchange.stix.patterns import comparisons_in, pattern_for, validate_stix_pattern
from cti_exchange.stix.type_hints import parse_type_hint
from tests.conftest import Agency

from .conftest import IngestText, bundle_of, oasis_validate, partner_bundle, patterns

AS = "autonomous-system"
SUBJECT = "email-subject"
SSDEEP = "ssdeep"
MAC = "mac-addr"
SSDEEP_VALUE = "96:s4Ud1Lj96tHHlZDrwciQmA+4uy1I0G4HYuL8N3TzS8QsO/wqWXLcMSx:sF1LjEtHHlZDrJzrhuyZvHYm8tKp/RWO"
CERT_SHA1 = "4a:a3:66:76:82:cb:6b:23:bb:c3:58:47:23:a4:63:a7:78:a4:a1:18"
CERT_SHA1_HEX = CERT_SHA1.replace(":", "")
CERT_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
CERT_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    ("ioc_type", "value", "expected"),
    [
        (AS, "AS13335", "13335"),
        (AS, "as13335", "13335"),
        (AS, "13335", "13335"),
        (AS, "AS 13335", "13335"),
        (AS, "AS1.10", "65546"),  # asdot (RFC 5396): 1 * 65536 + 10
        (AS, "AS4294967295", "4294967295"),
        (SUBJECT, "  Re: Invoice #2026-11 overdue  ", "Re: Invoice #2026-11 overdue"),
        (SUBJECT, "Ihre Rechnung für Dezember", "Ihre Rechnung für Dezember"),
        (SSDEEP, SSDEEP_VALUE, SSDEEP_VALUE),  # base64: case kept
        (SSDEEP, "03:abc:de", "3:abc:de"),
        ("x509-sha1", CERT_SHA1.upper(), CERT_SHA1_HEX),  # as OpenSSL prints it
        ("x509-sha1", CERT_SHA1_HEX.upper(), CERT_SHA1_HEX),
        ("x509-md5", CERT_MD5.upper(), CERT_MD5),
        ("x509-sha256", CERT_SHA256, CERT_SHA256),
        (MAC, "00-1A-2B-3C-4D-5E", "00:1a:2b:3c:4d:5e"),  # Windows
        (MAC, "001a.2b3c.4d5e", "00:1a:2b:3c:4d:5e"),  # Cisco
        (MAC, "001A2B3C4D5E", "00:1a:2b:3c:4d:5e"),
        (MAC, "0:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5e"),  # macOS arp drops leading zeros
    ],
)
def test_normalise(ioc_type: str, value: str, expected: str) -> None:
    assert normalise(IocType(ioc_type), value) == expected


@pytest.mark.parametrize(
    ("ioc_type", "value", "reason"),
    [
        (AS, "AS4294967296", "above 4294967295"),
        (AS, "AS65536.1", "each part is at most 65535"),
        (AS, "ASN-GOOGLE", "not an autonomous system number"),
        (AS, "AS-1", "not an autonomous system number"),
        (SUBJECT, "Invoice\r\n overdue", "one line"),
        (SUBJECT, "x" * 999, "longer than 998"),
        (SUBJECT, "Invoice\u202eexe.pdf", "unprintable"),
        (SUBJECT, "=?UTF-8?B?SW52b2ljZQ==?=", "RFC 2047 encoded word"),
        (SSDEEP, "5:abc:de", "block size 5 is not 3 times a power of two"),
        (SSDEEP, "3::", "empty"),
        (SSDEEP, f'{SSDEEP_VALUE},"C:\\x.exe"', "file name after a comma"),
        (SSDEEP, "3:ab$c:de", "not an ssdeep hash"),
        (SSDEEP, "3:" + "a" * 65 + ":b", "longer than ssdeep's 64 and 32"),
        ("x509-sha1", CERT_MD5, "40 hex digits, not 32 \\(the length of a MD5 fingerprint\\)"),
        ("x509-sha256", "zz", "hex digits"),
        (MAC, "00:1a:2b:3c:4d", "not a MAC address"),
        (MAC, "00:1a:2b:3c:4d:5e:6f:70", "EUI-64"),
        (MAC, "00-1a:2b-3c-4d-5e", "not a MAC address"),  # mixed separators
    ],
)
def test_normalise_rejects_with_a_reason(ioc_type: str, value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise(IocType(ioc_type), value)


@pytest.mark.parametrize(
    ("ioc_type", "value", "pattern"),
    [
        (AS, "64500", "[autonomous-system:number = 64500]"),  # an integer, not '64500'
        (SUBJECT, "it's C:\\x", r"[email-message:subject = 'it\'s C:\\x']"),
        (SSDEEP, "3:a+/b:c", "[file:hashes.SSDEEP = '3:a+/b:c']"),
        ("x509-md5", CERT_MD5, f"[x509-certificate:hashes.MD5 = '{CERT_MD5}']"),
        ("x509-sha1", CERT_SHA1_HEX, f"[x509-certificate:hashes.'SHA-1' = '{CERT_SHA1_HEX}']"),
        ("x509-sha256", CERT_SHA256, f"[x509-certificate:hashes.'SHA-256' = '{CERT_SHA256}']"),
        (MAC, "00:1a:2b:3c:4d:5e", "[mac-addr:value = '00:1a:2b:3c:4d:5e']"),
    ],
)
def test_patterns_parse_and_are_projected_back(ioc_type: str, value: str, pattern: str) -> None:
    assert pattern_for(IocType(ioc_type), value) == pattern
    assert validate_stix_pattern(pattern) is None
    assert indicator_value(pattern) == (ioc_type, value)


def test_an_as_pattern_is_projected_only_with_an_integer_in_range() -> None:
    assert indicator_value("[autonomous-system:number = 0]") == (AS, "0")
    assert indicator_value("[autonomous-system:number = 4294967295]") == (AS, "4294967295")
    # A quoted number compares a string with an integer property; out of range, leading zeros.
    for pattern in (
        "[autonomous-system:number = '64500']",
        "[autonomous-system:number = 4294967296]",
        "[autonomous-system:number = 064500]",
        "[autonomous-system:name = 'x']",
    ):
        assert indicator_value(pattern) == (None, None), pattern
    with pytest.raises(ValueError, match="not a decimal number"):
        pattern_for(IocType.AUTONOMOUS_SYSTEM, "1 OR [x:y = 1]")


DETECTED = {
    "00:1a:2b:3c:4d:5e": MAC,  # six pairs: never valid IPv6 text
    "00:1A:2B:3C:4D:5E": MAC,
    "2001:db8::1a:2b": "ipv6-addr",
    "00:1a:2b:3c:4d": "ipv6-addr",  # five pairs: an (invalid) IPv6 attempt, as before
    "00-1A-2B-3C-4D-5E": None,  # may be a phone number: typed inputs only
    "001a.2b3c.4d5e": None,
    "dead.beef.cafe": "domain-name",  # .cafe is a TLD: the dotted form is never guessed
    "AS13335": None,  # AS400 is a computer: typed inputs only
    SSDEEP_VALUE: None,  # 12:30:45 has the same shape
    CERT_SHA1_HEX: "sha1",  # a bare hex string stays a file hash: typed inputs only
}


def test_detect() -> None:
    detected = {value: detect_ioc_type(value) for value in DETECTED}
    assert {value: kind.value if kind else None for value, kind in detected.items()} == DETECTED


TYPE_NAMES = {
    "AS": {AS},
    "ASN": {AS},
    "autonomous-system": {AS},
    "email-subject": {SUBJECT},
    "Email Subject": {SUBJECT},
    "Subject": {"unknown indicator type 'Subject'"},  # a ticket's, a certificate's: not said
    "E-mail subjects": {SUBJECT},
    "ssdeep": {SSDEEP},
    "mac-address": {MAC},
    "MAC Address": {MAC},
    "x509-fingerprint-md5": {"x509-md5"},
    "x509-fingerprint-sha1": {"x509-sha1"},
    "x509-fingerprint-sha256": {"x509-sha256"},
    "cert sha1": {"x509-sha1"},
    "TLS certificate SHA-256": {"x509-sha256"},
    "SHA-1 of the server's TLS certificate": {"x509-sha1"},  # a longer label: still a certificate
    # Alone, "x509", "certificate" may head a column of subjects or issuers (`CN=...`); with
    # "fingerprint", the algorithm by the length, as "hash" is.
    "x509": {"unknown indicator type 'x509'"},
    "certificate": {"unknown indicator type 'certificate'"},
    "x509 fingerprint": {"x509-md5", "x509-sha1", "x509-sha256"},
    "SHA1": {"sha1"},
    "SHA256 hash": {"sha256"},
    # Words that name these types alone are not type words inside a longer label.
    "Certificate subject": {"unknown indicator type 'Certificate subject'"},
    "seen as C2 URL": {"url"},
    "CERT advisory URL": {"url"},
}


def test_type_names() -> None:
    named = {}
    for hint in TYPE_NAMES:
        try:
            named[hint] = {kind.value for kind in parse_type_hint(hint)}
        except ValueError as error:
            named[hint] = {str(error)}
    assert named == TYPE_NAMES


def _misp_event(attributes: list[dict[str, object]]) -> str:
    return json.dumps(
        {
            "Event": {
                "uuid": "5be1e65d-8198-497b-bdf5-5ec20a016219",
                "info": "Phishing wave",
                "Tag": [{"name": "tlp:green"}],
                "Attribute": attributes,
                "Object": [
                    {
                        "name": "x509",
                        "Attribute": [
                            {
                                "uuid": "c1",
                                "type": "x509-fingerprint-sha1",
                                "object_relation": "x509-fingerprint-sha1",
                                "value": CERT_SHA1.upper(),
                                "to_ids": True,
                            },
                            {
                                "uuid": "c2",
                                "type": "x509-fingerprint-md5",
                                "object_relation": "x509-fingerprint-md5",
                                "value": CERT_MD5,
                                "to_ids": True,
                            },
                            {
                                "uuid": "c3",
                                "type": "x509-fingerprint-sha256",
                                "object_relation": "x509-fingerprint-sha256",
                                "value": CERT_SHA256,
                                "to_ids": True,
                            },
                        ],
                    }
                ],
            }
        }
    )


EVENT_ATTRIBUTES: list[dict[str, object]] = [
    {"uuid": "a1", "type": "AS", "value": "AS13335", "to_ids": True, "comment": "hosting"},
    {"uuid": "a2", "type": "AS", "value": "64512", "to_ids": True},  # private: warned
    {"uuid": "a3", "type": "email-subject", "value": "Re: Invoice #2026-11 overdue", "to_ids": True},
    {"uuid": "a4", "type": "email-subject", "value": "Call me on +33 6 12 34 56 78", "to_ids": True},
    {"uuid": "a5", "type": "ssdeep", "value": SSDEEP_VALUE, "to_ids": True},
    {"uuid": "a6", "type": "mac-address", "value": "00-1A-2B-3C-4D-5E", "to_ids": True},
    {"uuid": "a7", "type": "mac-address", "value": "ff:ff:ff:ff:ff:ff", "to_ids": True},  # warned
]
NAMED_PIPE: dict[str, object] = {
    "uuid": "a8",
    "type": "named pipe",
    "value": "\\\\.\\pipe\\x",
    "to_ids": True,
}
EXPECTED_PATTERNS = {
    "[autonomous-system:number = 13335]",
    "[autonomous-system:number = 64512]",
    "[email-message:subject = 'Re: Invoice #2026-11 overdue']",
    f"[file:hashes.SSDEEP = '{SSDEEP_VALUE}']",
    f"[x509-certificate:hashes.'SHA-1' = '{CERT_SHA1_HEX}']",
    f"[x509-certificate:hashes.MD5 = '{CERT_MD5}']",
    f"[x509-certificate:hashes.'SHA-256' = '{CERT_SHA256}']",
    "[mac-addr:value = '00:1a:2b:3c:4d:5e']",
    "[mac-addr:value = 'ff:ff:ff:ff:ff:ff']",
}


def test_a_misp_event_converts_to_stix_through_the_cli(cert_fr: Agency, tmp_path: Path) -> None:
    """`cti-exchange convert` of a MISP event with every new attribute type: one indicator
    each, with the pattern STIX 2.1 defines, and the bundle passes the OASIS validator."""
    event = tmp_path / "event.json"
    event.write_text(_misp_event(EVENT_ATTRIBUTES))
    out = tmp_path / "bundle.json"
    result = cert_fr.run("convert", str(event), "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["accepted_by_type"] == {
        AS: 2,
        SUBJECT: 1,
        SSDEEP: 1,
        "x509-md5": 1,
        "x509-sha1": 1,
        "x509-sha256": 1,
        MAC: 2,
    }
    bundle = json.loads(out.read_text())
    oasis_validate(bundle)
    indicators = [o for o in bundle["objects"] if o["type"] == "indicator"]
    assert {o["pattern"] for o in indicators} == EXPECTED_PATTERNS
    hosting = next(o for o in indicators if o["pattern"] == "[autonomous-system:number = 13335]")
    assert hosting["description"] == "hosting; MISP event: Phishing wave"
    assert report["rejections"] == []
    codes = {(item.get("code"), item.get("value")) for item in report["warnings"]}
    assert ("private-asn", "64512") in codes
    assert ("reserved-mac", "ff:ff:ff:ff:ff:ff") in codes
    assert ("personal-data", "Call me on +33 6 12 34 56 78") in codes


def test_the_misp_event_through_the_library(ingest_text: IngestText) -> None:
    result = ingest_text(_misp_event([*EVENT_ATTRIBUTES, NAMED_PIPE]), name="event.json")
    assert set(patterns(result)) == EXPECTED_PATTERNS
    (unsupported,) = result.rejections  # a type STIX has no pattern for is still rejected
    assert unsupported.reason == "MISP type 'named pipe' has no STIX indicator mapping"
    strict = ingest_text(_misp_event([*EVENT_ATTRIBUTES, NAMED_PIPE]), name="strict.json", strict=True)
    assert sorted(r.code for r in strict.rejections) == [
        "benign-asn",  # AS13335, Cloudflare: on the warning list of shared networks
        "private-asn",
        "reserved-mac",
        "unsupported-type",
    ]
    kept = ingest_text(_misp_event(EVENT_ATTRIBUTES), name="kept.json", keep_personal_data=True)
    assert "[email-message:subject = 'Call me on +33 6 12 34 56 78']" in patterns(kept)


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("0", "reserved-asn"),
        ("23456", "reserved-asn"),  # AS_TRANS
        ("64512", "private-asn"),
        ("65534", "private-asn"),
        ("65535", "reserved-asn"),
        ("65552", "reserved-asn"),
        ("4200000000", "private-asn"),
        ("4294967295", "reserved-asn"),
        ("64496", None),  # documentation (RFC 5398): accepted silently, as 192.0.2.0/24 is
        ("65551", None),
        ("13335", "benign-asn"),  # Cloudflare: a shared network on the warning list
    ],
)
def test_private_and_reserved_as_numbers_are_likely_false_positives(
    ingest_text: IngestText, number: str, code: str | None
) -> None:
    result = ingest_text(f"value,type,tlp\nAS{number},AS,green\n", name="asn.csv")
    assert patterns(result) == {f"[autonomous-system:number = {number}]"}
    assert [w.code for w in result.warnings] == ([code] if code else [])


def test_a_text_list_with_subject_and_asn_sections(ingest_text: IngestText) -> None:
    listing = "\n".join(
        [
            "# E-mail subjects",
            "Re: Invoice overdue",  # spaces and a colon: the whole line
            '- "Your parcel hxxp is waiting [.]"\tDHL lure',  # quoted; never refanged
            "Write to jane.doe@gmail.com",  # personal data: withheld
            "# ASNs",
            "AS13335",
            "# MAC addresses",
            "00-1A-2B-3C-4D-5E",
            "=== Other",  # ends the section
            "00:1a:2b:3c:4d:5f",  # detected by its shape
            "",
        ]
    )
    result = ingest_text(listing, name="lures.txt")
    assert result.accepted_by_type == {SUBJECT: 2, AS: 1, MAC: 2}
    found = patterns(result)
    assert "[email-message:subject = 'Re: Invoice overdue']" in found
    assert "[email-message:subject = 'Your parcel hxxp is waiting [.]']" in found
    lure = next(o for o in result.objects if "parcel" in o.get("pattern", ""))
    assert lure["description"] == "DHL lure"
    assert [w.code for w in result.warnings if w.code == "personal-data"] == ["personal-data"]
    oasis_validate(bundle_of(result))


def test_a_csv_type_column_keeps_certificates_apart_from_file_hashes(ingest_text: IngestText) -> None:
    result = ingest_text(
        "value,type\n"
        f"{CERT_SHA1_HEX},sha1\n"
        f"{CERT_SHA1},cert sha1\n"
        f"{CERT_MD5},x509 fingerprint\n"  # the algorithm by its length
        f"{CERT_SHA256},TLS certificate fingerprint\n"
        "abcd,x509 fingerprint\n",
        name="typed.csv",
    )
    assert result.accepted_by_type == {"sha1": 1, "x509-sha1": 1, "x509-md5": 1, "x509-sha256": 1}
    assert f"[file:hashes.'SHA-1' = '{CERT_SHA1_HEX}']" in patterns(result)
    assert f"[x509-certificate:hashes.'SHA-1' = '{CERT_SHA1_HEX}']" in patterns(result)
    (rejection,) = result.rejections
    assert "4 hex digits is not an MD5 (32), SHA-1 (40) or SHA-256 (64) fingerprint" in rejection.reason


def test_a_partners_stix_patterns_get_the_same_checks(ingest_text: IngestText) -> None:
    """A partner's `[autonomous-system:number = 64512]` is a private AS number as ours would be;
    a subject naming someone's mailbox is withheld as an e-mail address is."""
    bundle = partner_bundle(
        "[autonomous-system:number = 64512]",
        "[autonomous-system:number = 13335]",
        "[mac-addr:value = 'ff:ff:ff:ff:ff:ff']",
        "[email-message:subject = 'Mail jane.doe@gmail.com now']",
        "[email-message:subject = 'Invoice overdue']",
        "[file:hashes.SSDEEP = '5:abc:de']",
        f"[x509-certificate:hashes.'SHA-1' = '{CERT_SHA1_HEX}']",
    )
    result = ingest_text(bundle, name="partner.json")
    codes = sorted(w.code for w in result.warnings if w.code not in ("attributed", "default-tlp"))
    assert codes == ["benign-asn", "personal-data", "private-asn", "reserved-mac", "suspect-pattern-value"]
    suspect = next(w for w in result.warnings if w.code == "suspect-pattern-value")
    assert "block size 5 is not 3 times a power of two" in suspect.reason
    kept = {o["pattern"] for o in result.objects if o["type"] == "indicator"}
    assert "[email-message:subject = 'Mail jane.doe@gmail.com now']" not in kept
    assert len(kept) == 6
    strict = ingest_text(bundle, name="strict.json", strict=True)
    assert sorted(r.code for r in strict.rejections) == [
        "benign-asn",
        "private-asn",
        "reserved-mac",
        "suspect-pattern-value",  # the ssdeep block size: INGEST.md's promise (walkthrough F10)
    ]


# -- properties ---------------------------------------------------------------------------

_BASE64 = string.ascii_letters + string.digits + "+/"


@settings(max_examples=300)
@given(number=st.integers(min_value=0, max_value=4294967295), prefix=st.sampled_from(["", "AS", "as", "AS "]))
def test_any_as_number_survives_normalise_pattern_and_projection(number: int, prefix: str) -> None:
    value = normalise(IocType.AUTONOMOUS_SYSTEM, f"{prefix}{number}")
    assert value == str(number)
    pattern = pattern_for(IocType.AUTONOMOUS_SYSTEM, value)
    assert validate_stix_pattern(pattern) is None, pattern
    assert comparisons_in(pattern) == [("autonomous-system", "number", "=", str(number))]
    assert indicator_value(pattern) == (AS, value)


@settings(max_examples=300)
@given(text=st.text(min_size=1, max_size=200))
def test_any_subject_survives_normalise_pattern_and_projection(text: str) -> None:
    """Quotes and backslashes included: no subject can break out of its pattern."""
    try:
        value = normalise(IocType.EMAIL_SUBJECT, text)
    except ValueError:
        return
    assert normalise(IocType.EMAIL_SUBJECT, value) == value
    assert "\n" not in value and "\r" not in value
    pattern = pattern_for(IocType.EMAIL_SUBJECT, value)
    assert validate_stix_pattern(pattern) is None, pattern
    assert comparisons_in(pattern) == [("email-message", "subject", "=", value)]
    assert indicator_value(pattern) == (SUBJECT, value)


@settings(max_examples=300)
@given(
    power=st.integers(min_value=0, max_value=30),
    first=st.text(alphabet=_BASE64, min_size=1, max_size=64),
    second=st.text(alphabet=_BASE64, min_size=1, max_size=32),
)
def test_any_ssdeep_survives_normalise_pattern_and_projection(power: int, first: str, second: str) -> None:
    value = normalise(IocType.SSDEEP, f"{3 << power}:{first}:{second}")
    assert value == f"{3 << power}:{first}:{second}"
    pattern = pattern_for(IocType.SSDEEP, value)
    assert validate_stix_pattern(pattern) is None, pattern
    assert indicator_value(pattern) == (SSDEEP, value)


@settings(max_examples=300)
@given(
    kind=st.sampled_from(["x509-md5", "x509-sha1", "x509-sha256"]),
    data=st.data(),
    colons=st.booleans(),
    upper=st.booleans(),
)
def test_any_fingerprint_survives_normalise_pattern_and_projection(
    kind: str, data: st.DataObject, colons: bool, upper: bool
) -> None:
    size = {"x509-md5": 16, "x509-sha1": 20, "x509-sha256": 32}[kind]
    digest = data.draw(st.binary(min_size=size, max_size=size)).hex()
    written = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)) if colons else digest
    value = normalise(IocType(kind), written.upper() if upper else written)
    assert value == digest
    pattern = pattern_for(IocType(kind), value)
    assert validate_stix_pattern(pattern) is None, pattern  # stix2-patterns checks the length
    assert indicator_value(pattern) == (kind, value)
    assert detect_ioc_type(value) is not IocType(kind)  # a bare fingerprint is never guessed


@settings(max_examples=300)
@given(octets=st.binary(min_size=6, max_size=6), style=st.sampled_from(["colon", "dash", "dot", "bare"]))
def test_any_mac_address_survives_normalise_pattern_and_projection(octets: bytes, style: str) -> None:
    pairs = [f"{b:02X}" for b in octets]
    digits = "".join(pairs)
    written = {
        "colon": ":".join(pairs),
        "dash": "-".join(pairs),
        "dot": ".".join(digits[i : i + 4] for i in range(0, 12, 4)),
        "bare": digits,
    }[style]
    value = normalise(IocType.MAC_ADDR, written)
    assert value == ":".join(pairs).lower()  # STIX 2.1 section 6.10: lower case, colons
    assert detect_ioc_type(value) is IocType.MAC_ADDR
    pattern = pattern_for(IocType.MAC_ADDR, value)
    assert validate_stix_pattern(pattern) is None, pattern
    assert indicator_value(pattern) == (MAC, value)


def test_an_asn_or_mac_column_next_to_addresses_is_context(ingest_text: IngestText) -> None:
    """Enrichment adds the network of each address (`ip,asn,country`): every row would share
    its hosting provider as an indicator. Like a file name next to a hash, it is context;
    alone, the column is the indicators."""
    enriched = ingest_text("ip,asn,mac,country\n203.0.113.7,AS13335,00-1A-2B-3C-4D-5E,FR\n", name="ips.csv")
    assert enriched.accepted_by_type == {"ipv4-addr": 1}
    (address,) = enriched.objects
    assert address["description"] == "asn: AS13335; mac: 00-1A-2B-3C-4D-5E"
    alone = ingest_text("ASN,comment\nAS13335,hosting\n", name="asns.csv")
    assert patterns(alone) == {"[autonomous-system:number = 13335]"}


# -- found in review (helper-64) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        # Files' hashes, whatever else the label says about TLS or certificates.
        ("SHA-1 hashes of the SSL VPN exploit payloads", {IocType.SHA1}),
        ("SHA256 (payload fetched over TLS)", {IocType.SHA256}),
        ("SHA256 of files downloaded over TLS", {IocType.SHA256}),
        ("MD5 of samples using TLS callbacks", {IocType.MD5}),
        ("SHA-1 of files signed with a stolen certificate", {IocType.SHA1}),
        # A certificate's.
        ("SHA-1 of the server's TLS certificate", {IocType.X509_SHA1}),
        ("TLS certificate SHA-256", {IocType.X509_SHA256}),
        ("cert sha1", {IocType.X509_SHA1}),
        ("certificate thumbprint", {IocType.X509_MD5, IocType.X509_SHA1, IocType.X509_SHA256}),
    ],
)
def test_a_hash_label_is_a_certificate_fingerprint_only_when_it_says_certificate(
    label: str, expected: set[IocType]
) -> None:
    """`ssl` or `tls` alone made file hashes certificate fingerprints: they left the hash
    blocklists and EDR feeds, and Suricata got tls.cert_fingerprint rules for them."""
    assert parse_type_hint(label) == expected


def test_hashes_in_a_section_about_tls_payloads_stay_file_hashes(cert_fr: Agency, tmp_path: Path) -> None:
    listing = tmp_path / "tls.txt"
    listing.write_text(f"# SHA-1 hashes of the SSL VPN exploit payloads\n{CERT_SHA1_HEX}\n")
    table = tmp_path / "tls.csv"
    table.write_text(f"SHA256 (payload fetched over TLS),C2\n{CERT_SHA256},evil.example\n")
    out = tmp_path / "out.json"
    result = cert_fr.run("convert", str(listing), str(table), "-o", str(out), "--tlp", "green")
    assert result.exit_code == 0, result.stderr
    found = {o["pattern"] for o in json.loads(out.read_text())["objects"] if o["type"] == "indicator"}
    assert f"[file:hashes.'SHA-1' = '{CERT_SHA1_HEX}']" in found
    assert f"[file:hashes.'SHA-256' = '{CERT_SHA256}']" in found
    assert not any("x509" in pattern for pattern in found)


def test_a_certificate_column_of_subject_names_is_not_read_as_fingerprints(ingest_text: IngestText) -> None:
    """A `certificate` column (its subject, `CN=...`) became fingerprints: every row rejected,
    exit 1 for a cron push."""
    result = ingest_text("domain,ip,certificate\nevil.example,203.0.113.7,CN=evil.example\n", name="c.csv")
    assert result.accepted_by_type == {"domain-name": 1, "ipv4-addr": 1} and result.rejections == []


def test_context_kind_columns_alone_are_both_the_indicators(ingest_text: IngestText) -> None:
    """`Filename,ASN` made each the other's context: nothing usable (a file name alone was
    read before)."""
    result = ingest_text("Filename,ASN\ninvoice_scan.exe,AS64496\n", name="f.csv")
    assert result.accepted_by_type == {"file-name": 1, AS: 1}


def test_a_partners_subject_matched_with_like_or_a_regex_is_held_to_the_same_rule(
    ingest_text: IngestText,
) -> None:
    """`LIKE '%john.doe@gmail.com%'` and `MATCHES 'john\\.doe@gmail\\.com'` on a subject were
    shared, though `=` on the same text was withheld as personal data; AS numbers in an `IN`
    set escaped the private-AS check."""
    bundle = partner_bundle(
        "[email-message:subject LIKE '%john.doe@gmail.com%']",
        "[email-message:subject MATCHES 'john\\\\.doe@gmail\\\\.com']",
        "[email-message:subject LIKE '%Invoice%']",
        "[autonomous-system:number IN (64512, 13335)]",
    )
    result = ingest_text(bundle, name="partner.json")
    codes = sorted(w.code for w in result.warnings if w.code not in ("attributed", "default-tlp"))
    assert codes == ["benign-asn", "personal-data", "personal-data", "private-asn"]
    kept = {o["pattern"] for o in result.objects if o["type"] == "indicator"}
    assert kept == {
        "[email-message:subject LIKE '%Invoice%']",
        "[autonomous-system:number IN (64512, 13335)]",
    }
    kept_all = ingest_text(bundle, name="kept.json", keep_personal_data=True)
    assert len([o for o in kept_all.objects if o["type"] == "indicator"]) == 4


@pytest.mark.parametrize("character", ["\u061c", "\u180e", "\ufff9", "\U000e0041"])
def test_invisible_characters_are_refused_in_a_subject(character: str) -> None:
    """The Arabic letter mark (a bidi control), the Mongolian vowel separator, interlinear
    annotations and tag characters were accepted inside a subject."""
    with pytest.raises(ValueError, match="unprintable character"):
        normalise(IocType.EMAIL_SUBJECT, f"Invoice{character} overdue")


def test_a_subject_exported_with_a_formula_guard_reads_back_as_it_was(ingest_text: IngestText) -> None:
    """The CSV export writes `'+++ URGENT +++` so that a spreadsheet keeps it text; read back,
    the `'` stayed, and the subject matched no mail."""
    result = ingest_text("value,type\n'+++ URGENT +++,email-subject\n'=cmd,email-subject\n", name="x.csv")
    assert patterns(result) == {
        "[email-message:subject = '+++ URGENT +++']",
        "[email-message:subject = '=cmd']",
    }


def test_an_asn_section_takes_as_numbers_written_with_a_space(ingest_text: IngestText) -> None:
    result = ingest_text("# ASNs\nAS 15169\nAS13335\n", name="asns.txt")
    assert patterns(result) == {"[autonomous-system:number = 15169]", "[autonomous-system:number = 13335]"}
