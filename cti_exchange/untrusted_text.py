"""Showing untrusted text (partner data, input files) safely on a terminal or in a report.

Control and invisible characters are shown escaped, so a value cannot inject terminal escape
sequences or reorder text (bidirectional overrides, CVE-2021-42574), and long values are cut.
Kept apart from the readers so commands that only display (triage) do not load them.
"""

from __future__ import annotations

import re
from typing import Any

MAX_SHOWN_VALUE = 80

# Control and invisible characters: C0/C1 controls, the soft hyphen, zero-width and
# bidirectional formatting characters (the Arabic letter mark among them), line and paragraph
# separators, the Mongolian vowel separator, interlinear annotation marks, the BOM, lone
# surrogates and tag characters (invisible, they can smuggle text past a reader).
UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069"
    "\ufeff\ufff9-\ufffb\ud800-\udfff\U000e0000-\U000e007f]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_controls(text: str) -> str:
    """`text` with control and invisible characters escaped (idempotent: an escape is plain
    text), for messages that may quote an input anywhere: ids, uuids, file names."""
    return UNPRINTABLE.sub(_escape, text)


def describe_value(value: Any, limit: int = MAX_SHOWN_VALUE) -> str:
    """`value` as text safe to print: control characters escaped, cut to about `limit`."""
    text = value if isinstance(value, str) else repr(value)
    shown = escape_controls(text[:limit])
    if len(text) > limit:
        return f"{shown}... ({len(text):,} characters)"
    return shown
