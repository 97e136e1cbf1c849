"""Loading a JSON input (STIX or MISP) safely: bounded size, bounded depth, strict syntax.

- Files above `max_json_bytes` are refused before reading: parsed JSON takes several times
  its size in memory.
- Nesting deeper than the interpreter's recursion limit (about 1,000 levels) is refused: the
  json module raises RecursionError there instead of crashing, and we report it.
- Duplicate keys are refused: parsers disagree on which one wins (RFC 8259 section 4), and a
  signed or validated view could differ from what a consumer reads.
- NaN and Infinity, which Python accepts but JSON does not, are refused.
- The text must be UTF-8, UTF-16 or UTF-32 (RFC 8259 section 8.1).

A file that stops before its document does (an interrupted copy or download; `head -c`) is
reported as truncated, with where it ends and what it ends inside; any other syntax error as
malformed JSON at its line and column.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import Any

from cti_exchange.errors import InputError
from cti_exchange.readers.lines import binary_file_error, looks_binary, sniff_encoding
from cti_exchange.stix.nesting import MAX_NESTING, nesting_beyond_limit


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
        raise binary_file_error(label, data[:8192])
    return parse_json(data, label)


def parse_json(data: bytes, label: str) -> Any:
    """The parsed document; InputError with a one-line reason for malformed or truncated JSON,
    a key given twice in one object (parsers disagree on which one counts), NaN or a lone
    surrogate."""
    try:
        # As json.loads(bytes) decodes, but a character cut in two at the end of the file (a
        # truncated download) is left out, so that the JSON before it reads as truncated.
        decoder = codecs.getincrementaldecoder(json.detect_encoding(data))("surrogatepass")
        text = decoder.decode(data, final=False)
        cut_character = bool(decoder.getstate()[0])
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        raise _syntax_error(error, text, label) from None
    except UnicodeDecodeError:
        raise InputError(f"{label} is not UTF-8 JSON", hint="save it as UTF-8") from None
    except RecursionError:
        raise InputError(f"{label}: JSON nested too deeply to be a STIX or MISP file") from None
    except _DuplicateKey as error:
        raise InputError(f"{label}: the key {str(error)[:60]!r} appears twice in one object") from None
    except ValueError as error:  # NaN / Infinity, or json's own ValueErrors
        raise InputError(f"{label}: invalid JSON: {str(error)[:100]}") from None
    if cut_character:  # a whole document, then the start of a character
        raise InputError(f"{label} is not UTF-8 JSON", hint="save it as UTF-8")
    if (depth := nesting_beyond_limit(document)) is not None:
        # Partners refuse an envelope nested so deep (stix/nesting.py): never shared.
        raise InputError(
            f"{label}: JSON nested {depth} levels deep (at most {MAX_NESTING}): "
            "too deep to be a STIX or MISP file"
        )
    wide = sniff_encoding(data[:4])[0] not in (None, "utf-8")
    if wide or _SURROGATE_ESCAPE.search(data) is not None:
        _refuse_lone_surrogates(document, label)
    return document


_TRUNCATED_HINT = "the file was cut (copy or download it again)"
# What is left from where the json module stopped, when the text ends inside a token: the
# start of a literal or of a negative number (json says "Expecting value" at its first
# character), the fraction or exponent of a number ("Expecting ',' delimiter" or "Extra data"
# after its digits), a \u escape ("Invalid \uXXXX escape": json wants a character after it).
_CUT_LITERAL = re.compile(r"(?:t|tr|tru|f|fa|fal|fals|n|nu|nul|-)\Z")
_CUT_FRACTION = re.compile(r"(?<![-+.0-9eE])-?(?:0|[1-9][0-9]*)\Z")
_CUT_EXPONENT = re.compile(r"(?<![-+.0-9eE])-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?\Z")
_CUT_ESCAPE = re.compile(r"u[0-9a-fA-F]{0,4}\Z")
# Strings (whole, or one left open at the end) and brackets: to find what the text ends inside.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|"|[\[\]{}]', re.DOTALL)


def _syntax_error(error: json.JSONDecodeError, text: str, label: str) -> InputError:
    """Truncated when the text ends before the document does, malformed otherwise."""
    if not text.strip():
        return InputError(f"{label} is empty", hint="give a STIX bundle or MISP event, or copy it again")
    if _ends_early(error, text):
        end = len(text.rstrip())
        if error.msg.startswith("Unterminated string"):
            inside = _unterminated_string(text, error.pos)  # json says where it starts
        else:
            inside = _open_at_end(text)
        return InputError(
            f"{label}: truncated JSON: the file ends early at line {_line_column(text, end - 1)[0]}: "
            f"{inside}",
            hint=_TRUNCATED_HINT,
        )
    line, column = _line_column(text, error.pos)
    reason = error.msg.removesuffix(" starting at").removesuffix(" at")
    return InputError(
        f"{label}: malformed JSON at line {line} column {column}: {reason}",
        hint="correct the JSON there, or export the file again",
    )


def _ends_early(error: json.JSONDecodeError, text: str) -> bool:
    """Whether the json module stopped because the text ended: more text could still make a
    valid document of it."""
    rest = text[error.pos :]
    message = error.msg
    if not rest.strip() or message.startswith("Unterminated string"):
        return True
    before = text[: error.pos]
    if message == "Expecting value":
        return _CUT_LITERAL.match(rest) is not None
    if message in ("Expecting ',' delimiter", "Extra data"):
        if rest == ".":
            return _CUT_FRACTION.search(before) is not None
        if rest in ("e", "E", "e+", "e-", "E+", "E-"):
            return _CUT_EXPONENT.search(before) is not None
        return False
    if message.startswith("Invalid \\uXXXX escape"):
        return _CUT_ESCAPE.match(rest) is not None
    return False


def _open_at_end(text: str) -> str:
    """What a truncated text ends inside: the string left open, else the innermost object or
    array, with where it starts."""
    open_brackets: list[int] = []
    for token in _TOKENS.finditer(text):
        start = token.start()
        kind = token.group()
        if kind == '"':
            return _unterminated_string(text, start)
        if kind == "[" or kind == "{":
            open_brackets.append(start)
        elif (kind == "]" or kind == "}") and open_brackets:
            open_brackets.pop()
    if not open_brackets:
        return "an incomplete value"
    start = open_brackets[-1]
    line, column = _line_column(text, start)
    what = "an unclosed object ('{')" if text[start] == "{" else "an unclosed array ('[')"
    return f"{what} that starts at line {line} column {column}"


def _unterminated_string(text: str, start: int) -> str:
    line, column = _line_column(text, start)
    return f"an unterminated string that starts at line {line} column {column}"


def _line_column(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of `position`, as the json module counts them."""
    position = max(position, 0)
    line_start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, position) + 1, position - line_start + 1


# "\ud800".."\udfff" escapes: a pair encodes one character, a lone one is not Unicode text and
# could not be written out again as UTF-8. Only files that have such escapes are walked.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_lone_surrogates(document: Any, label: str) -> None:
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{label} holds an invalid Unicode escape (a lone surrogate)") from None
