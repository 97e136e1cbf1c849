"""Files shipped with cti-exchange: JSON Schemas (schemas/) and the sample inputs (examples/).

In a wheel they live inside the package (`_schemas`, `_examples`, see pyproject.toml); in a
source checkout or an editable install they are the top-level `schemas/` and `examples/`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped_dir(packaged: str, top_level: str) -> Path:
    inside = _PACKAGE_DIR / packaged
    if inside.is_dir():
        return inside
    return _PACKAGE_DIR.parent / top_level


def schemas_dir() -> Path:
    return _shipped_dir("_schemas", "schemas")


def examples_dir() -> Path:
    return _shipped_dir("_examples", "examples")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema from schemas/, e.g. load_schema('profile.schema.json')."""
    with open(schemas_dir() / name, encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema
