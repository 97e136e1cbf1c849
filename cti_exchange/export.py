"""Export: indicators from the local store as the files SOC tools ingest. API behind `export`.

By default an export holds what analysts accepted, not expired, not revoked; the triage
filters narrow it further. Each indicator value is written once, whatever number of partners
sent it, with the strictest TLP among them.

TLP is honoured on the way out of cti-exchange as on the way out to partners: content marked
TLP:RED or TLP:AMBER+STRICT is only written when the analyst says they understand what that
marking asks (`i_understand_tlp`), and every text file starts with its strictest TLP and what
that level allows (STIX keeps the objects' markings, MISP gets `tlp:` tags).

The whole export runs in one store transaction: the values read, the signature ids given out
(IDS formats) and the audit record are one consistent unit. Files are written beside their
destination and renamed into place, so a reader never sees half a blocklist.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.errors import ConfigError, PolicyError, UsageError
from cti_exchange.exporters.csv_export import CsvExporter
from cti_exchange.exporters.interface import ExportContext, Exporter, ExportSummary
from cti_exchange.exporters.misp_export import MispExporter
from cti_exchange.exporters.plain import PlainExporter
from cti_exchange.exporters.sids import SidRegistry
from cti_exchange.exporters.snort import SnortExporter
from cti_exchange.exporters.stix_export import StixExporter
from cti_exchange.exporters.suricata import SuricataExporter
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.audit_log import append_audit
from cti_exchange.store.export_queries import iter_export_groups
from cti_exchange.store.store import Store
from cti_exchange.store.triage_queries import IOC_TYPES, TriageFilter

EXPORTERS: dict[str, type[Exporter]] = {
    cls.name: cls
    for cls in (
        PlainExporter,
        CsvExporter,
        StixExporter,
        SuricataExporter,
        SnortExporter,
        MispExporter,
    )
}
# Markings whose text limits the audience to named people or one organisation.
GATED_TLP = frozenset({Tlp.RED.value, Tlp.AMBER_STRICT.value})


@dataclass(frozen=True)
class ExportRequest:
    format: str
    filters: TriageFilter
    output: Path | None = None  # None: the `stream` given to export_indicators
    i_understand_tlp: bool = False


@dataclass(frozen=True)
class ExportedFile:
    path: str  # "-" for a stream
    values: int
    bytes: int
    sha256: str
    tlp: str | None  # strictest level written
    summary: ExportSummary = field(repr=False)


@dataclass(frozen=True)
class ExportResult:
    format: str
    files: list[ExportedFile]
    sids_assigned: int = 0

    @property
    def values(self) -> int:
        return sum(f.values for f in self.files)


def export_filter(filters: TriageFilter) -> TriageFilter:
    """The export defaults applied where the user chose nothing: accepted and not expired."""
    return replace(
        filters,
        statuses=filters.statuses or ("accepted",),
        expired=False if filters.expired is None else filters.expired,
    )


def _targets(request: ExportRequest, exporter: type[Exporter]) -> list[tuple[Path | None, TriageFilter]]:
    """Where each part goes: a plain export into a directory gives one file per IOC type."""
    output = request.output
    if output is None or not output.is_dir():
        return [(output, request.filters)]
    if exporter is not PlainExporter:
        return [(output / f"cti-exchange.{exporter.extension}", request.filters)]
    chosen = [t for t in request.filters.types if t in IOC_TYPES] or list(IOC_TYPES)
    return [(output / f"{t}.txt", replace(request.filters, types=(t,))) for t in chosen]


def _identities(conn: sqlite3.Connection) -> Any:
    def lookup(ids: list[str]) -> list[str]:
        texts = []
        for object_id in ids:
            row = conn.execute(
                "SELECT json FROM objects WHERE object_id = ? AND is_current = 1 AND type = 'identity'",
                (object_id,),
            ).fetchone()
            if row:
                texts.append(row[0])
        return texts

    return lookup


def _write_body(
    conn: sqlite3.Connection,
    exporter: Exporter,
    filters: TriageFilter,
    body: TextIO,
    *,
    i_understand_tlp: bool,
) -> ExportSummary:
    summary = ExportSummary()
    exporter.begin(body)
    groups = iter_export_groups(conn, filters, with_json=isinstance(exporter, StixExporter))
    for item in groups:
        if item.tlp in GATED_TLP and not i_understand_tlp:
            raise PolicyError(
                f"the export holds {Tlp(item.tlp).label} content (first: {item.object_id}); "
                "nothing was written",
                hint="pass --i-understand-tlp if the file stays with the people the marking "
                "names, or leave it out with --max-tlp amber",
            )
        if exporter.write(item, body, summary):
            summary.values += 1
            summary.by_type[item.ioc_type] += 1
            summary.by_tlp[item.tlp or "unmarked"] += 1
        else:
            summary.skipped[item.ioc_type] += 1
            summary.skip_reasons.setdefault(item.ioc_type, exporter.skip_reason(item.ioc_type))
    exporter.end(body, summary)
    return summary


def _publish(header: str, body_path: Path, target: Path | None, stream: TextIO | None) -> tuple[int, str]:
    """Header then body, renamed into place (or copied to the stream); (bytes, sha256)."""
    digest = hashlib.sha256()
    size = 0
    head = header.encode("utf-8")
    if target is None:
        out = stream or sys.stdout
        out.write(header)
        digest.update(head)
        size += len(head)
        with body_path.open(encoding="utf-8", newline="") as text:
            while part := text.read(1 << 20):
                out.write(part)
                encoded = part.encode("utf-8")
                digest.update(encoded)
                size += len(encoded)
        out.flush()
        return size, digest.hexdigest()
    fd, final_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as final, body_path.open("rb") as body:
            final.write(head)
            digest.update(head)
            size += len(head)
            while chunk := body.read(1 << 20):
                final.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            final.flush()
            os.fsync(final.fileno())
        os.chmod(final_name, 0o640)  # blocklists may carry TLP:AMBER content: not world-readable
        os.replace(final_name, target)
    except BaseException:
        Path(final_name).unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()


def export_indicators(
    store: Store,
    request: ExportRequest,
    *,
    producer: str,
    identity: dict[str, Any],
    stream: TextIO | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Writes the export (one file, one file per IOC type, or `stream`) and audits it."""
    exporter_cls = EXPORTERS.get(request.format)
    if exporter_cls is None:
        raise UsageError(f"--format: {request.format!r} is not one of {', '.join(EXPORTERS)}")
    if request.output is not None and not request.output.parent.is_dir():
        raise ConfigError(f"cannot write {request.output}: {request.output.parent} is not a directory")
    at = stix_timestamp(now or utc_now())
    files: list[ExportedFile] = []
    with store.db.transaction() as conn:
        sids = SidRegistry(conn, assigned_at=at)
        context = ExportContext(
            generated_at=at,
            producer=producer,
            producer_identity=identity,
            sid_for=sids.sid_for,
            identities=_identities(conn),
        )
        for target, filters in _targets(request, exporter_cls):
            exporter = exporter_cls(context)
            scratch = target.parent if target is not None else None
            fd, body_name = tempfile.mkstemp(prefix=".cti-export-body.", dir=scratch)
            body_path = Path(body_name)
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as body:
                    summary = _write_body(
                        conn, exporter, filters, body, i_understand_tlp=request.i_understand_tlp
                    )
                size, digest = _publish(exporter.header(summary), body_path, target, stream)
            finally:
                body_path.unlink(missing_ok=True)
            strictest = summary.strictest
            files.append(
                ExportedFile(
                    str(target) if target is not None else "-",
                    summary.values,
                    size,
                    digest,
                    strictest.value if strictest else None,
                    summary,
                )
            )
        append_audit(
            conn,
            at=at,
            actor=store.actor,
            action="export",
            details={
                "format": request.format,
                "filters": {k: v for k, v in asdict(request.filters).items() if v not in ((), None, "")},
                "i_understand_tlp": request.i_understand_tlp,
                "files": [
                    {"path": f.path, "values": f.values, "sha256": f.sha256, "tlp": f.tlp} for f in files
                ],
                "sids_assigned": sids.assigned,
            },
        )
    return ExportResult(request.format, files, sids.assigned)
