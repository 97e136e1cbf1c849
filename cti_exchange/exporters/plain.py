"""Plain lists: one value per line, for firewalls, proxies, DNS sinkholes and EDR blocklists.

Values are written in canonical form, once they passed the checks of safety.py (valid for
their type, no control or line-separator character, not overly broad unless asked): a partner's
`Bücher.Example` is written `xn--bcher-kva.example`, as DNS and proxies carry it, and once even
if another partner sent `bücher.example` (export.py `_canonical_spelling`). A value that holds
a line break is left out here too rather than split into two entries.
"""

from __future__ import annotations

from typing import TextIO

from cti_exchange.exporters.interface import Exporter, ExportItem, ExportSummary


class PlainExporter(Exporter):
    name = "plain"
    extension = "txt"
    canonical_values = True

    def write(self, item: ExportItem, out: TextIO, summary: ExportSummary) -> bool:
        value = item.value
        if "\n" in value or "\r" in value:
            return False
        out.write(value + "\n")
        return True

    def skip_reason(self, ioc_type: str) -> str:
        return "values with a line break cannot be one line"
