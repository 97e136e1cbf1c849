"""Which stored values may go into an export: partner values pass the checks ours pass at ingest.

Our own indicators are normalised and checked against the guardrails when they are read
(`cti_exchange.stix.normalise`, `cti_exchange.stix.guardrails`); a partner's STIX indicator is
stored as the partner wrote it. Before a value goes into a blocklist or a rule it goes through
the same checks, and is not written (counted and listed in the file's head and in `--json`)
when it is:

- **invalid**: it does not normalise as its type (`a` as an address, `*` or `com.` as a domain,
  a CIDR with host bits set), or it holds a control, invisible or bidirectional-formatting
  character (VT, NUL, U+2028: `str.splitlines()` and many tools split a line there, so one
  stored value would become two entries) or whitespace (a file name, a mutex name, a registry
  key or an e-mail subject may hold inner spaces); never written;
- **overly broad**: a guardrail hit (the default route or any range broader than /16 or /32,
  reserved, private, loopback, link-local or multicast space, internal names such as
  `*.localhost`, well-known benign domains, hashes and system file names, registry keys every
  Windows host has, private and reserved AS numbers and those of big shared networks (the
  warning list: clouds, CDNs, hosting providers, national ISPs), the addresses of well-known
  public DNS resolvers and ranges holding one (the warning list: 8.8.8.8, 1.1.1.1, 9.9.9.9,
  ...), the broadcast and multicast MAC addresses, NAT64 and 6to4 addresses carrying any of
  those IPv4 addresses, registry suffixes (`co.uk`) and infrastructure zones (`in-addr.arpa`)
  as a domain, a `name:port` or a URL's host), a single-label name (a bare top-level domain
  such as `com`, or `localhost`) or a wildcard. Written only with `--allow-broad`.

A URL whose scheme is not in URL_SCHEMES (`hxxp://`, which stix.normalise refuses as
defanged, or a typo) is invalid.

Cheap on purpose: an export of a million values runs these checks on every value. Ordinary
values (printable ASCII in canonical form) take a fast path; normalisers and guardrails are
the ones ingest runs.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

# The reserved ranges and name suffixes the guardrails check (public for this reason): the fast
# paths below must know which values could hit them, to leave exactly those to the guardrails.
from cti_exchange.stix.guardrails import (
    DOCUMENTATION_SUFFIXES,
    INFRASTRUCTURE_TLD,
    INTERNAL_SUFFIXES,
    IPV4_RESERVED,
    REGISTRY_LABELS,
    Guardrails,
)
from cti_exchange.stix.ioc_types import IocType
from cti_exchange.stix.normalise import (
    MAX_DOMAIN_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_FILE_NAME_LENGTH,
    MAX_URL_LENGTH,
    normalise,
)
from cti_exchange.untrusted_text import UNPRINTABLE

# The store's IOC types (store/triage_queries.IOC_TYPES) as the normalisers know them.
_KINDS = {
    "ipv4-addr": IocType.IPV4,
    "ipv6-addr": IocType.IPV6,
    "domain-name": IocType.DOMAIN,
    "ipv4-port": IocType.IPV4_PORT,
    "ipv6-port": IocType.IPV6_PORT,
    "domain-port": IocType.DOMAIN_PORT,
    "url": IocType.URL,
    "email-addr": IocType.EMAIL,
    "file-name": IocType.FILE_NAME,
    "mutex": IocType.MUTEX,
    "windows-registry-key": IocType.WINDOWS_REGISTRY_KEY,
    "autonomous-system": IocType.AUTONOMOUS_SYSTEM,
    "email-subject": IocType.EMAIL_SUBJECT,
    "ssdeep": IocType.SSDEEP,
    "x509-md5": IocType.X509_MD5,
    "x509-sha1": IocType.X509_SHA1,
    "x509-sha256": IocType.X509_SHA256,
    "mac-addr": IocType.MAC_ADDR,
    "md5": IocType.MD5,
    "sha1": IocType.SHA1,
    "sha256": IocType.SHA256,
    "sha512": IocType.SHA512,
    "cve": IocType.CVE,
}
_RANGES = {IocType.IPV4: IocType.IPV4_CIDR, IocType.IPV6: IocType.IPV6_CIDR}
# Names that may hold inner spaces (`legal paper.doc`, `...\services\Bonjoiur Host Controller`,
# `Re: Invoice overdue`).
_NAMES_WITH_SPACES = frozenset({"file-name", "mutex", "windows-registry-key", "email-subject"})
_SPACE = re.compile(r"\s")
# URL schemes written (RFC 3986 section 3.1, and the IANA registry's schemes that threat
# reports give as indicators: C2 channels, payload stores, exploit callbacks such as
# `ldap://` for Log4Shell). Any other scheme in a partner's value is a typo or a defanged
# spelling our ingest would have refanged (`hxxp`, which stix.normalise refuses), never a
# URL any tool matches.
URL_SCHEMES = frozenset(
    """http https ftp ftps sftp ssh telnet tcp udp tls ssl ws wss ldap ldaps rmi iiop dns smb
    file irc ircs rtsp rtmp smtp smtps imap imaps pop3 pop3s sip sips git svn gopher nntp news
    xmpp mms socks socks4 socks4a socks5 socks5h redis mongodb mysql postgres postgresql vnc rdp
    nfs ipfs ipns s3 dav davs webdav""".split()
)

# Fast paths: each pattern accepts only values its normaliser accepts unchanged (printable
# ASCII, no space, canonical form); anything else takes the slow path, which gives the reason.
_HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
# Certificate fingerprints: no guardrail, no warning list.
_FINGERPRINT_LENGTHS = {"x509-md5": 32, "x509-sha1": 40, "x509-sha256": 64}
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_LABEL_TEXT = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_LABEL = re.compile(_LABEL_TEXT)
_NAME = rf"(?:{_LABEL_TEXT}\.)+[a-z]{{2,63}}"  # as normalise's _PLAIN_DOMAIN
_PLAIN_NAME = re.compile(_NAME)
_PLAIN_URL = re.compile(rf"https?://({_NAME})(?:[/?#][!-~]*)?")
_PLAIN_EMAIL = re.compile(
    rf"(?=.{{1,{MAX_EMAIL_LENGTH}}}\Z)(?=[^@]{{1,64}}@)"  # the address, then its local part
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"  # a dot-atom, within normalise's _EMAIL_LOCAL
    rf"@(?=.{{1,{MAX_DOMAIN_LENGTH}}}\Z)(?:(?!xn--){_LABEL_TEXT}\.)+[a-z]{{2,63}}"
)
_PLAIN_FILE_NAME = re.compile(rf"[!-~]{{1,{MAX_FILE_NAME_LENGTH}}}")
_FILE_NAME_SPECIAL = frozenset("/\\%$<*?")  # separators, placeholders, wildcards: slow path


def _reserved_first_octets() -> str:
    """The first octets of the guardrails' reserved IPv4 ranges, as a regular expression."""
    octets = {n for start, end, _, _ in IPV4_RESERVED for n in range(start >> 24, (end >> 24) + 1)}
    return "|".join(str(n) for n in sorted(octets, reverse=True))


_PLAIN_IPV4 = re.compile(rf"(?!(?:{_reserved_first_octets()})\.){_OCTET}(?:\.{_OCTET}){{3}}")


# A fast path: true (a match, True) for an ordinary value, false (None, False) otherwise.
FastPath = Callable[[str], object]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a value is not written: `code` for scripts, `reason` for people."""

    code: str
    reason: str
    broad: bool  # overly broad (--allow-broad writes it) rather than invalid


class ValueCheck:
    """Decides, value by value, whether a stored value may be exported."""

    def __init__(self, guardrails: Guardrails, *, allow_broad: bool = False) -> None:
        self.guardrails = guardrails
        self.allow_broad = allow_broad
        lists = guardrails.lists
        # A name can only meet a guardrail through a suffix it shares with a listed one: its
        # last label (for one-label suffixes such as "localhost"), or its last two labels.
        suffixes = [
            *DOCUMENTATION_SUFFIXES,
            *INTERNAL_SUFFIXES,
            *lists.domains,
            *lists.platform_domains,
            *lists.exact_domains,
            INFRASTRUCTURE_TLD,
        ]
        self._listed_tlds = frozenset(s for s in suffixes if "." not in s)
        self._listed_tails = frozenset(".".join(s.split(".")[-2:]) for s in suffixes if "." in s)
        # Where the test is one regular expression, the matcher itself: no Python frame.
        benign = "|".join(re.escape(h) for h in sorted(lists.hashes))
        # The listed resolvers' addresses (8.8.8.8, ...) are guardrail hits: left to close_look.
        resolvers_v4 = "|".join(re.escape(a) for a in sorted(lists.resolvers) if ":" not in a)
        resolvers_v6 = frozenset(a for a in lists.resolvers if ":" in a)
        self._fast: dict[str, FastPath] = {
            "ipv4-addr": (
                re.compile(f"(?!(?:{resolvers_v4})\\Z){_PLAIN_IPV4.pattern}").fullmatch
                if resolvers_v4
                else _PLAIN_IPV4.fullmatch
            ),
            "ipv6-addr": _fast_ipv6_but(resolvers_v6) if resolvers_v6 else _fast_ipv6,
            "domain-name": self._fast_domain(),
            "url": self._fast_url(),
            "email-addr": _PLAIN_EMAIL.fullmatch,
            "file-name": self._fast_file_name(),
            **{
                t: re.compile(
                    f"(?!(?:{benign})\\Z)[0-9a-f]{{{n}}}" if benign else f"[0-9a-f]{{{n}}}"
                ).fullmatch
                for t, n in _HASH_LENGTHS.items()
            },
            **{t: re.compile(f"[0-9a-f]{{{n}}}").fullmatch for t, n in _FINGERPRINT_LENGTHS.items()},
        }

    def refusal(self, ioc_type: str, value: str) -> Refusal | None:
        """None when `value` may be written; else why not."""
        if self.fast_path(ioc_type)(value):
            return None
        return self.close_look(ioc_type, value)

    def fast_path(self, ioc_type: str) -> FastPath:
        """A cheap test of values of `ioc_type`: true for an ordinary value (valid, canonical,
        clear of every guardrail); false when `close_look` must decide."""
        return self._fast.get(ioc_type, _no_fast_path)

    def close_look(self, ioc_type: str, value: str) -> Refusal | None:
        """`thorough`, and what --allow-broad lets through."""
        found = self.thorough(ioc_type, value)
        if found is not None and found.broad and self.allow_broad:
            return None
        return found

    def thorough(self, ioc_type: str, value: str) -> Refusal | None:
        """The checks in full, without the fast paths (which must agree with it)."""
        if value.isascii():
            if not value.isprintable():
                bad = UNPRINTABLE.search(value)
                code = ord(bad.group()) if bad else 0
                return Refusal("unprintable", f"holds the control character U+{code:04X}", False)
            if " " in value and (ioc_type not in _NAMES_WITH_SPACES or value != value.strip()):
                where = "begins or ends with" if ioc_type in _NAMES_WITH_SPACES else "holds"
                return Refusal("whitespace", f"{where} a space", False)
        else:
            bad = UNPRINTABLE.search(value)
            if bad is not None:
                return Refusal(
                    "unprintable", f"holds the invisible or control character U+{ord(bad.group()):04X}", False
                )
            if (ioc_type not in _NAMES_WITH_SPACES and _SPACE.search(value)) or value != value.strip():
                return Refusal("whitespace", "holds whitespace", False)
        kind = _KINDS.get(ioc_type)
        if kind is None:
            return Refusal("unknown-type", f"{ioc_type} is not an indicator type", False)
        if "/" in value and kind in _RANGES:
            kind = _RANGES[kind]
        try:
            canonical = normalise(kind, value)
        except ValueError as error:
            broad = _broad_name(kind, value)
            return broad or Refusal("invalid-value", f"not a valid {kind.value}: {error}", False)
        if kind is IocType.URL:
            scheme = canonical.partition("://")[0]
            if scheme not in URL_SCHEMES:
                return Refusal(
                    "unknown-scheme",
                    f"not a valid url: the scheme {scheme!r} is not one any tool matches; "
                    "ask the partner to send the URL with its real scheme (http://, https://, ...)",
                    False,
                )
        # Registry suffixes (`co.uk`) and infrastructure zones (`in-addr.arpa`) are guardrail
        # hits, as a domain, in `name:port` and as a URL's host alike.
        hit = self.guardrails.check(kind, canonical)
        if hit is not None:
            return Refusal(hit.code, hit.message, True)
        if kind is IocType.FILE_NAME and ("*" in canonical or "?" in canonical):
            return Refusal("wildcard", "a wildcard file name matches many files", True)
        return None

    def canonical(self, ioc_type: str, value: str) -> str:
        """The value as ingest writes ours (`stix.normalise`: lower-case IDNA A-label host,
        default port dropped, compressed IPv6...), or unchanged when it does not normalise.
        Only a value that left the fast path can differ: the fast paths take canonical ones.
        File names and vulnerabilities stay as written: a file name's canonical form is its
        last path component, which names another file."""
        kind = _KINDS.get(ioc_type)
        if kind is None or kind in (IocType.FILE_NAME, IocType.CVE):
            return value
        if "/" in value and kind in _RANGES:
            kind = _RANGES[kind]
        try:
            return normalise(kind, value)
        except ValueError:
            return value

    # Fast paths: true only for a value the slow path would pass; false says "look closer".

    def _plain_name(self) -> Callable[[str], bool]:
        """A test of a name that matched _NAME: True when it is a canonical host name that no
        guardrail or registry-suffix rule can catch. Only a name that shares its last label or
        its last two labels with a listed suffix can be caught."""
        tlds, tails = self._listed_tlds, self._listed_tails

        def plain(name: str) -> bool:
            if len(name) > MAX_DOMAIN_LENGTH or "xn--" in name:
                return False
            labels = name.rsplit(".", 2)
            if labels[-1] in tlds:
                return False
            if len(labels) == 2:
                return labels[0] not in REGISTRY_LABELS and name not in tails
            return f"{labels[1]}.{labels[2]}" not in tails

        return plain

    def _fast_domain(self) -> FastPath:
        match, plain = _PLAIN_NAME.fullmatch, self._plain_name()
        return lambda value: match(value) is not None and plain(value)

    def _fast_url(self) -> FastPath:
        match, plain = _PLAIN_URL.fullmatch, self._plain_name()

        def fast(value: str) -> bool:
            found = match(value)
            return found is not None and len(value) <= MAX_URL_LENGTH and plain(found[1])

        return fast

    def _fast_file_name(self) -> FastPath:
        match, benign = _PLAIN_FILE_NAME.fullmatch, self.guardrails.lists.file_names
        return lambda value: (
            match(value) is not None
            and _FILE_NAME_SPECIAL.isdisjoint(value)
            and value not in (".", "..")
            and value.lower() not in benign
        )


def _no_fast_path(value: str) -> object:
    return False


def _fast_ipv6(value: str) -> bool:
    """A global unicast address in RFC 5952 text, as normalise writes it (no range, no
    embedded IPv4, not NAT64 or 6to4): clear of every guardrail (guardrails.Guardrails._ipv6
    decides the same way from the first group)."""
    if "/" in value or "." in value or "%" in value or "[" in value:
        return False
    first = value.partition(":")[0]
    # 100::/64 is reserved; 64:ff9b::/96 (NAT64) and 2002::/16 (6to4) carry an IPv4 address
    # the guardrails check.
    if not first or first in ("100", "64", "2002") or first.startswith("f"):
        return False
    try:
        return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, value)) == value
    except (OSError, ValueError):
        return False


def _fast_ipv6_but(listed: frozenset[str]) -> FastPath:
    """_fast_ipv6, false for the listed addresses too."""
    return lambda value: value not in listed and _fast_ipv6(value)


def _broad_name(kind: IocType, value: str) -> Refusal | None:
    """A domain that fails to normalise because it is broad, not because it is malformed."""
    if kind is not IocType.DOMAIN:
        return None
    name = value.rstrip(".").lower()
    if "*" in name:
        return Refusal("wildcard", "a wildcard name matches every name it covers", True)
    if "." not in name and _LABEL.fullmatch(name):
        return Refusal(
            "single-label",
            "a single label (a top-level domain or a local name such as localhost) matches "
            "every name under it",
            True,
        )
    return None
