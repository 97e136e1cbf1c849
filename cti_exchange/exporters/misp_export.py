"""A MISP event (JSON, as MISP's "Add event from JSON" and PyMISP read it).

One attribute per value, typed for MISP (`ip-dst`, `domain`, `url`, `email-src`, `filename`,
`mutex`, `regkey`, `AS`, `email-subject`, `ssdeep`, `x509-fingerprint-sha1`, `mac-address`,
`md5`...), `to_ids` as MISP sets it by default for the type (PyMISP's describeTypes.json
`sane_defaults`: true, so that MISP pushes the value to its IDS exports, except for `AS`,
`email-subject`, `mac-address` and `vulnerability`, which MISP keeps out of them as too broad
or no network pattern), tagged with its own TLP (MISP's `tlp:` taxonomy); the event carries
the strictest TLP of its attributes. Values are written in canonical form, once whatever the
spellings stored (as in plain lists, export.py `_canonical_spelling`): MISP correlates
attributes by their text.

MISP wants attribute UUIDs unique across the instance, so they cannot be the same in two
events. The event UUID is derived from the producer and the export's selection (its filter, in
canonical form), and each attribute UUID from the event UUID, the type and the value: the same
selection exported again is the same event, and importing it updates that event and its
attributes instead of duplicating them (as a MISP feed does); a different selection is another
event and never reuses an attribute UUID. A relative `--since` (`1d`) is a different moment,
so a different selection, on every run. The event's `info` (its title in MISP) is the same for
the same selection too: the producer and the choices made, never the moment of the export,
which the event's `date` and `timestamp` carry; before, each run retitled the event.

Each attribute's `timestamp` changes only when what the attribute says changes (MISP takes an
attribute's update only when its timestamp is later than its copy's): the store keeps, per
attribute UUID, a digest of what it said and the timestamp written with it
(export_queries.MispStamps). The same content again gets the same timestamp, and MISP skips it;
other content the latest `received_at` of the objects making it up, or a second after the
timestamp written last when that is later (a decision, an object leaving the selection change
the attribute without a newer object). An attribute this store never wrote gets at least the
moment it first exported the event: earlier releases wrote the export's moment on each one.
The event's `timestamp` is the export's moment (or the latest attribute's, when later).

Values the selection held that are now decided against (false-positive, rejected), revoked
by their source or expired (their `valid_until` passed: a default export selects valid values
only) are written again as withdrawn (`withdraw`): the same attribute UUID, `"deleted":
true` and `to_ids` false, since MISP never deletes an attribute missing from an update;
docs/TRIAGE.md "MISP events exported again".

The event's distribution is "your organisation only": partner intelligence must not be
synchronised onwards by MISP on its own; its TLP says who may see it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any, TextIO

from cti_exchange.clock import parse_timestamp
from cti_exchange.exporters.interface import Exporter, ExportItem, ExportSummary
from cti_exchange.stix.tlp import Tlp

# Our IOC type -> (MISP attribute type, MISP category).
MISP_TYPES = {
    "ipv4-addr": ("ip-dst", "Network activity"),
    "ipv6-addr": ("ip-dst", "Network activity"),
    "domain-name": ("domain", "Network activity"),
    # MISP writes composite values with "|": `1.2.3.4|443`, `c2.example|8080` (misp_value).
    "ipv4-port": ("ip-dst|port", "Network activity"),
    "ipv6-port": ("ip-dst|port", "Network activity"),
    "domain-port": ("hostname|port", "Network activity"),
    "url": ("url", "Network activity"),
    "email-addr": ("email-src", "Payload delivery"),
    "file-name": ("filename", "Payload delivery"),
    # MISP's category for "any artifact (files, registry keys etc.) dropped by the malware":
    # not every key is a persistence point (regkey's default category).
    "mutex": ("mutex", "Artifacts dropped"),
    "windows-registry-key": ("regkey", "Artifacts dropped"),
    # MISP's default categories for these types.
    "autonomous-system": ("AS", "Network activity"),
    "email-subject": ("email-subject", "Payload delivery"),
    "ssdeep": ("ssdeep", "Payload delivery"),
    "x509-md5": ("x509-fingerprint-md5", "Network activity"),
    "x509-sha1": ("x509-fingerprint-sha1", "Network activity"),
    "x509-sha256": ("x509-fingerprint-sha256", "Network activity"),
    "mac-addr": ("mac-address", "Network activity"),
    "md5": ("md5", "Payload delivery"),
    "sha1": ("sha1", "Payload delivery"),
    "sha256": ("sha256", "Payload delivery"),
    "sha512": ("sha512", "Payload delivery"),
    "cve": ("vulnerability", "External analysis"),
}
# MISP types whose `to_ids` MISP sets false by default (describeTypes.json `sane_defaults`):
# the IDS exports of MISP leave them out, and so does an attribute we write.
NOT_FOR_IDS = frozenset({"AS", "email-subject", "mac-address", "vulnerability"})
# Event UUIDs: uuid5 in a namespace of our own, from the producer and the selection; attribute
# UUIDs: uuid5 in the event's UUID, from "type:value".
_EVENT_NAMESPACE = uuid.UUID("5d3c7f0e-7a43-5b8e-9a5e-2f6f0f4c1c07")
_ORGANISATION_ONLY = "0"
_INHERIT_EVENT = "5"


def misp_value(ioc_type: str, value: str) -> str:
    """The value as MISP writes its type: `host|port` for the composite port types."""
    if not ioc_type.endswith("-port"):
        return value
    host, _, port = value.rpartition(":")
    if ioc_type == "ipv6-port":
        host = host.removeprefix("[").removesuffix("]")
    return f"{host}|{port}"


def misp_tag(level: Tlp) -> dict[str, str]:
    return {"name": f"tlp:{level.value}"}


def event_info(producer: str, selection: str) -> str:
    """The event's title: who exported what (the choices of `selection`, the canonical filter
    ExportContext.selection_of writes, left out when empty), the same on every run of it."""
    chosen = json.loads(selection) if selection else {}
    parts = []
    for name, value in sorted(chosen.items()):
        if value in (None, "", []) or (name == "include_revoked" and value is False):
            continue
        shown = (
            ",".join(str(v) for v in value)
            if isinstance(value, list)
            else json.dumps(value, ensure_ascii=False)
        )
        parts.append(f"{name}={shown}")
    return f"cti-exchange export by {producer}" + (f" ({'; '.join(parts)})" if parts else "")


class MispExporter(Exporter):
    name = "misp"
    extension = "json"
    comment = None
    # MISP correlates attribute values as text: `Bücher.Example` and `xn--bcher-kva.example`
    # are one attribute, written as DNS carries it.
    canonical_values = True

    # A list holds no longer what it no longer lists; a MISP event keeps every attribute.
    withdraws = True
    keeps_records = True  # the attribute timestamps written (export_queries.MispStamps)

    def begin(self, out: TextIO) -> None:
        moment = parse_timestamp(self.context.generated_at)
        self._now = int(moment.timestamp())
        self._latest = self._now
        self._first = True
        self._pending: list[tuple[str, str, str]] = []  # (UUID, JSON without timestamp, latest)
        name = json.dumps([self.context.producer, self.context.selection], ensure_ascii=False)
        self._event_uuid = uuid.uuid5(_EVENT_NAMESPACE, name)
        factory = self.context.misp_stamps
        self._stamps = factory(str(self._event_uuid), self._now) if factory is not None else None
        event = {
            "uuid": str(self._event_uuid),
            "info": event_info(self.context.producer, self.context.selection),
            "date": moment.date().isoformat(),
            "published": False,
            "analysis": "2",
            "threat_level_id": "4",
            "distribution": _ORGANISATION_ONLY,
        }
        head = json.dumps(event, ensure_ascii=False)[:-1]
        out.write('{"Event": ' + head + ', "Attribute": [\n')

    def write(self, item: ExportItem, out: TextIO, summary: ExportSummary) -> bool:
        self._attribute(item, withdrawn=False, out=out)
        return True

    def may_hold(self, item: ExportItem) -> bool:
        """Only an attribute an export of this event wrote: one never exported needs no
        deleting, and a deleted attribute would put a value decided against into MISP."""
        attribute_uuid = str(uuid.uuid5(self._event_uuid, f"{item.ioc_type}:{item.value}"))
        return self._stamps is None or self._stamps.written(attribute_uuid)

    def withdraw(self, item: ExportItem, out: TextIO, summary: ExportSummary) -> bool:
        self._attribute(item, withdrawn=True, out=out)
        return True

    def _attribute(self, item: ExportItem, *, withdrawn: bool, out: TextIO) -> None:
        misp_type, category = MISP_TYPES[item.ioc_type]
        attribute_uuid = str(uuid.uuid5(self._event_uuid, f"{item.ioc_type}:{item.value}"))
        attribute: dict[str, Any] = {
            "uuid": attribute_uuid,
            "type": misp_type,
            "category": category,
            "value": misp_value(item.ioc_type, item.value),
            "to_ids": not withdrawn and misp_type not in NOT_FOR_IDS,
            "distribution": _INHERIT_EVENT,
            "comment": f"from {', '.join(item.partners)}; STIX {item.object_id}"
            + ("; withdrawn: decided against, revoked or expired" if withdrawn else ""),
        }
        # Said on every attribute: MISP keeps a field an update leaves out, so a value accepted
        # again after its withdrawal would otherwise stay deleted there.
        attribute["deleted"] = withdrawn
        if item.tlp is not None:
            attribute["Tag"] = [misp_tag(Tlp(item.tlp))]
        said = json.dumps(attribute, ensure_ascii=False)  # the same dict, the same text
        self._pending.append((attribute_uuid, said, item.latest))
        if len(self._pending) >= 1000:
            self._flush(out)

    def _flush(self, out: TextIO) -> None:
        """Writes the pending attributes with their timestamps (MispStamps: the same while an
        attribute says the same), looked up in one batch."""
        pending, self._pending = self._pending, []
        if self._stamps is None:
            stamps = [self._now] * len(pending)
        else:
            now = self._now

            def since(latest: str) -> Callable[[], int]:
                return lambda: min(int(parse_timestamp(latest).timestamp()), now) if latest else now

            stamps = self._stamps.stamps(
                [
                    (attribute_uuid, hashlib.blake2b(said.encode(), digest_size=16).digest(), since(latest))
                    for attribute_uuid, said, latest in pending
                ]
            )
        for (_, said, _), stamp in zip(pending, stamps, strict=True):
            if not self._first:
                out.write(",\n")
            self._first = False
            out.write(f'{said[:-1]}, "timestamp": "{stamp}"}}')
            self._latest = max(self._latest, stamp)

    def end(self, out: TextIO, summary: ExportSummary) -> None:
        self._flush(out)
        level = summary.strictest
        tags = [misp_tag(level)] if level is not None else []
        out.write('\n], "timestamp": "' + str(self._latest) + '", "Tag": ' + json.dumps(tags) + "}}\n")
