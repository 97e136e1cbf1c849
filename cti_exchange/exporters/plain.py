"""Plain lists: one value per line, for firewalls, proxies, DNS sinkholes and EDR blocklists.

Values are written as stored (already normalised on the way in: lower-case domains, canonical
IP addresses, lower-case hashes). A value that holds a line break (possible in a partner's URL
or file name) is left out rather than split into two entries.
"""

from __future__ import annotations

from typing import TextIO

from cti_exchange.exporters.interface import Exporter, ExportItem, ExportSummary


class PlainExporter(Exporter):
    name = "plain"
    extension = "txt"

    def write(self, item: ExportItem, out: TextIO, summary: ExportSummary) -> bool:
        value = item.value
        if "\n" in value or "\r" in value:
            return False
        out.write(value + "\n")
        return True

    def skip_reason(self, ioc_type: str) -> str:
        return "values with a line break cannot be one line"
