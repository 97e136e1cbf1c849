"""CSV: one row per value with its type, TLP, confidence, expiry and sources.

The first columns (value, type, tlp, confidence) are the ones `cti-exchange push` reads, so an
export can be shared onwards as it is. The TLP head line is a `#` comment before the header
row; most SIEM importers skip it, the `csv` module needs it skipped (`next(reader)`).

Partner data is untrusted: a cell that a spreadsheet would run as a formula (starting with
`=`, `+`, `-`, `@`, tab or carriage return: OWASP "CSV Injection") gets a leading `'`.
"""

from __future__ import annotations

import csv
from typing import TextIO

from cti_exchange.exporters.interface import Exporter, ExportItem, ExportSummary

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ["value", "type", "tlp", "confidence", "valid_until", "sources", "stix_id", "received_at"]


class CsvExporter(Exporter):
    name = "csv"
    extension = "csv"

    def begin(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")
        self._writer.writerow(COLUMNS)

    def write(self, item: ExportItem, out: TextIO, summary: ExportSummary) -> bool:
        self._writer.writerow(
            [
                "'" + item.value if item.value.startswith(_FORMULA_START) else item.value,
                item.ioc_type,
                item.tlp or "",
                "" if item.confidence is None else item.confidence,
                item.valid_until or "",
                " ".join(item.partners),
                item.object_id,
                item.received_at,
            ]
        )
        return True
