"""CSV: one row per value with its type, TLP, confidence, expiry and sources.

The first columns (value, type, tlp, confidence) are the ones `cti-exchange push` reads, so an
export can be shared onwards as it is. The head is `#` comment lines before the header row;
most SIEM importers skip them, the `csv` module needs them skipped (`csv.DictReader(line for
line in f if not line.startswith("#"))`). The first, `# TLP:...` and what the level allows, is
one cell to a reader or spreadsheet that does not skip it: its commas, semicolons and quotes
are written `\x2c`, `\x3b`, `\x22`, as partner text quoted in the head is. (The other lines
keep theirs: our own reader, readers/file_head.py, reads the level tally's commas and the
quotes around a value listed as not written.)

Partner data is untrusted: a cell that a spreadsheet would run as a formula (starting with
`=`, `+`, `-`, `@`, tab or carriage return: OWASP "CSV Injection") gets a leading `'`. The
first character is compared after NFKC normalisation, because spreadsheet apps may fold
full-width and small-form lookalikes (U+FF1D FULLWIDTH EQUALS SIGN, U+FE66 SMALL EQUALS SIGN,
U+FF0B, U+FF0D, U+FF20...) into the ASCII sign and then run the cell.

A row whose value begins with `#` (`#evilmutex`) is written with every cell quoted
(`"#evilmutex","mutex",...`): the head is `#` comment lines, and importers that skip them (and
readers that drop every line beginning with `#`) would drop such a row too. A quoted cell is
the same value to a CSV reader, ours included.
"""

from __future__ import annotations

import csv
from typing import TextIO

from cti_exchange.exporters.interface import Exporter, ExportItem, ExportSummary
from cti_exchange.spreadsheet_cells import formula_guarded

# Spreadsheets read the `#` head lines as rows too: partner text quoted there must not hold a
# separator (`,`, or `;` where the locale uses it) or a quote, which would start a new cell,
# one that could begin with `=`.
_HEAD_ESCAPES = str.maketrans({",": "\\x2c", ";": "\\x3b", '"': "\\x22"})
COLUMNS = ["value", "type", "tlp", "confidence", "valid_until", "sources", "stix_id", "received_at"]


class CsvExporter(Exporter):
    name = "csv"
    extension = "csv"
    canonical_values = True

    def head_quote(self, text: str) -> str:
        return text.translate(_HEAD_ESCAPES)

    def header(self, summary: ExportSummary) -> str:
        tlp_line, _, rest = super().header(summary).partition("\n")
        return tlp_line.translate(_HEAD_ESCAPES) + "\n" + rest

    def begin(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")
        self._quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        self._writer.writerow(COLUMNS)

    def write(self, item: ExportItem, out: TextIO, summary: ExportSummary) -> bool:
        writer = self._quoted if item.value.startswith("#") else self._writer
        writer.writerow(
            [
                formula_guarded(item.value),
                item.ioc_type,
                item.tlp or "",
                "" if item.confidence is None else item.confidence,
                # Checked timestamps, ids and partner names; guarded anyway, so that no cell
                # relies on validation done elsewhere.
                formula_guarded(item.valid_until or ""),
                formula_guarded(" ".join(item.partners)),
                formula_guarded(item.object_id),
                formula_guarded(item.received_at),
            ]
        )
        return True
