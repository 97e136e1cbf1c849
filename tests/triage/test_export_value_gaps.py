"""Partner values the export checks let through before a fresh-eyes review: a defanged or
unknown URL scheme (`hxxp://`), infrastructure zones (`in-addr.arpa`), registry suffixes
as a `name:port` or a URL's host (`co.uk:80`, `http://co.uk/x`), and NAT64 / 6to4
addresses carrying a private IPv4 address. The guardrails are shared with ingest, which warns
about the same values (and refuses them with --strict)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.exporters.safety import ValueCheck
from cti_exchange.readers.warning_list import bundled_warning_lists
from cti_exchange.stix.guardrails import Guardrails
from cti_exchange.stix.ioc_types import IocType
from cti_exchange.stix.normalise import normalise
from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put


def _pattern(pattern: str) -> dict[str, Any]:
    obj = indicator("x.example", tlp="green")
    obj["pattern"], obj["name"] = pattern, "n"
    return obj


@pytest.fixture(scope="module")
def check() -> ValueCheck:
    return ValueCheck(Guardrails(bundled_warning_lists()))


@pytest.mark.parametrize("url", ["hxxp://bad.example/x", "hXXps://bad.example/x", "fxp://bad.example/x"])
def test_a_defanged_url_is_invalid_with_the_fix_named(check: ValueCheck, url: str) -> None:
    refusal = check.refusal("url", url)
    assert refusal is not None and not refusal.broad
    assert refusal.code == "invalid-value" and "refang it to" in refusal.reason
    with pytest.raises(ValueError, match="defanged scheme"):
        normalise(IocType.URL, url)


def test_an_unknown_scheme_is_invalid_known_ones_pass(check: ValueCheck) -> None:
    refusal = check.refusal("url", "htp://bad.example/x")
    assert refusal is not None and refusal.code == "unknown-scheme" and not refusal.broad
    for url in (
        "http://bad.example/x",
        "ftp://bad.example/x",
        "ldap://bad.example:1389/a",
        "tcp://bad.example:4444",
    ):
        assert check.refusal("url", url) is None, url


BROAD = [
    ("domain-name", "in-addr.arpa", "infrastructure-zone"),
    ("domain-name", "ip6.arpa", "infrastructure-zone"),
    ("domain-name", "arpa", "single-label"),
    ("domain-port", "co.uk:80", "registry-suffix"),
    ("url", "http://co.uk/x", "registry-suffix"),
    ("url", "http://in-addr.arpa/", "infrastructure-zone"),
    ("domain-name", "co.uk", "registry-suffix"),
    ("ipv6-addr", "64:ff9b::a00:1", "private-ip"),
    ("ipv6-addr", "2002:a00:1::", "private-ip"),
    ("ipv6-addr", "2002:a00:1::/48", "private-ip"),
    ("ipv6-addr", "64:ff9b::7f00:1", "loopback-ip"),
    ("ipv6-port", "[64:ff9b::a00:1]:443", "private-ip"),
]


@pytest.mark.parametrize(("ioc_type", "value", "code"), BROAD)
def test_broad_forms_are_refused_unless_allowed(
    check: ValueCheck, ioc_type: str, value: str, code: str
) -> None:
    assert not check.fast_path(ioc_type)(value)
    refusal = check.refusal(ioc_type, value)
    assert refusal is not None and refusal.broad and refusal.code == code, refusal
    assert ValueCheck(check.guardrails, allow_broad=True).refusal(ioc_type, value) is None


@pytest.mark.parametrize(
    ("ioc_type", "value"),
    [
        ("ipv6-addr", "64:ff9b::cb00:7105"),  # 203.0.113.5, documentation: as the IPv4 address
        ("ipv6-addr", "2002:c633:6401::"),  # 198.51.100.1
        ("ipv6-addr", "2a00:1450::1"),
        ("domain-name", "1.113.0.203.in-addr.arpa"),  # one reverse name: not the zone
        ("domain-name", "evil.co.uk"),
        ("url", "http://evil.co.uk/x"),
    ],
)
def test_specific_values_still_pass(check: ValueCheck, ioc_type: str, value: str) -> None:
    assert check.refusal(ioc_type, value) is None


def test_the_export_lists_them(cert_in: Agency, tmp_path: Path) -> None:
    objects = [
        indicator("hxxp://bad.example/x", "url", tlp="green"),
        indicator("http://co.uk/x", "url", tlp="green"),
        indicator("in-addr.arpa", tlp="green"),
        indicator("64:ff9b::a00:1", "ipv6-addr", tlp="green"),
        _pattern("[network-traffic:dst_ref.value = 'co.uk' AND network-traffic:dst_port = 80]"),
        indicator("ok.example", tlp="green"),
    ]
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *objects])
    assert cert_in.run("triage", "accept", *(o["id"] for o in objects)).exit_code == 0
    for fmt in ("plain", "csv", "misp"):
        out = tmp_path / f"x.{fmt}"
        result = cert_in.run("export", "--format", fmt, "-o", str(out), "--json")
        assert result.exit_code == 0, result.stderr
        listed = {r["value"]: r for r in result.json()["files"][0]["refused_values"]}
        assert set(listed) == {
            "hxxp://bad.example/x",
            "http://co.uk/x",
            "in-addr.arpa",
            "64:ff9b::a00:1",
            "co.uk:80",
        }, listed
        assert listed["hxxp://bad.example/x"]["broad"] is False
        if fmt == "misp":
            attributes = json.loads(out.read_text())["Event"]["Attribute"]
            assert [a["value"] for a in attributes] == ["ok.example"]


def test_ingest_warns_about_them_and_strict_refuses(cert_in: Agency, tmp_path: Path) -> None:
    source = tmp_path / "iocs.csv"
    source.write_text("value,type\nin-addr.arpa,domain\nhttp://co.uk/x,url\n64:ff9b::a00:1,ipv6\nco.uk:80,\n")
    warned = cert_in.run("validate", str(source), "--json")
    assert warned.exit_code == 0, warned.stderr
    report = warned.json()
    assert report["objects"] == 4
    codes = sorted(w["code"] for w in report["warnings"] if w["code"] != "default-tlp")
    assert codes == ["infrastructure-zone", "private-ip", "registry-suffix", "registry-suffix"], codes
    strict = cert_in.run("validate", str(source), "--strict", "--json")
    assert strict.exit_code == 6
    assert strict.json()["rejected"] == 4
