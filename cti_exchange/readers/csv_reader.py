"""CSV and spreadsheet exports: one indicator per row (or one per indicator column).

The header row names the columns. Names are matched ignoring case, spaces, `_`, `-` and `.`,
with common aliases (see `COLUMN_ALIASES` and docs/INGEST.md):
- `value` (also indicator, ioc, observable, c2): the indicator, its type detected or given by
  a `type` column;
- a column named after an indicator type (`SHA256`, `Domain`, `IP address`, `URL`, ...): an
  indicator of that type; a `Filename`, `ASN` or `MAC` column next to another indicator column
  is context (it goes into the description), not an indicator of its own;
- optional: type, tlp, confidence, description, valid_from, valid_until, indicator_types
  (or labels), kill_chain_phases, reference, incident_id.
Columns with other names are ignored, and listed once in a warning.

A file without a header row is read too: a first row holding an indicator (`evil[.]com,domain`,
`1.2.3.4;443;2026-01-01`) is data, since no header names a column `1.2.3.4`; the indicator must
be an address, a URL, an e-mail address, a hash or defanged (a bare `event.date` may be a
column name, see `_UNMISTAKABLE`). Its columns are
named from that row: the first indicator cell is `value`, a later one is typed as it was
detected, a cell that is exactly a type name is `type` and one like `TLP:AMBER` is `tlp`; the
other cells are not read (free text may be internal notes: it is shared only under a header
that calls it a description). One warning says so, with the fix: add a header row.

The `#` comment lines before the header row (and a line that is a TLP marking alone,
`TLP:AMBER`) are the file's head: a TLP it states marks the rows without a tlp cell
(file_head.py; ingest applies it). Up to three title lines above the header row, as
spreadsheets export them (`IOCs for campaign X`, `Export of 2026-03-01`), are part of the head
and not shared, with a warning; a title holding an indicator, naming a TLP, or a word that may
say how to handle the file (`AMBER`, `PAP`, `CONFIDENTIAL`, `do not share`) is no title (the file
is then read as text, which refuses a level that is not a marking: `title_lines`).

Excel artefacts are handled: a `sep=;` first line, `,` `;` tab or `|` delimiters (detected
from the header), padding columns and empty rows, BOMs, UTF-16, CRLF, line breaks inside
quoted fields (see `lines.py` for encodings and line limits).
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cti_exchange.errors import InputError
from cti_exchange.readers.file_head import (
    FileHead,
    floor_finding,
    floored,
    is_head_line,
    is_marking_line,
    may_name_tlp,
    named_levels,
    scan_head,
)
from cti_exchange.readers.interface import Finding, Reader, ReadItem, Rejection
from cti_exchange.readers.lines import LineSource, unify_line_breaks
from cti_exchange.spreadsheet_cells import without_formula_guard
from cti_exchange.stix.candidate import IndicatorCandidate
from cti_exchange.stix.ioc_types import HASH_TYPES, IP_TYPES, IocType, detect_ioc_type
from cti_exchange.stix.refang import is_defanged, refang
from cti_exchange.stix.type_hints import parse_type_hint, read_type_hint
from cti_exchange.untrusted_text import describe_value

_ROLE_ALIASES = {
    "value": "value indicator indicatorvalue ioc iocs iocvalue observable observablevalue c2 c2server",
    "type": "type ioctype indicatortype valuetype observabletype kind attributetype",
    "tlp": "tlp tlplevel tlpmarking marking trafficlightprotocol",
    "confidence": "confidence confidencelevel conf",
    "description": "description comment comments note notes details context remarks",
    "valid_from": "validfrom firstseen from start starttime validstart",
    "valid_until": "validuntil expires expiry expiration expirationdate validto until end",
    "indicator_types": "indicatortypes labels label",
    "kill_chain_phases": "killchainphases killchainphase killchain phase phases tactic tactics",
    "reference": "reference references externalreference externalreferences source sourceurl "
    "referenceurl link",
    "incident_id": "incidentid incident caseid case ticket ticketid incidentnumber",
}
_ROLES = tuple(_ROLE_ALIASES)
# Identifiers and bookkeeping, never an indicator: without this "stix_id" (a column of our
# own CSV export) would be read as a STIX pattern column, its word "stix" naming that type.
# Columns that describe the indicator of another column rather than being one: the file a hash
# was taken from, the network an address is in (`ip,asn,country`, as enrichment adds it: the
# hosting provider of every address would become an indicator), a host's hardware address.
# Alone, they are the indicators.
_CONTEXT_NEXT_TO_VALUES = frozenset(
    frozenset({kind}) for kind in (IocType.FILE_NAME, IocType.AUTONOMOUS_SYSTEM, IocType.MAC_ADDR)
)
_NOT_INDICATORS = frozenset("id stixid objectid uuid sources partners receivedat".split())
COLUMN_ALIASES = {alias: role for role, text in _ROLE_ALIASES.items() for alias in text.split()}

_DELIMITERS = (",", ";", "\t", "|")
_SEP_LINE = re.compile(r"\s*sep=(.)\s*", re.IGNORECASE)


def header_key(name: str) -> str:
    """A header name as compared with the aliases: 'Valid Until' -> 'validuntil'."""
    return re.sub(r"[\s_\-.\"'\ufeff]", "", name.lower())


def detect_delimiter(line: str) -> str:
    """The delimiter a header line uses most, outside quotes; ',' when it has none."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class _Columns:
    """What each column of a header means."""

    def __init__(self, header: list[str]) -> None:
        self.names = header
        self.roles: dict[str, int] = {}
        self.value_columns: list[tuple[int, str | None]] = []  # (index, type hint or None)
        self.context_columns: list[int] = []
        self.unused: list[str] = []
        typed: list[tuple[int, str, frozenset[IocType]]] = []
        for index, name in enumerate(header):
            key = header_key(name)
            if not key:
                continue  # padding column
            role = COLUMN_ALIASES.get(key)
            if role is not None and role not in self.roles:
                self.roles[role] = index
                continue
            if key in _NOT_INDICATORS:
                self.unused.append(name.strip())
                continue
            try:
                typed.append((index, name.strip(), parse_type_hint(name)))
            except ValueError:
                self.unused.append(name.strip())
        if "value" in self.roles:
            self.value_columns.append((self.roles["value"], None))
        # Context only beside a column of other indicators: `Filename,ASN` alone are both the
        # indicators of their rows.
        beside_values = "value" in self.roles or any(t not in _CONTEXT_NEXT_TO_VALUES for _, _, t in typed)
        for index, name, types in typed:
            if types in _CONTEXT_NEXT_TO_VALUES and beside_values:
                self.context_columns.append(index)
            else:
                self.value_columns.append((index, name))

    def cell(self, row: list[str], role: str) -> str | None:
        index = self.roles.get(role)
        if index is None or index >= len(row):
            return None
        return row[index].strip() or None


def _looks_like_header(columns: _Columns) -> bool:
    return bool(columns.value_columns)


def header_columns(line: str) -> tuple[str, list[str]] | None:
    """(delimiter, header cells) when `line` is a CSV header naming an indicator column; None
    for a row of data (`data_row_columns`) or a line with a defanged value in it
    (`"evil[.]com, see below",domain`): no header holds either."""
    delimiter = detect_delimiter(line)
    try:
        header = next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return None
    if data_row_columns(header) is not None or any(is_defanged(cell) for cell in header):
        return None
    return (delimiter, header) if _looks_like_header(_Columns(header)) else None


# Indicator types no column name ever looks like; and anything defanged is a value. A bare
# name is not enough: 'threat.actor', 'event.date' and 'url.full' (Elastic's field names, as
# SIEM exports write them) are domains under the top-level domains .actor, .date and .full.
_UNMISTAKABLE = frozenset({*IP_TYPES, IocType.URL, IocType.EMAIL, *HASH_TYPES})
_LONGEST_CELL_TESTED = 2048


def _indicator_in_cell(cell: str) -> IocType | None:
    """The type of the indicator `cell` holds, when it holds one no column name could be."""
    text = cell.strip()
    if not text or len(text) > _LONGEST_CELL_TESTED or COLUMN_ALIASES.get(header_key(text)) is not None:
        return None
    try:
        if read_type_hint(text).exact:
            return None  # a type name ('Domain', 'ip-dst'), not a value
    except ValueError:
        pass
    value = refang(text)
    kind = detect_ioc_type(value)
    if kind is None or kind is IocType.FILE_NAME:
        return None
    if value != text or (kind in _UNMISTAKABLE and (kind is not IocType.URL or "://" in value)):
        return kind
    return None


def data_row_columns(cells: list[str]) -> list[str] | None:
    """Column names for a first row that is data, not a header (see the module docstring):
    '' for a cell not read; None when no cell holds an indicator."""
    kinds = [_indicator_in_cell(cell) for cell in cells]
    if not any(kinds):
        return None
    names = [""] * len(cells)
    for index, kind in enumerate(kinds):
        if kind is not None:
            names[index] = kind.value if "value" in names else "value"
    for index, cell in enumerate(cells):
        if names[index]:
            continue
        text = cell.strip()
        if "tlp" not in names and text.upper().startswith("TLP:"):
            names[index] = "tlp"
            continue
        try:
            exact = bool(text) and read_type_hint(text).exact
        except ValueError:
            exact = False
        if exact and "type" not in names:
            names[index] = "type"
    return names


def first_row_is_data(line: str) -> bool:
    """True when `line`, the first row of a file, is a row of a CSV file without a header: its
    first word is cells joined by ',' or ';' (`evil[.]com,domain`), one of them an indicator.
    A line whose first word is a whole value (`evil[.]com, see below`, `1.2.3.4<TAB>C2`) is
    left to the text reader, which keeps the rest as the value's description."""
    words = line.split(None, 1)
    delimiter = detect_delimiter(line)
    if not words or delimiter not in (",", ";"):
        return False
    if sum(1 for part in words[0].split(delimiter) if part.strip()) < 2:
        return False
    try:
        cells = next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return False
    return data_row_columns(cells) is not None


def names_tlp_column(line: str) -> bool:
    """Whether `line` is two or more cells, one of them named as a tlp column (`TLP`,
    `TLP Level`, `Marking`): a CSV header, whether or not it names an indicator column."""
    delimiter = detect_delimiter(line)
    try:
        cells = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return False
    named = [cell for cell in cells if cell.strip()]
    return len(named) >= 2 and any(COLUMN_ALIASES.get(header_key(cell)) == "tlp" for cell in named)


_MOST_TITLE_LINES = 3
_LONGEST_TITLE = 200
_TITLE_PUNCTUATION = "()[]{}<>,;:!?\"'"
# Words that may say how a file is to be handled (a TLP colour without "TLP", PAP, a
# classification): a line holding one is no title to drop, as a person must say what it means.
_HANDLING_WORDS = re.compile(
    r"\b(?:red|amber|green|clear|white|pap|classified|confidential|restricted|secret|noforn|"
    r"sensitive|internal|limited|distribution|share|sharing)\b",
    re.IGNORECASE | re.ASCII,
)


def _is_title(stripped: str) -> bool:
    """Whether a line (stripped) may title a CSV file (`IOCs for campaign X`): not a header or
    a row, no TLP named, and no word of it an indicator or defanged (its values would be lost)."""
    if len(stripped) > _LONGEST_TITLE or may_name_tlp(stripped) or is_defanged(stripped):
        return False
    if _HANDLING_WORDS.search(stripped):
        return False
    if names_tlp_column(stripped) or first_row_is_data(stripped):
        return False
    for word in stripped.split():
        kind = detect_ioc_type(word.strip(_TITLE_PUNCTUATION))
        if kind is not None and kind is not IocType.FILE_NAME:
            return False
    return True


def title_lines(lines: Iterable[str]) -> frozenset[int]:
    """The numbers (from 1) of a CSV file's title lines: at most three lines above a header row
    of two or more cells naming an indicator column, between the head's lines (blank,
    comments, a marking). Empty when the first line that is neither head nor title is no such
    header."""
    titles: list[int] = []
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if is_head_line(stripped):
            continue
        found = header_columns(stripped)
        if found is not None:
            return frozenset(titles) if len(found[1]) >= 2 else frozenset()
        if len(titles) == _MOST_TITLE_LINES or not _is_title(stripped):
            return frozenset()
        titles.append(number)
    return frozenset()


# Names an indicator column is often given, to suggest one for a misspelt header cell.
_USUAL_COLUMNS = sorted(
    set(_ROLE_ALIASES["value"].split())
    | set("sha256 sha1 md5 domain hostname url ipv4 ipv6 ip ipaddress email cve".split())
)


def no_indicator_column(header: list[str]) -> tuple[str, str]:
    """(what is wrong, how to fix it) for a header row that names no indicator column; a cell
    close to a usual column name ('vaule') is named in the fix."""
    shown = ", ".join(describe_value(h, 30) for h in header[:12]) or "nothing"
    what = f"no indicator column in the header ({shown})"
    tlp_column = any(COLUMN_ALIASES.get(header_key(cell)) == "tlp" for cell in header)
    if tlp_column:
        what += (
            ": the file is not read, since its tlp column marks nothing without one (read as a "
            "text list, its values would lose their TLP)"
        )
    for cell in header[:50]:
        if COLUMN_ALIASES.get(header_key(cell)) is not None:
            continue  # a known role: type, tlp, description...
        near = difflib.get_close_matches(header_key(cell), _USUAL_COLUMNS, n=1, cutoff=0.75)
        if near and near[0] != header_key(cell):
            name = describe_value(cell.strip(), 30)
            return what, (
                f"rename the column '{name}' to '{near[0]}', or name it after an indicator type "
                "such as 'sha256'"
            )
    if tlp_column:
        return what, (
            "name the indicator column 'value' (or indicator, ioc, iocs, observable, c2, c2 "
            "server), or after an indicator type such as 'sha256', 'md5', 'domain', "
            "'hostname', 'ip', 'ipv4', 'url' or 'email'"
        )
    return what, "name the column 'value', or after an indicator type such as 'sha256'"


@dataclass(frozen=True)
class CsvLayout:
    """Where a CSV file's rows start, and how to read them (for reading it in parts)."""

    delimiter: str
    header: tuple[str, ...]  # for a file without a header row, the names data_row_columns gives
    header_line: int  # line number of the header row (without one: of the line before the rows)
    data_offset: int  # byte offset of the first row
    first_row: str | None = None  # without a header row: the first row, read before the rest


def _replayed(source: LineSource, first: str, line: int, rest: Iterator[str]) -> Iterator[str]:
    """`first` (line `line`, already read as the would-be header) and then the other lines."""
    if source.row_start is None:
        source.row_start = line
    yield first
    yield from rest


class CsvReader(Reader):
    format_name = "csv"

    def head(self, path: Path) -> FileHead:
        return self._scanned(path)[1]

    def _titles(self, path: Path) -> frozenset[int]:
        return self._scanned(path)[0]

    def _scanned(self, path: Path) -> tuple[frozenset[int], FileHead]:
        """(`title_lines`, the head) of the file at `path`, read once per reader (ingest asks
        for the head, then reads the rows): only the lines up to its header row are read."""
        cache: dict[Path, tuple[frozenset[int], FileHead]] = self.__dict__.setdefault("_heads", {})
        if path not in cache:
            lines = iter(LineSource(path, self.limits, str(path)))
            try:
                titles = title_lines(lines)
            finally:
                close = getattr(lines, "close", None)
                if close is not None:
                    close()
            cache[path] = (titles, scan_head(path, self.limits, titles))
        return cache[path]

    def read(self, path: Path) -> Iterator[ReadItem]:
        label = str(path)
        source = LineSource(path, self.limits, label)
        lines = iter(source)
        layout = yield from self._header(source, lines, label, self._titles(path))
        if layout.first_row is not None:
            lines = _replayed(source, layout.first_row, layout.header_line + 1, lines)
        columns = _Columns(list(layout.header))
        if columns.unused:
            yield Finding(
                label,
                "columns not used: " + ", ".join(describe_value(n, 30) for n in columns.unused),
                line=source.line_number,
                code="unused-columns",
            )
        yield from self._rows(source, lines, layout.delimiter, columns, label, self.head(path))

    def layout(self, path: Path) -> tuple[CsvLayout, list[ReadItem]]:
        """(the header and where the rows start, remarks about the lines before the rows);
        InputError when there is no usable header."""
        source = LineSource(path, self.limits, str(path))
        generator = self._header(source, iter(source), str(path), self._titles(path))
        remarks: list[ReadItem] = []
        try:
            while True:
                remarks.append(next(generator))
        except StopIteration as done:
            layout: CsvLayout = done.value
        columns = _Columns(list(layout.header))
        if columns.unused:
            shown = ", ".join(describe_value(n, 30) for n in columns.unused)
            remarks.append(
                Finding(
                    str(path),
                    f"columns not used: {shown}",
                    line=layout.header_line,
                    code="unused-columns",
                )
            )
        return layout, remarks

    def read_part(
        self, path: Path, layout: CsvLayout, byte_range: tuple[int, int], first_line: int
    ) -> Iterator[ReadItem]:
        """The rows in `byte_range` (cut at line starts, no quoted line breaks across cuts)."""
        label = str(path)
        source = LineSource(path, self.limits, label, byte_range=byte_range, first_line=first_line)
        columns = _Columns(list(layout.header))
        yield from self._rows(source, iter(source), layout.delimiter, columns, label, self.head(path))

    def _header(
        self, source: LineSource, lines: Iterator[str], label: str, titles: frozenset[int]
    ) -> Generator[ReadItem, None, CsvLayout]:
        delimiter, header_line = None, None
        for line in lines:
            yield from source.drain()
            stripped = line.strip()
            if not stripped or stripped.startswith("#") or is_marking_line(stripped):
                continue  # the head: blank lines, comments, a `TLP:AMBER` line (file_head.py)
            if source.line_number in titles:
                yield Finding(
                    label,
                    f"'{describe_value(stripped, 60)}' is read as the file's title, above its "
                    "header row: it is not shared (to share it, make it a description column)",
                    line=source.line_number,
                    code="title-line",
                )
                continue
            sep = _SEP_LINE.fullmatch(stripped)
            if sep and delimiter is None:
                delimiter = sep.group(1)
                continue
            header_line = line
            break
        yield from source.drain()
        if header_line is None:
            raise InputError(f"{label} has no header row", hint="the first row must name columns")
        delimiter = delimiter or detect_delimiter(header_line)
        try:
            header = next(csv.reader([header_line], delimiter=delimiter), [])
        except csv.Error as error:
            raise InputError(f"{label}: malformed header row: {error}") from None
        names = data_row_columns(header)
        if names is not None:
            row_line = source.line_number
            value = header[names.index("value")].strip()
            yield Finding(
                label,
                f"no header row: line {row_line} holds the indicator '{describe_value(value, 60)}', "
                f"so it is read as data, its columns as {', '.join(n or '(not read)' for n in names)}; "
                "add a header row naming the columns (such as value,type,description) to read "
                "them otherwise",
                line=row_line,
                code="no-header-row",
            )
            return CsvLayout(delimiter, tuple(names), row_line - 1, source.line_offset, header_line)
        columns = _Columns(header)
        if not columns.value_columns:
            what, hint = no_indicator_column(header)
            raise InputError(f"{label}: {what}", hint=hint)
        return CsvLayout(delimiter, tuple(header), source.line_number, source.offset)

    def _rows(
        self,
        source: LineSource,
        lines: Iterator[str],
        delimiter: str,
        columns: _Columns,
        label: str,
        head: FileHead,
    ) -> Iterator[ReadItem]:
        """The rows; a tlp cell weaker than the head's TLP is raised to it (`floored`)."""
        reader = csv.reader(lines, delimiter=delimiter)
        floor = head.tlp is not None and "tlp" in columns.roles
        width = len(columns.names)
        value_columns = [(i, h, columns.names[i].strip() or "value") for i, h in columns.value_columns]
        # Rows are padded to the header's width plus one empty cell, the cell of every role
        # the header lacks: each field is then one index, without a test per field.
        empty = width
        role = {name: columns.roles.get(name, empty) for name in _ROLES}
        i_type, i_tlp, i_confidence = role["type"], role["tlp"], role["confidence"]
        i_from, i_until, i_types = role["valid_from"], role["valid_until"], role["indicator_types"]
        i_phases, i_reference, i_incident = (
            role["kill_chain_phases"],
            role["reference"],
            role["incident_id"],
        )
        padding = [""] * (width + 1)
        has_context = bool(columns.context_columns)
        i_description = role["description"]
        while True:
            source.row_start = None
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                yield from source.drain()
                yield Rejection(label, f"malformed CSV: {error}", line=source.row_start, code="malformed-row")
                continue
            if source.remarks:
                yield from source.drain()
            line = source.row_start
            if source.exhausted:
                # The csv module ends a quoted field left open at the end of the file without
                # a word: every line after the stray quote would be lost in this one cell.
                last = source.line_number
                span = f": lines {line}-{last} were read as one row" if last != line else " at the end"
                yield Rejection(
                    label,
                    f"unterminated quoted field{span}; close the quote opened on line {line} "
                    f'(a quote inside a field is written "")',
                    line=line,
                    code="malformed-row",
                )
                continue
            if len(row) <= width:
                row.extend(padding[len(row) :])
            else:
                if any(cell_text.strip() for cell_text in row[width:]):
                    yield Finding(
                        label,
                        "cells beyond the last named column are ignored",
                        line=line,
                        code="extra-cells",
                    )
                row = row[:width]
                row.append("")
            produced = False
            description = _description(row, columns) if has_context else row[i_description].strip() or None
            if description is not None and "\r" in description:
                description = unify_line_breaks(description)  # a quoted cell written with CRLF
            tlp = row[i_tlp].strip() or None
            if floor and tlp is not None:
                tlp, raised = floored(tlp, head)
                if raised is not None:
                    yield floor_finding(label, line, raised, head)
            named = _named_tlp(row, i_tlp) if may_name_tlp("\x1f".join(row)) else None
            for index, hint, field_name in value_columns:
                value = row[index]
                if not value or value.isspace():
                    continue
                if value[0] == "'":
                    value = without_formula_guard(value)
                produced = True
                yield IndicatorCandidate(
                    value,
                    line,
                    None,
                    field_name,
                    hint if hint is not None else row[i_type].strip() or None,
                    tlp,
                    row[i_confidence].strip() or None,
                    description,
                    row[i_from].strip() or None,
                    row[i_until].strip() or None,
                    row[i_types].strip() or None,
                    row[i_phases].strip() or None,
                    row[i_reference].strip() or None,
                    row[i_incident].strip() or None,
                    named_tlp=named,
                )
            if not produced and any(c and not c.isspace() for c in row):
                yield Rejection(label, "the row has no indicator value", line=line, code="empty-value")
        yield from source.drain()


def _named_tlp(row: list[str], i_tlp: int) -> str | None:
    """The strictest TLP level a cell other than the tlp cell names (`TLP:RED do not share` in
    a comment, shared or not): the conversion refuses the row if its value would go out weaker
    (`tlp-in-text`), as a text list naming a level below its head is refused."""
    levels = [level for i, cell in enumerate(row) if i != i_tlp for level in named_levels(cell)]
    return max(levels).value if levels else None


def _description(row: list[str], columns: _Columns) -> str | None:
    description = columns.cell(row, "description")
    if not columns.context_columns:
        return description
    context = [
        f"{columns.names[i].strip()}: {row[i].strip()}"
        for i in columns.context_columns
        if i < len(row) and row[i].strip()
    ]
    return "; ".join(([description] if description else []) + context) or None
