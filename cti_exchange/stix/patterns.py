"""STIX 2.1 patterns: built by construction for our indicators, validated when they come in.

`pattern_for` never formats a value into a pattern without escaping it as a STIX string
literal (STIX 2.1 section 9.3, Constants, string type: inside single quotes a backslash and a
quote are the only characters that must be escaped, as `\\\\` and `\\'`). With the backslash
escaped first, no input can close the literal early and inject comparison operators: the
property-based tests parse every built pattern with stix2-patterns and read the value back.

Free-form patterns from input (a STIX bundle, a `stix` type column) are checked with the OASIS
grammar in stix2-patterns. Patterns of other `pattern_type`s (YARA, Sigma, Snort, Suricata) are
not STIX and pass through unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from cti_exchange.stix.ioc_types import IocType

# Patterns longer than this are refused before parsing: the ANTLR parser is slow on huge input.
MAX_PATTERN_LENGTH = 64 * 1024

_TEMPLATES = {
    IocType.IPV4: "[ipv4-addr:value = '{}']",
    # ISSUBSET matches any address inside the range (section 9.5, comparison operators); "=" would
    # only match an ipv4-addr object whose value is literally the same CIDR text.
    IocType.IPV4_CIDR: "[ipv4-addr:value ISSUBSET '{}']",
    IocType.IPV6: "[ipv6-addr:value = '{}']",
    IocType.IPV6_CIDR: "[ipv6-addr:value ISSUBSET '{}']",
    IocType.DOMAIN: "[domain-name:value = '{}']",
    IocType.URL: "[url:value = '{}']",
    IocType.EMAIL: "[email-addr:value = '{}']",
    # Hash names from the hash-algorithm-ov vocabulary; names with a hyphen are quoted object
    # path components (section 9.4, object path syntax).
    IocType.MD5: "[file:hashes.MD5 = '{}']",
    IocType.SHA1: "[file:hashes.'SHA-1' = '{}']",
    IocType.SHA256: "[file:hashes.'SHA-256' = '{}']",
    IocType.SHA512: "[file:hashes.'SHA-512' = '{}']",
    IocType.FILE_NAME: "[file:name = '{}']",
    # Host artefacts (STIX 2.1 sections 6.11 and 6.17); `Global\x` is written 'Global\\x'.
    IocType.MUTEX: "[mutex:name = '{}']",
    IocType.WINDOWS_REGISTRY_KEY: "[windows-registry-key:key = '{}']",
    # STIX 2.1 sections 6.5 (email-message), 6.7 (file hashes: SSDEEP is in hash-algorithm-ov),
    # 6.10 (mac-addr) and 6.18 (x509-certificate hashes).
    IocType.EMAIL_SUBJECT: "[email-message:subject = '{}']",
    IocType.SSDEEP: "[file:hashes.SSDEEP = '{}']",
    IocType.X509_MD5: "[x509-certificate:hashes.MD5 = '{}']",
    IocType.X509_SHA1: "[x509-certificate:hashes.'SHA-1' = '{}']",
    IocType.X509_SHA256: "[x509-certificate:hashes.'SHA-256' = '{}']",
    IocType.MAC_ADDR: "[mac-addr:value = '{}']",
}
# An autonomous system's `number` is an integer (STIX 2.1 section 6.2): compared with an
# integer literal, not a quoted string.
_AS_TEMPLATE = "[autonomous-system:number = {}]"
_PORT_TEMPLATE = "[network-traffic:dst_ref.value = '{}' AND network-traffic:dst_port = {}]"


def escape_string_literal(value: str) -> str:
    """`value` escaped for use between single quotes in a STIX pattern."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def unescape_string_literal(literal: str) -> str:
    """The value of a quoted STIX string literal such as `'a\\'b'` (quotes included)."""
    body = literal[1:-1] if len(literal) >= 2 and literal[0] == literal[-1] == "'" else literal
    return re.sub(r"\\(.)", r"\1", body, flags=re.DOTALL)


def pattern_for(ioc_type: IocType, value: str) -> str:
    """The STIX pattern (or rule text) that detects the normalised `value` of `ioc_type`.

    Raises ValueError for CVE ids, which become vulnerability objects, not indicators.
    """
    template = _TEMPLATES.get(ioc_type)
    if template is not None:
        return template.format(escape_string_literal(value))
    if ioc_type is IocType.IPV4_PORT or ioc_type is IocType.DOMAIN_PORT:
        address, _, port = value.rpartition(":")
        return _PORT_TEMPLATE.format(escape_string_literal(address), int(port))
    if ioc_type is IocType.IPV6_PORT:
        address, _, port = value[1:].rpartition("]:")
        return _PORT_TEMPLATE.format(escape_string_literal(address), int(port))
    if ioc_type is IocType.AUTONOMOUS_SYSTEM:
        if not value.isascii() or not value.isdigit():  # int() would take " 1_0 "
            raise ValueError(f"autonomous system number {value!r} is not a decimal number")
        return _AS_TEMPLATE.format(int(value))
    if ioc_type.is_rule or ioc_type is IocType.STIX_PATTERN:
        return value
    raise ValueError(f"{ioc_type.value} values are not shared as indicator patterns")


def validate_stix_pattern(pattern: str) -> str | None:
    """None when `pattern` is a valid STIX 2.1 pattern, else the first error as text."""
    if not isinstance(pattern, str) or not pattern.strip():
        return "the pattern is empty"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"the pattern is longer than {MAX_PATTERN_LENGTH} characters"
    from stix2patterns.validator import run_validator

    try:
        errors = run_validator(pattern, stix_version="2.1")
    except RecursionError:
        return "the pattern is nested too deeply"
    except Exception as error:
        return f"the pattern could not be parsed ({type(error).__name__})"
    if not errors:
        return None
    return " ".join(str(errors[0]).removeprefix("FAIL: ").split())


_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")
_INTEGER_MEMBER = re.compile(r"(?<![\w.])-?[0-9]+(?![\w.])")


def comparisons_in(pattern: str) -> list[tuple[str, str, str, Any]]:
    """(object type, property path, operator, value) for each comparison in a valid pattern.

    String values are unescaped; paths are dotted ("hashes.SHA-256"). Used to check the values
    inside patterns that arrive in STIX input against the same guardrails as our own values.
    """
    from stix2patterns.v21.pattern import Pattern

    try:
        data = Pattern(pattern).inspect()
    except Exception:
        return []
    found = []
    for object_type, comparisons in data.comparisons.items():
        for path, operator, literal in comparisons:
            dotted = ".".join(str(part) for part in path)
            value: Any = literal
            if isinstance(literal, str) and literal.startswith("'"):
                value = unescape_string_literal(literal)
            elif operator == "IN" and isinstance(literal, str):
                # The set's string members, each unescaped: `('10.1.2.3', '8.8.8.8')`; or its
                # integers as text (`(64512, 0)`, autonomous system numbers), as `=` gives them.
                strings = _STRING_LITERAL.findall(literal)
                value = tuple(unescape_string_literal(m) for m in strings) or tuple(
                    _INTEGER_MEMBER.findall(literal)
                )
            found.append((object_type, dotted, operator, value))
    return found
