"""The AS numbers of big shared networks (clouds, CDNs, hosting providers, national ISPs) are
likely false positives, as well-known benign domains are: an analyst who shares Cloudflare's
AS13335 or OVH's AS16276 as an indicator meant "hosted at", and a partner's sensor that blocks
it blocks millions of legitimate sites or a country's subscribers. Warned about (with the
network's name and the fix), refused with `--strict`, for our lists (text, CSV, MISP `AS`)
and partners' patterns (`=` and integer `IN` sets) alike. Before, only private and reserved
numbers were flagged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.exporters.safety import ValueCheck
from cti_exchange.readers.warning_list import bundled_warning_lists
from cti_exchange.stix.guardrails import AS_RESERVED, Guardrails, WarningLists
from cti_exchange.stix.ioc_types import IocType
from tests.conftest import Agency, CliResult

from .conftest import PARTNER_OBJECT_IDS, IngestText, oasis_validate, partner_bundle, patterns

Cli = Callable[..., CliResult]
AS = IocType.AUTONOMOUS_SYSTEM
# A public AS number that is not on the list: an ordinary indicator, shared without a word.
UNLISTED = "202425"
FIX = "share the addresses or domains instead"


def _file(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    return str(path)


def _misp_event(*attributes: tuple[str, str]) -> str:
    return json.dumps(
        {
            "Event": {
                "uuid": "5be1e65d-8198-497b-bdf5-5ec20a016219",
                "info": "Phishing kit hosted on a VPS",
                "Tag": [{"name": "tlp:green"}],
                "Attribute": [
                    {"uuid": f"a{n}", "type": "AS", "value": value, "to_ids": True, "comment": comment}
                    for n, (value, comment) in enumerate(attributes)
                ],
            }
        }
    )


def _issues(items: list[dict[str, Any]], code: str = "benign-asn") -> list[dict[str, Any]]:
    return [item for item in items if item.get("code") == code]


# -- the guardrail ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "network"),
    [
        ("13335", "Cloudflare"),
        ("16509", "Amazon"),
        ("15169", "Google"),
        ("8075", "Microsoft"),
        ("20940", "Akamai"),
        ("54113", "Fastly"),
        ("16276", "OVH"),
        ("24940", "Hetzner"),
        ("14061", "DigitalOcean"),
        ("12876", "Scaleway"),
        ("55836", "Reliance Jio"),
        ("9498", "Bharti Airtel"),
        ("9829", "BSNL"),
        ("3215", "Orange"),
    ],
)
def test_a_listed_as_number_is_a_likely_false_positive_naming_the_network(number: str, network: str) -> None:
    hit = Guardrails(bundled_warning_lists()).check(AS, number)
    assert hit is not None and hit.code == "benign-asn"
    assert f"AS{number} is " in hit.message and network in hit.message and FIX in hit.message
    assert "\n" not in hit.message


@pytest.mark.parametrize("number", [UNLISTED, "64496", "1"])
def test_an_unlisted_or_documentation_as_number_is_not_warned_about(number: str) -> None:
    assert Guardrails(bundled_warning_lists()).check(AS, number) is None


def test_the_list_is_parsed_from_its_text() -> None:
    lists = WarningLists.parse(asns="# clouds\n13335 Cloudflare  # CDN\n\n16509  Amazon AWS # EC2\n")
    assert dict(lists.asns) == {13335: "Cloudflare", 16509: "Amazon AWS"}
    hit = Guardrails(lists).check(AS, "16509")
    assert hit is not None and "AS16509 is Amazon AWS," in hit.message
    assert Guardrails(WarningLists()).check(AS, "13335") is None  # no list, no warning
    # Private and reserved numbers keep their own codes.
    reserved = Guardrails(WarningLists.parse(asns="64512 Someone\n")).check(AS, "64512")
    assert reserved is not None and reserved.code == "private-asn"


@pytest.mark.parametrize(
    "line", ["AS13335 Cloudflare", "13335", "13335 Cloudflare\n13335 Again", "cloudflare"]
)
def test_a_malformed_list_line_is_an_error(line: str) -> None:
    with pytest.raises(ValueError, match="AS-number network-name"):
        WarningLists.parse(asns=line)


def test_the_bundled_list_holds_public_numbers_of_named_networks() -> None:
    asns = bundled_warning_lists().asns
    assert 20 <= len(asns) <= 100  # short on purpose, as the other lists
    for number, network in asns.items():
        assert 1 <= number <= 4294967294 and network
        assert not any(first <= number <= last for first, last, _, _ in AS_RESERVED), number
        assert not (64496 <= number <= 64511 or 65536 <= number <= 65551), number  # RFC 5398
    assert int(UNLISTED) not in asns


def test_an_export_refuses_a_listed_as_number_unless_broad_values_are_allowed() -> None:
    """A partner's listed AS stored in triage is not written into a blocklist, as a benign
    domain is not: `--allow-broad` writes it."""
    guardrails = Guardrails(bundled_warning_lists())
    refusal = ValueCheck(guardrails).refusal("autonomous-system", "16276")
    assert refusal is not None and refusal.code == "benign-asn" and refusal.broad
    assert ValueCheck(guardrails, allow_broad=True).refusal("autonomous-system", "16276") is None
    assert ValueCheck(guardrails).refusal("autonomous-system", UNLISTED) is None


# -- our own lists, through the CLI -----------------------------------------------------------


def test_validate_warns_about_listed_asns_in_a_text_list_and_a_csv(cli: Cli, tmp_path: Path) -> None:
    listing = _file(tmp_path, "asns.txt", f"# ASNs\nAS13335\nAS 16276\nAS{UNLISTED}\n")
    table = _file(tmp_path, "asns.csv", f"value,type,comment\nAS16509,AS,VPS of the kit\n{UNLISTED},ASN,C2\n")
    result = cli("validate", listing, table, home=tmp_path / "none")
    assert result.exit_code == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "benign-asn" in line or "warning list" in line]
    assert len(warned) == 3, result.stderr
    assert any("AS13335 is Cloudflare" in line and FIX in line for line in warned)
    assert any("AS16276 is OVHcloud" in line for line in warned)
    assert any("AS16509 is Amazon" in line for line in warned)
    assert not any(UNLISTED in line for line in warned)

    report = cli("validate", "--json", listing, table, home=tmp_path / "none").json()
    assert {(w["file"], w["value"]) for w in _issues(report["warnings"])} == {
        (listing, "AS13335"),
        (listing, "AS16276"),  # `AS 16276`, as whois writes it: one value
        (table, "AS16509"),
    }
    assert report["accepted_by_type"] == {"autonomous-system": 4}  # 202425 twice: merged


def test_strict_refuses_listed_asns_and_keeps_the_rest(cli: Cli, tmp_path: Path) -> None:
    listing = _file(tmp_path, "asns.txt", f"# ASNs\nAS13335\nAS{UNLISTED}\n")
    table = _file(tmp_path, "asns.csv", "value,type\nAS55836,AS\n")
    result = cli("validate", "--strict", "--json", listing, table, home=tmp_path / "none")
    assert result.exit_code == 1, result.stderr
    report = result.json()
    assert report["verdict"] == "some rejected"
    refused = _issues(report["rejections"])
    assert {(r["value"], r["line"]) for r in refused} == {("AS13335", 2), ("AS55836", 2)}
    assert any("Reliance Jio" in r["reason"] for r in refused)
    assert report["accepted_by_type"] == {"autonomous-system": 1}
    assert report["rejected"] == 2


def test_convert_of_a_misp_as_attribute_warns_and_strict_leaves_it_out(
    cert_fr: Agency, tmp_path: Path
) -> None:
    """A MISP `AS` attribute commented "hosting" is where the kit was hosted: context."""
    event = _file(tmp_path, "event.json", _misp_event(("AS16276", "hosting"), (UNLISTED, "C2 network")))
    out = tmp_path / "bundle.json"
    result = cert_fr.run("convert", event, "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    (warning,) = _issues(report["warnings"])
    assert warning["value"] == "AS16276" and "OVHcloud" in warning["reason"] and FIX in warning["reason"]
    bundle = json.loads(out.read_text())
    oasis_validate(bundle)
    shared = {o["pattern"] for o in bundle["objects"] if o["type"] == "indicator"}
    assert shared == {"[autonomous-system:number = 16276]", f"[autonomous-system:number = {UNLISTED}]"}

    strict_out = tmp_path / "strict.json"
    strict = cert_fr.run("convert", "--strict", event, "-o", str(strict_out), "--json")
    assert strict.exit_code == 1, strict.stderr
    (rejection,) = strict.json()["rejections"]
    assert rejection["code"] == "benign-asn" and rejection["value"] == "AS16276"
    shared = {o["pattern"] for o in json.loads(strict_out.read_text())["objects"] if o["type"] == "indicator"}
    assert shared == {f"[autonomous-system:number = {UNLISTED}]"}


# -- partners' patterns --------------------------------------------------------------------------


def test_a_partners_listed_as_in_a_pattern_gets_the_same_check(ingest_text: IngestText) -> None:
    """`= 13335` and an integer `IN` set holding 16276 are warned about as ours are; a set of
    unlisted numbers is not; `--strict` refuses the two."""
    bundle = partner_bundle(
        "[autonomous-system:number = 13335]",
        f"[autonomous-system:number IN ({UNLISTED}, 16276)]",
        f"[autonomous-system:number IN ({UNLISTED}, 64500)]",
        f"[autonomous-system:number = {UNLISTED}]",
    )
    result = ingest_text(bundle, name="partner.json")
    warned = sorted(w.reason for w in result.warnings if w.code == "benign-asn")
    assert len(warned) == 2, result.warnings
    assert any("compares autonomous-system:number = '13335'" in r and "Cloudflare" in r for r in warned)
    assert any("IN (... '16276' ...)" in r and "OVHcloud" in r for r in warned)
    assert len(patterns(result)) == 4  # warned, still shared

    strict = ingest_text(bundle, name="strict.json", strict=True)
    assert sorted(r.code for r in strict.rejections) == ["benign-asn", "benign-asn"]
    assert patterns(strict) == {
        f"[autonomous-system:number IN ({UNLISTED}, 64500)]",
        f"[autonomous-system:number = {UNLISTED}]",
    }


def test_validate_of_a_partners_bundle_says_which_network(cli: Cli, tmp_path: Path) -> None:
    bundle = _file(tmp_path, "partner.json", partner_bundle("[autonomous-system:number IN (9498, 64512)]"))
    report = cli("validate", "--json", bundle, home=tmp_path / "none").json()
    codes = sorted(w["code"] for w in report["warnings"] if w["code"] in ("benign-asn", "private-asn"))
    assert codes == ["benign-asn", "private-asn"]
    (warning,) = _issues(report["warnings"])
    assert "Bharti Airtel" in warning["reason"] and PARTNER_OBJECT_IDS.format(0) in warning["where"]
    strict = cli("validate", "--strict", "--json", bundle, home=tmp_path / "none")
    assert strict.exit_code != 0
    assert [r["code"] for r in strict.json()["rejections"]] == ["benign-asn"]
