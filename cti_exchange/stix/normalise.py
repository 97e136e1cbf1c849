"""Canonical forms of indicator values, so that equal indicators compare equal.

`normalise(ioc_type, value)` returns the canonical text or raises ValueError whose message is a
reason an analyst can act on ("octet 999 is above 255"). The forms:

- IPv4: dotted quad, no leading zeros (a leading zero is rejected: `010.1.1.1` means 8.1.1.1 to
  inet_aton, RFC 6943 section 3.1.1); CIDR with the host bits clear; `ip:port` with a port 1-65535.
- IPv6: RFC 5952 canonical text (lower case, longest run of zeros compressed, IPv4-mapped
  addresses in dotted form, section 5); zone indexes (`%eth0`) are rejected.
- Domain names: lower case, trailing dot removed, IDNs as punycode (IDNA 2008 with the UTS 46
  mapping, so homographs such as a Cyrillic a, U+0430, stay distinct from the Latin one).
- URLs: scheme and host lower case, host as for domains, default port dropped, empty HTTP path
  becomes "/", non-ASCII in the path percent-encoded as UTF-8 (RFC 3986 sections 6.2.2-6.2.3,
  RFC 3987 section 3.1). A URL without a scheme (`evil.example/gate.php`) gets `http://`; a
  defanged scheme (`hxxp`, `hxxps`, `fxp`, which refang.py undoes in what we read) is refused.
- E-mail addresses: domain part as for domains; the local part keeps its case (RFC 5321 section
  2.4 leaves it case-sensitive).
- Hashes: lower-case hex of the exact length. File names: the last path component.
- Mutex names: as written (Windows compares them case-sensitively), `Global\\` prefix kept.
- Registry keys: the hive in full and upper case (`HKLM\\` -> `HKEY_LOCAL_MACHINE\\`, as STIX
  2.1 section 6.17 requires), the rest as written (STIX asks for the case to be kept), without
  a trailing `\\`; doubled separators (`\\\\`, an escaped copy) become one, a key name being
  never empty. Both are refused when they hold a placeholder (`%RANDOM%`, `<SID>`) or a regular
  expression's character class (`[0-9A-F]{4}`): a literal comparison would never match them.
- Autonomous systems: the number in decimal (`AS64496`, `as64496`, `64496` and the asdot
  `AS0.64496` (RFC 5396) are `64496`), 0 to 4294967295 (RFC 6793).
- E-mail subjects: as written (a mail gateway compares the decoded text), on one line, at
  most 998 characters (RFC 5322 section 2.1.1); an RFC 2047 encoded word (`=?UTF-8?B?...?=`)
  is refused: decode it first.
- ssdeep hashes: `blocksize:hash:hash`, the block size a power-of-two multiple of 3 without
  leading zeros, each hash base64 characters (at most 64 and 32), as written (case matters).
- X.509 certificate fingerprints: lower-case hex of the exact length; colon-separated pairs
  (`AB:CD:...`, as OpenSSL prints them) are accepted.
- MAC addresses: six lower-case octets joined by colons, each of two digits, as STIX 2.1
  section 6.10 requires (`AA-BB-CC-DD-EE-FF`, `aabb.ccdd.eeff`, `aabbccddeeff`,
  `0:1a:...`); EUI-64 (eight octets) is refused, STIX's mac-addr being MAC-48.
- Rules: line endings as LF, trailing blanks removed; the text is otherwise kept.
- CVE ids: upper case `CVE-YYYY-NNNN`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import quote

import idna

from cti_exchange.stix.ioc_types import (
    HASH_LENGTHS,
    HASH_TYPES,
    REGISTRY_HIVE,
    REGISTRY_HIVES,
    X509_LENGTHS,
    IocType,
    detect_rule_type,
)
from cti_exchange.stix.patterns import validate_stix_pattern
from cti_exchange.untrusted_text import UNPRINTABLE

MAX_DOMAIN_LENGTH = 253  # RFC 1035 section 2.3.4, without the trailing dot
MAX_URL_LENGTH = 16 * 1024
MAX_EMAIL_LENGTH = 254  # RFC 5321 section 4.5.3.1.3 path limit, minus the angle brackets
MAX_FILE_NAME_LENGTH = 1024
MAX_MUTEX_LENGTH = 260  # MAX_PATH, the limit of CreateMutex's lpName
MAX_REGISTRY_KEY_LENGTH = 4096  # each key name is at most 255 characters; real paths are short
MAX_EMAIL_SUBJECT_LENGTH = 998  # RFC 5322 section 2.1.1: the limit of a header line
MAX_AS_NUMBER = 4294967295  # four octets (RFC 6793)
MAX_RULE_LENGTH = 128 * 1024

# Characters no indicator value may hold: C0/C1 controls, zero-width and bidirectional
# formatting characters (the "Trojan Source" trick, CVE-2021-42574), the BOM, lone surrogates.
_SPACE_OR_UNPRINTABLE = re.compile(r"\s|" + UNPRINTABLE.pattern)
_UNPRINTABLE_IN_RULE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)

_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")
_LDH_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_PLAIN_DOMAIN = re.compile(r"(?:(?!-)[a-z0-9_-]{1,63}(?<!-)\.)+[a-z]{2,63}")
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)", re.DOTALL)
_HEX = re.compile(r"[0-9A-Fa-f]+")
_CVE = re.compile(r"CVE-(\d{4})-(\d{4,19})", re.IGNORECASE)
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PLACEHOLDER = re.compile(r"%[A-Za-z_][A-Za-z0-9_]*%|\$\{?[A-Za-z_]+\}?|<[A-Za-z_ ]+>")
# In a mutex name or a registry key: environment-variable and angle-bracket placeholders, and a
# regular expression's character class with a repetition (ESET Stantinko's
# `HKLM\\SOFTWARE\\Classes\\[0-9A-F]{4}.CoreClass.2\\`). `$` and `{...}` alone are literal:
# `Global\\$x`, and CLSIDs as key names (`{21EC2020-3AEA-1069-A2DD-08002B30309D}`).
_HOST_PLACEHOLDER = re.compile(r"%[A-Za-z_][A-Za-z0-9_]*%|<[A-Za-z_ ]+>")
_CHARACTER_CLASS = re.compile(r"\[[^\]\\]+\](?:\{\d+(?:,\d*)?\}|[*+])")
_DOUBLED_SEPARATORS = re.compile(r"\\{2,}")
_KEY_ENDS = re.compile(r"^[\s\\]+|[\s\\]+\Z")
_AS_NUMBER = re.compile(r"(?:AS)?\s*([0-9]{1,10})(?:\.([0-9]{1,5}))?", re.IGNORECASE)
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=")
_SSDEEP = re.compile(r"([0-9]{1,10}):([A-Za-z0-9+/]*):([A-Za-z0-9+/]*)")
# ssdeep's block sizes: 3 times a power of two, up to 3 * 2**30 (31 block hashes).
_SSDEEP_BLOCK_SIZES = frozenset(3 << n for n in range(31))
_FINGERPRINT_PAIRS = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+")
_MAC_GROUPS = re.compile(r"[0-9A-Fa-f]{1,2}(?::[0-9A-Fa-f]{1,2}){5}|[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}")
_MAC_DOTTED = re.compile(r"([0-9A-Fa-f]{4})\.([0-9A-Fa-f]{4})\.([0-9A-Fa-f]{4})")
_DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}
# Defanged schemes (refang.py undoes them in what we read): in a stored value, a URL no tool
# would ever see.
_DEFANGED_SCHEMES = {"hxxp": "http", "hxxps": "https", "fxp": "ftp"}
# RFC 3986 reserved and unreserved characters plus "%": left as they are when percent-encoding.
_URL_SAFE = "!#$&'()*+,/:;=?@[]~-._%"


def normalise(ioc_type: IocType, value: str) -> str:
    """The canonical text of `value` as an indicator of `ioc_type`; ValueError says why not."""
    return _NORMALISERS[ioc_type](value.strip())


def check_printable(value: str, what: str = "value") -> None:
    """ValueError if `value` holds control, invisible or bidirectional-override characters."""
    bad = UNPRINTABLE.search(value)
    if bad is not None:
        raise ValueError(f"{what} contains the unprintable character U+{ord(bad.group()):04X}")


def _ipv4_number(value: str) -> int:
    """The address as a 32-bit number; ValueError says what is wrong with the text."""
    match = _IPV4.fullmatch(value)
    if match is None:
        raise ValueError("not an IPv4 address (four numbers 0-255 separated by dots)")
    number = 0
    for octet in match.groups():
        if len(octet) > 1 and octet[0] == "0":
            raise ValueError(f"octet {octet!r} has a leading zero, which some tools read as octal")
        byte = int(octet)
        if byte > 255:
            raise ValueError(f"octet {octet} is above 255")
        number = (number << 8) | byte
    return number


def _ipv4(value: str) -> str:
    _ipv4_number(value)
    return value


def _prefix(text: str, maximum: int) -> int:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0") or int(text) > maximum:
        raise ValueError(f"prefix length /{text} is not between 0 and {maximum}")
    return int(text)


def _ipv4_cidr(value: str) -> str:
    address, _, prefix_text = value.partition("/")
    number = _ipv4_number(address)
    prefix = _prefix(prefix_text, 32)
    host_bits = (1 << (32 - prefix)) - 1
    if number & host_bits:
        network = ipaddress.IPv4Address(number & ~host_bits & 0xFFFFFFFF)
        raise ValueError(f"host bits are set: the /{prefix} network is {network}/{prefix}")
    return f"{address}/{prefix}"


def _port(text: str) -> str:
    if not text.isdigit() or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise ValueError(f"port {text!r} is not between 1 and 65535")
    return str(int(text))


def _ipv4_port(value: str) -> str:
    address, _, port = value.rpartition(":")
    return f"{_ipv4(address)}:{_port(port)}"


def _ipv6(value: str) -> str:
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if "%" in value:
        raise ValueError("IPv6 zone indexes (%interface) only mean something on one host")
    try:
        packed = socket.inet_pton(socket.AF_INET6, value)
    except (OSError, ValueError):
        raise ValueError("not a valid IPv6 address") from None
    # The C library writes RFC 5952 text (lower case, longest zero run compressed, never a
    # single zero group) ten times faster than ipaddress; the mixed forms it writes for
    # IPv4-compatible addresses are left to ipaddress.
    text = socket.inet_ntop(socket.AF_INET6, packed)
    if "." in text and not text.startswith("::ffff:"):
        return _ipv6_text(ipaddress.IPv6Address(packed))
    return text


def _ipv6_text(address: ipaddress.IPv6Address) -> str:
    mapped = address.ipv4_mapped
    if mapped is not None:  # RFC 5952 section 5: mixed notation for IPv4-mapped addresses
        return f"::ffff:{mapped}"
    return address.compressed  # RFC 5952 section 4 canonical form


def _ipv6_cidr(value: str) -> str:
    address_text, _, prefix_text = value.partition("/")
    address = ipaddress.IPv6Address(_ipv6(address_text))
    prefix = _prefix(prefix_text, 128)
    network = ipaddress.IPv6Network(f"{address}/{prefix}", strict=False)
    if network.network_address != address:
        raise ValueError(f"host bits are set: the /{prefix} network is {network.compressed}")
    return f"{_ipv6_text(address)}/{prefix}"


def _ipv6_port(value: str) -> str:
    if not value.startswith("[") or "]:" not in value:
        raise ValueError("an IPv6 address with a port is written [address]:port")
    address, _, port = value[1:].rpartition("]:")
    return f"[{_ipv6(address)}]:{_port(port)}"


@lru_cache(maxsize=65536)
def normalise_domain(value: str) -> str:
    """A domain name in canonical form (see the module docstring); ValueError says why not."""
    name = value[:-1] if value.endswith(".") else value
    if not name:
        raise ValueError("empty domain name")
    if len(name) > 4 * MAX_DOMAIN_LENGTH:
        raise ValueError(f"domain name longer than {MAX_DOMAIN_LENGTH} characters")
    if not name.isascii():
        check_printable(name, "domain name")
        try:
            name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError) as error:
            raise ValueError(f"not a valid internationalised domain name: {error}") from None
    name = name.lower()
    if len(name) > MAX_DOMAIN_LENGTH:
        raise ValueError(f"domain name longer than {MAX_DOMAIN_LENGTH} characters")
    if "xn--" not in name and _PLAIN_DOMAIN.fullmatch(name):
        return name  # the common case in one match; the loop below explains failures
    labels = name.split(".")
    if len(labels) < 2:
        raise ValueError("not a fully qualified domain name (it needs a dot)")
    for label in labels:
        if not _LDH_LABEL.fullmatch(label):
            if not label:
                raise ValueError("domain name has an empty label (two dots in a row)")
            raise ValueError(f"label {label!r} is not 1-63 letters, digits, '_' and inner hyphens")
        if label.startswith("xn--"):
            _check_punycode(label)
    if not _TLD.fullmatch(labels[-1]):
        raise ValueError(f"top-level label {labels[-1]!r} is not a top-level domain")
    return name


def _check_punycode(label: str) -> None:
    try:
        idna.decode(label)
    except (idna.IDNAError, UnicodeError) as error:
        raise ValueError(f"label {label!r} is not valid punycode: {error}") from None


def _domain(value: str) -> str:
    return normalise_domain(value)


def _domain_port(value: str) -> str:
    name, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError("a name with a port is written name:port")
    return f"{normalise_domain(name)}:{_port(port)}"


def _host(host: str) -> str:
    """A URL host: an IPv4 address, a bracketed IPv6 address or a domain name."""
    if host.startswith("["):
        return f"[{_ipv6(host)}]"
    if _IPV4.fullmatch(host):
        return _ipv4(host)
    return normalise_domain(host)


def _url(value: str) -> str:
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"URL longer than {MAX_URL_LENGTH} characters")
    match = _URL.fullmatch(value)
    if match is None:
        match = _URL.fullmatch("http://" + value)
        if match is None:
            raise ValueError("not a URL")
    scheme, authority, rest = match.groups()
    scheme = scheme.lower()
    if scheme in _DEFANGED_SCHEMES:
        raise ValueError(
            f"defanged scheme {scheme!r}: no request carries it; refang it to {_DEFANGED_SCHEMES[scheme]}://"
        )
    if not authority:
        raise ValueError("URL has no host")
    if "\\" in authority:
        # Browsers (WHATWG URL) read a backslash as "/" in http(s) URLs, so the host of
        # http://evil.example\@good.example/ is evil.example, while IDS rules would watch
        # good.example.
        raise ValueError("backslash before the path: browsers read it as '/', so the host is ambiguous")
    userinfo, at, hostport = authority.rpartition("@")
    host, port = hostport, ""
    if hostport.startswith("["):
        if "]" not in hostport:
            raise ValueError("URL host has an unclosed '['")
        end = hostport.index("]") + 1
        host, port = hostport[:end], hostport[end:].removeprefix(":")
        if hostport[end:] and not hostport[end:].startswith(":"):
            raise ValueError("unexpected text after the IPv6 host")
    elif ":" in hostport:
        host, port = hostport.rsplit(":", 1)
    host = _host(host)
    if port:
        port = _port(port)
        if _DEFAULT_PORTS.get(scheme) == port:
            port = ""
    if _SPACE_OR_UNPRINTABLE.search(rest) or _SPACE_OR_UNPRINTABLE.search(userinfo):
        raise ValueError("URL contains whitespace or control characters")
    if not rest.isascii():
        rest = quote(rest, safe=_URL_SAFE)
    if not rest and scheme in ("http", "https"):
        rest = "/"
    userinfo = quote(userinfo, safe=_URL_SAFE) + at if at else ""
    return f"{scheme}://{userinfo}{host}{':' + port if port else ''}{rest}"


def _email(value: str) -> str:
    if len(value) > MAX_EMAIL_LENGTH:
        raise ValueError(f"e-mail address longer than {MAX_EMAIL_LENGTH} characters")
    local, at, domain = value.rpartition("@")
    if not at or not local:
        raise ValueError("not an e-mail address (local@domain)")
    if len(local) > 64:
        raise ValueError("local part longer than 64 characters (RFC 5321 section 4.5.3.1.1)")
    if not _EMAIL_LOCAL.fullmatch(local):
        raise ValueError(f"local part {local!r} is not a valid dot-atom (RFC 5322 section 3.2.3)")
    return f"{local}@{normalise_domain(domain)}"


HASH_NAMES = {
    IocType.MD5: "MD5",
    IocType.SHA1: "SHA-1",
    IocType.SHA256: "SHA-256",
    IocType.SHA512: "SHA-512",
}


def _hash(expected: IocType) -> Callable[[str], str]:
    length = next(n for n, t in HASH_LENGTHS.items() if t is expected)
    name = HASH_NAMES[expected]

    def normalise_hash(value: str) -> str:
        if _HEX.fullmatch(value) is None:
            raise ValueError(f"a {name} hash is hexadecimal digits only")
        if len(value) != length:
            actual = HASH_LENGTHS.get(len(value))
            also = f" (the length of a {HASH_NAMES[actual]})" if actual else ""
            raise ValueError(f"a {name} hash is {length} hex digits, not {len(value)}{also}")
        return value.lower()

    return normalise_hash


def normalise_any_hash(value: str) -> tuple[IocType, str]:
    """(hash type chosen by length, canonical value) for a hash of unknown algorithm."""
    if _HEX.fullmatch(value) is None:
        raise ValueError("a hash is hexadecimal digits only")
    hash_type = HASH_LENGTHS.get(len(value))
    if hash_type is None:
        raise ValueError(
            f"{len(value)} hex digits is not an MD5 (32), SHA-1 (40), SHA-256 (64) or SHA-512 (128) hash"
        )
    return hash_type, value.lower()


def _file_name(value: str) -> str:
    check_printable(value, "file name")
    name = value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].strip()
    if not name or name in (".", ".."):
        raise ValueError("no file name after the last path separator")
    if len(name) > MAX_FILE_NAME_LENGTH:
        raise ValueError(f"file name longer than {MAX_FILE_NAME_LENGTH} characters")
    if _PLACEHOLDER.search(name):
        raise ValueError(f"{name!r} holds a placeholder, not a literal file name")
    return name


def _literal_host_name(value: str, what: str) -> None:
    """ValueError when a mutex name or registry key is a template, not a literal name."""
    check_printable(value, what)
    if (found := _HOST_PLACEHOLDER.search(value)) is not None:
        raise ValueError(f"{found.group()!r} is a placeholder, not a literal {what}")
    if (found := _CHARACTER_CLASS.search(value)) is not None:
        raise ValueError(f"{found.group()!r} is a regular expression, not a literal {what}")


def _mutex(value: str) -> str:
    if not value or value.endswith("\\"):
        raise ValueError("no mutex name (after its namespace, such as Global\\)")
    if len(value) > MAX_MUTEX_LENGTH:
        raise ValueError(f"mutex name longer than {MAX_MUTEX_LENGTH} characters")
    _literal_host_name(value, "mutex name")
    return value


def _registry_key(value: str) -> str:
    if len(value) > MAX_REGISTRY_KEY_LENGTH:
        raise ValueError(f"registry key longer than {MAX_REGISTRY_KEY_LENGTH} characters")
    hive = REGISTRY_HIVE.match(value)
    if hive is None:
        raise ValueError(
            "a registry key starts with its hive (HKEY_LOCAL_MACHINE, HKEY_CURRENT_USER, "
            "HKEY_CLASSES_ROOT, HKEY_USERS, HKEY_CURRENT_CONFIG or HKLM, HKCU, HKCR, HKU, HKCC)"
        )
    name = hive.group(1).upper().rstrip(":")
    path = _KEY_ENDS.sub("", _DOUBLED_SEPARATORS.sub(r"\\", value[hive.end() :]))
    if not path:
        raise ValueError(f"{name} alone is a hive, not a key: it holds every key on the host")
    _literal_host_name(path, "registry key")
    return f"{REGISTRY_HIVES.get(name, name)}\\{path}"


def _autonomous_system(value: str) -> str:
    match = _AS_NUMBER.fullmatch(value)
    if match is None:
        raise ValueError("not an autonomous system number (AS64496, or 64496)")
    high, low = match.groups()
    if low is not None:  # asdot (RFC 5396): high and low 16 bits
        if int(high) > 65535 or int(low) > 65535:
            raise ValueError(f"asdot {high}.{low}: each part is at most 65535 (RFC 5396)")
        return str((int(high) << 16) | int(low))
    if int(high) > MAX_AS_NUMBER:
        raise ValueError(f"AS number {high} is above {MAX_AS_NUMBER} (four octets, RFC 6793)")
    return str(int(high))


def _email_subject(value: str) -> str:
    if not value:
        raise ValueError("empty subject")
    if "\n" in value or "\r" in value:
        raise ValueError(
            "a subject is one line: unfold it (a folded header's line breaks are not part of it)"
        )
    if len(value) > MAX_EMAIL_SUBJECT_LENGTH:
        raise ValueError(f"subject longer than {MAX_EMAIL_SUBJECT_LENGTH} characters (RFC 5322 line limit)")
    check_printable(value, "subject")
    if (found := _ENCODED_WORD.search(value)) is not None:
        raise ValueError(f"{found.group()[:40]!r} is an RFC 2047 encoded word: give the decoded subject")
    return value


def _ssdeep(value: str) -> str:
    if "," in value:
        raise ValueError("ssdeep's output has the file name after a comma: give the hash alone")
    match = _SSDEEP.fullmatch(value)
    if match is None:
        raise ValueError("not an ssdeep hash (blocksize:hash:hash, base64 characters)")
    size, first, second = match.groups()
    if int(size) not in _SSDEEP_BLOCK_SIZES:
        raise ValueError(f"block size {size} is not 3 times a power of two (3, 6, 12, 24, ...)")
    if not first or not second:
        raise ValueError("a part of the hash is empty (the ssdeep of an empty or tiny input)")
    if len(first) > 64 or len(second) > 32:
        raise ValueError("hash parts longer than ssdeep's 64 and 32 characters")
    return f"{int(size)}:{first}:{second}"


def _x509(expected: IocType) -> Callable[[str], str]:
    length = next(n for n, t in X509_LENGTHS.items() if t is expected)
    name = HASH_NAMES[HASH_LENGTHS[length]]

    def normalise_fingerprint(value: str) -> str:
        digits = _fingerprint_digits(value)
        if len(digits) != length:
            actual = HASH_LENGTHS.get(len(digits)) if len(digits) in X509_LENGTHS else None
            also = f" (the length of a {HASH_NAMES[actual]} fingerprint)" if actual else ""
            raise ValueError(f"a {name} fingerprint is {length} hex digits, not {len(digits)}{also}")
        return digits

    return normalise_fingerprint


def _fingerprint_digits(value: str) -> str:
    if _FINGERPRINT_PAIRS.fullmatch(value):
        value = value.replace(":", "")
    elif _HEX.fullmatch(value) is None:
        raise ValueError("a certificate fingerprint is hex digits, or pairs of them separated by colons")
    return value.lower()


def normalise_x509_fingerprint(value: str) -> tuple[IocType, str]:
    """(fingerprint type chosen by length, canonical value) for a certificate fingerprint of
    unknown algorithm."""
    digits = _fingerprint_digits(value.strip())
    kind = X509_LENGTHS.get(len(digits))
    if kind is None:
        raise ValueError(
            f"{len(digits)} hex digits is not an MD5 (32), SHA-1 (40) or SHA-256 (64) fingerprint"
        )
    return kind, digits


def _mac_address(value: str) -> str:
    if _MAC_GROUPS.fullmatch(value):
        octets = value.replace("-", ":").split(":")
    elif (dotted := _MAC_DOTTED.fullmatch(value)) is not None:
        digits = "".join(dotted.groups())
        octets = [digits[i : i + 2] for i in range(0, 12, 2)]
    elif len(value) == 12 and _HEX.fullmatch(value):
        octets = [value[i : i + 2] for i in range(0, 12, 2)]
    else:
        digits = re.sub(r"[:.\-]", "", value)
        if _HEX.fullmatch(digits) and len(digits) == 16:
            raise ValueError("an EUI-64 (eight octets): STIX mac-addr values are MAC-48 (six octets)")
        raise ValueError(
            "not a MAC address (six octets: 00:1a:2b:3c:4d:5e, 00-1A-2B-3C-4D-5E or 001a.2b3c.4d5e)"
        )
    return ":".join(octet.lower().zfill(2) for octet in octets)


def _rule(rule_type: IocType) -> Callable[[str], str]:
    def normalise_rule(value: str) -> str:
        text = "\n".join(line.rstrip() for line in value.replace("\r\n", "\n").split("\n"))
        text = text.strip("\n")
        if len(text) > MAX_RULE_LENGTH:
            raise ValueError(f"{rule_type.value} rule longer than {MAX_RULE_LENGTH} characters")
        bad = _UNPRINTABLE_IN_RULE.search(text)
        if bad is not None:
            raise ValueError(f"rule contains the control character U+{ord(bad.group()):04X}")
        if detect_rule_type(text) is not rule_type:
            raise ValueError(f"not a {rule_type.value} rule")
        return text

    return normalise_rule


def _stix_pattern(value: str) -> str:
    error = validate_stix_pattern(value)
    if error is not None:
        raise ValueError(f"invalid STIX pattern: {error}")
    return value


def _cve(value: str) -> str:
    match = _CVE.fullmatch(value)
    if match is None:
        raise ValueError("not a CVE id (CVE-YYYY-NNNN)")
    if not 1999 <= int(match.group(1)) <= 2100:
        raise ValueError(f"CVE year {match.group(1)} is out of range")
    return f"CVE-{match.group(1)}-{match.group(2)}"


_NORMALISERS: dict[IocType, Callable[[str], str]] = {
    IocType.IPV4: _ipv4,
    IocType.IPV4_CIDR: _ipv4_cidr,
    IocType.IPV4_PORT: _ipv4_port,
    IocType.IPV6: _ipv6,
    IocType.IPV6_CIDR: _ipv6_cidr,
    IocType.IPV6_PORT: _ipv6_port,
    IocType.DOMAIN: _domain,
    IocType.DOMAIN_PORT: _domain_port,
    IocType.URL: _url,
    IocType.EMAIL: _email,
    **{hash_type: _hash(hash_type) for hash_type in HASH_TYPES},
    IocType.FILE_NAME: _file_name,
    IocType.MUTEX: _mutex,
    IocType.WINDOWS_REGISTRY_KEY: _registry_key,
    IocType.AUTONOMOUS_SYSTEM: _autonomous_system,
    IocType.EMAIL_SUBJECT: _email_subject,
    IocType.SSDEEP: _ssdeep,
    **{kind: _x509(kind) for kind in X509_LENGTHS.values()},
    IocType.MAC_ADDR: _mac_address,
    **{rule: _rule(rule) for rule in (IocType.YARA, IocType.SIGMA, IocType.SNORT, IocType.SURICATA)},
    IocType.STIX_PATTERN: _stix_pattern,
    IocType.CVE: _cve,
}
