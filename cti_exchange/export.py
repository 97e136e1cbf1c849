"""Export: indicators from the local store as the files SOC tools ingest. API behind `export`.

By default an export holds what analysts accepted, not expired, not revoked; the triage
filters narrow it further. Each indicator value is written once, whatever number of partners
sent it, with the strictest TLP among them.

TLP is honoured on the way out of cti-exchange as on the way out to partners: content marked
TLP:RED or TLP:AMBER+STRICT is only written when the analyst says they understand what that
marking asks (`i_understand_tlp`), and every text file starts with its strictest TLP and what
that level allows (STIX keeps the objects' markings, MISP gets `tlp:` tags).

Partner values pass the normalisers and guardrails ours pass at ingest before they are written
(exporters/safety.py): invalid ones never, overly broad ones only with `allow_broad`; the
file's head and the result list them.

An IDS or MISP export, and one streamed to stdout or a FIFO, runs in one store transaction: the
values read, the signature ids and revs or attribute timestamps it keeps and the audit record
are one consistent unit. A plain, CSV or STIX export to files reads a snapshot of the store,
which holds no write lock (a cron sync and analysts' decisions go on while an export of a million
values runs), then puts its complete files in place and appends the audit record in one short
write transaction: no file is installed without its record, and none after an erasure that
committed while it read. Every part (one file per IOC type
into a directory) is written to a temporary file beside its destination and passes the TLP
gate before any is renamed into place, so a reader never sees half a blocklist and a refused
export leaves nothing behind. FIFOs, character devices and descriptor paths (`/dev/stdout`)
are written straight into instead: renaming over them would replace them, not feed them.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.errors import ConfigError, LockHeldError, PolicyError, UsageError
from cti_exchange.exporters.body_files import locked_body_file, stale_bodies
from cti_exchange.exporters.csv_export import CsvExporter
from cti_exchange.exporters.destination import (
    GATED_TLP,
    ExportPart,
    prepare_file,
    stream_out,
    write_through,
    written_through,
)
from cti_exchange.exporters.interface import (
    ExportContext,
    Exporter,
    ExportItem,
    ExportSummary,
    RefusedValue,
)
from cti_exchange.exporters.misp_export import MispExporter
from cti_exchange.exporters.plain import PlainExporter
from cti_exchange.exporters.safety import ValueCheck
from cti_exchange.exporters.sids import SidRegistry
from cti_exchange.exporters.snort import SnortExporter
from cti_exchange.exporters.stix_export import StixExporter
from cti_exchange.exporters.suricata import SuricataExporter
from cti_exchange.exporters.value_forms import ValueForms
from cti_exchange.failpoints import failpoint
from cti_exchange.readers.warning_list import bundled_warning_lists
from cti_exchange.stix.guardrails import Guardrails
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.audit_log import append_audit
from cti_exchange.store.export_queries import MispStamps, holds_tlp, iter_export_groups
from cti_exchange.store.store import Store
from cti_exchange.store.triage_queries import DECIDED_AGAINST, IOC_TYPES, TLP_RANK, TriageFilter

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


@dataclass(frozen=True)
class ExportRequest:
    format: str
    filters: TriageFilter
    output: Path | None = None  # None: the `stream` given to export_indicators
    i_understand_tlp: bool = False
    allow_broad: bool = False  # write overly broad values too (exporters/safety.py)
    # The TLP a value none of whose objects is marked goes out at (the profile's default): in
    # the file's head, the TLP gate and --max-tlp, as our own unmarked input is marked on ingest.
    unmarked_tlp: str | None = None


@dataclass(frozen=True)
class ExportedFile:
    path: str  # "-" for a stream
    values: int
    bytes: int
    sha256: str
    tlp: str | None  # strictest level in the file
    summary: ExportSummary = field(repr=False)
    complete: bool = True  # False: the reader of a stream or FIFO stopped before the end
    # Written into a stream, a FIFO, a device or a descriptor path (`/dev/stdout`) rather than
    # renamed into place: possibly our own stdout.
    streamed: bool = False

    @property
    def refused(self) -> int:
        return sum(self.summary.refused.values())


@dataclass(frozen=True)
class ExportResult:
    format: str
    files: list[ExportedFile]
    sids_assigned: int = 0
    # IDS rules of known sids given a new rev: a text their sid had not had (exporters/sids.py)
    rules_revised: int = 0

    @property
    def values(self) -> int:
        return sum(f.values for f in self.files)

    @property
    def refused(self) -> int:
        return sum(f.refused for f in self.files)

    @property
    def complete(self) -> bool:
        return all(f.complete for f in self.files)


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
    types = request.filters.types
    named = [t for t in types if t in IOC_TYPES]
    stix = tuple(t for t in types if t not in IOC_TYPES)
    if not stix:
        return [(output / f"{t}.txt", replace(request.filters, types=(t,))) for t in named or IOC_TYPES]
    # STIX types named (`--type vulnerability`, `--type indicator`): every IOC type's file, each
    # holding the values of its type that the selection holds (the values of an IOC type named
    # as such, whatever object holds them; of the others, only those the STIX types named hold).
    return [
        (output / f"{t}.txt", replace(request.filters, types=(t,) if t in named else stix, ioc_type=t))
        for t in IOC_TYPES
    ]


def _identities(conn: sqlite3.Connection) -> Any:
    def lookup(ids: list[str], ceiling: Tlp | None) -> list[str]:
        """The stored identities among `ids` whose TLP is no stricter than `ceiling` (None:
        unmarked ones only): an identity is a related object, and must not take the file
        above what its values are marked, nor past the TLP gate (created_by_ref may stay
        unresolved in a bundle)."""
        return _related(conn, ids, "identity", ceiling)

    return lookup


def _markings(conn: sqlite3.Connection, referencing: dict[str, list[str]]) -> Any:
    def lookup(ids: list[str], ceiling: Tlp | None) -> list[str]:
        """The stored marking-definitions among `ids` (statements and other non-TLP markings
        the exported indicators reference), as received, whose own TLP is no stricter than
        `ceiling`, as identities: a statement marked TLP:RED (the name of a source, say) stays
        out of a TLP:GREEN bundle, whose indicators then keep an unresolved reference to it,
        as to a marking the store never received. Each as the partner that sent the exported
        objects referencing it defined it (`referencing`: marking id -> their ids), as the
        store read their TLP: another partner's definition of that id (one that defined it
        first, stating TLP:CLEAR) never travels with them. Objects from sources that defined
        it differently, or not at all, leave it an unresolved reference too."""
        texts = []
        for marking_id in ids:
            senders = _first_sources(conn, referencing.get(marking_id, []))
            found = {_definition_sent_by(conn, marking_id, sender) for sender in senders}
            row = found.pop() if len(found) == 1 else None
            if row and (row[1] is None or (ceiling is not None and Tlp(row[1]) <= ceiling)):
                texts.append(row[0])
        return texts

    return lookup


def _first_sources(conn: sqlite3.Connection, object_ids: list[str]) -> set[str]:
    """The partners that first sent the current versions of `object_ids` (their TLP was read
    with those partners' marking-definitions, store/objects.py)."""
    found: set[str] = set()
    for start in range(0, len(object_ids), 500):
        chunk = object_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT DISTINCT partner FROM objects WHERE is_current = 1 AND object_id IN ({marks})"  # noqa: S608 - placeholders only
        found.update(partner for (partner,) in conn.execute(query, chunk))
    return found


def _definition_sent_by(
    conn: sqlite3.Connection, marking_id: str, partner: str
) -> tuple[str, str | None] | None:
    """(JSON, TLP) of the latest definition of `marking_id` that `partner` sent, or None."""
    return conn.execute(
        "SELECT json, tlp FROM objects WHERE object_id = ? AND type = 'marking-definition' AND (partner = ? "
        "OR EXISTS (SELECT 1 FROM object_sources AS s WHERE s.object_id = objects.object_id "
        "AND s.version = objects.version AND s.partner = ?)) ORDER BY version DESC LIMIT 1",
        (marking_id, partner, partner),
    ).fetchone()


_MARKING_REF = re.compile(r'"(marking-definition--[0-9a-fA-F-]{36})"')


def _custom_marking_refs(text: str) -> list[str]:
    """The marking refs in an object's JSON that are not TLP ids; fast for one TLP ref."""
    count = text.count('"marking-definition--')
    if not count or (count == 1 and any(level.marking_id in text for level in Tlp)):
        return []
    return [ref for ref in _MARKING_REF.findall(text) if Tlp.from_marking_id(ref) is None]


def _related(conn: sqlite3.Connection, ids: list[str], kind: str, ceiling: Tlp | None) -> list[str]:
    texts = []
    for object_id in ids:
        row = conn.execute(
            "SELECT json, tlp FROM objects WHERE object_id = ? AND is_current = 1 AND type = ?",
            (object_id, kind),
        ).fetchone()
        if row and (row[1] is None or (ceiling is not None and Tlp(row[1]) <= ceiling)):
            texts.append(row[0])
    return texts


def _decided_against(
    conn: sqlite3.Connection, filters: TriageFilter, forms: ValueForms
) -> dict[str, set[str]]:
    """IOC type -> canonical forms of the values a current object marked false-positive or
    rejected holds, for the statuses the export did not select: a value decided on in one
    spelling (before decisions covered every spelling, or arriving later in another) is not
    written in another. The few decided objects are read through the status index."""
    # Whose values an export never writes in any spelling, unless it selects them.
    statuses = [s for s in DECIDED_AGAINST if s not in filters.statuses]
    found: dict[str, set[str]] = {}
    for status in statuses:
        for ioc_type, value in conn.execute(
            "SELECT ioc_type, value FROM objects INDEXED BY objects_current_by_status "
            "WHERE status = ? AND is_current = 1 AND ioc_type IS NOT NULL AND value IS NOT NULL",
            (status,),
        ):
            found.setdefault(ioc_type, set()).add(forms.of(ioc_type, value))
    return found


def blocklist_url(value: str) -> str:
    """A URL in canonical form without its fragment (`#frag`: never sent, so the entry would
    never match, and readers that strip inline `#` comments would cut it to the site) and its
    user information (`user:password@`: sent in an Authorization header if at all, never in
    the URL a proxy compares, and a secret). Returns `value` itself when it holds neither."""
    head = value.partition("#")[0]
    scheme, separator, rest = head.partition("://")
    if not separator:
        return head
    ends = [i for i in (rest.find("/"), rest.find("?")) if i >= 0]
    end = min(ends) if ends else len(rest)
    authority = rest[:end].rpartition("@")[2]
    return f"{scheme}://{authority}{rest[end:]}"


def _trimmed(forms: ValueForms, form: str) -> str:
    """blocklist_url of a canonical URL, in canonical form again (`http://evil.example#x` is
    `http://evil.example/`)."""
    trimmed = blocklist_url(form)
    return trimmed if trimmed == form else forms.of("url", trimmed)


class _Gate:
    """The TLP gate: TLP:RED and TLP:AMBER+STRICT content only with --i-understand-tlp."""

    def __init__(self, conn: sqlite3.Connection, filters: TriageFilter, allowed: bool) -> None:
        self.conn, self.filters, self.allowed = conn, filters, allowed

    def check(self, item: ExportItem) -> None:
        if item.tlp not in GATED_TLP or self.allowed:
            return
        held = [Tlp(item.tlp).label]
        # Values come in type order, not TLP order: the first one gated may be AMBER+STRICT
        # while RED follows, and the analyst decides on --i-understand-tlp for both.
        if item.tlp != Tlp.RED.value and holds_tlp(self.conn, self.filters, Tlp.RED.value):
            held.append(Tlp.RED.label)
        raise PolicyError(
            f"the export holds {' and '.join(held)} content (first: {item.object_id}); nothing was written",
            hint="pass --i-understand-tlp if the file stays with the people the marking "
            "names, or leave it out with --max-tlp amber",
        )


def _merge(into: ExportItem, other: ExportItem) -> None:
    """Another spelling of `into`'s value: the strictest TLP, the highest confidence, the
    latest expiry and every partner of both; the first-received object stands for them."""
    rank = TLP_RANK.get
    if other.tlp is not None and (into.tlp is None or rank(other.tlp, 0) > rank(into.tlp, 0)):
        into.tlp = other.tlp
    if other.confidence is not None and (into.confidence or -1) < other.confidence:
        into.confidence = other.confidence
    if into.valid_until is not None and (other.valid_until is None or other.valid_until > into.valid_until):
        into.valid_until = other.valid_until  # None, no end, is the latest
    into.partners.extend(p for p in other.partners if p not in into.partners)
    into.latest = max(into.latest, other.latest)
    into.trimmed = into.trimmed or other.trimmed
    if other.received_at < into.received_at:
        into.object_id, into.received_at, into.json = other.object_id, other.received_at, other.json
    into.spellings += other.spellings


def _write_body(
    conn: sqlite3.Connection,
    exporter: Exporter,
    filters: TriageFilter,
    body: TextIO,
    *,
    i_understand_tlp: bool,
    check: ValueCheck,
    forms: ValueForms | None = None,
    decided_against: dict[str, set[str]] | None = None,
    referencing: dict[str, list[str]] | None = None,
    unmarked_tlp: str | None = None,
) -> ExportSummary:
    """Writes every value of the selection through `exporter`. A format that writes values in
    canonical form (plain, CSV, MISP) writes each value once whatever its stored spellings,
    with the strictest TLP and every source of them all; values of the spellings the
    iteration cannot vouch for are held until their type ends (export_queries.py). Those
    formats write URLs without fragment and user information (blocklist_url), the form a
    proxy compares: two values that differ only there are one. A format that `withdraws`
    (MISP) then writes, as withdrawn, the values of the selection now decided against or
    revoked, unless written in another spelling."""
    forms = forms or ValueForms(check)
    against = decided_against or {}
    gate = _Gate(conn, filters, i_understand_tlp)
    ceiling = TLP_RANK[filters.max_tlp] if filters.max_tlp is not None else None

    def marked(item: ExportItem) -> bool:
        """Gives a value no object of which is marked the default TLP (`unmarked_tlp`); False
        when that is above --max-tlp (the query lets unmarked values through)."""
        if item.tlp is None and unmarked_tlp is not None:
            item.tlp = unmarked_tlp
            summary.unmarked[item.ioc_type] += 1
            return ceiling is None or TLP_RANK[unmarked_tlp] <= ceiling
        return True

    summary = ExportSummary(head_lists_refused=exporter.comment is not None)
    merging = exporter.canonical_values
    exporter.begin(body)
    # (IOC type, form) -> values to withdraw; a spelling of one written takes it out.
    withdrawals: dict[tuple[str, str], ExportItem] = {}

    def to_withdraw(item: ExportItem, form: str) -> None:
        item.value = form
        earlier = withdrawals.get((item.ioc_type, form))
        if earlier is None:
            withdrawals[item.ioc_type, form] = item
        else:
            _merge(earlier, item)

    if exporter.withdraws:
        for item in iter_export_groups(conn, filters, withdrawn=True):
            if item.tlp is None and not marked(item):
                continue
            form = item.value
            if not check.fast_path(item.ioc_type)(form):
                refused = check.close_look(item.ioc_type, form)
                if refused is not None and not refused.broad:
                    continue  # invalid: never written, nothing to withdraw
                form = forms.slow(item.ioc_type, form)
            if merging and item.ioc_type == "url":
                form = _trimmed(forms, form)
            to_withdraw(item, form)
    groups = iter_export_groups(
        conn, filters, with_json=isinstance(exporter, StixExporter), spelling_blocks=merging
    )
    ioc_type, ordinary, withheld = "", check.fast_path(""), frozenset[str]()
    trimming = False
    held: dict[str, ExportItem] = {}  # canonical form -> the spellings of it met so far

    def emit(item: ExportItem) -> None:
        if item.tlp is None:  # every spelling of it unmarked (merging formats mark it here)
            if not marked(item):
                return
            gate.check(item)  # the default TLP may be one the gate holds
        summary.merged += item.spellings - 1
        if exporter.write(item, body, summary):
            if referencing is not None and item.json is not None:  # STIX: for _markings
                for ref in _custom_marking_refs(item.json):
                    referencing.setdefault(ref, []).append(item.object_id)
            summary.values += 1
            summary.by_type[item.ioc_type] += 1
            summary.by_tlp[item.tlp or "unmarked"] += 1
            if item.trimmed:
                summary.trimmed[item.ioc_type] += 1
            if withdrawals:
                withdrawals.pop((item.ioc_type, item.value), None)
        else:
            summary.skipped[item.ioc_type] += 1
            summary.skip_reasons.setdefault(item.ioc_type, exporter.skip_reason(item.ioc_type))

    for item in groups:
        # A call only for the rare unmarked value. Where spellings merge, once they have: the
        # default TLP is for a value no object of which is marked, in any spelling (a marked
        # spelling's TLP stands, as an unmarked object beside a marked one of the same
        # spelling leaves it, export_queries.py).
        deferred = merging and item.tlp is None
        if item.tlp is None and not deferred and not marked(item):
            continue
        if item.ioc_type != ioc_type:  # items come in type order
            for waiting in held.values():
                emit(waiting)
            held.clear()
            ioc_type, ordinary = item.ioc_type, check.fast_path(item.ioc_type)
            withheld = frozenset(against.get(ioc_type, ()))
            trimming = merging and ioc_type == "url"
            if trimming:  # decided on as a proxy compares it
                withheld = frozenset(_trimmed(forms, f) for f in withheld)
        form = item.value
        if not ordinary(item.value):
            if refused := check.close_look(item.ioc_type, item.value):
                if deferred and not marked(item):  # never merged: marked as it is
                    continue
                gate.check(item)  # the head lists it, with its TLP
                summary.refuse(
                    RefusedValue(
                        item.ioc_type,
                        item.value,
                        refused.code,
                        refused.reason,
                        refused.broad,
                        item.tlp,
                        item.object_id,
                    )
                )
                continue
            form = forms.slow(item.ioc_type, item.value)
        if trimming and ("#" in form or "@" in form):
            trimmed = _trimmed(forms, form)
            item.trimmed = trimmed != form
            form = trimmed
        if form in withheld:
            if deferred and not marked(item):  # not written: marked as it is
                continue
            summary.withheld[item.ioc_type] += 1
            if exporter.withdraws:
                to_withdraw(item, form)
            continue
        gate.check(item)
        if not merging:
            emit(item)
            continue
        vouched, item.value = item.plain, form
        earlier = held.pop(form, None)
        if earlier is not None:
            _merge(earlier, item)
            item = earlier
        if not vouched:  # another spelling of it may follow: held until the type ends
            held[form] = item
            continue
        emit(item)
    for waiting in held.values():
        emit(waiting)
    for item in withdrawals.values():
        if not exporter.may_hold(item):
            continue  # never in the reader's copy: not written, so not for the TLP gate either
        gate.check(item)
        if exporter.withdraw(item, body, summary):
            summary.withdrawn[item.ioc_type] += 1
            if item.tlp is not None:
                summary.withdrawn_tlp[item.tlp] += 1
    exporter.end(body, summary)
    return summary


def _refuse_if_erased_since(conn: sqlite3.Connection, read_through: int) -> None:
    """An erasure (`triage erase`) committed while the export read its snapshot: the files
    would put back what it erased. Nothing is installed (audit records after `read_through`,
    read by the primary key)."""
    if conn.execute(
        "SELECT 1 FROM audit_log WHERE seq > ? AND action = 'erase' LIMIT 1", (read_through,)
    ).fetchone():
        raise LockHeldError(
            "an erasure (`triage erase`) ran while the export read the store; nothing was written",
            hint="run the export again",
        )


def _install(parts: list[ExportPart], stream: TextIO | None) -> list[ExportedFile]:
    """Every part in place: streamed, written through, or its complete file renamed over the
    target."""
    for part in parts:
        if part.target is None:
            stream_out(part, stream)
        elif part.through:
            write_through(part)
        else:
            assert part.ready is not None
            try:
                os.replace(part.ready, part.target)
            except OSError as error:
                raise ConfigError(f"cannot write {part.target}: {error.strerror or error}") from None
            part.ready = None
    return [_exported(part) for part in parts]


def _audited(request: ExportRequest, files: list[ExportedFile], sids: SidRegistry) -> dict[str, Any]:
    """The `export` audit record's details."""
    return {
        "format": request.format,
        "filters": {k: v for k, v in asdict(request.filters).items() if v not in ((), None, "")},
        "i_understand_tlp": request.i_understand_tlp,
        "allow_broad": request.allow_broad,
        "files": [
            {
                # Absolute: the record must say which file, whatever the directory.
                "path": f.path if f.path == "-" else os.path.abspath(f.path),
                "values": f.values,
                "refused": f.refused,
                "sha256": f.sha256,
                "tlp": f.tlp,
                "complete": f.complete,
            }
            for f in files
        ],
        "sids_assigned": sids.assigned,
        "rules_revised": sids.revised,
    }


def export_indicators(
    store: Store,
    request: ExportRequest,
    *,
    producer: str,
    identity: dict[str, Any],
    stream: TextIO | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Writes the export (one file, one file per IOC type, or `stream`) and audits it.

    Every part is written to a temporary file and passes the TLP gate before any of them is
    put in place: a refusal leaves nothing written and nothing audited."""
    exporter_cls = EXPORTERS.get(request.format)
    if exporter_cls is None:
        raise UsageError(f"--format: {request.format!r} is not one of {', '.join(EXPORTERS)}")
    if request.output is not None and not request.output.parent.is_dir():
        raise ConfigError(
            f"cannot write {request.output}: {request.output.parent} is not a directory",
            hint="create it first, or give -o a path in an existing directory",
        )
    parts = [
        ExportPart(target, filters, target is not None and written_through(target))
        for target, filters in _targets(request, exporter_cls)
    ]
    check = ValueCheck(Guardrails(bundled_warning_lists()), allow_broad=request.allow_broad)
    forms = ValueForms(check)
    at = stix_timestamp(now or utc_now())
    referencing: dict[str, list[str]] = {}  # custom marking id -> exported objects (STIX)
    # Read from a snapshot, without the write lock, unless the format keeps records as it goes
    # or a part is streamed (stdout, a FIFO: what the reader took is only known once streamed,
    # and the record must say it). Files are complete beside their targets before the short
    # write transaction that puts them in place and records them: a lock that cannot be had
    # leaves neither a file nor a record.
    locked_throughout = exporter_cls.keeps_records or any(p.target is None or p.through for p in parts)
    body_locks: list[int] = []  # held until the bodies are removed
    try:
        with store.db.transaction() if locked_throughout else store.db.snapshot() as conn:
            sids = SidRegistry(conn, assigned_at=at)
            context = ExportContext(
                generated_at=at,
                producer=producer,
                producer_identity=identity,
                sid_and_rev=sids.sid_and_rev,
                identities=_identities(conn),
                markings=_markings(conn, referencing),
                selection=ExportContext.selection_of(request.filters),
                misp_stamps=lambda event, now: MispStamps(conn, event, now),
            )
            decided_against = _decided_against(conn, request.filters, forms)
            # 1. Every body, through the TLP gate and the value checks, each beside its target
            # (or in the temporary directory), where the bodies killed exports left are removed
            # first: those no live export holds locked (exporters/body_files.py).
            swept: set[Path] = set()  # once per directory: `-o DIR` writes a part per IOC type there
            for part in parts:
                exporter = exporter_cls(context)
                scratch = part.target.parent if part.target is not None and not part.through else None
                if (directory := scratch or Path(tempfile.gettempdir())) not in swept:
                    stale_bodies(directory, remove=True)
                    swept.add(directory)
                fd, part.body_path, lock = locked_body_file(scratch, part.target)
                body_locks.append(lock)
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as body:
                    part.summary = _write_body(
                        conn,
                        exporter,
                        part.filters,
                        body,
                        i_understand_tlp=request.i_understand_tlp,
                        check=check,
                        forms=forms,
                        decided_against=decided_against,
                        referencing=referencing,
                        unmarked_tlp=request.unmarked_tlp,
                    )
                part.header = exporter.header(part.summary)
            failpoint("export-bodies-written")
            # 2. Every file complete beside its target.
            for part in parts:
                if part.target is not None and not part.through:
                    prepare_file(part)
            read_through = int(conn.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()[0])

            def install_and_record(conn: sqlite3.Connection) -> list[ExportedFile]:
                """3. All in place, then the audit record, in the caller's write transaction."""
                files = _install(parts, stream)
                append_audit(
                    conn, at=at, actor=store.actor, action="export", details=_audited(request, files, sids)
                )
                return files

            if locked_throughout:
                files = install_and_record(conn)
        if not locked_throughout:
            with store.db.transaction() as conn:
                _refuse_if_erased_since(conn, read_through)
                files = install_and_record(conn)
    finally:
        for part in parts:
            for leftover in (part.body_path, part.ready):
                if leftover is not None:
                    leftover.unlink(missing_ok=True)
        for lock in body_locks:
            os.close(lock)
    return ExportResult(request.format, files, sids.assigned, sids.revised)


def _exported(part: ExportPart) -> ExportedFile:
    assert part.summary is not None
    strictest = part.summary.strictest
    return ExportedFile(
        str(part.target) if part.target is not None else "-",
        part.summary.values,
        part.size,
        part.sha256,
        strictest.value if strictest else None,
        part.summary,
        part.complete,
        streamed=part.target is None or part.through,
    )
