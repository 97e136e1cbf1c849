"""The kinds of indicator cti-exchange turns into STIX 2.1, and how a bare value is recognised.

Detection looks at the *shape* of a value only (four dotted numbers, 64 hex digits, a
`scheme://`), never at whether it is valid: `999.1.1.1` is detected as an IPv4 address so that
`normalise` can reject it with a precise reason ("octet 999 is above 255") instead of the row
falling through as "unrecognised". Values are expected refanged (see `refang.py`).

Ambiguities are settled on purpose:
- a name whose last label is a file extension that is not a top-level domain (`.exe`, `.dll`,
  `.docx`, ...) is a file name; `.zip` and `.mov` are real TLDs, so `update.zip` is a domain
  unless the input says otherwise (a type column, a MISP type, a `# Filename` section);
- a hex string is a hash only at 32, 40, 64 or 128 digits; other lengths are still detected as
  hash-shaped (`HASH_SHAPED`) so that the rejection can say why.
- a type found as a word inside a longer label ("C2 @ Pastebin URL") is a weak hint: a value it
  could take only by inventing parts (`host:port` as `http://host:port/`) keeps its own type
  (type_hints.py); a type name on its own ("URL") is followed as given;
- a value that starts with a registry hive (`HKLM\\`, `HKEY_CURRENT_USER\\`) is a Windows
  registry key, even when its last key looks like a file (`...\\Image File Execution
  Options\\sethc.exe`); a mutex name is never detected, only typed by the input (a type
  column, a MISP `mutex`, a `# Mutexes` section): any word can be one;
- likewise autonomous system numbers (`AS400` is also a computer), e-mail subjects, ssdeep
  hashes (`12:30:45` has their shape) and X.509 certificate fingerprints (hex digits, as file
  hashes are) are only typed by the input (a type column, a MISP `AS`, `email-subject`,
  `ssdeep`, `x509-fingerprint-sha1`..., a `# E-mail subjects` section); a MAC address is detected only
  as six colon-separated pairs of hex digits (`00:1a:2b:3c:4d:5e`, which as IPv6 text would be
  invalid): `00-1A-...` may be a phone number and `aabb.ccdd.eeff` a domain name.
"""

from __future__ import annotations

import re
from enum import Enum


class IocType(Enum):
    """A kind of indicator. The value is the name used in reports, type columns and counts."""

    IPV4 = "ipv4-addr"
    IPV4_CIDR = "ipv4-cidr"
    IPV4_PORT = "ipv4-port"
    IPV6 = "ipv6-addr"
    IPV6_CIDR = "ipv6-cidr"
    IPV6_PORT = "ipv6-port"
    DOMAIN = "domain-name"
    DOMAIN_PORT = "domain-port"
    URL = "url"
    EMAIL = "email-addr"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"
    FILE_NAME = "file-name"
    # Host artefacts: what an EDR or a host scanner looks for, not network traffic.
    MUTEX = "mutex"
    WINDOWS_REGISTRY_KEY = "windows-registry-key"
    # Typed by the input only (see the module docstring), except colon-separated MACs.
    AUTONOMOUS_SYSTEM = "autonomous-system"
    EMAIL_SUBJECT = "email-subject"
    SSDEEP = "ssdeep"
    # A server certificate's fingerprint: not a file hash (exports and triage keep them apart).
    X509_MD5 = "x509-md5"
    X509_SHA1 = "x509-sha1"
    X509_SHA256 = "x509-sha256"
    MAC_ADDR = "mac-addr"
    YARA = "yara"
    SIGMA = "sigma"
    SNORT = "snort"
    SURICATA = "suricata"
    STIX_PATTERN = "stix-pattern"
    CVE = "cve"

    # Members are singletons compared by identity; Enum's own __hash__ is a Python-level call,
    # measurably slow on the per-row path where types are dict keys.
    __hash__ = object.__hash__

    @property
    def is_rule(self) -> bool:
        """Rule-based indicators keep their text: it is the pattern, with its own pattern_type."""
        return self in RULE_TYPES

    @property
    def pattern_type(self) -> str:
        """The STIX 2.1 pattern-type-ov value for this kind of indicator."""
        return self.value if self in RULE_TYPES else "stix"

    @property
    def lifetime_key(self) -> str:
        """The key of the profile's `lifetime_days` table that sets this type's valid_until."""
        return _LIFETIME_KEYS[self]


RULE_TYPES = frozenset({IocType.YARA, IocType.SIGMA, IocType.SNORT, IocType.SURICATA})
HASH_TYPES = frozenset({IocType.MD5, IocType.SHA1, IocType.SHA256, IocType.SHA512})
IP_TYPES = frozenset(
    {
        IocType.IPV4,
        IocType.IPV4_CIDR,
        IocType.IPV4_PORT,
        IocType.IPV6,
        IocType.IPV6_CIDR,
        IocType.IPV6_PORT,
    }
)
HASH_LENGTHS = {32: IocType.MD5, 40: IocType.SHA1, 64: IocType.SHA256, 128: IocType.SHA512}
X509_TYPES = frozenset({IocType.X509_MD5, IocType.X509_SHA1, IocType.X509_SHA256})
X509_LENGTHS = {32: IocType.X509_MD5, 40: IocType.X509_SHA1, 64: IocType.X509_SHA256}

_LIFETIME_KEYS = {
    IocType.IPV4: "ipv4-addr",
    IocType.IPV4_CIDR: "ipv4-addr",
    IocType.IPV4_PORT: "ipv4-addr",
    IocType.IPV6: "ipv6-addr",
    IocType.IPV6_CIDR: "ipv6-addr",
    IocType.IPV6_PORT: "ipv6-addr",
    IocType.DOMAIN: "domain-name",
    IocType.DOMAIN_PORT: "domain-name",
    IocType.URL: "url",
    IocType.EMAIL: "email-addr",
    IocType.MD5: "file",
    IocType.SHA1: "file",
    IocType.SHA256: "file",
    IocType.SHA512: "file",
    IocType.FILE_NAME: "file",
    # A malware build's mutex and registry keys last as long as its samples.
    IocType.MUTEX: "file",
    IocType.WINDOWS_REGISTRY_KEY: "file",
    # A network announces its prefixes for years; a hardware address stays with its device.
    IocType.AUTONOMOUS_SYSTEM: "other",
    IocType.MAC_ADDR: "other",
    # A phishing campaign's subject lasts as long as its sender addresses.
    IocType.EMAIL_SUBJECT: "email-addr",
    IocType.SSDEEP: "file",
    # A server's certificate is replaced along with its name (90 days for Let's Encrypt).
    IocType.X509_MD5: "domain-name",
    IocType.X509_SHA1: "domain-name",
    IocType.X509_SHA256: "domain-name",
    IocType.YARA: "rule",
    IocType.SIGMA: "rule",
    IocType.SNORT: "rule",
    IocType.SURICATA: "rule",
    IocType.STIX_PATTERN: "other",
    IocType.CVE: "other",
}

# A value whose shape is a hash but whose length is not one we share; detection returns it so
# that normalisation can explain the rejection. It is not a member of IocType on purpose: it
# never reaches a STIX object.
HASH_SHAPED = "hash-shaped"

# File extensions that are not delegated top-level domains, so a dotted name ending in one of
# them is a file name. (.com, .zip, .mov, .py, .sh, .pl, .app, .one, .run, .dot are TLDs.)
FILE_EXTENSIONS = frozenset(
    """
    exe dll sys scr bat cmd ps1 psm1 psd1 vbs vbe js jse wsf wsh hta lnk cpl ocx drv pif msi msp
    msc doc docx docm xls xlsx xlsm xlsb ppt pptx pptm pdf rtf odt ods odp iso img vhd vhdx rar
    7z gz tgz bz2 xz tar jar war apk ipa elf so dylib bin dat tmp txt log cab chm jpg jpeg png
    gif bmp svg ico htm html php asp aspx jsp cgi inf ini cfg conf bak db sqlite json xml yml
    yaml csv eml msg mp3 mp4 avi wav dmg pkg deb rpm torrent swf class dex ko lib pdb pyc sct
    xll wll ace arj lzh dotm xltm potm ppam ppsm sldm
    """.split()
)

# Shape of a bare value with no whitespace. The named alternatives are tried in order and the
# first full match wins, so the specific shapes come before the general ones.
_LDH_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = rf"(?:{_LDH_LABEL}\.)+(?:[A-Za-z][A-Za-z0-9-]*|xn--[A-Za-z0-9-]+)\.?"
_IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
_IPV6 = r"[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*"  # at least two colons
_SHAPE = re.compile(
    rf"""
      (?P<ipv4>{_IPV4})
    | (?P<hex>[0-9A-Fa-f]{{16,}})
    | (?P<domain>{_HOSTNAME})
    | (?P<ipv4_cidr>{_IPV4}/\d{{1,3}})
    | (?P<ipv4_port>{_IPV4}:\d{{1,6}})
    | (?P<cve>[Cc][Vv][Ee]-\d{{4}}-\d{{4,}})
    | (?P<stix>\[\s*\(*\s*[a-z][a-z0-9-]*:.*\])
    | (?P<url>[A-Za-z][A-Za-z0-9+.-]*://\S+)
    | (?P<url_noscheme>(?:{_HOSTNAME}|{_IPV4})(?::\d{{1,5}})?/\S*)
    | (?P<mac>[0-9A-Fa-f]{{2}}(?::[0-9A-Fa-f]{{2}}){{5}})
    | (?P<ipv6_port>\[[0-9A-Fa-f:.%\w]+\]:\d{{1,6}})
    | (?P<ipv6_cidr>{_IPV6}/\d{{1,3}})
    | (?P<ipv6>{_IPV6}(?:%\w+)?|\[{_IPV6}\])
    | (?P<email>[^@\s/\\]+@[^@\s/\\]+)
    | (?P<idn>(?:[^\W_](?:[\w-]{{0,61}}[^\W_])?\.)+[^\W\d_][\w-]*\.?)
    """,
    re.VERBOSE | re.DOTALL,
)

_SHAPE_TYPES: dict[str, IocType] = {
    "ipv4": IocType.IPV4,
    "ipv4_cidr": IocType.IPV4_CIDR,
    "ipv4_port": IocType.IPV4_PORT,
    "cve": IocType.CVE,
    "stix": IocType.STIX_PATTERN,
    "url": IocType.URL,
    "url_noscheme": IocType.URL,
    "mac": IocType.MAC_ADDR,
    "ipv6_port": IocType.IPV6_PORT,
    "ipv6_cidr": IocType.IPV6_CIDR,
    "ipv6": IocType.IPV6,
    "email": IocType.EMAIL,
    "domain": IocType.DOMAIN,
    "idn": IocType.DOMAIN,
}

_HAS_SPACE = re.compile(r"\s")
# A registry hive as written before the first `\` of a key path: full, as STIX 2.1 (section
# 6.17) asks, or abbreviated, also as a PowerShell drive (`HKLM:\`); any case.
REGISTRY_HIVES = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}
REGISTRY_HIVE = re.compile(
    rf"({'|'.join(REGISTRY_HIVES.values())}|(?:{'|'.join(REGISTRY_HIVES)}):?)(?:\\|\Z)",
    re.IGNORECASE,
)
_FILE_EXTENSION = re.compile(r"\.([A-Za-z0-9_]{1,10})\Z")

# Rule languages, recognised from their first lines. YARA: "rule name {" after optional
# imports and modifiers. Snort/Suricata: "action proto src port -> dst port (options)".
_YARA = re.compile(
    r"\s*(?:(?:import|include)\s+\"[^\"\n]*\"\s*)*(?:(?:private|global)\s+)*rule\s+[A-Za-z_]\w*"
    r"[^{]*\{",
)
_IDS_RULE = re.compile(
    r"\s*(?:alert|drop|reject|pass|log|sdrop|rejectsrc|rejectdst|rejectboth)\s+([a-z0-9-]+)\s+"
    r"\S+\s+\S+\s+(?:->|<>)\s+\S+\s+\S+\s*\(",
)
_SURICATA_PROTOCOLS = frozenset(
    "http http2 tls dns smb ftp ftp-data ssh smtp dcerpc dhcp dnp3 enip ikev2 krb5 modbus mqtt "
    "nfs ntp quic rdp rfb sip snmp tftp pkthdr".split()
)
_SURICATA_KEYWORDS = re.compile(
    r"\b(?:http|tls|dns|ja3|ja3s|ja4|file|smb|ssh|krb5|quic|sip|rfb|dcerpc|smtp)\.[a-z_]+\s*;"
)
_SIGMA_TITLE = re.compile(r"^title\s*:", re.MULTILINE)
_SIGMA_DETECTION = re.compile(r"^detection\s*:", re.MULTILINE)


def detect_ioc_type(value: str) -> IocType | None:
    """The kind of indicator `value` looks like, or None.

    `value` should be stripped and refanged. See the module docstring for the rules.
    """
    if not value:
        return None
    if (value[0] == "H" or value[0] == "h") and _is_registry_key(value):
        return IocType.WINDOWS_REGISTRY_KEY
    if _HAS_SPACE.search(value) is not None:
        return _detect_with_whitespace(value)
    match = _SHAPE.fullmatch(value)
    if match is None:
        if _host_with_port(value):
            return IocType.DOMAIN_PORT
        return IocType.FILE_NAME if _looks_like_file_name(value) else None
    kind = match.lastgroup
    if kind == "hex":
        return HASH_LENGTHS.get(len(value))  # other lengths: see is_hash_shaped
    if kind == "idn" and (value.isascii() or "_" in value):
        # Not a host name (an underscore, or ASCII outside letters-digits-hyphen).
        if _looks_like_file_name(value):
            return IocType.FILE_NAME
        # DNS names may hold underscores (`my_host.duckdns.org`): two dots or more and a
        # top-level label of letters, as a file name seldom has.
        return IocType.DOMAIN if _underscored_dns_name(value) else None
    if kind in ("domain", "idn"):
        last_label = value.rstrip(".").rsplit(".", 1)[-1].lower()
        if last_label in FILE_EXTENSIONS:
            return IocType.FILE_NAME
    return _SHAPE_TYPES[kind]  # type: ignore[index]


# A DNS label that may hold underscores, then a dot.
_UNDERSCORED_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\."
_UNDERSCORED_DNS_NAME = re.compile(rf"(?:{_UNDERSCORED_LABEL}){{2,}}[A-Za-z]{{2,63}}\.?")
_UNDERSCORED_HOST = re.compile(rf"(?:{_UNDERSCORED_LABEL})+[A-Za-z]{{2,63}}")


def _underscored_dns_name(value: str) -> bool:
    """A DNS name with an underscore in a label below the top (`a_b.evil.com`), as defanged
    lists hold them; one dot alone (`evil_x.com`) stays a file name unless it was defanged
    (is_defanged_host_name)."""
    return "_" in value and _UNDERSCORED_DNS_NAME.fullmatch(value) is not None


def is_defanged_host_name(value: str) -> bool:
    """Whether a value that was defanged (`evil_x[.]com`: whoever wrote it meant a network
    indicator) and detects as a file name is a DNS name with an underscore: one dot suffices."""
    name = value.rstrip(".")
    last = name.rsplit(".", 1)[-1].lower()
    return (
        "_" in name
        and "." in name
        and last not in FILE_EXTENSIONS
        and _UNDERSCORED_HOST.fullmatch(name) is not None
    )


def _host_with_port(value: str) -> bool:
    """`name:port` where the name alone is detected as a domain (`2.tcp.eu.ngrok.io:12002`,
    a C2 list's usual spelling): the port is what makes a shared relay's name specific."""
    host, sep, port = value.rpartition(":")
    return bool(sep) and port.isdigit() and len(port) <= 6 and detect_ioc_type(host) is IocType.DOMAIN


def _is_registry_key(value: str) -> bool:
    """A hive, then a backslash and a key path on one line (key names may hold spaces)."""
    match = REGISTRY_HIVE.match(value)
    return match is not None and len(value) > match.end() and "\n" not in value and "\r" not in value


def is_hash_shaped(value: str) -> bool:
    """True for a hex string of 16+ digits, whatever its length (a hash attempt)."""
    match = _SHAPE.fullmatch(value)
    return match is not None and match.lastgroup == "hex"


def detect_rule_type(value: str) -> IocType | None:
    """YARA, Sigma, Snort or Suricata when `value` is a rule in one of these languages."""
    if _YARA.match(value):
        return IocType.YARA
    ids = _IDS_RULE.match(value)
    if ids is not None:
        if ids.group(1) in _SURICATA_PROTOCOLS or _SURICATA_KEYWORDS.search(value):
            return IocType.SURICATA
        return IocType.SNORT
    if _SIGMA_TITLE.search(value) and _SIGMA_DETECTION.search(value):
        return IocType.SIGMA
    return None


def _detect_with_whitespace(value: str) -> IocType | None:
    rule = detect_rule_type(value)
    if rule is not None:
        return rule
    if value.lstrip().startswith("[") and _SHAPE.fullmatch(value.strip()) is not None:
        return IocType.STIX_PATTERN
    # A file name may contain spaces ("legal paper,07.14.20.doc"), never a line break.
    if "\n" not in value and "\r" not in value and _looks_like_file_name(value):
        return IocType.FILE_NAME
    return None


def _looks_like_file_name(value: str) -> bool:
    match = _FILE_EXTENSION.search(value)
    if match is None or "://" in value or "@" in value:
        return False
    extension = match.group(1).lower()
    name = value.replace("\\", "/").rsplit("/", 1)[-1]
    if extension in FILE_EXTENSIONS:
        return True
    # A single-dot name that cannot be a host name (an underscore, a tilde, a space) is a file
    # name: "Monlam_Grand_Tibetan_Dictionary_2018.zip". With more dots it may be a sub-domain.
    return name.count(".") == 1 and len(name) > len(extension) + 1 and re.fullmatch(_HOSTNAME, name) is None
