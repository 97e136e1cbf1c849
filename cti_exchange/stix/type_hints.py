"""Type names as inputs give them (a CSV type column, a MISP attribute type, a `# Domains`
section, Unit 42's "C2 @ Pastebin URL" label) turned into the indicator types they allow.

A type name on its own ("URL", "ip-dst", "IPV4:PORT") is followed as given. A type word inside
a longer label is a weaker hint: a value it could take only by inventing parts keeps the type
detected from its shape (`TypeHint.gives_way_to`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cti_exchange.stix.ioc_types import HASH_TYPES, IP_TYPES, RULE_TYPES, X509_TYPES, IocType

# Prefixes of a certificate fingerprint's type name ("x509-fingerprint-sha1", MISP's; "cert
# sha1"), spaces and hyphens removed.
_CERTIFICATE_PREFIXES = tuple(
    f"{certificate}{fingerprint}"
    for certificate in (
        "x509",
        "cert",
        "certificate",
        "sslcert",
        "tlscert",
        "sslcertificate",
        "tlscertificate",
    )
    for fingerprint in ("", "fingerprint", "thumbprint")
)
# Type names as they appear in type columns, MISP attributes and `# Section` comments, mapped to
# the set of types they allow. Keys are compared after lower-casing and removing spaces, "_",
# "-" and a final plural "s".
_TYPE_ALIASES: dict[str, frozenset[IocType]] = {
    **{key: IP_TYPES for key in ("ip", "ipaddres", "ipaddress", "ipsrc", "ipdst", "address")},
    **{key: frozenset({IocType.IPV4}) for key in ("ipv4", "ipv4addr", "ipv4address")},
    **{key: frozenset({IocType.IPV6}) for key in ("ipv6", "ipv6addr", "ipv6address")},
    **{
        key: frozenset({IocType.IPV4_CIDR, IocType.IPV6_CIDR})
        for key in ("cidr", "network", "netblock", "iprange", "subnet")
    },
    "ipv4cidr": frozenset({IocType.IPV4_CIDR}),
    "ipv6cidr": frozenset({IocType.IPV6_CIDR}),
    **{
        key: frozenset({IocType.IPV4_PORT, IocType.IPV6_PORT})
        for key in ("ip:port", "ipport", "ipv4:port", "ipv4port", "ipv6:port", "ipv6port")
    },
    **{
        key: frozenset({IocType.DOMAIN})
        for key in ("domain", "domainname", "hostname", "host", "fqdn", "dns", "dnsname")
    },
    **{
        key: frozenset({IocType.DOMAIN_PORT})
        for key in ("domain:port", "domainport", "hostname:port", "hostnameport", "host:port", "hostport")
    },
    **{key: frozenset({IocType.URL}) for key in ("url", "link", "uri", "weburl")},
    **{
        key: frozenset({IocType.EMAIL})
        for key in ("email", "emailaddress", "emailaddr", "mail", "emailsrc", "emaildst")
    },
    "md5": frozenset({IocType.MD5}),
    **{key: frozenset({IocType.SHA1}) for key in ("sha1",)},
    **{key: frozenset({IocType.SHA256}) for key in ("sha256",)},
    **{key: frozenset({IocType.SHA512}) for key in ("sha512",)},
    **{key: HASH_TYPES for key in ("hash", "filehash", "sample", "checksum", "digest")},
    **{key: frozenset({IocType.FILE_NAME}) for key in ("file", "filename", "name", "filepath", "path")},
    **{key: frozenset({IocType.MUTEX}) for key in ("mutex", "mutexes", "mutexname", "mutant")},
    **{
        key: frozenset({IocType.WINDOWS_REGISTRY_KEY})
        for key in ("registry", "registrykey", "regkey", "registrypath", "registrykeypath")
    },
    **{
        key: frozenset({IocType.AUTONOMOUS_SYSTEM})
        for key in ("as", "asn", "asnumber", "autonomoussystem", "autonomoussystemnumber")
    },
    **{
        key: frozenset({IocType.EMAIL_SUBJECT})
        # Not "subject" alone: a ticket's or a certificate's subject is no e-mail's.
        for key in ("emailsubject", "mailsubject", "emailmessagesubject", "emailsubjectline")
    },
    **{key: frozenset({IocType.SSDEEP}) for key in ("ssdeep", "fuzzyhash", "ctph")},
    # A certificate's fingerprint, however the column is named; the hash by its length when
    # the name does not say ("x509", "certificate fingerprint").
    **{
        f"{prefix}{name}": frozenset({kind})
        for name, kind in (
            ("md5", IocType.X509_MD5),
            ("sha1", IocType.X509_SHA1),
            ("sha256", IocType.X509_SHA256),
        )
        for prefix in _CERTIFICATE_PREFIXES
    },
    # Not "certificate", "cert" or "x509" alone: such a column may hold the certificate's
    # subject or issuer ("CN=evil.example"), which is no fingerprint.
    **{key: X509_TYPES for key in _CERTIFICATE_PREFIXES if key.endswith(("fingerprint", "thumbprint"))},
    **{
        key: frozenset({IocType.MAC_ADDR})
        for key in ("mac", "macaddress", "macaddresses", "macaddr", "hardwareaddress", "physicaladdress")
    },
    "yara": frozenset({IocType.YARA}),
    "sigma": frozenset({IocType.SIGMA}),
    "snort": frozenset({IocType.SNORT}),
    "suricata": frozenset({IocType.SURICATA}),
    "rule": RULE_TYPES,
    **{key: frozenset({IocType.STIX_PATTERN}) for key in ("stix", "stixpattern", "pattern")},
    **{key: frozenset({IocType.CVE}) for key in ("cve", "vulnerability", "cveid")},
}
# Our own type names are always accepted too ("ipv4-addr", "domain-name", "file-name", ...).
_TYPE_ALIASES.update({t.value.replace("-", ""): frozenset({t}) for t in IocType})

_WORD = re.compile(r"[a-z0-9][a-z0-9-]*(?::[a-z0-9]+)?")


def _alias_key(text: str) -> str:
    return "".join(text.lower().split()).replace("_", "").replace("-", "")


@dataclass(frozen=True, slots=True)
class TypeHint:
    """What a type name says: the types it allows, and whether the text is a type name
    (`exact`: "URL", "ip-dst", "IPV4:PORT") or a longer label with a type word in it ("C2 @
    Pastebin URL", Unit 42's label for a C2 address found at a Pastebin URL)."""

    types: frozenset[IocType]
    exact: bool

    def gives_way_to(self, detected: IocType | None) -> bool:
        """True when a value detected as `detected` keeps its own type instead of this hint's:
        the hint is only a word in a longer label, and the value could take the hint's type
        only by inventing parts it does not have (see `_INVENTED_BY_COERCION`)."""
        if self.exact or detected is None or len(self.types) != 1:
            return False
        (hinted,) = self.types
        return detected in _INVENTED_BY_COERCION.get(hinted, ())


# The values a type would take only by inventing parts. The URL normaliser adds `http://` and a
# `/` path to anything without a scheme: `2.tcp.eu.ngrok.io:12002` would become a web address
# that VenomRAT's raw-TCP C2 never uses, and rules or blocklists made from it never match. The
# other types' normalisers reject a value of another type instead of completing it.
_INVENTED_BY_COERCION: dict[IocType, frozenset[IocType]] = {
    IocType.URL: frozenset(
        {
            *IP_TYPES,  # 94.46.175.132:45807, 1.2.3.4, 10.0.0.0/8, [2001:db8::1]:443
            IocType.DOMAIN,  # bomba1.ddns.net
            IocType.DOMAIN_PORT,  # 2.tcp.eu.ngrok.io:12002
            IocType.EMAIL,  # jo@example.com, read as a URL's user name and host
        }
    ),
}


def parse_type_hint(text: str) -> frozenset[IocType]:
    """The types a type name allows: "IPv4" -> {IPV4}, "hash" -> the four hashes.

    Accepts our names, STIX names, MISP attribute names and common spreadsheet headers.
    A longer label is searched for a type word: "C2 @ Pastebin URL" -> {URL}, a weaker hint
    (`read_type_hint` tells them apart).
    Raises ValueError naming the text when nothing matches, or when two types match.
    """
    return read_type_hint(text).types


def read_type_hint(text: str) -> TypeHint:
    """`parse_type_hint`, saying also whether the text was a type name or only contained one."""
    key = _alias_key(text)
    found = _TYPE_ALIASES.get(key) or _TYPE_ALIASES.get(key[:-1] if key.endswith("s") else key)
    if found:
        return TypeHint(found, exact=True)
    kinds = [
        _TYPE_ALIASES[alias]
        for word in _WORD.findall(text.lower())
        for alias in {_alias_key(word), _alias_key(word).removesuffix("s")}
        if alias in _TYPE_ALIASES and alias not in _VAGUE_WORDS
    ]
    if not kinds:
        raise ValueError(f"unknown indicator type {text!r}")
    # "SHA256 hash" names both {SHA256} and the hashes: the most specific one is meant.
    common = frozenset.intersection(*kinds)
    words = set(_WORD.findall(text.lower()))
    if common and common <= HASH_TYPES and words & _CERTIFICATE_WORDS and not words & _FILE_WORDS:
        # "SHA-1 of the server's TLS certificate": a certificate's fingerprint. Not "SHA-1 of
        # files signed with a stolen certificate", nor "SHA-256 (payload fetched over TLS)":
        # those are files' hashes, and read as fingerprints they would leave every blocklist
        # and EDR feed of hashes.
        common = frozenset(_X509_OF_HASH[t] for t in common if t in _X509_OF_HASH)
    if not common:
        raise ValueError(f"ambiguous indicator type {text!r}")
    return TypeHint(common, exact=False)


# Words too vague to decide a type on their own inside a longer label.
# ("registry" alone is a type name; inside a label it may be a domain registry. "as" and "mac"
# too: "seen as C2", "MAC of the victim". "cert" may be a CERT's name.)
_VAGUE_WORDS = frozenset(
    {
        "name",
        "address",
        "file",
        "host",
        "path",
        "network",
        "pattern",
        "mail",
        "registry",
        "as",
        "mac",
        "cert",
        "certificate",
    }
)
# Words that make a hash named in a longer label a certificate's fingerprint ("TLS" or "SSL"
# alone do not: "payloads fetched over TLS", "SSL VPN exploit"), unless the label also speaks of
# files, which certificates sign.
_CERTIFICATE_WORDS = frozenset({"x509", "cert", "certs", "certificate", "certificates"})
_FILE_WORDS = frozenset(
    """file files sample samples payload payloads binary binaries executable executables signed
    signing signature signatures malware dropper droppers attachment attachments implant
    implants tool tools""".split()
)
_X509_OF_HASH = {
    IocType.MD5: IocType.X509_MD5,
    IocType.SHA1: IocType.X509_SHA1,
    IocType.SHA256: IocType.X509_SHA256,
}


def type_hint_name(allowed: frozenset[IocType]) -> str:
    """A short human name for a set of allowed types, for messages."""
    if allowed == HASH_TYPES:
        return "hash"
    if allowed == X509_TYPES:
        return "X.509 certificate fingerprint"
    if allowed == IP_TYPES:
        return "IP address"
    return " or ".join(sorted(t.value for t in allowed))
