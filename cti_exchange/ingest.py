"""Ingestion: input files in any supported format -> validated STIX 2.1 objects and a report.

This is the API behind `cti-exchange validate`, `convert` and `push`:

    result = ingest_files([Path("iocs.csv")], context, IngestOptions())
    bundle = build_bundle(result.objects, context.identity)      # cti_exchange.stix.bundle

Each file goes to the reader its content calls for (or the forced `format`); candidates are
converted and checked by the core (`cti_exchange.stix.conversion`), STIX objects are prepared
for passing through (`cti_exchange.stix.passthrough`), duplicates are merged
(`cti_exchange.stix.collection`). Nothing here raises for bad input: every problem is a
`Rejection` or a `Finding` in the result, and `IngestResult.verdict` sums them up.

Reports stay bounded on hostile input: the first `max_reported` rejections and warnings are kept
in full, the rest only counted by code. With `workers` > 1, a large CSV file is cut at line
starts and its parts are converted in forked processes, then merged in file order, so that
the result is the same as with one process.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from cti_exchange.collector import collector_paused
from cti_exchange.errors import ExitCode, InputError, UsageError
from cti_exchange.ingest_settings import IngestContext, IngestOptions
from cti_exchange.progress import NoProgress, ProgressReporter
from cti_exchange.readers.csv_reader import CsvLayout, CsvReader, no_indicator_column
from cti_exchange.readers.detect import misnamed_csv_header, reader_for
from cti_exchange.readers.file_head import StatedTlp
from cti_exchange.readers.file_parts import split_at_lines
from cti_exchange.readers.interface import (
    Finding,
    ReadLimits,
    Rejection,
    RemarkLog,
    StixInput,
)
from cti_exchange.readers.lines import sniff_encoding
from cti_exchange.readers.warning_list import bundled_warning_lists
from cti_exchange.stix.bundle import content_objects
from cti_exchange.stix.candidate import IndicatorCandidate
from cti_exchange.stix.collection import ObjectCollection
from cti_exchange.stix.conversion import CandidateConverter, ConversionSettings
from cti_exchange.stix.guardrails import Guardrails, WarningLists
from cti_exchange.stix.objects import StixObjectBuilder
from cti_exchange.stix.passthrough import PassthroughPreparer, PassthroughSettings
from cti_exchange.stix.tlp import Tlp
from cti_exchange.untrusted_text import describe_value

_PROGRESS_EVERY = 10_000


# Where each format carries its own TLP, besides --tlp (docs/INGEST.md). A TLP line in the head
# of a text list or CSV file (readers/file_head.py) marks the file's values in place of the
# default: it is announced by its own warning (head-tlp).
_TLP_IN_INPUT = {
    "csv": " or a tlp column",
    "stix": " or a TLP marking on the objects",
    "misp": " or a tlp: tag on the event or attribute",
}


# The rejection of a whole file (unreadable, not its format, no CSV header): docs/INGEST.md.
_WHOLE_FILE = "unreadable-file"
_WHOLE_FILES_IN_HINT = 2


class IngestVerdict(Enum):
    ALL_ACCEPTED = "all accepted"
    SOME_REJECTED = "some rejected"
    NOTHING_USABLE = "nothing usable"

    @property
    def exit_code(self) -> ExitCode:
        return {
            IngestVerdict.ALL_ACCEPTED: ExitCode.OK,
            IngestVerdict.SOME_REJECTED: ExitCode.PARTIAL,
            IngestVerdict.NOTHING_USABLE: ExitCode.INPUT,
        }[self]


@dataclass
class IngestResult:
    """What came out of the inputs, and what did not.

    `objects` are the STIX objects to share: our indicators and vulnerabilities, and objects
    passed through from STIX input; not the identity and TLP marking-definitions, which
    `build_bundle` adds. `accepted_by_type` counts them by indicator type (`ipv4-addr`,
    `sha256`, `cve`, ...) or, for passed-through objects, by STIX type.
    """

    objects: list[dict[str, Any]] = field(default_factory=list)
    accepted_by_type: dict[str, int] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    rejected_count: int = 0  # all rejections, including those beyond max_reported
    warning_count: int = 0
    rejections_by_code: dict[str, int] = field(default_factory=dict)
    warnings_by_code: dict[str, int] = field(default_factory=dict)
    duplicates_merged: int = 0
    formats: dict[str, str] = field(default_factory=dict)  # file -> format read as
    # Lines not read by design, by warning code (`table-rows`, `code-block`, `prose`): told
    # beside the verdict, which counts only rejections.
    skipped_lines_by_code: dict[str, int] = field(default_factory=dict)

    def nothing_usable_hint(self, see: str, *, listed: bool = False) -> str:
        """What to do when nothing is usable: `see` (where the rejections and warnings are)
        when there are some, else that markings and identities alone are nothing to share;
        and --include-non-ids when MISP attributes were skipped for to_ids false.

        Unless the rejections are `listed` beside the hint (validate and convert print them;
        push prints one line), why a whole file was refused (truncated, binary, no indicator
        column in its header) comes first: it is the one thing to fix, and `see` points at
        the other rejections and warnings, when there are any."""
        whole_files = [r for r in self.rejections if r.code == _WHOLE_FILE]
        if whole_files and not listed:
            hint = "; ".join(str(r) for r in whole_files[:_WHOLE_FILES_IN_HINT])
            refused = self.rejections_by_code.get(_WHOLE_FILE, len(whole_files))
            if refused > _WHOLE_FILES_IN_HINT:
                hint += f"; and {refused - _WHOLE_FILES_IN_HINT:,} more file(s) refused"
            if self.rejected_count > refused or self.warning_count:
                hint += f"; {see}"
        elif self.rejected_count or self.warning_count:
            hint = see
        elif self.formats and all(read_as == "stix" for read_as in self.formats.values()):
            hint = (
                "it holds no indicator or other object to share: marking definitions and "
                "identities travel with the objects that use them"
            )
        else:
            hint = "it holds no indicator: it is empty, or only blank lines, comments or a header"
        non_ids = self.warnings_by_code.get("not-for-detection", 0)
        if non_ids:
            hint += (
                f"; {non_ids:,} MISP attribute(s) with to_ids false were skipped: "
                "--include-non-ids reads them"
            )
        return hint

    @property
    def verdict(self) -> IngestVerdict:
        # As push judges it: marking-definitions and identities alone are nothing to share.
        if not content_objects(self.objects):
            return IngestVerdict.NOTHING_USABLE
        if self.rejected_count:
            return IngestVerdict.SOME_REJECTED
        return IngestVerdict.ALL_ACCEPTED


class _Run:
    """One call of ingest_files: the shared state of all its files."""

    def __init__(
        self,
        context: IngestContext,
        options: IngestOptions,
        warning_lists: WarningLists,
        progress: ProgressReporter,
    ) -> None:
        self.context = context
        self.options = options
        self.warning_lists = warning_lists
        self.progress = progress
        self.label = ""
        self.spooled: str | None = None
        self.formats: dict[str, str] = {}
        self.log = RemarkLog(options.max_reported)
        self.collection = ObjectCollection()
        self.guardrails = Guardrails(warning_lists)
        identity = context.identity
        self.builder = StixObjectBuilder(
            identity["id"], context.now, context.lifetime_days, context.default_confidence
        )
        self.converter = CandidateConverter(
            self.builder,
            self.guardrails,
            ConversionSettings(
                default_tlp=context.default_tlp,
                strict=options.strict,
                keep_personal_data=options.keep_personal_data,
                incident_source_name=str(identity.get("name") or "incident"),
            ),
            self._candidate_issue,
        )
        self.passthrough_settings = PassthroughSettings(
            identity_id=identity["id"],
            default_tlp=context.default_tlp,
            strict=options.strict,
            keep_personal_data=options.keep_personal_data,
        )

    def remark(self, remark: Rejection | Finding) -> None:
        if remark.file == self.spooled:
            remark = replace(remark, file=self.label)  # readers name the file by its path
        self.log.add(remark)

    def name_input(self, path: Path) -> None:
        """The input read next, and what messages call it (its label: `-` for standard input,
        which was spooled to a private file)."""
        self.label = self.options.label_of(path)
        self.spooled = str(path) if self.label != str(path) else None

    def _candidate_issue(
        self,
        candidate: IndicatorCandidate,
        code: str,
        field_name: str | None,
        reason: str,
        *,
        rejected: bool,
    ) -> None:
        kind = Rejection if rejected else Finding
        value = candidate.value if field_name == (candidate.field or "value") else None
        self.remark(
            kind(
                self.label,
                reason,
                line=candidate.line,
                where=candidate.where,
                field=field_name,
                value=describe_value(value) if value is not None else None,
                code=code,
            )
        )

    def _object_issue(
        self,
        index: int,
        object_id: str | None,
        code: str,
        field_name: str | None,
        reason: str,
        *,
        rejected: bool,
    ) -> None:
        where = f"objects[{index}]" + (f" {describe_value(object_id, 100)}" if object_id else "")
        kind = Rejection if rejected else Finding
        self.remark(kind(self.label, reason, where=where, field=field_name, code=code))

    def read_file(self, path: Path) -> None:
        self.name_input(path)
        limits = ReadLimits(self.options.max_line_bytes, self.options.max_json_bytes)
        default_before = self.converter.default_tlp_count
        produced_before = self._produced()
        header: tuple[int, list[str]] | None = None
        kept_log = self.log
        settings = self.converter.settings
        from_head: StatedTlp | None = None
        try:
            reader = reader_for(
                path, self.options.format, limits, include_non_ids=self.options.include_non_ids
            )
            self.formats[self.label] = reader.format_name
            head = reader.head(path)
            from_head = self._head_tlp(head.tlp) if head is not None else None
            if from_head is not None:
                # The file's own TLP for its values that carry none, in place of the default.
                self.converter.settings = replace(settings, default_tlp=from_head.tlp)
            if self.options.format is None and reader.format_name == "text":
                header = misnamed_csv_header(path)
                if header is not None:
                    # A CSV file whose header names no indicator column: what reading it as
                    # text finds is set aside until we know whether any of it was usable.
                    self.log = RemarkLog(kept_log.limit)
            self.progress.step(f"reading {path.name} ({reader.format_name})")
            if not (isinstance(reader, CsvReader) and self._read_in_parts(path, reader)):
                self._consume(reader.read(path))
        except InputError as error:
            reason = _without_file_name(_without_file_name(error.diagnostics(), str(path)), self.label)
            self.remark(Rejection(self.label, reason, line=getattr(error, "line", None), code=_WHOLE_FILE))
        finally:
            self.converter.settings = settings
        if header is not None:
            text_log, self.log = self.log, kept_log
            if self._produced() == produced_before:
                # Every line rejected as "not a recognised indicator" says less than the
                # header does: the rejection `--format csv` gives, in place of them.
                what, hint = no_indicator_column(header[1])
                reason = f"{what}: read as a text list, nothing in it was usable; {hint}"
                self.remark(Rejection(self.label, reason, line=header[0], code=_WHOLE_FILE))
            else:
                self.log.absorb(text_log)
        defaulted = self.converter.default_tlp_count - default_before
        if defaulted and from_head is not None:
            self.remark(
                Finding(
                    self.label,
                    f"{defaulted:,} value(s) had no TLP of their own: marked {from_head.tlp.label}, "
                    "as the file's head states",
                    line=from_head.line,
                    code="head-tlp",
                )
            )
        elif defaulted:
            self._announce_default_tlp(defaulted, "value(s) had no TLP")

    def _head_tlp(self, stated: StatedTlp | None) -> StatedTlp | None:
        """The TLP a file's head states, when it is the one its values without a TLP take: over
        the profile's default, and over a --tlp as strict; a stricter --tlp applies instead
        (None). A --tlp that would lower it is refused (UsageError): lowering a TLP is for
        whoever set it, by changing the file's head (docs/INGEST.md)."""
        context = self.context
        if stated is None:
            return None
        if not context.default_tlp_given:
            return stated
        given = context.default_tlp
        if given < stated.tlp:
            raise UsageError(
                f"{self.label}, line {stated.line}: the file's head marks it {stated.tlp.label}; "
                f"--tlp {given.value} would lower its values to {given.label}",
                hint=f"leave out --tlp, or give --tlp {stated.tlp.value} or stricter (a TLP is "
                "lowered only by whoever set it: edit the file's head to do so)",
            )
        return stated if given is stated.tlp else None

    def _produced(self) -> int:
        """Objects read so far, duplicates merged included."""
        return len(self.collection) + self.collection.duplicates_merged

    def _read_in_parts(self, path: Path, reader: CsvReader) -> bool:
        """Read a large CSV file in parallel parts; False when it must be read in one piece."""
        workers = self.options.workers
        if (
            workers < 2
            or "fork" not in multiprocessing.get_all_start_methods()
            or path.stat().st_size < self.options.parallel_min_bytes
        ):
            return False
        with path.open("rb") as stream:
            encoding, _ = sniff_encoding(stream.read(4))
        if encoding not in (None, "utf-8"):
            return False  # UTF-16/32 cannot be cut at a newline byte
        layout, remarks = reader.layout(path)
        parts = split_at_lines(path, layout.data_offset, workers, layout.header_line + 1)
        if parts is None:
            return False
        for remark in remarks:
            self.remark(remark)  # type: ignore[arg-type]
        # fork: the workers start with this process's code and state, and run only the
        # conversion, which neither prints nor takes a lock another thread could hold.
        pool = ProcessPoolExecutor(len(parts) - 1, mp_context=multiprocessing.get_context("fork"))
        with pool:
            # The rows without a TLP take the file head's, if it states one, as here.
            shared = (self.context, self.options, self.warning_lists, self.converter.settings.default_tlp)
            futures = [pool.submit(_read_part, path, layout, part, *shared) for part in parts[1:]]
            start, end, first_line = parts[0]
            self._consume(reader.read_part(path, layout, (start, end), first_line))
            for future in futures:
                self._absorb(future.result())
        return True

    def _absorb(self, part: _PartResult) -> None:
        """Add a part read by a worker, in file order, as if it had been read here."""
        add = self.collection.add_authored
        for kind, obj in zip(part.kinds, part.objects, strict=True):
            add(kind, obj)
        self.collection.duplicates_merged += part.duplicates_merged
        self.converter.default_tlp_count += part.default_tlp_count
        self.log.absorb(part.log)

    def _consume(self, items: Iterable[Any]) -> None:
        converted = self.converter.converted
        add = self.collection.add_authored
        advance = self.progress.advance
        count = 0
        for item in items:
            cls = item.__class__
            if cls is IndicatorCandidate:
                result = converted(item)
                if result is not None:
                    add(result[0]._value_, result[1])
                count += 1
                if count == _PROGRESS_EVERY:
                    advance(count)
                    count = 0
            elif cls is StixInput:
                self._pass_through(item)
            else:
                self.remark(item)
        if count:
            advance(count)

    def _pass_through(self, stix_input: StixInput) -> None:
        preparer = PassthroughPreparer(self.passthrough_settings, self.guardrails, self._object_issue)
        for obj in preparer.prepared(stix_input.objects, stix20=stix_input.stix20):
            self.collection.add_passed_through(obj)
        if preparer.upgraded_count:
            self.remark(
                Finding(
                    self.label,
                    f"{preparer.upgraded_count} STIX 2.0 object(s) upgraded to STIX 2.1",
                    code="stix20-upgraded",
                )
            )
        if preparer.default_tlp_count:
            self._announce_default_tlp(preparer.default_tlp_count, "object(s) had no TLP marking")
        if preparer.attributed_count:
            self.remark(
                Finding(
                    self.label,
                    f"{preparer.attributed_count} object(s) had no created_by_ref: attributed "
                    f"to {self.context.identity['id']}",
                    code="attributed",
                )
            )

    def _announce_default_tlp(self, count: int, what: str) -> None:
        tlp = self.context.default_tlp
        where = _TLP_IN_INPUT.get(self.formats.get(self.label, ""), "")
        how = (
            "as --tlp asks"
            if self.context.default_tlp_given
            else f"the default (set another with --tlp{where})"
        )
        self.remark(Finding(self.label, f"{count:,} {what}: marked {tlp.label}, {how}", code="default-tlp"))

    def result(self) -> IngestResult:
        collection = self.collection
        return IngestResult(
            objects=collection.objects,
            accepted_by_type=dict(collection.accepted_by_type),
            rejections=self.log.rejections,
            warnings=self.log.warnings,
            rejected_count=sum(self.log.rejection_codes.values()),
            warning_count=sum(self.log.warning_codes.values()),
            rejections_by_code=dict(self.log.rejection_codes),
            warnings_by_code=dict(self.log.warning_codes),
            duplicates_merged=collection.duplicates_merged,
            formats=self.formats,
            skipped_lines_by_code=dict(self.log.skipped_lines),
        )


def _without_file_name(reason: str, label: str) -> str:
    """A reader's one-line error without the file name it starts with: the rejection names
    the file already ("a.csv: a.csv: malformed header row" otherwise)."""
    if reason.startswith(f"{label}: "):
        return reason[len(label) + 2 :]
    if reason.startswith(f"{label} "):
        return "the file" + reason[len(label) :]
    return reason


@dataclass
class _PartResult:
    """What a worker sends back for one part of a file."""

    kinds: list[str]
    objects: list[dict[str, Any]]
    duplicates_merged: int
    default_tlp_count: int
    log: RemarkLog


def _read_part(
    path: Path,
    layout: CsvLayout,
    part: tuple[int, int, int],
    context: IngestContext,
    options: IngestOptions,
    warning_lists: WarningLists,
    default_tlp: Tlp,
) -> _PartResult:
    """Runs in a worker process: convert the rows of one part of a CSV file; `default_tlp`
    for rows without a TLP (the file head's, or the run's default)."""
    run = _Run(context, options, warning_lists, NoProgress())
    run.name_input(path)
    run.converter.settings = replace(run.converter.settings, default_tlp=default_tlp)
    start, end, first_line = part
    limits = ReadLimits(options.max_line_bytes, options.max_json_bytes)
    run._consume(CsvReader(limits).read_part(path, layout, (start, end), first_line))
    collection = run.collection
    return _PartResult(
        collection.kinds,
        collection.objects,
        collection.duplicates_merged,
        run.converter.default_tlp_count,
        run.log,
    )


def ingest_files(
    paths: list[Path],
    context: IngestContext,
    options: IngestOptions | None = None,
    *,
    progress: ProgressReporter | None = None,
    warning_lists: WarningLists | None = None,
) -> IngestResult:
    """Read, check and convert `paths` into STIX 2.1 objects (see the module docstring).

    Raises UsageError when no file is given; every problem with the files themselves is
    reported in the result.
    """
    if not paths:
        raise UsageError("no input file given")
    run = _Run(
        context,
        options or IngestOptions(),
        warning_lists if warning_lists is not None else bundled_warning_lists(),
        progress or NoProgress(),
    )
    with collector_paused():
        for path in paths:
            run.read_file(Path(path))
    return run.result()
