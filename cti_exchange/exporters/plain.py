"""Plain lists: one value per line, for firewalls, proxies, DNS sinkholes and EDR blocklists.

Values are written in canonical form, once they passed the checks of safety.py (valid for
their type, no control or line-separator character, not overly broad unless asked): a partner's
`Bücher.Example` is written `xn--bcher-kva.example`, as DNS and proxies carry it, and once even
if another partner sent `bücher.example` (export.py `_canonical_spelling`). A URL is written
as a proxy compares it, without `#fragment` and `user:password@` (export.py `blocklist_url`,
the head counts them). A value that holds a line break is left out here too rather than split
into two entries.

A value that begins with `#` (a mutex `#evilmutex`, a file `#payload.exe`, a subject `# TLP:CLEAR
...`) is left out as well, counted with the reason in the head: the head is `#` comment lines,
and so are the comments of the lists firewalls, proxies, DNS sinkholes and our own text reader
(readers/text_reader.py) read, so such a line would be dropped by the tool as a comment, or
read as one by a person. No escape means "a literal #" to all those readers; CSV, MISP and STIX
carry such values (CSV quotes the cell, csv_export.py).
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
        if "\n" in value or "\r" in value or value.startswith("#"):
            return False
        out.write(value + "\n")
        return True

    def skip_reason(self, ioc_type: str) -> str:
        # safety.py refuses line breaks before a value gets here: `#` is what leaves one out.
        return (
            "a value beginning with '#' would read as a comment line, which list readers skip: "
            "export these with --format csv, misp or stix"
        )
