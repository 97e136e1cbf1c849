"""How deeply a STIX document nests, bounded.

The store writes each object with orjson, which stops at 255 levels (orjson reads up to 1024,
the standard library to its recursion limit). STIX objects need fewer than ten. A document
nested deeper than MAX_NESTING is refused where it comes in: by `open` and `pull` as an
envelope (a signed bundle nested deeper was opened, then failed to be stored with an internal
error at every pull and sync from then on), and by the readers as an input file (we would
otherwise share what partners refuse).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

MAX_NESTING = 255


def nesting_beyond_limit(document: Any) -> int | None:
    """How deeply `document` nests lists and objects when that is more than MAX_NESTING, else
    None. About 0.5 us an object in the usual case: orjson writes it, and only when it refuses
    (too deep, or an integer beyond 64 bits, which is fine) is the depth counted."""
    try:
        orjson.dumps(document)
    except TypeError:
        depth = _nesting(document)
        return depth if depth > MAX_NESTING else None
    return None


def _nesting(value: Any) -> int:
    """How deeply `value` nests lists and objects, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest
