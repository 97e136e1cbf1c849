"""Loading a JSON input (STIX or MISP) safely: bounded size, bounded depth, strict syntax.

- Files above `max_json_bytes` are refused before reading: parsed JSON takes several times
  its size in memory.
- Nesting deeper than the interpreter's recursion limit (about 1,000 levels) is refused: the
  json module raises RecursionError there instead of crashing, and we report it.
- Duplicate keys are refused: parsers disagree on which one wins (RFC 8259 section 4), and a
  signed or validated view could differ from what a consumer reads.
- NaN and Infinity, which Python accepts but JSON does not, are refused.
- The text must be UTF-8, UTF-16 or UTF-32 (RFC 8259 section 8.1).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cti_exchange.errors import InputError
from cti_exchange.readers.lines import looks_binary, sniff_encoding


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json(path: Path, max_bytes: int, label: str) -> Any:
    """The parsed JSON document at `path`; InputError with a one-line reason otherwise."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(
                f"{label} is {size:,} bytes; JSON inputs are limited to {max_bytes:,} bytes",
                hint="split the file, or raise the limit with --max-json-mb",
            )
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as error:
        raise InputError(f"cannot read {label}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise InputError(f"{label} is larger than {max_bytes:,} bytes")
    if looks_binary(data[:8192]):
        raise InputError(f"{label} looks like a binary file (it contains NUL bytes)")
    return parse_json(data, label)


def parse_json(data: bytes, label: str) -> Any:
    """The parsed document; InputError with a one-line reason for malformed JSON, a key given
    twice in one object (parsers disagree on which one counts), NaN or a lone surrogate."""
    try:
        document = json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        what = "truncated JSON" if error.pos >= len(data.rstrip()) else "malformed JSON"
        raise InputError(f"{label}: {what} at {where}: {error.msg}") from None
    except UnicodeDecodeError:
        raise InputError(f"{label} is not UTF-8 JSON", hint="save it as UTF-8") from None
    except RecursionError:
        raise InputError(f"{label}: JSON nested too deeply to be a STIX or MISP file") from None
    except _DuplicateKey as error:
        raise InputError(f"{label}: the key {str(error)[:60]!r} appears twice in one object") from None
    except ValueError as error:  # NaN / Infinity, or json's own ValueErrors
        raise InputError(f"{label}: invalid JSON: {str(error)[:100]}") from None
    wide = sniff_encoding(data[:4])[0] not in (None, "utf-8")
    if wide or _SURROGATE_ESCAPE.search(data) is not None:
        _refuse_lone_surrogates(document, label)
    return document


# "\ud800".."\udfff" escapes: a pair encodes one character, a lone one is not Unicode text and
# could not be written out again as UTF-8. Only files that have such escapes are walked.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_lone_surrogates(document: Any, label: str) -> None:
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{label} holds an invalid Unicode escape (a lone surrogate)") from None
