"""Plain lists: one value per line, for firewalls, proxies, DNS sinkholes and EDR blocklists.

Values are written as stored, once they passed the checks of safety.py (valid for their type,
no control or line-separator character, not overly broad unless asked). A value that holds a
line break is left out here too rather than split into two entries.
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
