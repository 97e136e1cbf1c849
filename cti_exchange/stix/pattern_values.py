"""The indicator value a STIX pattern detects, when the pattern is one comparison of a value
(as cti-exchange builds them, and as most producers write single indicators) or a host and a
port: `[ipv4-addr:value = '203.0.113.7']` -> (`ipv4-addr`, `203.0.113.7`), or an autonomous
system's number (`[autonomous-system:number = 64496]`, an integer literal). Anything more complex
gives (None, None) and stays a pattern. Used by the store's projection (hot path: one call per
stored indicator), the sharing policy's messages and migrations.
"""

from __future__ import annotations

import re

# [ipv4-addr:value = '203.0.113.7'] or [file:hashes.'SHA-256' = '...'] (STIX 2.1 section 9).
_SIMPLE_PATTERN = re.compile(
    r"^\[(?P<type>[a-z0-9-]+):(?P<path>[A-Za-z0-9_.'\-]+) = '(?P<value>(?:[^'\\]|\\.)*)'\]$"
)
_IOC_TYPES = {
    ("ipv4-addr", "value"): "ipv4-addr",
    ("ipv6-addr", "value"): "ipv6-addr",
    ("domain-name", "value"): "domain-name",
    ("url", "value"): "url",
    ("email-addr", "value"): "email-addr",
    ("file", "name"): "file-name",
    ("file", "hashes.'MD5'"): "md5",
    ("file", "hashes.MD5"): "md5",
    ("file", "hashes.'SHA-1'"): "sha1",
    ("file", "hashes.'SHA-256'"): "sha256",
    ("file", "hashes.'SHA-512'"): "sha512",
    ("mutex", "name"): "mutex",
    ("windows-registry-key", "key"): "windows-registry-key",
    ("email-message", "subject"): "email-subject",
    ("file", "hashes.SSDEEP"): "ssdeep",
    ("file", "hashes.'SSDEEP'"): "ssdeep",
    ("x509-certificate", "hashes.MD5"): "x509-md5",
    ("x509-certificate", "hashes.'MD5'"): "x509-md5",
    ("x509-certificate", "hashes.'SHA-1'"): "x509-sha1",
    ("x509-certificate", "hashes.'SHA-256'"): "x509-sha256",
    ("mac-addr", "value"): "mac-addr",
}
# [autonomous-system:number = 64496]: an integer (STIX 2.1 section 6.2), never quoted; a quoted
# number compares a string with an integer property and is left as a pattern.
_AS_PATTERN = re.compile(r"^\[autonomous-system:number = (?P<number>0|[1-9][0-9]{0,9})\]\Z")
_MAX_AS_NUMBER = 4294967295


_RANGE_TYPES = {"ipv4-addr:value": "ipv4-addr", "ipv6-addr:value": "ipv6-addr"}

# A host and a port, as stix/patterns.py builds it for `1.2.3.4:443`, `[2001:db8::1]:443` and
# `c2.example:8080`, optionally naming the host's type first, as other producers write it.
_PORT_PATTERN = re.compile(
    r"^\[(?:network-traffic:dst_ref\.type = '(?P<ref_type>ipv4-addr|ipv6-addr|domain-name)' AND )?"
    r"network-traffic:dst_ref\.value = '(?P<host>(?:[^'\\]|\\.)*)' "
    r"AND network-traffic:dst_port = (?P<port>[1-9][0-9]{0,4})\]\Z"
)
_IPV4_SHAPE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}\Z")


def indicator_value(pattern: str | None) -> tuple[str | None, str | None]:
    if not pattern:
        return None, None
    # Fast path, same result as the regular expression: "[type:path = 'value']" where the
    # value holds no quote or backslash (nothing to unescape, no second comparison).
    if pattern[0] == "[" and pattern[-2:] == "']":
        head, sep, value = pattern[1:-2].partition(" = '")
        if sep and "'" not in value and "\\" not in value:
            kind = _IOC_TYPES.get(tuple(head.split(":", 1)))  # type: ignore[arg-type]
            return (kind, value) if kind is not None else (None, None)
        # A CIDR range: [ipv4-addr:value ISSUBSET '198.51.100.0/24']. Blocklists and IDS rules
        # take ranges where they take addresses, so it is listed with the addresses.
        head, sep, value = pattern[1:-2].partition(" ISSUBSET '")
        if sep and head in _RANGE_TYPES and "'" not in value and "\\" not in value:
            return _RANGE_TYPES[head], value
    match = _SIMPLE_PATTERN.match(pattern)
    if not match:
        if pattern.startswith("[autonomous-system:"):
            return _autonomous_system(pattern)
        return _host_and_port(pattern)
    kind = _IOC_TYPES.get((match["type"], match["path"]))
    if kind is None:
        return None, None
    value = match["value"]
    if "\\" in value:
        value = re.sub(r"\\(.)", r"\1", value)
    return kind, value


def _autonomous_system(pattern: str) -> tuple[str | None, str | None]:
    """(`autonomous-system`, `64496`) for `[autonomous-system:number = 64496]`."""
    match = _AS_PATTERN.match(pattern)
    if match is None or int(match["number"]) > _MAX_AS_NUMBER:
        return None, None
    return "autonomous-system", match["number"]


def _host_and_port(pattern: str) -> tuple[str | None, str | None]:
    """(`ipv4-port`, `1.2.3.4:443`), (`ipv6-port`, `[2001:db8::1]:443`) or (`domain-port`,
    `c2.example:8080`) for a host-and-port pattern: blocklists and IDS rules take them. The
    host's shape decides its type; a stated `dst_ref.type` must agree with it."""
    match = _PORT_PATTERN.match(pattern)
    if match is None or int(match["port"]) > 65535:
        return None, None
    host = match["host"]
    if "\\" in host:
        host = re.sub(r"\\(.)", r"\1", host)
    if ":" in host:
        kind, value = "ipv6-port", f"[{host}]:{match['port']}"
    elif _IPV4_SHAPE.match(host):
        kind, value = "ipv4-port", f"{host}:{match['port']}"
    else:
        kind, value = "domain-port", f"{host}:{match['port']}"
    stated = match["ref_type"]
    if stated is not None and stated.partition("-")[0] != kind.partition("-")[0]:
        return None, None
    return kind, value
