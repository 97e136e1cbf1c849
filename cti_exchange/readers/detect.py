"""Choosing the reader for a file: from its content, unless the user forces a format.

Only the first 64 KiB are looked at:
- JSON (the first character is `{`, or `[` followed by `{`, `"`, `[` or `]`): MISP when it
  has an `"Event"` or `"response"` key, STIX otherwise;
- text whose first row (after the head: blank lines, `#` comments, an Excel `sep=` line, a
  `TLP:AMBER` line, see file_head.py) is a Snort or Suricata rule: a rules file, read as text,
  where each rule line is a rule indicator. Its `;`-separated options are no CSV row: read as
  CSV, `dns.query` and `tls.sni` became domain columns and their values fake indicators;
- text whose first row (after the head) is a CSV header naming an indicator column: CSV; but
  a one-cell first row that ends with a colon, or is followed by such a row ("Domains:" ...
  "IP addresses:"), titles a section of a text list, and one with a label before its value
  ("C2 URL: evil.example:443") is a line of one;
- text whose first row is a row of data of a CSV file without a header: its first word is
  cells joined by `,` or `;`, one of them an indicator (`evil[.]com,domain`): CSV
  (`csv_reader.first_row_is_data`);
- text whose first rows (after the head) are up to three title lines above a CSV header
  naming an indicator column (csv_reader.py `title_lines`): CSV;
- text whose first row (after the head) is cells, one of them a tlp column's name (`TLP`,
  `TLP Level`, `Marking`), but none an indicator column's (`Threat Indicator<TAB>TLP`): CSV,
  which refuses it, naming the header; read as text, its tlp column would be dropped and the
  values marked with the default TLP;
- anything else: a plain-text IOC list.
The file extension is not used: exports are often misnamed (`.txt` CSVs, `.json` MISP events).

A CSV file whose header names no indicator column (`vaule,type`) is read as text. When that
gives nothing usable, `misnamed_csv_header` lets the caller say what is wrong with the header
instead: a first row of two or more column-like names, with every following row (up to 20) of
as many cells, and the name ending `.csv` or `.tsv` or at least two such rows.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from cti_exchange.errors import InputError, UsageError
from cti_exchange.readers.csv_reader import (
    CsvReader,
    detect_delimiter,
    first_row_is_data,
    header_columns,
    names_tlp_column,
    title_lines,
)
from cti_exchange.readers.file_head import is_head_line, is_marking_line
from cti_exchange.readers.interface import Reader, ReadLimits
from cti_exchange.readers.lines import binary_file_error, looks_binary, sniff_encoding
from cti_exchange.readers.misp_reader import MispReader
from cti_exchange.readers.stix_reader import StixReader
from cti_exchange.readers.text_reader import TextReader
from cti_exchange.readers.text_tables import is_table_row
from cti_exchange.stix.ioc_types import IocType, detect_rule_type
from cti_exchange.stix.type_hints import read_type_hint

READERS: dict[str, type[Reader]] = {
    "csv": CsvReader,
    "text": TextReader,
    "stix": StixReader,
    "misp": MispReader,
}
FORMATS = tuple(READERS)
_HEAD_BYTES = 64 * 1024
# `[` then `"` or `[` too: a JSON array of strings (`["1.2.3.4", "evil.com"]`) or of arrays,
# which the STIX reader names as such; read as text, it was one unrecognised "indicator", and
# a document nested deep one line too long instead of nested too deep.
_JSON_START = re.compile(r"\s*(?:\{|\[\s*(?:\{|\]|\"|\[))")
_MISP_KEY = re.compile(r'"(?:Event|response)"\s*:')
_STIX_BUNDLE = re.compile(r'"type"\s*:\s*"bundle"')
_SEP_LINE = re.compile(r"\s*sep=.\s*", re.IGNORECASE)
_IDS_RULES = (IocType.SNORT, IocType.SURICATA)
# "Label: value": a colon, a space, then more (a column named "IPV4:PORT" has no space).
_LABELLED = re.compile(r":\s+\S")


def _head_text(path: Path) -> str:
    """The first 64 KiB of the file, decoded."""
    try:
        with path.open("rb") as stream:
            head = stream.read(_HEAD_BYTES)
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None
    if looks_binary(head):
        raise binary_file_error(str(path), head)
    encoding, bom_length = sniff_encoding(head)
    return head[bom_length:].decode(encoding or "utf-8", errors="replace")


def detect_format(path: Path) -> str:
    """'csv', 'text', 'stix' or 'misp' for the file at `path` (see the module docstring)."""
    text = _head_text(path)
    if _JSON_START.match(text):
        if _MISP_KEY.search(text) and not _STIX_BUNDLE.search(text):
            return "misp"
        return "stix"
    lines = text.splitlines()
    for index, line in enumerate(lines[:50]):
        stripped = line.strip()
        if is_head_line(stripped):
            continue
        if detect_rule_type(stripped) in _IDS_RULES:
            return "text"  # a rules file: each rule line is a rule indicator (text_reader.py)
        if is_table_row(stripped):
            return "text"  # a Markdown or AsciiDoc table (`| SHA-256 | Details |`): text_tables.py
        if first_row_is_data(stripped):
            return "csv"
        header = header_columns(line)
        if header is None:
            # A header with a tlp column but no indicator column (`Threat Indicator,TLP`):
            # read as text, its tlp column would be dropped and its values go out under the
            # default TLP. Read as CSV, it is refused, naming the header. A title above a
            # header row (`IOCs for campaign X`): CSV, the title in its head.
            return "csv" if names_tlp_column(line) or title_lines(lines) else "text"
        if len(header[1]) == 1 and (
            stripped.endswith(":")
            or _LABELLED.search(stripped) is not None
            or (_COLUMN_NAME.fullmatch(stripped) is None and not _names_a_type(stripped))
            or any(_is_title(later) for later in lines[index + 1 :])
        ):
            # "Domains:" titles a section of a text list, "C2 URL: evil.example:443" labels a
            # value, "IP a[.]com" is a line of prose with a value in it (a dot, brackets): none
            # is a column name.
            return "text"
        return "csv"
    return "text"


# A column name as people write them ("IP Address", "first_seen", "Hash (SHA-256)"); not a
# value: no dots, colons or brackets, which domains, URLs, labels and defanged values have.
_COLUMN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9 _()/#+-]{0,39}")
_CSV_SUFFIXES = (".csv", ".tsv")
_ROWS_COMPARED = 20


def misnamed_csv_header(path: Path) -> tuple[int, list[str]] | None:
    """(line number, cells) of the first row when the file looks like CSV whose header names no
    indicator column (see the module docstring); None otherwise, or when it cannot be read."""
    try:
        text = _head_text(path)
        cut = path.stat().st_size > _HEAD_BYTES
    except (InputError, OSError):
        return None
    lines = text.splitlines()
    if cut:
        lines = lines[:-1]  # the last line may be cut
    delimiter: str | None = None
    header: tuple[int, str, list[str]] | None = None
    rows: list[list[str]] = []
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or (header is None and is_marking_line(stripped)):
            continue
        if header is None and delimiter is None and _SEP_LINE.fullmatch(stripped):
            delimiter = stripped.split("=", 1)[1].strip()[:1] or None
            continue
        delimiter = delimiter or detect_delimiter(line)
        try:
            cells = next(csv.reader([line], delimiter=delimiter), [])
        except csv.Error:
            return None
        if header is None:
            header = (number, line, cells)
            continue
        rows.append(cells)
        if len(rows) == _ROWS_COMPARED:
            break
    if header is None or not rows:
        return None
    number, line, cells = header
    names = [cell.strip() for cell in cells if cell.strip()]
    if (
        len(names) < 2
        or not all(_COLUMN_NAME.fullmatch(name) for name in names)
        or header_columns(line) is not None
        or any(len(row) != len(cells) for row in rows)
        or (len(rows) < 2 and path.suffix.lower() not in _CSV_SUFFIXES)
    ):
        return None
    return number, cells


def _names_a_type(cell: str) -> bool:
    """Whether the cell is a type's name as a whole (`IPV4:PORT`, Unit 42's column), not a label
    with a type word in it (`IP a[.]com`)."""
    try:
        return read_type_hint(cell).exact
    except ValueError:
        return False


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
