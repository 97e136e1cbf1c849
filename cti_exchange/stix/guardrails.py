"""Guardrails: values that are likely false positives, and values that look like personal data.

False positives. An indicator on a private, loopback, link-local, multicast or unspecified
address, on an internal name, on a very broad network range, on a well-known benign domain,
hash or system file name, on a registry key every Windows host has (an autostart location
itself rather than an entry in it), on a private or reserved autonomous system number (as
for addresses: private ASNs are each network's own), or on the broadcast, all-zero or a
multicast MAC address would raise alerts on every partner's own network; so would an IPv6
address that carries one of those IPv4 addresses (NAT64 `64:ff9b::a00:1`, 6to4
`2002:a00:1::`), a registry suffix (`co.uk`) or an infrastructure zone (`in-addr.arpa`),
whether a domain, the name of a `name:port` or a URL's host. So would the
number of a big shared network (a cloud, a CDN, a hosting provider, a national ISP, on the
warning list): blocking it blocks everyone it hosts or serves; that a threat is hosted
there is context, and its addresses or domains are the indicators. And so would the address
of a well-known public DNS resolver (8.8.8.8, 1.1.1.1, ..., on the warning list), or a range
holding one: malware queries them to test its connectivity, and blocking one breaks DNS for
everyone who uses it; the C2 the malware then reaches is the indicator. These are warnings
(rejections with `--strict`). Documentation values (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24 from RFC 5737, 2001:db8::/32 from RFC 3849, AS64496-AS64511 and
AS65536-AS65551 from RFC 5398, and the names RFC 2606 / RFC 6761 reserve: .test, .example,
.invalid, example.com/.net/.org) are accepted without a warning, so that exercises and
examples can be shared.

Personal data. GDPR (art. 4(1)) and India's DPDP Act 2023 (s. 2(t)) cover any data about an
identifiable person: an individual's e-mail address or phone number. Such values are withheld
unless the analyst keeps them explicitly; role mailboxes (abuse@, postmaster@, ...) are not
personal data. Free-text fields are scrubbed of individuals' e-mail addresses and
international phone numbers.

The lists of benign domains, hashes, file names, AS numbers and resolver addresses are data
(`cti_exchange/data/warninglists/`), loaded by `cti_exchange.readers.warning_list`; the
reserved address ranges and AS numbers are standards and live here.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cti_exchange.stix.ioc_types import HASH_TYPES, IocType


@dataclass(frozen=True)
class GuardrailHit:
    """A likely false positive: `code` names the rule (for tests and JSON), `message` explains."""

    code: str
    message: str
    # Rejected without --strict too: a value that is never an indicator (a publisher's own
    # report, a system file name), where a warning alone would let it reach every partner.
    rejected: bool = False
    # What an analyst sharing it does instead (ingest says it with the rejection); not part of
    # `message`, which exports and STIX warnings show as well.
    advice: str = ""


@dataclass(frozen=True)
class WarningLists:
    """Well-known benign values (the syntax is in data/warninglists/README.md).

    `domains` match themselves and their sub-domains; `reference_domains` (among them) are
    security publishers' and reference sites, whose values are rejected, not only warned
    about; `platform_domains` match too, but a URL with a
    path on them is a real indicator (one user's content); `exact_domains` match only
    themselves (their sub-domains belong to users of a hosting or dynamic DNS service).
    `asns` maps the AS numbers of big shared networks to the network's name; `resolvers` the
    addresses of public DNS resolvers, in canonical text (`stix.normalise`), to the service's."""

    domains: frozenset[str] = frozenset()
    reference_domains: frozenset[str] = frozenset()
    platform_domains: frozenset[str] = frozenset()
    exact_domains: frozenset[str] = frozenset()
    hashes: frozenset[str] = frozenset()
    file_names: frozenset[str] = frozenset()
    # A dict (picklable: parallel reading sends the lists to its workers), never changed.
    asns: Mapping[int, str] = field(default_factory=dict, hash=False)
    resolvers: Mapping[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def parse(
        cls, domains: str = "", hashes: str = "", file_names: str = "", asns: str = "", resolvers: str = ""
    ) -> WarningLists:
        """Build from list texts: one entry a line, `#` comments, `+name` / `=name` prefixes;
        an AS entry is its number in decimal, then the network's name; a resolver entry its
        address, then the service's name."""
        entries = _entries(domains)
        return cls(
            # A reference site is a benign domain too, to those who only ask that (exports).
            domains=frozenset(d.lstrip("!") for d in entries if d[0] not in "+="),
            reference_domains=frozenset(d[1:] for d in entries if d[0] == "!"),
            platform_domains=frozenset(d[1:] for d in entries if d[0] == "+"),
            exact_domains=frozenset(d[1:] for d in entries if d[0] == "="),
            hashes=frozenset(_entries(hashes)),
            file_names=frozenset(_entries(file_names)),
            asns=_as_entries(asns),
            resolvers=_resolver_entries(resolvers),
        )


def _entries(text: str) -> list[str]:
    return [
        line.split("#", 1)[0].strip().lower() for line in text.splitlines() if line.split("#", 1)[0].strip()
    ]


def _as_entries(text: str) -> dict[int, str]:
    """`13335 Cloudflare  # why` lines as {13335: "Cloudflare"}; a malformed line raises
    ValueError (the list ships with the package: a bad edit must fail its tests)."""
    found: dict[int, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(None, 1)
        if not fields:
            continue
        number, name = fields[0], fields[1] if len(fields) > 1 else ""
        if not (number.isascii() and number.isdigit()) or not name.strip() or int(number) in found:
            raise ValueError(f"not an 'AS-number network-name' line, or a repeated number: {line!r}")
        found[int(number)] = name.strip()
    return found


def _resolver_entries(text: str) -> dict[str, str]:
    """`8.8.8.8 Google Public DNS  # why` lines as {"8.8.8.8": "Google Public DNS"}, each
    address in canonical text (IPv6 compressed, lower case: what normalise writes); a malformed
    line raises ValueError, as for AS numbers."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(None, 1)
        if not fields:
            continue
        try:
            address = str(ipaddress.ip_address(fields[0]))
        except ValueError:
            address = ""
        name = fields[1].strip() if len(fields) > 1 else ""
        if not address or not name or address in found:
            raise ValueError(f"not an 'address service-name' line, or a repeated address: {line!r}")
        found[address] = name
    return found


def _reference_hit(site: str) -> GuardrailHit:
    """A value on a security vendor's or publisher's site: the report cited, not an indicator."""
    return GuardrailHit(
        "reference-site",
        f"{site} is a security publisher's or reference site (warning list): a link to a report "
        "is a citation, not an indicator",
        rejected=True,
        advice="cite it in a CSV reference column (an external reference on the indicators), or, "
        "if the site itself serves malware, give the STIX pattern (type stix-pattern: "
        "[url:value = '...'])",
    )


def _v4(cidr: str) -> tuple[int, int]:
    network = ipaddress.IPv4Network(cidr)
    return int(network.network_address), int(network.broadcast_address)


# (range, code, why). Sorted by start for bisection; none overlap.
IPV4_RESERVED = sorted(
    (
        (
            *_v4("0.0.0.0/8"),
            "unspecified-ip",
            "the 'this network' block (RFC 1122 section 3.2.1.3)",
        ),
        (*_v4("10.0.0.0/8"), "private-ip", "private-use space (RFC 1918)"),
        (*_v4("100.64.0.0/10"), "private-ip", "carrier-grade NAT space (RFC 6598)"),
        (*_v4("127.0.0.0/8"), "loopback-ip", "the loopback block (RFC 1122 section 3.2.1.3)"),
        (*_v4("169.254.0.0/16"), "link-local-ip", "link-local space (RFC 3927)"),
        (*_v4("172.16.0.0/12"), "private-ip", "private-use space (RFC 1918)"),
        (*_v4("192.0.0.0/24"), "reserved-ip", "the IETF protocol assignments block (RFC 6890)"),
        (*_v4("192.168.0.0/16"), "private-ip", "private-use space (RFC 1918)"),
        (*_v4("198.18.0.0/15"), "reserved-ip", "the benchmarking block (RFC 2544)"),
        (*_v4("224.0.0.0/4"), "multicast-ip", "multicast space (RFC 5771)"),
        (
            *_v4("240.0.0.0/4"),
            "reserved-ip",
            "reserved space or the broadcast address (RFC 1112, RFC 919)",
        ),
    )
)
_IPV4_STARTS = [entry[0] for entry in IPV4_RESERVED]
_IPV4_DOCUMENTATION = [_v4(c) for c in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]

_IPV6_RESERVED = [
    (ipaddress.IPv6Network(cidr), code, why)
    for cidr, code, why in (
        ("::/128", "unspecified-ip", "the unspecified address (RFC 4291 section 2.5.2)"),
        ("::1/128", "loopback-ip", "the loopback address (RFC 4291 section 2.5.3)"),
        ("fe80::/10", "link-local-ip", "link-local space (RFC 4291 section 2.5.6)"),
        ("fec0::/10", "private-ip", "deprecated site-local space (RFC 3879)"),
        ("fc00::/7", "private-ip", "unique local space (RFC 4193)"),
        ("ff00::/8", "multicast-ip", "multicast space (RFC 4291 section 2.7)"),
        ("100::/64", "reserved-ip", "the discard-only block (RFC 6666)"),
    )
]
_IPV6_DOCUMENTATION = ipaddress.IPv6Network("2001:db8::/32")
_IPV6_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
# Addresses that carry an IPv4 address, which decides what they reach: NAT64's well-known
# prefix (RFC 6052 section 2.1: the IPv4 address in the last 32 bits) and 6to4 (RFC 3056
# section 2: in the 32 bits after 2002::/16). `64:ff9b::a00:1` is 10.0.0.1 to a NAT64 gateway.
_IPV6_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV6_6TO4 = ipaddress.IPv6Network("2002::/16")
# First groups (RFC 5952 text) of the addresses only a closer look can clear.
_IPV6_SLOW_FIRST_GROUPS = frozenset({"100", "64", "2002"})

# Broader than this is almost certainly a mistake or a shared-infrastructure block.
MIN_IPV4_PREFIX = 16
MIN_IPV6_PREFIX = 32

DOCUMENTATION_SUFFIXES = (
    "test",
    "example",
    "invalid",
    "example.com",
    "example.net",
    "example.org",
)
INTERNAL_SUFFIXES = (
    "local",
    "localhost",
    "localdomain",
    "internal",
    "intranet",
    "lan",
    "home.arpa",
    "corp",
)
# Second-level labels registries hand out names under (co.uk, com.au, gov.in, ac.jp, ...): a
# two-label name made of one of these and a country code is a registry suffix, not a site.
REGISTRY_LABELS = frozenset({"ac", "co", "com", "edu", "go", "gob", "gov", "mil", "ne", "net", "or", "org"})
# The infrastructure top-level domain (RFC 3172): `arpa` and the zones under it
# (`in-addr.arpa`, `ip6.arpa`, `e164.arpa`) hold every reverse-DNS or infrastructure name.
INFRASTRUCTURE_TLD = "arpa"

_RUN_KEYS = "Run RunOnce RunOnceEx RunServices RunServicesOnce Policies\\Explorer\\Run".split()
# Keys every Windows host has, in canonical form (stix.normalise), compared in lower case as
# Windows compares them: the roots and the autostart locations attackers add entries under.
SYSTEM_REGISTRY_KEYS = frozenset(
    key.lower()
    for key in (
        *(f"HKEY_LOCAL_MACHINE\\{k}" for k in ("SOFTWARE", "SYSTEM", "HARDWARE", "SAM", "SECURITY")),
        "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet",
        "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services",
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Classes",
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon",
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Image File Execution Options",
        *(f"HKEY_CURRENT_USER\\{k}" for k in ("Software", "Environment", "Software\\Classes")),
        *(
            f"{root}\\Microsoft\\Windows\\CurrentVersion\\{run}"
            for root in (
                "HKEY_LOCAL_MACHINE\\SOFTWARE",
                "HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node",
                "HKEY_CURRENT_USER\\Software",
            )
            for run in _RUN_KEYS
        ),
    )
)

# (first, last, code, why) of the autonomous system numbers no one announces on the Internet
# (IANA's "Special-Purpose AS Numbers" registry); the documentation ranges are left out on
# purpose, as for addresses.
AS_RESERVED = (
    (0, 0, "reserved-asn", "AS 0, reserved (RFC 7607)"),
    (23456, 23456, "reserved-asn", "AS_TRANS, the stand-in for four-octet numbers (RFC 6793)"),
    (64512, 65534, "private-asn", "private-use AS numbers (RFC 6996)"),
    (65535, 65535, "reserved-asn", "the last two-octet AS number, reserved (RFC 7300)"),
    (65552, 131071, "reserved-asn", "reserved AS numbers (IANA)"),
    (4200000000, 4294967294, "private-asn", "private-use AS numbers (RFC 6996)"),
    (4294967295, 4294967295, "reserved-asn", "the last AS number, reserved (RFC 7300)"),
)


class Guardrails:
    """Checks normalised values against the reserved ranges and the warning lists."""

    def __init__(self, lists: WarningLists) -> None:
        self.lists = lists
        # The listed resolvers by number: one dict look-up for an address, a bisection of the
        # sorted numbers for a range (does it hold one?).
        self._v4_resolvers: dict[int, str] = {}
        v6_resolvers: dict[int, str] = {}
        for text in lists.resolvers:
            address = ipaddress.ip_address(text)
            (self._v4_resolvers if address.version == 4 else v6_resolvers)[int(address)] = text
        self._v4_resolver_numbers = sorted(self._v4_resolvers)
        self._v6_resolvers = v6_resolvers
        self._v6_resolver_numbers = sorted(v6_resolvers)

    def check(self, ioc_type: IocType, value: str) -> GuardrailHit | None:
        """The likely-false-positive rule `value` breaks, or None."""
        if ioc_type is IocType.IPV4 or ioc_type is IocType.IPV4_PORT:
            return self._ipv4_range(_ipv4_int(value.partition(":")[0]), None)
        if ioc_type is IocType.DOMAIN:
            return self._domain(value)
        if ioc_type is IocType.DOMAIN_PORT:
            return self._domain(value.rpartition(":")[0])
        if ioc_type is IocType.URL:
            return self._url(value)
        if ioc_type in HASH_TYPES:
            if value in self.lists.hashes:
                return GuardrailHit("benign-hash", "hash of a well-known benign file (warning list)")
            return None
        if ioc_type is IocType.FILE_NAME:
            if value.lower() in self.lists.file_names:
                return GuardrailHit(
                    "benign-file-name",
                    "name of a standard system file: a file-name indicator matches on every host",
                    rejected=True,
                    advice="share the file's hash, or, to share the name anyway, give a STIX "
                    "pattern that makes it specific (type stix-pattern: [file:name = '...' AND "
                    "file:parent_directory_ref.path = '...'])",
                )
            return None
        if ioc_type is IocType.WINDOWS_REGISTRY_KEY:
            if value.lower() in SYSTEM_REGISTRY_KEYS:
                return GuardrailHit(
                    "system-registry-key",
                    "a standard Windows key, on every host: name the malware's own key "
                    "or its entry under this one",
                )
            return None
        if ioc_type is IocType.AUTONOMOUS_SYSTEM:
            number = int(value)
            for first, last, code, why in AS_RESERVED:
                if first <= number <= last:
                    return GuardrailHit(code, f"in {why}, not announced on the Internet")
            network = self.lists.asns.get(number)
            if network is not None:
                return GuardrailHit(
                    "benign-asn",
                    f"AS{number} is {network}, a network shared by countless legitimate sites or "
                    "subscribers (warning list): blocking it blocks them all; share the addresses "
                    "or domains instead",
                )
            return None
        if ioc_type is IocType.MAC_ADDR:
            if value in ("ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"):
                return GuardrailHit("reserved-mac", "the broadcast or all-zero MAC address: not one device")
            if int(value[:2], 16) & 1:
                return GuardrailHit("reserved-mac", "a multicast MAC address: not one device")
            return None
        if ioc_type is IocType.IPV4_CIDR:
            address, _, prefix = value.partition("/")
            return self._ipv4_range(_ipv4_int(address), int(prefix))
        if ioc_type in (IocType.IPV6, IocType.IPV6_PORT, IocType.IPV6_CIDR):
            return self._ipv6(value)
        return None

    def _ipv4_range(self, start: int, prefix: int | None) -> GuardrailHit | None:
        end = start if prefix is None else start + (1 << (32 - prefix)) - 1
        for doc_start, doc_end in _IPV4_DOCUMENTATION:
            if doc_start <= start and end <= doc_end:
                return None
        if prefix is not None and prefix < MIN_IPV4_PREFIX:
            return GuardrailHit("broad-range", f"a /{prefix} range covers {1 << (32 - prefix):,} addresses")
        # The last reserved range starting at or before `end` is the only one that can
        # overlap [start, end]: the ranges are sorted and disjoint.
        index = bisect.bisect_right(_IPV4_STARTS, end) - 1
        if index >= 0 and IPV4_RESERVED[index][1] >= start:
            _, _, code, why = IPV4_RESERVED[index]
            return GuardrailHit(code, _reserved_message(why, prefix is None))
        if prefix is None:
            resolver = self._v4_resolvers.get(start)
            return None if resolver is None else self._resolver_hit(resolver, single_address=True)
        return self._range_resolver(self._v4_resolvers, self._v4_resolver_numbers, start, end)

    def _range_resolver(
        self, by_number: dict[int, str], numbers: list[int], start: int, end: int
    ) -> GuardrailHit | None:
        """A hit when the range [start, end] holds a listed resolver."""
        index = bisect.bisect_left(numbers, start)
        if index < len(numbers) and numbers[index] <= end:
            return self._resolver_hit(by_number[numbers[index]], single_address=start == end)
        return None

    def _resolver_hit(self, address: str, *, single_address: bool) -> GuardrailHit:
        service = self.lists.resolvers[address]
        what = f"{address} is" if single_address else f"the range holds {address},"
        return GuardrailHit(
            "benign-ip",
            f"{what} {service}, a public DNS resolver (warning list): malware queries it to test "
            "its connectivity, and blocking it breaks DNS for everyone who uses it; share the C2 "
            "instead",
        )

    def _ipv6(self, value: str) -> GuardrailHit | None:
        text = value
        if text.startswith("["):
            text = text[1:].partition("]")[0]
        if "/" not in text:
            if text in self.lists.resolvers:
                return self._resolver_hit(text, single_address=True)
            # Canonical (RFC 5952) text: the first group decides for everything but "::..."
            # and 100::, which go the slow way. Most addresses are global unicast.
            first = text.partition(":")[0]
            if first and first not in _IPV6_SLOW_FIRST_GROUPS and not first.startswith("f"):
                return None  # global unicast (2001:db8::/32, documentation, included)
        network = ipaddress.IPv6Network(text, strict=False)
        if network.subnet_of(_IPV6_DOCUMENTATION):
            return None
        if network.subnet_of(_IPV6_MAPPED):
            mapped = network.network_address.ipv4_mapped
            prefix = None if network.prefixlen == 128 else max(network.prefixlen - 96, 0)
            return self._ipv4_range(int(mapped), prefix) if mapped else None
        if network.prefixlen < MIN_IPV6_PREFIX:
            return GuardrailHit("broad-range", f"a /{network.prefixlen} IPv6 range is very broad")
        embedded = _embedded_ipv4(network)
        if embedded is not None:
            return self._ipv4_range(*embedded)
        for reserved, code, why in _IPV6_RESERVED:
            if network.overlaps(reserved):
                return GuardrailHit(code, _reserved_message(why, network.prefixlen == 128))
        start, end = int(network.network_address), int(network.broadcast_address)
        return self._range_resolver(self._v6_resolvers, self._v6_resolver_numbers, start, end)

    def _domain(self, name: str) -> GuardrailHit | None:
        hit, _ = self._domain_hit(name)
        return hit

    def _domain_hit(self, name: str) -> tuple[GuardrailHit | None, bool]:
        """(hit, whether the match is a shared platform) for a domain name."""
        if _has_suffix(name, DOCUMENTATION_SUFFIXES):
            return None, False
        if _has_suffix(name, INTERNAL_SUFFIXES):
            message = "an internal name, not resolvable on the Internet"
            return GuardrailHit("internal-name", message), False
        lists = self.lists
        if name in lists.exact_domains:
            return GuardrailHit("benign-domain", "well-known benign domain (warning list)"), False
        labels = name.split(".")
        if len(labels) <= 2:
            if labels[-1] == INFRASTRUCTURE_TLD:
                message = "an infrastructure zone (RFC 3172): matches every reverse-DNS name under it"
                return GuardrailHit("infrastructure-zone", message), False
            if len(labels) == 2 and labels[0] in REGISTRY_LABELS and len(labels[1]) == 2:
                message = "a registry suffix: matches every name registered under it"
                return GuardrailHit("registry-suffix", message), False
        for start in range(len(labels) - 1):
            suffix = ".".join(labels[start:])
            if suffix in lists.reference_domains:
                return _reference_hit(suffix), False
            platform = suffix in lists.platform_domains
            if platform or suffix in lists.domains:
                message = f"domain of a well-known benign service ({suffix})"
                return GuardrailHit("benign-domain", message), platform
        return None, False

    def _url(self, url: str) -> GuardrailHit | None:
        authority = url.partition("://")[2]
        end = len(authority)
        for separator in "/?#":
            position = authority.find(separator)
            if position != -1:
                end = min(end, position)
        host_port, rest = authority[:end], authority[end:]
        host = host_port.rpartition("@")[2]
        if host.startswith("["):
            return self._ipv6(host.partition("]")[0] + "]")
        host = host.partition(":")[0]
        if host.replace(".", "").isdigit():
            return self._ipv4_range(_ipv4_int(host), None)
        hit, platform = self._domain_hit(host)
        # A path on a shared platform (a paste, a repository) is one user's content: a real
        # indicator. The bare platform would match everyone's traffic.
        if platform and rest not in ("", "/"):
            return None
        return hit


def _embedded_ipv4(network: ipaddress.IPv6Network) -> tuple[int, int | None] | None:
    """(IPv4 address as a number, prefix or None for one address) that a NAT64 or 6to4
    address or range carries; None for any other, or a range too broad to carry one."""
    number, prefix = int(network.network_address), network.prefixlen
    if network.subnet_of(_IPV6_NAT64):
        return number & 0xFFFFFFFF, None if prefix == 128 else prefix - 96
    if network.subnet_of(_IPV6_6TO4) and prefix >= 48:
        # A 6to4 site's /48 (and anything in it) is the one IPv4 address it is derived from.
        return (number >> 80) & 0xFFFFFFFF, None
    return None


def _reserved_message(why: str, single_address: bool) -> str:
    if single_address:
        return f"in {why}, not routable on the Internet"
    return f"the range overlaps {why}, not routable on the Internet"


def _ipv4_int(address: str) -> int:
    a, b, c, d = address.split(".")
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


def _has_suffix(name: str, suffixes: tuple[str, ...]) -> bool:
    return any(name == s or name.endswith("." + s) for s in suffixes)


# Mailboxes of a role, not of a person (RFC 2142 and common practice).
ROLE_MAILBOXES = frozenset(
    """abuse admin administrator billing cert contact csirt help helpdesk hostmaster info
    mailer-daemon marketing noc no-reply noreply nobody office postmaster root sales security
    service soc support sysadmin team webmaster www""".split()
)
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# International numbers ("+33 1 23 45 67 89"); national ones are below, in their own forms.
_PHONE_IN_TEXT = re.compile(r"\+\d[\d ().-]{5,22}\d")
_PHONE_VALUE = re.compile(r"\+?\(?\d[\d ().-]{5,22}\d")

# National identifiers and numbers in free text. Each is found only whole: not inside a word, a
# hash, a dotted address or version, a `key=value`, a path or a longer group of digits, so
# that threat-intelligence values (hashes, IP addresses, ports, timestamps, CVE ids, AS
# numbers, sids, versions) are left alone; the identifiers with a check digit are found only
# when it is right.
_START = r"(?<![\w.,:/\\@#=$%&+-])(?<!\d[ ])"
_END = r"(?![\w@]|[.,:/\\-]\w|[ ]\d)"
# Aadhaar (UIDAI): 12 digits, the first 2-9, plain or in groups of 4; Verhoeff check digit.
_AADHAAR = re.compile(_START + r"[2-9]\d{3}(?P<sep>[ -]?)\d{4}(?P=sep)\d{4}" + _END)
# IBAN (ISO 13616): country, 2 check digits, the account; plain or in groups of 4; mod 97.
_IBAN = re.compile(
    _START + r"[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)" + _END
)
# French NIR: sex, year, month, department (2A/2B for Corsica), commune, order, key (mod 97).
_NIR = re.compile(
    _START
    + r"[12](?P<sep>[ ]?)\d{2}(?P=sep)(?:0[1-9]|1[0-2])(?P=sep)(?:\d{2}|2[AB])(?P=sep)\d{3}"
    + r"(?P=sep)\d{3}(?P=sep)\d{2}"
    + _END
)
# Indian PAN of an individual: 3 letters, P (the holder is a person), a letter, 4 digits, a letter.
_PAN = re.compile(r"(?<![\w-])[A-Z]{3}P[A-Z]\d{4}[A-Z](?![\w-])")
# French national numbers: 0, then 1-9, then 8 digits, in pairs (space, dot or hyphen) or run
# together.
_FRENCH_PHONE = re.compile(_START + r"0[1-9](?:(?P<sep>[ .-])\d{2}(?:(?P=sep)\d{2}){3}|\d{8})" + _END)
# Indian mobiles: 6-9 then 9 digits, as 5 + 5 (space or hyphen), after a trunk 0 or the
# country code 91, or run together (10 digits).
_INDIAN_PHONE = re.compile(_START + r"(?P<prefix>(?:0|91)[ -]?)?[6-9]\d{4}[ -]?\d{5}" + _END)
# A run of digits after one of these words (or `#`, `=`) is a count, a size or an
# identifier of something else, not a person's number; so is one followed by a unit of size.
_NOT_PERSONAL_BEFORE = re.compile(
    r"(?i)(?:\b(?:account|acct|asn?|build|bytes?|case|count|event|gid|length|offset|order"
    r"|pid|ports?|rev|serial|sid|size|ticket|uid)\b|[#=])\W{0,3}$"
)
_NOT_PERSONAL_AFTER = re.compile(r"(?i)^\s?(?:bytes?|octets?|[kmgt]i?b|b|o)\b")
# A number just before or after, in a list (`80, 60000 60001`, `60000 60001, 443`).
_PHONE_WORD = re.compile(
    r"(?i)\b(?:call|cell|contact|mob|mobile|no|number|ph|phone|tel|telephone|whatsapp)\b"
)
_NUMBER_BEFORE = re.compile(r"\d\s?[,;]\s?$")
_NUMBER_AFTER = re.compile(r"^\s?[,;]\s?\d")
# Country code: length of its IBANs (SWIFT's IBAN registry). A candidate of another length,
# or from a country without IBANs (an upper-case hex hash), is not one.
IBAN_LENGTHS: Mapping[str, int] = {
    code: int(length)
    for code, length in (
        item.split(":")
        for item in """AD:24 AE:23 AL:28 AT:20 AZ:28 BA:20 BE:16 BG:22 BH:22 BI:27 BR:29 BY:28
        CH:21 CR:22 CY:28 CZ:24 DE:22 DJ:27 DK:18 DO:28 EE:20 EG:29 ES:24 FI:18 FK:18 FO:18
        FR:27 GB:22 GE:22 GI:23 GL:18 GR:27 GT:28 HR:21 HU:28 IE:22 IL:23 IQ:23 IS:26 IT:27
        JO:30 KW:30 KZ:20 LB:28 LC:32 LI:21 LT:20 LU:20 LV:21 LY:25 MC:27 MD:24 ME:22 MK:19
        MN:20 MR:27 MT:31 MU:30 NI:28 NL:18 NO:15 OM:23 PK:24 PL:28 PS:29 PT:25 QA:29 RO:24
        RS:22 RU:33 SA:24 SC:31 SD:18 SE:24 SI:19 SK:24 SM:27 SO:23 ST:25 SV:28 TL:23 TN:24
        TR:26 UA:29 VA:22 VG:24 XK:20 YE:30""".split()
    )
}
# Verhoeff's dihedral group D5: multiplication and the position permutation.
_VERHOEFF_D = tuple(
    tuple(int(c) for c in row)
    for row in """0123456789 1234067895 2340178956 3401289567 4012395678 5987604321 6598710432
    7659821043 8765932104 9876543210""".split()
)
_VERHOEFF_P = tuple(
    tuple(int(c) for c in row)
    for row in """0123456789 1576283094 5803796142 8916043527 9453126870 4286573901 2793806415
    7046913258""".split()
)


def verhoeff_valid(digits: str) -> bool:
    """Whether the last of `digits` is their Verhoeff check digit (Aadhaar's)."""
    check = 0
    for position, digit in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(digit)]]
    return check == 0


def iban_valid(iban: str) -> bool:
    """Whether `iban` (spaces allowed) has its country's length and ISO 13616 mod 97 == 1."""
    compact = iban.replace(" ", "").upper()
    if not compact.isalnum() or IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    return int("".join(str(int(c, 36)) for c in compact[4:] + compact[:4])) % 97 == 1


def nir_valid(nir: str) -> bool:
    """Whether the last 2 digits of a French NIR (spaces allowed) are its key: 97 - (the
    13 characters mod 97), Corsica's 2A and 2B counted as 19 and 18."""
    compact = nir.replace(" ", "").upper()
    body = compact[:5] + {"2A": "19", "2B": "18"}.get(compact[5:7], compact[5:7]) + compact[7:13]
    if len(compact) != 15 or not body.isdigit() or not compact[13:].isdigit():
        return False
    return 97 - int(body) % 97 == int(compact[13:])


def is_individual_email(address: str) -> bool:
    """True unless the local part is a role mailbox (abuse@, postmaster@, ...)."""
    local = address.rpartition("@")[0].lower().split("+", 1)[0]
    return local not in ROLE_MAILBOXES


def looks_like_phone_number(value: str) -> bool:
    """A value of 7 to 15 digits (E.164) with the punctuation phone numbers are written with."""
    if _PHONE_VALUE.fullmatch(value) is None:
        return False
    digits = sum(ch.isdigit() for ch in value)
    return 7 <= digits <= 15 and (value.startswith("+") or any(c in value for c in " ()-"))


def url_personal_data(url: str) -> str | None:
    """What makes a URL personal data, or None: a password in it (`user:password@host`, an
    account's credentials, the victim's as often as an attacker's), or an individual's e-mail
    address anywhere in it (`https://jdupont@mail.example/`, `?email=ravi.kumar@...`). A URL
    cannot be scrubbed like a description without changing what it matches."""
    rest = url.partition("://")[2]
    authority = rest
    for end in "/?#":
        authority = authority.partition(end)[0]
    userinfo, at, _ = authority.rpartition("@")
    if at and ":" in userinfo:
        return "a URL holding a password (user:password@)"
    if "@" not in url:
        return None
    # A bare user name (`ftp://anonymous@host/`) is not an address; `user@host` read as one is.
    texts = (userinfo, rest[len(authority) :]) if at else (url,)
    if any(is_individual_email(m.group()) for text in texts for m in _EMAIL_IN_TEXT.finditer(text)):
        return "a URL holding an individual's e-mail address"
    return None


def holds_personal_data(text: str) -> bool:
    """Whether `text` holds personal data as `scrub_personal_data` finds it (an individual's
    e-mail address, a phone number, a national identifier or an IBAN): a value that does, an
    e-mail subject, cannot be scrubbed without changing what it matches, and is withheld."""
    return scrub_personal_data(text)[1] > 0


def _before(match: re.Match[str]) -> str:
    """The few words before a match, where what a number is gets said (`port`, `mobile`)."""
    return match.string[max(0, match.start() - 24) : match.start()]


def _number_of_something_else(match: re.Match[str]) -> bool:
    """Whether a run of digits found as a national number is, by the words around it, a
    count, a size, a port or another system's identifier (`AWS account 234567890124`,
    `size 7516192768 bytes`, `ports 60000 60001`)."""
    text = match.string
    before = _before(match)
    return bool(_NOT_PERSONAL_BEFORE.search(before) or _NOT_PERSONAL_AFTER.search(text[match.end() :]))


def _grouped(match: re.Match[str]) -> bool:
    """Whether the number is written in groups (`06 12 34 56 78`), as people write theirs."""
    return any(not ch.isdigit() for ch in match.group())


def _ports(match: re.Match[str]) -> bool:
    """Whether groups of digits are, by the words or numbers around them, a list of ports or
    other numbers (`ports 3805 3806 3807`, `80, 60000 60001`)."""
    text = match.string
    before = _before(match)
    return bool(
        re.search(r"(?i)\bports?\b", before)
        or _NUMBER_BEFORE.search(before)
        or _NUMBER_AFTER.search(text[match.end() :])
    )


def _aadhaar(match: re.Match[str]) -> bool:
    groups = re.findall(r"\d+", match.group())
    if not verhoeff_valid("".join(groups)):
        return False
    if len(groups) == 3 and all(1900 <= int(group) <= 2099 for group in groups):
        return False  # years (`2019 2020 2021`)
    return not _ports(match) if _grouped(match) else not _number_of_something_else(match)


def _nir(match: re.Match[str]) -> bool:
    return nir_valid(match.group()) and (" " in match.group() or not _number_of_something_else(match))


def _french_phone(match: re.Match[str]) -> bool:
    return _grouped(match) or not _number_of_something_else(match)


def _indian_phone(match: re.Match[str]) -> bool:
    """Run together or after a prefix, unless the words around make it something else;
    grouped as 5 + 5, unless it sits among ports or other numbers (`80, 70000 71000`), and when
    both halves could be ports (`60000 10000`) only after a word such as `mobile` or `call`."""
    if match["prefix"] or not _grouped(match):
        return not _number_of_something_else(match)
    halves = re.findall(r"\d{5}", match.group())
    if all(int(half) <= 65535 for half in halves):
        # Two numbers that could be ports or counts (`60000 10000`) are a phone number only
        # when the words before say so (`mobile 62000 60001`).
        before = _before(match)
        return bool(_PHONE_WORD.search(before)) and not _ports(match)
    return not _ports(match)


# What is found in free text after e-mail addresses and international numbers, in this order
# (what is replaced is not looked at again): the pattern, what a match must also satisfy,
# and what replaces it.
_NATIONAL_DATA: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], bool], str], ...] = (
    (_IBAN, lambda match: iban_valid(match.group()), "[IBAN removed]"),
    (_NIR, _nir, "[national id removed]"),
    (_AADHAAR, _aadhaar, "[national id removed]"),
    (_PAN, lambda match: True, "[national id removed]"),
    (_FRENCH_PHONE, _french_phone, "[phone number removed]"),
    (_INDIAN_PHONE, _indian_phone, "[phone number removed]"),
)


_NO_DIGITS = str.maketrans("", "", "0123456789")


def may_hold_a_personal_number(text: str) -> bool:
    """False when `text` cannot hold a number `scrub_personal_data` looks for: each has 8
    digits or more, but a PAN (4). Most descriptions (`row 12`, `seen 2026-11-02`) end here,
    at the cost of one pass in C."""
    digits = len(text) - len(text.translate(_NO_DIGITS))
    return digits >= 8 or (digits >= 4 and _PAN.search(text) is not None)


def scrub_personal_data(text: str) -> tuple[str, int]:
    """`text` with personal data replaced, and how many items were: individuals' e-mail
    addresses, international phone numbers (`+33 6 12 34 56 78`), French and Indian national
    numbers (`06 12 34 56 78`, `0612345678`, `98765 43210`, `09876543210`, `9876543210`),
    Aadhaar numbers and French NIRs with a right check digit, an individual's Indian PAN
    (`ABCPE1234F`) and IBANs with a right check (mod 97)."""
    numbers = may_hold_a_personal_number(text)
    if "@" not in text and not numbers:
        return text, 0
    count = 0

    def redactor(accept: Callable[[re.Match[str]], bool], placeholder: str) -> Callable[[re.Match[str]], str]:
        def redact(match: re.Match[str]) -> str:
            nonlocal count
            if not accept(match):
                return match.group()
            count += 1
            return placeholder

        return redact

    if "@" in text:
        text = _EMAIL_IN_TEXT.sub(
            redactor(lambda match: is_individual_email(match.group()), "[e-mail address removed]"), text
        )
    if "+" in text and numbers:
        # E.164 numbers have at most 15 digits.
        international = redactor(
            lambda m: 8 <= sum(c.isdigit() for c in m.group()) <= 15, "[phone number removed]"
        )
        text = _PHONE_IN_TEXT.sub(international, text)
    if numbers:  # an e-mail address alone (`@`, fewer than 8 digits): no number to look for
        for pattern, accept, placeholder in _NATIONAL_DATA:
            text = pattern.sub(redactor(accept, placeholder), text)
    return text, count
