"""A STIX 2.1 bundle of the exported indicators, as their sources wrote them.

Each value's first-stored indicator is written byte for byte as it was received (markings,
`created_by_ref`, confidence, validity all kept), followed by the identities those indicators
name (when the store holds them, and their TLP is no stricter than the values': an identity
marked TLP:RED stays out of a TLP:GREEN bundle), our own identity, and the official TLP 2.0
marking-definitions they reference, so the bundle has no dangling reference a consumer needs.
A marking-definition of another kind (a statement, a custom marking) that the indicators
reference is added from the store as received, when the store holds it and, as for identities,
its own TLP is no stricter than the values' (a statement marked TLP:RED naming a source stays
out of a TLP:GREEN bundle, an unresolved reference), and only as the partner that sent the
objects referencing it sent it (another partner's definition of that id is never exported
with them: it could state a lower TLP).
Streamed: the stored JSON texts are copied, never parsed or held together in memory.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import TextIO

from cti_exchange.exporters.interface import Exporter, ExportItem, ExportSummary, SkippedValue
from cti_exchange.stix.tlp import Tlp, marking_definition

_LEVELS = tuple(Tlp)
_MARKING_REF = re.compile(r'"(marking-definition--[0-9a-fA-F-]{36})"')
# Hex digits of each hash a STIX pattern compares: the OASIS validator (and tools built on it)
# refuses the whole bundle over one value written otherwise, such as a certificate fingerprint
# with colons (`4A:A3:...`) as some partners send it.
_HASH_DIGITS = {
    "md5": 32,
    "sha1": 40,
    "sha256": 64,
    "sha512": 128,
    "x509-md5": 32,
    "x509-sha1": 40,
    "x509-sha256": 64,
}
_COMPARED = re.compile(r"hashes\.(?:'[^']*'|[A-Za-z0-9_-]+) = '([^']*)'")
NOT_STIX_HASH = (
    "its pattern compares a hash written otherwise than in hex digits, which makes the whole "
    "bundle invalid STIX to other tools (the plain, CSV and MISP exports write it in hex)"
)


class StixExporter(Exporter):
    name = "stix"
    extension = "json"
    comment = None

    def begin(self, out: TextIO) -> None:
        self._first = True
        self._creators: dict[str, None] = {}
        self._levels: set[Tlp] = set()
        self._other_markings: dict[str, None] = {}
        out.write('{"type":"bundle","id":"bundle--' + str(uuid.uuid4()) + '","objects":[')

    def _separator(self, out: TextIO) -> None:
        if not self._first:
            out.write(",")
        self._first = False

    def write(self, item: ExportItem, out: TextIO, summary: ExportSummary) -> bool:
        if item.json is None:
            return False
        digits = _HASH_DIGITS.get(item.ioc_type)
        if digits is not None:
            for literal in _COMPARED.findall(item.json):
                if len(literal) != digits or not all(c in "0123456789abcdefABCDEF" for c in literal):
                    summary.set_aside(
                        SkippedValue(
                            item.ioc_type, item.value, NOT_STIX_HASH, literal[:80], item.tlp, item.object_id
                        )
                    )
                    return False
        self._separator(out)
        out.write(item.json)
        # The creator is needed for the bundle to be self-contained; reading it back from the
        # JSON is avoided on this hot path: the common case is one creator per partner.
        if '"created_by_ref":"' in item.json:
            start = item.json.index('"created_by_ref":"') + 18
            self._creators.setdefault(item.json[start : item.json.index('"', start)])
        found = 0
        for level in _LEVELS:
            if level.marking_id in item.json:
                self._levels.add(level)
                found += 1
        if item.json.count('"marking-definition--') > found:  # a marking other than TLP
            for ref in _MARKING_REF.findall(item.json):
                if Tlp.from_marking_id(ref) is None:
                    self._other_markings.setdefault(ref)
        return True

    def end(self, out: TextIO, summary: ExportSummary) -> None:
        own = self.context.producer_identity
        creators = [ref for ref in self._creators if ref != own.get("id")]
        lookup = self.context.identities
        for text in lookup(creators, summary.strictest) if lookup else []:
            self._separator(out)
            out.write(text)
            self._levels.update(level for level in _LEVELS if level.marking_id in text)
        self._separator(out)
        out.write(json.dumps(own, separators=(",", ":"), ensure_ascii=False))
        markings = self.context.markings
        for text in markings(list(self._other_markings), summary.strictest) if markings else []:
            self._separator(out)
            out.write(text)
            # Its own TLP marking is defined in the bundle too (never stricter than the values').
            self._levels.update(level for level in _LEVELS if level.marking_id in text)
        for level in sorted(self._levels):
            self._separator(out)
            out.write(json.dumps(marking_definition(level), separators=(",", ":")))
        out.write("]}\n")
