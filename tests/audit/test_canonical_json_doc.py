"""docs/AUDIT.md states the canonical JSON exactly, so a verifier in another language can
reproduce every hash: the Python call it gives is the one the trail uses, and each rule it
states (key order, escapes, numbers) holds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cti_exchange.audit.chain import canonical_json

DOC = (Path(__file__).parents[2] / "docs" / "AUDIT.md").read_text(encoding="utf-8")


def test_the_documented_python_call_is_the_one_the_trail_uses() -> None:
    call = re.search(r"`(json\.dumps\(value, [^`]*\))`", DOC)
    assert call is not None, "AUDIT.md names the exact json.dumps call"
    sample: Any = {
        "b": [1.5, -0.0, 2**70, None, True],
        "a": 'q"\\\n\x1b\x7f\u2028é\U0001f600',
        "｡": 1,
        "😀": 2,
    }
    assert eval(call.group(1), {"json": json, "value": sample}) == canonical_json(sample)  # noqa: S307


def test_each_stated_rule_holds() -> None:
    assert "not** RFC 8785" in DOC
    # Keys by code point: U+FF61 before U+1F600 (JCS, by UTF-16 units, has them the other way).
    assert canonical_json({"😀": 1, "｡": 2}) == '{"｡":2,"😀":1}'
    assert '`"｡"`, U+FF61, comes first' in DOC
    # Escapes: the short ones, other controls as lower-case \u00XX, the rest as UTF-8 itself.
    assert (
        canonical_json('\b\t\n\f\r\x1b\x7f\u2028/é😀"\\') == '"\\b\\t\\n\\f\\r\\u001b\x7f\u2028/é😀\\"\\\\"'
    )
    assert "`\\u001b`" in DOC
    # Numbers as stated.
    for number, text in (
        (100.0, "100.0"),
        (-0.0, "-0.0"),
        (1e-7, "1e-07"),
        (1e22, "1e+22"),
        (2**70, str(2**70)),
    ):
        assert canonical_json(number) == text
        assert f"`{text}`" in DOC
    # A lone surrogate is recorded as text, which the JSON writes with its backslash escaped.
    assert canonical_json("\\udcff") == '"\\\\udcff"'
    assert "`\\\\udcff`" in DOC
