"""Refanging, type detection and normalisation of single values (the core, no I/O)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti_exchange.stix.ioc_types import IocType, detect_ioc_type
from cti_exchange.stix.normalise import normalise
from cti_exchange.stix.refang import is_defanged, refang
from cti_exchange.stix.type_hints import parse_type_hint, read_type_hint

T = IocType


@pytest.mark.parametrize(
    ("defanged", "plain"),
    [
        ("hxxp://evil[.]example/a", "http://evil.example/a"),
        ("hXXps://333media[.]co[.]uk/.tmb/inf.inf", "https://333media.co.uk/.tmb/inf.inf"),
        ("hxxps[:]//t[.]me/x", "https://t.me/x"),
        ("fxp://files(.)example", "ftp://files.example"),
        ("185.178.209[.]193", "185.178.209.193"),
        ("a{.}b[dot]c(dot)d", "a.b.c.d"),
        ("user[@]mail[.]example", "user@mail.example"),
        ("user[at]mail[.]example", "user@mail.example"),
        ("http[://]x[.]example[/]y", "http://x.example/y"),
        # Not defanging: a Windows path keeps its [username].
        (r"C:\Users\[username]\AppData", r"C:\Users\[username]\AppData"),
        ("plain.example", "plain.example"),
    ],
)
def test_refang(defanged: str, plain: str) -> None:
    assert refang(defanged) == plain


def test_is_defanged() -> None:
    assert is_defanged("evil[.]example")
    assert not is_defanged(r"C:\Users\[username]")


@given(st.text(max_size=200))
def test_refang_never_fails_and_is_idempotent(text: str) -> None:
    once = refang(text)
    assert refang(once) == once or is_defanged(once)


@given(st.from_regex(r"[a-z0-9]{1,12}(\.[a-z0-9]{1,12}){1,3}", fullmatch=True))
def test_refang_undoes_dot_defanging(name: str) -> None:
    assert refang(name.replace(".", "[.]")) == name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.2.3.4", T.IPV4),
        ("999.1.1.1", T.IPV4),  # shape only: normalisation says why it is wrong
        ("10.0.0.0/8", T.IPV4_CIDR),
        ("20.195.166.5:30120", T.IPV4_PORT),
        ("2001:db8::1", T.IPV6),
        ("2001:db8::/32", T.IPV6_CIDR),
        ("[2001:db8::1]:443", T.IPV6_PORT),
        ("2.tcp.eu.ngrok.io:12002", T.DOMAIN_PORT),  # Unit 42 VenomRAT C2 list
        ("b\u00fccher.example:8080", T.DOMAIN_PORT),
        ("report.pdf:12", None),  # not a name: a file extension is no top-level domain
        ("evil.example:http", None),
        ("evil.example", T.DOMAIN),
        ("xn--pple-43d.com", T.DOMAIN),
        ("\u0430pple.com", T.DOMAIN),
        ("http://evil.example/x", T.URL),
        ("evil.example/gate.php", T.URL),
        ("someone@evil.example", T.EMAIL),
        ("d41d8cd98f00b204e9800998ecf8427e", T.MD5),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", T.SHA1),
        ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", T.SHA256),
        ("cf" * 64, T.SHA512),
        ("AcrobatReader.exe", T.FILE_NAME),
        ("Monlam_Grand_Tibetan_Dictionary_2018.zip", T.FILE_NAME),
        (r"%PUBLIC%\Videos\audev.exe", T.FILE_NAME),
        ("update.zip", T.DOMAIN),  # .zip is a real top-level domain
        ("CVE-2021-44228", T.CVE),
        ("rule demo { condition: true }", T.YARA),
        ('alert tcp any any -> any 80 (msg:"x"; sid:1;)', T.SNORT),
        ('alert http any any -> any any (msg:"x"; sid:2;)', T.SURICATA),
        ("title: demo\nlogsource:\n  product: x\ndetection:\n  sel: 1\n", T.SIGMA),
        ("[ipv4-addr:value = '1.2.3.4']", T.STIX_PATTERN),
        ("APPENDIX", None),
        ("12:30", None),
        ("", None),
    ],
)
def test_detect(value: str, expected: IocType | None) -> None:
    assert detect_ioc_type(value) is expected


@pytest.mark.parametrize(
    ("ioc_type", "value", "expected"),
    [
        (T.IPV4, "1.2.3.4", "1.2.3.4"),
        (T.IPV4_CIDR, "10.0.0.0/8", "10.0.0.0/8"),
        (T.IPV4_PORT, "20.195.166.5:30120", "20.195.166.5:30120"),
        (T.IPV6, "2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        (T.IPV6, "1:0:1:1:1:1:1:1", "1:0:1:1:1:1:1:1"),  # RFC 5952 4.2.2: one 0 is not ::
        (T.IPV6, "::ffff:1.2.3.4", "::ffff:1.2.3.4"),  # RFC 5952 5: mixed notation
        (T.IPV6_CIDR, "2001:DB8::/32", "2001:db8::/32"),
        (T.IPV6_PORT, "[2001:DB8::1]:443", "[2001:db8::1]:443"),
        (T.DOMAIN_PORT, "C2.Example.:08080", "c2.example:8080"),
        (T.DOMAIN_PORT, "b\u00fccher.example:443", "xn--bcher-kva.example:443"),
        (T.DOMAIN, "Evil.EXAMPLE.", "evil.example"),
        (T.DOMAIN, "\u0430pple.com", "xn--pple-43d.com"),  # Cyrillic a: stays distinct
        (T.DOMAIN, "fa\u00df.de", "xn--fa-hia.de"),  # IDNA 2008, not 2003's "fass.de"
        (T.URL, "HTTP://Evil.EXAMPLE:80", "http://evil.example/"),
        (T.URL, "evil.example/gate.php?a=B", "http://evil.example/gate.php?a=B"),
        (T.URL, "https://evil.example/\u043f", "https://evil.example/%D0%BF"),
        (T.EMAIL, "John.Doe@Example.COM", "John.Doe@example.com"),
        (T.MD5, "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
        (T.FILE_NAME, r"%PUBLIC%\Videos\audev.exe", "audev.exe"),
        (T.CVE, "cve-2021-44228", "CVE-2021-44228"),
        (T.YARA, "rule a {\r\n condition: true \r\n}\r\n", "rule a {\n condition: true\n}"),
    ],
)
def test_normalise(ioc_type: IocType, value: str, expected: str) -> None:
    assert normalise(ioc_type, value) == expected


@pytest.mark.parametrize(
    ("ioc_type", "value", "reason"),
    [
        (T.IPV4, "1.2.3.256", "above 255"),
        (T.IPV4, "010.1.1.1", "leading zero"),
        (T.IPV4_CIDR, "10.0.0.1/8", "host bits"),
        (T.IPV4_PORT, "95.214.26.97:None", "port"),
        (T.DOMAIN_PORT, "c2.example:0", "port"),
        (T.DOMAIN_PORT, "c2.example:65536", "port"),
        (T.DOMAIN_PORT, "localhost:8080", "fully qualified"),
        (T.IPV6, "fe80::1%eth0", "zone"),
        (T.IPV6, "2001:db8::g", "not a valid IPv6"),
        (T.DOMAIN, "localhost", "fully qualified"),
        (T.DOMAIN, "a..example", "empty label"),
        (T.DOMAIN, "1.2.3.4", "top-level"),
        (T.DOMAIN, "-bad.example", "letters"),
        (T.URL, "http://evil.example/a b", "whitespace"),
        (T.URL, "http:///path", "no host"),
        (T.URL, "http://evil.example\\@good.example/x", "backslash before the path"),
        (T.EMAIL, "not-an-address", "local@domain"),
        (T.MD5, "7768fd2812ceff05db8f969a7bed1de561500000", "SHA-1"),
        (T.SHA256, "273633eee4776aef40904124ed1722a0793e6567", "64 hex digits, not 40"),
        (T.FILE_NAME, r"C:\Windows\TEMP\%RANDOM%\%RANDOM_GUID%.dll", "placeholder"),
        (T.FILE_NAME, "bad\x00name.exe", "unprintable"),
        (T.CVE, "CVE-21-1", "CVE id"),
        (T.YARA, "not a rule", "not a yara rule"),
        (T.STIX_PATTERN, "[ipv4-addr:value = '1.2.3.4'", "invalid STIX pattern"),
    ],
)
def test_normalise_rejects_with_a_reason(ioc_type: IocType, value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise(ioc_type, value)


@given(st.ip_addresses(v=6))
def test_ipv6_canonical_form_matches_rfc5952(address: ipaddress.IPv6Address) -> None:
    canonical = normalise(T.IPV6, address.exploded)
    assert ipaddress.IPv6Address(canonical) == address
    assert canonical == normalise(T.IPV6, canonical)  # idempotent
    assert canonical == canonical.lower() and ":::" not in canonical
    if address.ipv4_mapped is None:
        assert canonical == address.compressed


@given(st.ip_addresses(v=4))
def test_ipv4_round_trip(address: ipaddress.IPv4Address) -> None:
    assert normalise(T.IPV4, str(address)) == str(address)
    assert detect_ioc_type(str(address)) is T.IPV4


@settings(max_examples=200)
@given(st.sampled_from(list(IocType)), st.text(max_size=300))
def test_normalise_only_ever_raises_value_error(ioc_type: IocType, value: str) -> None:
    try:
        result = normalise(ioc_type, value)
    except ValueError:
        return
    assert normalise(ioc_type, result) == result  # a canonical form is a fixed point


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("IPV4:PORT", {T.IPV4_PORT, T.IPV6_PORT}),
        ("hostname:port", {T.DOMAIN_PORT}),
        ("Domain Port", {T.DOMAIN_PORT}),
        ("C2 @ Pastebin URL", {T.URL}),
        ("DOMAIN", {T.DOMAIN}),
        ("Sample", {T.MD5, T.SHA1, T.SHA256, T.SHA512}),
        ("SHA256 hash", {T.SHA256}),
        ("sha-256", {T.SHA256}),
        ("IP Address", {T.IPV4, T.IPV4_CIDR, T.IPV4_PORT, T.IPV6, T.IPV6_CIDR, T.IPV6_PORT}),
        ("ipv4-addr", {T.IPV4}),
    ],
)
def test_parse_type_hint(hint: str, expected: set[IocType]) -> None:
    assert parse_type_hint(hint) == expected


@pytest.mark.parametrize(
    ("hint", "exact"),
    [
        ("URL", True),
        ("url", True),
        ("link", True),
        ("URLs", True),
        ("Web URL", True),
        ("IPV4:PORT", True),
        ("Domain Port", True),
        ("C2 @ Pastebin URL", False),  # Unit 42 VenomRAT: the C2 was found at a Pastebin URL
        ("C2 URL", False),
        ("SHA256 hash", False),
    ],
)
def test_a_type_word_inside_a_longer_label_is_a_weak_hint(hint: str, exact: bool) -> None:
    assert read_type_hint(hint).exact is exact
    assert read_type_hint(hint).types == parse_type_hint(hint)


def test_a_weak_url_hint_gives_way_only_to_values_without_scheme_or_path() -> None:
    weak, exact = read_type_hint("C2 @ Pastebin URL"), read_type_hint("URL")
    for own in (T.DOMAIN_PORT, T.IPV4_PORT, T.IPV6_PORT, T.DOMAIN, T.IPV4, T.IPV6, T.IPV4_CIDR, T.EMAIL):
        assert weak.gives_way_to(own), own
        assert not exact.gives_way_to(own), own  # an exact "URL" keeps today's coercion
    # A URL (host/path included) fits the hint; a hash or an unknown value cannot be made a URL
    # at all: that stays a rejection, not a silent change of type.
    for other in (T.URL, T.SHA256, T.FILE_NAME, T.CVE, None):
        assert not weak.gives_way_to(other), other
    # Only the URL normaliser invents parts; other weak hints are followed as before.
    assert not read_type_hint("SHA256 hash").gives_way_to(T.MD5)
    assert not read_type_hint("C2 domain").gives_way_to(T.IPV4)


def test_unknown_type_hint_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown indicator type"):
        parse_type_hint("named pipe")
