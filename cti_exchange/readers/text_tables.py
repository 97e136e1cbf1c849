"""Tables in a text list (AsciiDoc `|===` blocks, Markdown `| a | b |` rows): which to read.

A report's tables hold its indicators (ESET's C&C servers and file hashes) and, at times, its
victims (ESET's "Targetted Networks": the /24s of the victims' networks, which must never be
shared as indicators). A table is read when an analyst reading it would call it a list of
indicators, and otherwise skipped and counted:

- a table whose title (the heading above it, its `.Title` line) or header row speaks of
  victims or targets (compromised, impacted, breached, notified, a hit list), or whose header
  has a column naming who holds the address (sector, country, organisation, owner, company,
  customer), is skipped, whatever it holds;
- a table whose header names an indicator column (a hash, a domain, an address, a URL, a C&C
  or C2 server: `SHA-1`, `Domain`, `IP address`, `C&C`) is read as the CSV file it would be
  exported as: its values from those columns, typed by them unless a value's shape says it is
  another type (ESET's `Domain` column holds addresses, `ip:port`s and a URL too);
  `Description`/`Details` and a `Filename` beside a hash as the description; `First seen` as
  `valid_from`;
- in any other table, defanged values are read (the author marked them as indicators, as on
  any line), with the row as their description;
- a row whose cells do not line up with the header (a row spread over several lines, a cell
  spanning columns) is skipped: which column a cell belongs to is then a guess.

`TextTable` follows one table, row by row; the text reader counts what it skips.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import Enum

from cti_exchange.readers.csv_reader import _Columns
from cti_exchange.stix.candidate import IndicatorCandidate
from cti_exchange.stix.ioc_types import HASH_TYPES, IP_TYPES, IocType, detect_ioc_type
from cti_exchange.stix.refang import is_defanged, refang
from cti_exchange.stix.type_hints import parse_type_hint

# Words of a table's title or header that say it lists victims, not the attacker's
# infrastructure: "Targetted Networks", "Victims", "Affected organisations", "Infected hosts",
# "Compromised organisations", "Impacted networks", "Breached entities", "Customers notified",
# "Hit list". Failing safe: a table of the attacker's compromised servers worded so is skipped
# and counted (its rows can be shared as CSV), where sharing victims' networks cannot be undone.
_VICTIMS = re.compile(
    r"\b(?:victim|target|affected|infected|compromised|impacted|breach|notified|hit\s+list)", re.IGNORECASE
)
# A header cell naming who holds the row's address rather than what the attacker runs: a
# table with one lists organisations (and their networks), not indicators.
_WHO_COLUMN = re.compile(
    r"\b(?:sectors?|countr(?:y|ies)|organi[sz]ations?|owners?|compan(?:y|ies)|customers?|"
    r"industr(?:y|ies)|entit(?:y|ies)|institutions?)\b",
    re.IGNORECASE,
)
# A header cell naming the attacker's servers without a type: its values are typed by their
# shape (`C&C`, `C2 server`, `CnC`, `Command and control`, `Server`).
_SERVER_COLUMN = re.compile(r"\b(?:c&c|c2|cnc|command\s+and\s+control|servers?)\b", re.IGNORECASE)
# Types whose column makes a table a list of indicators: values no one writes by accident. A
# `Name`, `Path` or `Filename` column alone does not (a table of names may be anything).
_INDICATOR_COLUMN_TYPES = frozenset(
    {*HASH_TYPES, *IP_TYPES, IocType.DOMAIN, IocType.DOMAIN_PORT, IocType.URL}
)
_MARKDOWN_SEPARATOR = re.compile(r"\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?")
_ASCIIDOC_DELIMITER = re.compile(r"\|={3,}")


class TableSkip(Enum):
    """Why a table row was not read (the text of its warning)."""

    VICTIMS = (
        "its table's title or header speaks of victims or targets; export the rows as CSV if "
        "they are indicators"
    )
    NO_INDICATORS = "no column of the header names an indicator type and nothing in the row is defanged"
    MISALIGNED = (
        "their cells do not line up with the header's columns (a row over several lines, a cell "
        "spanning columns); export the table as CSV to share it"
    )


def is_asciidoc_delimiter(line: str) -> bool:
    return _ASCIIDOC_DELIMITER.fullmatch(line) is not None


def is_markdown_separator(line: str) -> bool:
    return "-" in line and _MARKDOWN_SEPARATOR.fullmatch(line) is not None


def is_table_row(line: str) -> bool:
    """A Markdown table row (`| a | b |`) or an AsciiDoc table's delimiter (`|===`): a report's
    table, not a CSV file with `|` between its cells (which starts with a cell)."""
    return is_asciidoc_delimiter(line) or (len(line) > 1 and line[0] == "|" and line[-1] == "|")


def split_cells(line: str) -> list[str]:
    """The cells of a row line: `|a |b` (AsciiDoc) and `| a | b |` (Markdown)."""
    body = line[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [_cell_text(cell) for cell in body.split("|")]


def _cell_text(cell: str) -> str:
    cell = cell.strip()
    for mark in ("`", "*", "_"):
        if len(cell) >= 2 and cell[0] == mark and cell[-1] == mark:
            cell = cell[1:-1].strip()
    if cell.startswith("\\") and "://" in cell:
        cell = cell[1:]  # AsciiDoc's "do not link" escape
    return cell


def _is_indicator(cell: str) -> bool:
    value = refang(cell)
    return bool(value) and " " not in value and detect_ioc_type(value) is not None


def _defanged_values(cells: list[str]) -> list[str]:
    found = []
    for cell in cells:
        for token in cell.split():
            token = _cell_text(token).rstrip(".,;")
            if is_defanged(token) and detect_ioc_type(refang(token)) not in (None, IocType.FILE_NAME):
                found.append(token)
    return found


class TextTable:
    """One table being read: its first row decides how the others are read."""

    def __init__(self, title: str, *, asciidoc: bool) -> None:
        self.title = title
        self.asciidoc = asciidoc
        self.columns: _Columns | None = None
        self.width = 0
        self.rows = 0  # rows seen, the header included
        self.victims = _VICTIMS.search(title) is not None

    def row(self, line: str, number: int) -> Iterator[IndicatorCandidate | TableSkip]:
        """The indicators of one row line, or why it is skipped; nothing for a header row."""
        cells = split_cells(line)
        self.rows += 1
        if self.rows == 1 and not any(_is_indicator(cell) for cell in cells):
            self._header(cells)
            return
        if self.rows == 1:
            self.width = len(cells)  # no header: the rows give the width
        if self.victims:
            yield TableSkip.VICTIMS
            return
        if len(cells) != self.width:
            yield TableSkip.MISALIGNED
            return
        produced = False
        for candidate in self._candidates(cells, number):
            produced = True
            yield candidate
        if not produced:
            yield TableSkip.NO_INDICATORS

    def _header(self, cells: list[str]) -> None:
        self.width = len(cells)
        if any(_VICTIMS.search(cell) or _WHO_COLUMN.search(cell) for cell in cells):
            self.victims = True
        # `C&C`, `C2 server`: the value column, typed by each value's shape.
        named = ["value" if _SERVER_COLUMN.search(c) and not _typed(c) else c for c in cells]
        columns = _Columns(named)
        if any(hint is None or _typed(hint) & _INDICATOR_COLUMN_TYPES for _, hint in columns.value_columns):
            self.columns = columns

    def _candidates(self, cells: list[str], number: int) -> Iterator[IndicatorCandidate]:
        columns = self.columns
        if columns is None:
            whole_row = " | ".join(cell for cell in cells if cell)
            for value in _defanged_values(cells):
                yield IndicatorCandidate(value, line=number, description=whole_row)
            return
        description = _row_description(cells, columns)
        read = {index for index, _ in columns.value_columns} | set(columns.context_columns)
        for index, hint in columns.value_columns:
            if cells[index]:
                yield IndicatorCandidate(
                    cells[index],
                    line=number,
                    field=columns.names[index].strip() or "value",
                    type_hint=_column_hint(hint, cells[index]),
                    tlp=columns.cell(cells, "tlp"),
                    confidence=columns.cell(cells, "confidence"),
                    description=description,
                    valid_from=columns.cell(cells, "valid_from"),
                    valid_until=columns.cell(cells, "valid_until"),
                )
        # Defanged values elsewhere in the row are indicators too: the author marked them.
        others = [cell for index, cell in enumerate(cells) if index not in read]
        for value in _defanged_values(others):
            yield IndicatorCandidate(value, line=number, description=description)


def _typed(name: str) -> frozenset[IocType]:
    try:
        return parse_type_hint(name)
    except ValueError:
        return frozenset()


def _column_hint(hint: str | None, value: str) -> str | None:
    """The column's type for a value that may be of that type; None for a value whose shape
    says it is another (ESET's `Domain` column holds addresses, `ip:port`s and a URL too)."""
    if hint is None:
        return None
    detected = detect_ioc_type(refang(value))
    return hint if detected is None or detected in _typed(hint) else None


def _row_description(cells: list[str], columns: _Columns) -> str | None:
    description = columns.cell(cells, "description")
    context = [f"{columns.names[i].strip()}: {cells[i]}" for i in columns.context_columns if cells[i]]
    return "; ".join(([description] if description else []) + context) or None
