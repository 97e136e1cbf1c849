"""Choosing the reader for a file: from its content, unless the user forces a format.

Only the first 64 KiB are looked at:
- JSON (the first character is `{`, or `[` followed by `{`): MISP when it has an `"Event"` or
  `"response"` key, STIX otherwise;
- text whose first row (after blank lines, `#` comments and an Excel `sep=` line) is a CSV
  header naming an indicator column: CSV; but a one-cell first row that ends with a colon, or
  is followed by such a row ("Domains:" ... "IP addresses:"), titles a section of a text list,
  and one with a label before its value ("C2 URL: evil.example:443") is a line of one;
- anything else: a plain-text IOC list.
The file extension is not used: exports are often misnamed (`.txt` CSVs, `.json` MISP events).
"""

from __future__ import annotations

import re
from pathlib import Path

from cti_exchange.errors import InputError, UsageError
from cti_exchange.readers.csv_reader import CsvReader, header_columns
from cti_exchange.readers.interface import Reader, ReadLimits
from cti_exchange.readers.lines import looks_binary, sniff_encoding
from cti_exchange.readers.misp_reader import MispReader
from cti_exchange.readers.stix_reader import StixReader
from cti_exchange.readers.text_reader import TextReader

READERS: dict[str, type[Reader]] = {
    "csv": CsvReader,
    "text": TextReader,
    "stix": StixReader,
    "misp": MispReader,
}
FORMATS = tuple(READERS)
_HEAD_BYTES = 64 * 1024
_JSON_START = re.compile(r"\s*(?:\{|\[\s*(?:\{|\]))")
_MISP_KEY = re.compile(r'"(?:Event|response)"\s*:')
_STIX_BUNDLE = re.compile(r'"type"\s*:\s*"bundle"')
_SEP_LINE = re.compile(r"\s*sep=.\s*", re.IGNORECASE)
# "Label: value": a colon, a space, then more (a column named "IPV4:PORT" has no space).
_LABELLED = re.compile(r":\s+\S")


def detect_format(path: Path) -> str:
    """'csv', 'text', 'stix' or 'misp' for the file at `path` (see the module docstring)."""
    try:
        with path.open("rb") as stream:
            head = stream.read(_HEAD_BYTES)
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None
    if looks_binary(head):
        raise InputError(
            f"{path} looks like a binary file (it contains NUL bytes)",
            hint="give a text, CSV, STIX or MISP JSON file",
        )
    encoding, bom_length = sniff_encoding(head)
    text = head[bom_length:].decode(encoding or "utf-8", errors="replace")
    if _JSON_START.match(text):
        if _MISP_KEY.search(text) and not _STIX_BUNDLE.search(text):
            return "misp"
        return "stix"
    lines = text.splitlines()
    for index, line in enumerate(lines[:50]):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or _SEP_LINE.fullmatch(stripped):
            continue
        header = header_columns(line)
        if header is None:
            return "text"
        if len(header[1]) == 1 and (
            stripped.endswith(":")
            or _LABELLED.search(stripped) is not None
            or any(_is_title(later) for later in lines[index + 1 :])
        ):
            # "Domains:" titles a section of a text list, "C2 URL: evil.example:443" labels a
            # value: neither is a column name.
            return "text"
        return "csv"
    return "text"


def _is_title(line: str) -> bool:
    """A line such as "IP addresses:": a type name ending with a colon, alone on its line."""
    stripped = line.strip()
    return stripped.endswith(":") and header_columns(stripped) is not None


def reader_for(
    path: Path, forced_format: str | None, limits: ReadLimits, *, include_non_ids: bool = False
) -> Reader:
    """The reader for `path`: the forced format's, or the detected one's."""
    if forced_format is not None:
        name = forced_format.lower()
        if name not in READERS:
            raise UsageError(f"unknown format {forced_format!r}", hint=f"use one of {', '.join(FORMATS)}")
    else:
        name = detect_format(path)
    if name == "misp":
        return MispReader(limits, include_non_ids=include_non_ids)
    return READERS[name](limits)
