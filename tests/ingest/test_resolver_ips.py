"""The addresses of well-known public DNS resolvers (Google's 8.8.8.8, Cloudflare's 1.1.1.1,
Quad9's 9.9.9.9, ...) are likely false positives: malware queries them to test its
connectivity, so they turn up in sandbox reports and IOC lists, and a partner's sensor that
blocks one breaks DNS for everyone who uses it. Warned about (with the service's name and the
fix: share the C2), refused with `--strict`, for our lists and partners' patterns alike, and
kept out of exports without `--allow-broad`. An address is listed exactly (8.8.8.9 is an
ordinary address); a range holding a listed one is flagged, as a range overlapping reserved
space is. Before, 8.8.8.8 was shared as an `ipv4-addr` indicator without a word.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.exporters.safety import ValueCheck
from cti_exchange.readers.warning_list import bundled_warning_lists
from cti_exchange.stix.guardrails import Guardrails, WarningLists
from cti_exchange.stix.ioc_types import IocType
from cti_exchange.stix.normalise import normalise
from tests.conftest import Agency, CliResult
from tests.triage.conftest import indicator, put

from .conftest import PARTNER_OBJECT_IDS, IngestText, oasis_validate, partner_bundle, patterns

Cli = Callable[..., CliResult]
CODE = "benign-ip"
FIX = "share the C2 instead"
# Public addresses on no list: ordinary indicators, shared without a word.
ORDINARY_V4 = "45.33.2.1"
ORDINARY_V6 = "2a00:1450:4007:80c::200e"

# The resolvers the list must hold (each service's published anycast addresses).
REQUIRED = {
    "8.8.8.8": "Google",
    "8.8.4.4": "Google",
    "2001:4860:4860::8888": "Google",
    "2001:4860:4860::8844": "Google",
    "1.1.1.1": "Cloudflare",
    "1.0.0.1": "Cloudflare",
    "2606:4700:4700::1111": "Cloudflare",
    "2606:4700:4700::1001": "Cloudflare",
    "9.9.9.9": "Quad9",
    "149.112.112.112": "Quad9",
    "2620:fe::fe": "Quad9",
    "2620:fe::9": "Quad9",
    "208.67.222.222": "OpenDNS",
    "208.67.220.220": "OpenDNS",
}


def _guardrails() -> Guardrails:
    return Guardrails(bundled_warning_lists())


def _file(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    return str(path)


def _issues(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if item.get("code") == CODE]


# -- the guardrail ---------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "service"), sorted(REQUIRED.items()))
def test_a_listed_resolver_is_a_likely_false_positive_naming_the_service(address: str, service: str) -> None:
    kind = IocType.IPV6 if ":" in address else IocType.IPV4
    hit = _guardrails().check(kind, address)
    assert hit is not None and hit.code == CODE
    assert hit.message.startswith(f"{address} is ") and service in hit.message
    assert "public DNS resolver" in hit.message and "test its connectivity" in hit.message
    assert "breaks DNS" in hit.message and FIX in hit.message and "\n" not in hit.message


@pytest.mark.parametrize(
    ("ioc_type", "written", "listed"),
    [
        (IocType.IPV4_PORT, "8.8.8.8:53", "8.8.8.8"),
        (IocType.IPV6, "2001:4860:4860:0:0:0:0:8888", "2001:4860:4860::8888"),  # any spelling
        (IocType.IPV6, "2620:FE::FE", "2620:fe::fe"),
        (IocType.IPV6, "::ffff:1.1.1.1", "1.1.1.1"),  # IPv4-mapped
        (IocType.IPV6_PORT, "[2606:4700:4700::1111]:853", "2606:4700:4700::1111"),
        (IocType.URL, "https://1.1.1.1/dns-query", "1.1.1.1"),  # its DNS-over-HTTPS service
        (IocType.URL, "https://[2620:fe::fe]/dns-query", "2620:fe::fe"),
        (IocType.IPV4_CIDR, "8.8.8.8/32", "8.8.8.8"),
    ],
)
def test_a_listed_resolver_is_caught_in_every_form(ioc_type: IocType, written: str, listed: str) -> None:
    hit = _guardrails().check(ioc_type, normalise(ioc_type, written))
    assert hit is not None and hit.code == CODE and hit.message.startswith(f"{listed} is "), hit


@pytest.mark.parametrize(
    ("ioc_type", "value", "held"),
    [
        (IocType.IPV4_CIDR, "8.8.8.0/24", "8.8.8.8"),
        (IocType.IPV4_CIDR, "8.8.4.4/31", "8.8.4.4"),
        (IocType.IPV4_CIDR, "1.1.1.0/24", "1.1.1.1"),
        (IocType.IPV4_CIDR, "149.112.112.0/24", "149.112.112.10"),
        (IocType.IPV6_CIDR, "2606:4700:4700::/48", "2606:4700:4700::1001"),
        (IocType.IPV6_CIDR, "2620:fe::/48", "2620:fe::9"),
    ],
)
def test_a_range_holding_a_listed_resolver_is_flagged(ioc_type: IocType, value: str, held: str) -> None:
    hit = _guardrails().check(ioc_type, value)
    assert hit is not None and hit.code == CODE
    assert hit.message.startswith(f"the range holds {held}, ") and FIX in hit.message


@pytest.mark.parametrize(
    ("ioc_type", "value"),
    [
        (IocType.IPV4, "8.8.8.9"),  # next to a resolver: an ordinary address
        (IocType.IPV4, "9.9.9.8"),
        (IocType.IPV4, "1.1.1.4"),
        (IocType.IPV4, ORDINARY_V4),
        (IocType.IPV4_PORT, "8.8.8.7:53"),
        (IocType.IPV6, "2001:4860:4860::8889"),
        (IocType.IPV6, ORDINARY_V6),
        (IocType.IPV4_CIDR, "8.8.4.0/30"),  # 8.8.4.0-8.8.4.3: next to 8.8.4.4, not holding it
        (IocType.IPV4_CIDR, "8.8.8.12/30"),
        (IocType.IPV6_CIDR, "2620:fe::/127"),
        (IocType.URL, "https://8.8.8.9/"),
        (IocType.DOMAIN, "evil.example.org"),
    ],
)
def test_an_unlisted_address_or_range_is_not_warned_about(ioc_type: IocType, value: str) -> None:
    assert _guardrails().check(ioc_type, value) is None


@pytest.mark.parametrize(
    ("ioc_type", "value"),
    [
        (IocType.DOMAIN, "dns.google"),
        (IocType.URL, "https://dns.google/dns-query"),
        (IocType.URL, "https://cloudflare-dns.com/dns-query"),
        (IocType.DOMAIN, "security.cloudflare-dns.com"),  # the filtering variants are Cloudflare's
        (IocType.DOMAIN, "one.one.one.one"),
        (IocType.URL, "https://dns.quad9.net/dns-query"),
        (IocType.DOMAIN, "doh.opendns.com"),
        (IocType.DOMAIN, "dns.adguard-dns.com"),
        (IocType.URL, "https://dns.nextdns.io/abc123"),
        (IocType.DOMAIN, "doh.cleanbrowsing.org"),
        (IocType.DOMAIN, "dns.alidns.com"),
        (IocType.DOMAIN, "doh.pub"),
    ],
)
def test_a_resolvers_dns_over_https_name_is_a_likely_false_positive(ioc_type: IocType, value: str) -> None:
    """Malware resolves its C2 through DNS over HTTPS or TLS to get past the local resolver, so
    these names turn up beside the addresses; the C2 is the indicator."""
    hit = _guardrails().check(ioc_type, value)
    assert hit is not None and hit.code == "benign-domain", hit


@pytest.mark.parametrize(
    "value",
    [
        "evil.dns.google",
        "dns.google.evil.example",
        "c2.doh.pub",
        "dns-google.com",
        "cleanbrowsing.org.evil.example",
    ],
)
def test_a_name_near_a_resolvers_is_not_warned_about(value: str) -> None:
    """Listed exactly where the parent is not the resolver's (`dns.google` is one host of
    Google's TLD; `doh.pub` is DNSPod's host, not a hosting domain of its users)."""
    assert _guardrails().check(IocType.DOMAIN, value) is None


def test_the_list_is_parsed_from_its_text() -> None:
    lists = WarningLists.parse(
        resolvers="# resolvers\n8.8.8.8 Google Public DNS  # primary\n\n2620:00FE:0::FE  Quad9 # odd spelling\n"
    )
    assert dict(lists.resolvers) == {"8.8.8.8": "Google Public DNS", "2620:fe::fe": "Quad9"}
    hit = Guardrails(lists).check(IocType.IPV6, "2620:fe::fe")
    assert hit is not None and hit.message.startswith("2620:fe::fe is Quad9, ")
    assert Guardrails(WarningLists()).check(IocType.IPV4, "8.8.8.8") is None  # no list, no warning
    # Reserved addresses keep their own codes, listed or not.
    reserved = Guardrails(WarningLists.parse(resolvers="10.0.0.1 Someone\n")).check(IocType.IPV4, "10.0.0.1")
    assert reserved is not None and reserved.code == "private-ip"


@pytest.mark.parametrize(
    "line",
    [
        "8.8.8.8",
        "dns.google Google",
        "8.8.8.8/32 Google",
        "8.8.8.8 Google\n8.8.8.8 Again",
        "008.8.8.8 Google",
    ],
)
def test_a_malformed_list_line_is_an_error(line: str) -> None:
    with pytest.raises(ValueError, match="address service-name"):
        WarningLists.parse(resolvers=line)


def test_the_bundled_list_holds_public_resolver_addresses_in_canonical_form() -> None:
    resolvers = bundled_warning_lists().resolvers
    assert 14 <= len(resolvers) <= 100  # short on purpose, as the other lists
    for address, service in REQUIRED.items():
        assert service in resolvers[address], address
    unlisted = Guardrails(WarningLists())
    for address, service in resolvers.items():
        kind = IocType.IPV6 if ":" in address else IocType.IPV4
        assert service and normalise(kind, address) == address  # compared as ingest writes it
        assert ipaddress.ip_address(address).is_global, address
        assert unlisted.check(kind, address) is None, address  # not reserved, not documentation
    assert ORDINARY_V4 not in resolvers and ORDINARY_V6 not in resolvers


def test_an_export_refuses_a_listed_resolver_unless_broad_values_are_allowed() -> None:
    """A partner's 8.8.8.8 stored in triage is not written into a blocklist, as a benign domain
    is not: `--allow-broad` writes it. The fast path, which skips the guardrails for ordinary
    addresses, leaves listed ones to the full checks."""
    guardrails = _guardrails()
    check = ValueCheck(guardrails)
    for ioc_type, value in [
        ("ipv4-addr", "8.8.8.8"),
        ("ipv4-addr", "208.67.220.220"),
        ("ipv6-addr", "2606:4700:4700::1111"),
        ("ipv4-addr", "1.1.1.0/24"),
        ("ipv4-port", "9.9.9.9:53"),
        ("url", "https://1.1.1.1/dns-query"),
    ]:
        assert not check.fast_path(ioc_type)(value), value
        refusal = check.refusal(ioc_type, value)
        assert refusal is not None and refusal.code == CODE and refusal.broad, value
        assert ValueCheck(guardrails, allow_broad=True).refusal(ioc_type, value) is None
    for ioc_type, value in [("ipv4-addr", "8.8.8.9"), ("ipv4-addr", "18.8.8.8"), ("ipv6-addr", ORDINARY_V6)]:
        assert check.fast_path(ioc_type)(value), value  # ordinary values keep the fast path
        assert check.refusal(ioc_type, value) is None


def test_export_through_the_cli_leaves_a_partners_resolver_out(cert_in: Agency) -> None:
    put(
        cert_in,
        [
            indicator("8.8.8.8", "ipv4-addr"),
            indicator("2001:4860:4860::8844", "ipv6-addr"),
            indicator(ORDINARY_V4, "ipv4-addr"),
        ],
    )
    plain = cert_in.run("export", "--any-status")
    assert plain.exit_code == 0, plain.stderr
    body = [line for line in plain.stdout.splitlines() if not line.startswith("#")]
    assert body == [ORDINARY_V4]
    assert '#   ipv4-addr "8.8.8.8": benign-ip [broad]: 8.8.8.8 is Google Public DNS' in plain.stdout
    assert '#   ipv6-addr "2001:4860:4860::8844": benign-ip [broad]: ' in plain.stdout
    allowed = cert_in.run("export", "--any-status", "--allow-broad")
    assert allowed.exit_code == 0, allowed.stderr
    written = {line for line in allowed.stdout.splitlines() if not line.startswith("#")}
    assert written == {ORDINARY_V4, "8.8.8.8", "2001:4860:4860::8844"}


# -- our own lists, through the CLI -----------------------------------------------------------


def test_validate_warns_about_resolvers_in_a_text_list_and_a_csv(cli: Cli, tmp_path: Path) -> None:
    listing = _file(tmp_path, "iocs.txt", f"# C2\n8.8.8.8\n1[.]1[.]1[.]1\n{ORDINARY_V4}\n2620:fe::fe\n")
    table = _file(
        tmp_path, "iocs.csv", f"value,type,comment\n9.9.9.9:53,ip:port,DNS check\n{ORDINARY_V6},ip,C2\n"
    )
    result = cli("validate", listing, table, home=tmp_path / "none")
    assert result.exit_code == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "public DNS resolver" in line]
    assert len(warned) == 4, result.stderr
    assert any("8.8.8.8 is Google Public DNS" in line and FIX in line for line in warned)
    assert any("1.1.1.1 is Cloudflare DNS" in line for line in warned)  # refanged, then checked
    assert any("2620:fe::fe is Quad9" in line for line in warned)
    assert any("9.9.9.9 is Quad9" in line for line in warned)
    assert not any(ORDINARY_V4 in line or ORDINARY_V6 in line for line in warned)

    report = cli("validate", "--json", listing, table, home=tmp_path / "none").json()
    assert {(w["file"], w["value"]) for w in _issues(report["warnings"])} == {
        (listing, "8.8.8.8"),
        (listing, "1[.]1[.]1[.]1"),  # as written in the file
        (listing, "2620:fe::fe"),
        (table, "9.9.9.9:53"),
    }


def test_strict_refuses_resolvers_and_keeps_the_rest(cli: Cli, tmp_path: Path) -> None:
    listing = _file(tmp_path, "iocs.txt", f"8.8.4.4\n{ORDINARY_V4}\n2001:4860:4860::8888\n")
    result = cli("validate", "--strict", "--json", listing, home=tmp_path / "none")
    assert result.exit_code == 1, result.stderr
    report = result.json()
    assert report["verdict"] == "some rejected"
    refused = _issues(report["rejections"])
    assert {(r["value"], r["line"]) for r in refused} == {("8.8.4.4", 1), ("2001:4860:4860::8888", 3)}
    assert all("Google Public DNS" in r["reason"] for r in refused)
    assert report["accepted_by_type"] == {"ipv4-addr": 1}


def test_convert_of_a_sandbox_report_warns_and_strict_leaves_the_resolver_out(
    cert_fr: Agency, tmp_path: Path
) -> None:
    """A sandbox run lists the resolver the sample queried beside the C2 it then reached."""
    csv = _file(tmp_path, "sandbox.csv", f"value,type,comment\n8.8.8.8,ip,DNS query\n{ORDINARY_V4},ip,C2\n")
    out = tmp_path / "bundle.json"
    result = cert_fr.run("convert", csv, "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    (warning,) = _issues(result.json()["warnings"])
    assert (
        warning["value"] == "8.8.8.8"
        and "Google Public DNS" in warning["reason"]
        and FIX in warning["reason"]
    )
    bundle = json.loads(out.read_text())
    oasis_validate(bundle)
    shared = {o["pattern"] for o in bundle["objects"] if o["type"] == "indicator"}
    assert shared == {"[ipv4-addr:value = '8.8.8.8']", f"[ipv4-addr:value = '{ORDINARY_V4}']"}

    strict_out = tmp_path / "strict.json"
    strict = cert_fr.run("convert", "--strict", csv, "-o", str(strict_out), "--json")
    assert strict.exit_code == 1, strict.stderr
    (rejection,) = strict.json()["rejections"]
    assert rejection["code"] == CODE and rejection["value"] == "8.8.8.8"
    shared = {o["pattern"] for o in json.loads(strict_out.read_text())["objects"] if o["type"] == "indicator"}
    assert shared == {f"[ipv4-addr:value = '{ORDINARY_V4}']"}


# -- partners' patterns --------------------------------------------------------------------------


def test_a_partners_resolver_in_a_pattern_gets_the_same_check(ingest_text: IngestText) -> None:
    """`=`, an `IN` set, `ISSUBSET` a range holding one, a connection's destination and a URL
    are warned about as ours are; `--strict` refuses them and keeps the ordinary ones."""
    ordinary = [
        f"[ipv4-addr:value = '{ORDINARY_V4}']",
        f"[ipv4-addr:value IN ('{ORDINARY_V4}', '8.8.8.9')]",
        "[ipv4-addr:value ISSUBSET '8.8.4.0/30']",
    ]
    listed = [
        "[ipv4-addr:value = '8.8.8.8']",
        f"[ipv4-addr:value IN ('{ORDINARY_V4}', '1.0.0.1')]",
        "[ipv6-addr:value = '2606:4700:4700::1001']",
        "[ipv4-addr:value ISSUBSET '9.9.9.0/24']",
        "[network-traffic:dst_ref.value = '208.67.222.222' AND network-traffic:dst_port = 53]",
        "[url:value = 'https://1.1.1.1/dns-query']",
    ]
    bundle = partner_bundle(*listed, *ordinary)
    result = ingest_text(bundle, name="partner.json")
    warned = sorted(w.reason for w in result.warnings if w.code == CODE)
    assert len(warned) == len(listed), result.warnings
    assert any("compares ipv4-addr:value = '8.8.8.8'" in r and "Google Public DNS" in r for r in warned)
    assert any("IN (... '1.0.0.1' ...)" in r and "Cloudflare" in r for r in warned)
    assert any("the range holds 9.9.9.9, Quad9" in r for r in warned)
    assert any("208.67.222.222 is OpenDNS" in r for r in warned)
    assert len(patterns(result)) == len(listed) + len(ordinary)  # warned, still shared

    strict = ingest_text(bundle, name="strict.json", strict=True)
    assert [r.code for r in strict.rejections] == [CODE] * len(listed)
    assert patterns(strict) == set(ordinary)


def test_validate_of_a_partners_bundle_says_which_service(cli: Cli, tmp_path: Path) -> None:
    bundle = _file(
        tmp_path, "partner.json", partner_bundle(f"[ipv4-addr:value IN ('4.2.2.2', '{ORDINARY_V4}')]")
    )
    report = cli("validate", "--json", bundle, home=tmp_path / "none").json()
    (warning,) = _issues(report["warnings"])
    assert "4.2.2.2 is Lumen (Level 3) DNS" in warning["reason"] and FIX in warning["reason"]
    assert PARTNER_OBJECT_IDS.format(0) in warning["where"]
    strict = cli("validate", "--strict", "--json", bundle, home=tmp_path / "none")
    assert strict.exit_code != 0
    assert [r["code"] for r in strict.json()["rejections"]] == [CODE]
