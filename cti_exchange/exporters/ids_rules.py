"""What Suricata and Snort rules built from indicators share: escaping, messages, URL parts.

Values come from partners and are untrusted: nothing from them reaches a rule unescaped. In
`content`, every byte outside plain printable ASCII, and every byte the rule grammar gives a
meaning to (`"`, `;`, `\\`, `|`, and `:` for good measure), is written as hex (`|3B|`), which
both engines read the same way. In `msg`, which takes no hex, `\\`, `"` and `;` are
backslash-escaped (Suricata "Meta keywords: msg"; Snort 2.9 manual 3.2) and control
characters dropped.

A URL's path and query go to the engines' normalised URI buffers (Suricata `http.uri`, Snort
`http_uri`), which hold them %-decoded, when written without a `%` escape: as written, they are
that decoded form (`/Ü` is the bytes a client's `/%C3%9C` decodes to). A path or query written
with a `%` escape would never match there, so those rules match the raw URI buffer
(`http.uri.raw`, `http_raw_uri`), which holds the URI as clients send it, with the path and
query in that form: percent-encoded throughout (RFC 3986 section 2.1; RFC 3987 section 3.1 maps
an IRI's non-ASCII characters to %-escaped UTF-8, as browsers do), as `stix.normalise` writes
them (`/Ü?a=ä%20` is `/%C3%9C?a=%C3%A4%20`), never raw UTF-8 bytes beside a `%20`.

A value stored in several spellings (`EVIL.example`, `evil.example.`; `203.0.113.5` and
`203.0.113.5/32`) gives the same rule: it is written once, with the sid of the first spelling
in the export's order (type, then value), and the file's head says how many values were merged
into rules written for another spelling.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from abc import abstractmethod
from typing import TextIO
from urllib.parse import unquote_to_bytes, urlsplit

from cti_exchange.exporters.interface import (
    ExportContext,
    Exporter,
    ExportItem,
    ExportSummary,
    SkippedValue,
)
from cti_exchange.exporters.sids import SID_BASE, SID_SPAN, rule_key, text_digest
from cti_exchange.stix.ioc_types import IocType
from cti_exchange.stix.normalise import normalise
from cti_exchange.stix.tlp import Tlp

_LITERAL = frozenset(range(0x20, 0x7F)) - {ord(c) for c in '";\\|:'}
_MSG_VALUE_LIMIT = 120
CLASSTYPE = "trojan-activity"
# The longest rule line written, its newline included: below Suricata's 8,192-byte line buffer
# (which also holds fgets' NUL) with room to spare for a CR an editor adds or a `rev` raised by
# hand, and far below Snort 2.9's 32,768. Same limit for both engines: one value, one decision.
MAX_RULE_BYTES = 8_000
# A rule is measured before its sid and rev are given out (a rule not written takes none) with
# a rev of this many digits: a rule's text would have to change 10,000 times to pass it.
_REV_DIGITS = 4
RULE_TOO_LONG = (
    f"its rule would be longer than {MAX_RULE_BYTES:,} bytes: Suricata reads rules in 8,192-byte "
    "lines (Snort 2.9 in 32,768-byte ones) and fails to load it; block the URL at the web proxy "
    "(--format plain --type url)"
)
_SID_DIGITS = len(str(SID_BASE + SID_SPAN - 1))  # every sid has as many (sids.py)
_SID_AND_REV = _SID_DIGITS + len("; rev:") + _REV_DIGITS  # what rule_text leaves out
_HASH_REASON = (
    "file hashes are matched against hash list files (filemd5 / filesha1 / filesha256 "
    "keywords), not written inline in rules: export them with --format plain --type sha256 "
    "and point a file-hash rule at that list"
)
_HOST_REASON = (
    "a host artefact, never seen on the network: give it to the EDR or a host scanner "
    "(--format plain --type mutex / --type windows-registry-key, or --format misp or stix)"
)
_FINGERPRINT_REASON = (
    "Suricata's tls.cert_fingerprint compares SHA-1 fingerprints only, and Snort 2.9 has no "
    "keyword for them: give them to the TLS inspection proxy or a Zeek certificate log "
    "(--format plain --type x509-md5 / --type x509-sha256, or --format misp or stix)"
)
# Why a type gets no rule; the reason is written in the file's head.
SKIP_REASONS = {
    "email-addr": "no rule keyword matches mail addresses reliably across engine versions; "
    "give them to the mail gateway (--format plain --type email-addr)",
    "file-name": "a file name alone matches too broadly as a network signature",
    "cve": "a CVE is not a network pattern: use the vendor rules for it",
    "domain-port": "a rule cannot tie a name to a port (a name-only rule would match every "
    "service on a shared relay such as a tunnelling service): block name:port at the proxy "
    "(--format plain --type domain-port)",
    "mutex": _HOST_REASON,
    "windows-registry-key": _HOST_REASON,
    "autonomous-system": "an autonomous system is the set of prefixes it announces, not an address "
    "a rule header can hold: block its prefixes as a routing registry or a BGP view lists them, "
    "or match flow records by AS number (--format plain --type autonomous-system)",
    "email-subject": "no rule keyword matches a mail's subject across the engine versions these "
    "rules are for: give it to the mail gateway (--format plain --type email-subject)",
    "ssdeep": "a fuzzy hash is compared by similarity (ssdeep -m), never matched exactly: give it "
    "to a host scanner or the sandbox (--format plain --type ssdeep)",
    "x509-md5": _FINGERPRINT_REASON,
    "x509-sha256": _FINGERPRINT_REASON,
    "x509-sha1": "Snort 2.9 has no keyword for a certificate's fingerprint: export them with "
    "--format suricata (tls.cert_fingerprint) or --format plain --type x509-sha1",
    "mac-addr": "a MAC address never crosses a router: a rule on an IP sensor only sees those of "
    "its own segment's routers; give it to the NAC, the DHCP and switch logs (--format plain "
    "--type mac-addr)",
    "md5": _HASH_REASON,
    "sha1": _HASH_REASON,
    "sha256": _HASH_REASON,
    "sha512": _HASH_REASON,
}


def content(text: str) -> str:
    """`text` as the inside of a content:"..." option."""
    out: list[str] = []
    hex_run: list[str] = []
    for byte in text.encode("utf-8"):
        if byte in _LITERAL:
            if hex_run:
                out.append("|" + " ".join(hex_run) + "|")
                hex_run = []
            out.append(chr(byte))
        else:
            hex_run.append(f"{byte:02X}")
    if hex_run:
        out.append("|" + " ".join(hex_run) + "|")
    return "".join(out)


def message(text: str) -> str:
    """`text` as the inside of a msg:"..." option."""
    clean = text if text.isprintable() else "".join(ch for ch in text if ch.isprintable())
    return clean.replace("\\", "\\\\").replace('"', '\\"').replace(";", "\\;")


def describe(item: ExportItem) -> str:
    value = item.value if len(item.value) <= _MSG_VALUE_LIMIT else item.value[:_MSG_VALUE_LIMIT] + "..."
    tlp = Tlp(item.tlp).label if item.tlp else "no TLP"
    return message(f"cti-exchange {item.ioc_type} {value} ({tlp}, from {' '.join(item.partners)})")


def metadata(item: ExportItem) -> str:
    parts = [f"stix_id {item.object_id}", f"tlp {item.tlp or 'none'}"]
    parts += [f"source {partner}" for partner in item.partners if partner.replace("-", "").isalnum()]
    return ", ".join(parts)


def rule_text(header: str, msg: str, meta: str, detection: list[str]) -> tuple[str, str]:
    """A rule line (`msg`, `meta` as `describe` and `metadata` give them) cut where its sid
    and rev go (`before`, sid, `; rev:`, rev, `after`): its length is known before they are
    given out (a rule not written takes none), the parts of an item's rules common to all are
    built once, and `before` and `after` are the text its rev stands for (sids.text_digest)."""
    before = f'{header} (msg:"{msg}"; ' + "".join(f"{option} " for option in detection)
    return before + f"classtype:{CLASSTYPE}; sid:", f"; metadata:{meta};)\n"


def rule_line(before: str, sid: int, rev: int, after: str) -> str:
    return f"{before}{sid}; rev:{rev}{after}"


def utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def address(item: ExportItem) -> str | None:
    """An IP address or CIDR for a rule header; IPv6 in brackets (a one-entry list), which
    both engines accept and which keeps its colons apart from the port field. None unless
    `ipaddress` reads the value as an address or a network without host bits set: a rule
    header is no place for anything else (`a`, `1.2.3.4/8`). In canonical text, a /32 or /128
    as the address alone: every spelling of one network (`203.0.113.5/32`, `2001:0DB8::5`)
    gives the same header, so one rule."""
    value = item.value
    allowed = "0123456789abcdefABCDEF.:/"
    if not value or any(ch not in allowed for ch in value):
        return None
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return None
    single = network.prefixlen == network.max_prefixlen
    text = str(network.network_address) if single else network.compressed
    return f"[{text}]" if network.version == 6 else text


def address_and_port(item: ExportItem) -> tuple[str, str] | None:
    """(address as a rule header writes it, port) of an `ipv4-port` or `ipv6-port` value
    (`1.2.3.4:443`, `[2001:db8::1]:443`: the canonical form keeps IPv6 in brackets, as a rule
    header wants it); None unless the value normalises as its type."""
    kind = IocType.IPV6_PORT if item.ioc_type == "ipv6-port" else IocType.IPV4_PORT
    try:
        host, _, port = normalise(kind, item.value).rpartition(":")
    except ValueError:
        return None
    return host, port


def dns_labels(domain: str) -> str | None:
    """A domain in DNS wire form for a content match (|04|evil|07|example|00|): it matches the
    name and every name under it. None when a label cannot be a DNS label."""
    labels = domain.rstrip(".").split(".")
    if not labels or any(not 0 < len(label.encode("utf-8")) < 64 for label in labels):
        return None
    return "".join(f"|{len(label.encode('utf-8')):02X}|" + content(label) for label in labels) + "|00|"


def on_the_wire(kind: IocType, value: str) -> str:
    """A name or URL with its host as the traffic a rule watches carries it: a partner's value
    is stored as written (`Bücher.Example`, `HTTP://EVIL.EXAMPLE:80/x`), but DNS queries, TLS
    SNI and Host headers hold the IDNA A-label (`xn--bcher-kva.example`), without the default
    port. The value as `stix.normalise` writes it, or unchanged when it does not normalise."""
    try:
        return normalise(kind, value)
    except ValueError:
        return value


def url_parts(url: str) -> tuple[str, str] | None:
    """(host as sent in the Host header, path and query) of an http(s) URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal: the Host header keeps its brackets (RFC 3986)
    host_header = host if port is None else f"{host}:{port}"
    uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host_header, uri


def split_host_header(host_header: str) -> tuple[str, str | None]:
    """(host, port or None) of a Host header value as `url_parts` writes it; an IPv6 host
    keeps its brackets (`[2001:db8::1]`), as libhtp's normalised host does."""
    host, colon, port = host_header.rpartition(":")
    if colon and port.isdigit() and not host.endswith(":") and (":" not in host or host.endswith("]")):
        return host, port
    return host_header, None


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def matched_path(wire_path: str) -> str:
    """The path and query a rule matches, from their form on the wire (percent-encoded, as
    clients send them). When every %-escape stands for a byte of a non-ASCII character (the
    only reason a canonical URL has them: `/%C3%A4?x=1` for `/ä?x=1`), decoded: the engines'
    normalised URI buffer holds it so, and `/|C3 A4|` there matches `/%C3%A4` and `/%c3%a4`
    alike. Otherwise (`%20`, `%2F`: an ASCII character escaped, which decoding would change)
    as sent, for the raw buffer, every non-ASCII character percent-encoded too
    (`/%C3%9C?a=%C3%A4%20`, never raw UTF-8 bytes beside a `%20`)."""
    escapes = _ESCAPE.findall(wire_path)
    if not escapes or any(int(byte, 16) < 0x80 for byte in escapes) or wire_path.count("%") != len(escapes):
        return wire_path
    try:
        return unquote_to_bytes(wire_path).decode("utf-8")
    except UnicodeDecodeError:  # escapes of bytes that are not UTF-8: only the raw buffer
        return wire_path


def raw_uri(uri: str) -> bool:
    """Whether a path and query (percent-encoded, as `url_parts` of a normalised URL gives
    them) must be matched in the raw URI buffer: it holds a %-escape, which the normalised
    buffer decodes, so content written with it never matches there."""
    return "%" in uri


# One rule to write: (header, rule kind, detection options). The kind ("ip", "dns", "tls",
# "http") is part of the rule key, so each rule of a value keeps its own stable sid.
Rule = tuple[str, str, list[str]]


class IdsRuleExporter(Exporter):
    """The rules of one IDS engine. An address rule is the same in Snort and Suricata; each
    engine says how it matches a domain and a URL."""

    extension = "rules"
    keeps_records = True  # the signature ids given out (sids.py)
    # One rule per value, whatever its stored spellings (`C2.EVIL.example`, `c2.evil.example`):
    # the rule's TLP and sources are the strictest and all of theirs (export._merge). Before,
    # the first spelling's rule stood alone, so a partner's TLP:CLEAR spelling could label
    # another partner's TLP:RED value CLEAR in msg and metadata, what SIEM alerts show.
    canonical_values = True

    @abstractmethod
    def domain_rules(self, domain: str) -> list[Rule]:
        """Rules matching the name and every name under it; none if no rule can hold it."""

    @abstractmethod
    def url_rules(self, host: str, uri: str) -> list[Rule]:
        """Rules matching requests for this Host header and path-and-query (in the raw URI
        buffer when `raw_uri(uri)`, in the normalised one otherwise)."""

    def certificate_rules(self, fingerprint: str) -> list[Rule]:
        """Rules matching a server certificate by its SHA-1 fingerprint (lower-case hex pairs
        joined by colons); none where the engine has no keyword for it."""
        return []

    def __init__(self, context: ExportContext) -> None:
        super().__init__(context)
        # What each rule detects (header and detection options, without msg, sid and metadata)
        # as a 128-bit digest: 16 bytes a rule rather than the rule's text.
        self._written: set[bytes] = set()

    def write(self, item: ExportItem, out: TextIO, summary: ExportSummary) -> bool:
        rules = self._rules(item)
        if not rules:
            return False
        msg, meta = describe(item), metadata(item)
        texts = [rule_text(header, msg, meta, detection) for header, _, detection in rules]
        longest = max(utf8_size(before) + _SID_AND_REV + utf8_size(after) for before, after in texts)
        if longest > MAX_RULE_BYTES:
            # None of its rules: a value half detected (Suricata's TLS rule of a domain without
            # its DNS rule) would look covered when it is not.
            detail = f"rule of {longest:,} bytes, {MAX_RULE_BYTES:,} at most"
            summary.set_aside(
                SkippedValue(item.ioc_type, item.value, RULE_TOO_LONG, detail, item.tlp, item.object_id)
            )
            return False
        fresh = []
        for (header, kind, detection), text in zip(rules, texts, strict=True):
            digest = hashlib.blake2b("\0".join((header, *detection)).encode("utf-8"), digest_size=16).digest()
            if digest not in self._written:
                self._written.add(digest)
                fresh.append((kind, text))
        if not fresh:
            # Another spelling of a value already written (`EVIL.example` and `evil.example`):
            # the rule is there with that spelling's sid. The value still counts as written
            # (its TLP too: the file's head must be as strict as what its rules stand for).
            summary.merged += 1
        for kind, (before, after) in fresh:
            assert self.context.sid_and_rev is not None
            key = rule_key(item.ioc_type, item.value, kind)
            sid, rev = self.context.sid_and_rev(key, text_digest(before, after))
            out.write(rule_line(before, sid, rev, after))
            summary.rules += 1
        return True

    def header(self, summary: ExportSummary) -> str:
        head = super().header(summary)
        if summary.merged and head:
            n = summary.merged
            head += (
                f"{self.comment} {n:,} value{'' if n == 1 else 's'} stored in another spelling of a "
                f"value written here (`EVIL.example`, `evil.example.`) share{'s' if n == 1 else ''} "
                "its rules and sids\n"
            )
        return head

    def _rules(self, item: ExportItem) -> list[Rule]:
        if item.ioc_type in ("ipv4-addr", "ipv6-addr"):
            target = address(item)
            return [] if target is None else [(f"alert ip $HOME_NET any <> {target} any", "ip", [])]
        if item.ioc_type in ("ipv4-port", "ipv6-port"):
            # A connection to the service: the port makes it specific, so it is matched in one
            # direction, from our networks to it, over TCP and over UDP (the pattern names no
            # protocol; `ip` rules take no port).
            found = address_and_port(item)
            if found is None:
                return []
            target, port = found
            return [
                (f"alert {proto} $HOME_NET any -> {target} {port}", proto, []) for proto in ("tcp", "udp")
            ]
        if item.ioc_type == "domain-name":
            return self.domain_rules(on_the_wire(IocType.DOMAIN, item.value))
        if item.ioc_type == "url":
            # The host as the Host header carries it; the path and query as `matched_path`
            # gives them, for the buffer url_rules picks with `raw_uri`.
            wire = url_parts(on_the_wire(IocType.URL, item.value))
            if wire is None:
                return []
            return self.url_rules(wire[0], matched_path(wire[1]))
        if item.ioc_type == "x509-sha1":
            try:
                digits = normalise(IocType.X509_SHA1, item.value)
            except ValueError:
                return []
            return self.certificate_rules(":".join(digits[i : i + 2] for i in range(0, 40, 2)))
        return []

    def skip_reason(self, ioc_type: str) -> str:
        return SKIP_REASONS.get(ioc_type, "not an http(s) URL or an address a rule can hold")
