"""`cti-exchange validate` and `cti-exchange convert`: check inputs, or turn them into a bundle.

Both read CSV, plain-text IOC lists, STIX 2.0/2.1 and MISP event JSON (detected per file, or
forced with --format) through `cti_exchange.ingest`, and report what was accepted per type,
each rejection with where and why, and the warnings. Exit codes: 0 all accepted, 1 some
rejected, 6 nothing usable.

The agency profile gives the identity (`created_by_ref`) and the defaults (TLP, confidence,
lifetimes). `validate` also works without a profile: it then uses a placeholder identity and
the built-in defaults, and says so. `convert` needs a profile: a bundle meant to be shared must
carry the real agency identity.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from cti_exchange.cli.context import JsonOption, profile_home
from cti_exchange.cli.output import Output, streaming_to_stdout
from cti_exchange.cli.progress import progress_for
from cti_exchange.cli.stdin_input import spooled_inputs
from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.collector import collector_paused
from cti_exchange.errors import ConfigError, InputError, PartialFailure, UsageError, is_storage_failure
from cti_exchange.home.safe_files import check_output_target
from cti_exchange.ingest import IngestResult, IngestVerdict, ingest_files
from cti_exchange.ingest_settings import IngestContext, IngestOptions
from cti_exchange.profile.model import DEFAULT_LIFETIME_DAYS
from cti_exchange.stix.bundle import build_bundle, write_bundle
from cti_exchange.stix.tlp import Tlp

SHOWN_REJECTIONS = 50
SHOWN_WARNINGS_PER_CODE = 5
PLACEHOLDER_IDENTITY_ID = f"identity--{uuid.uuid5(uuid.NAMESPACE_URL, 'cti-exchange:no-profile')}"

InputsArgument = Annotated[
    list[Path],
    typer.Argument(
        help="CSV, plain-text IOC list, STIX bundle or MISP event files ('-' for standard input).",
        exists=True,
        dir_okay=False,
        readable=True,
        allow_dash=True,
    ),
]
FormatOption = Annotated[
    str | None, typer.Option("--format", help="Force the format: csv, text, stix or misp.")
]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Reject likely false positives instead of warning.")
]
KeepPersonalOption = Annotated[
    bool,
    typer.Option(
        "--keep-personal-data",
        help="Keep individuals' e-mail addresses and phone numbers (withheld by default).",
    ),
]
NonIdsOption = Annotated[
    bool,
    typer.Option("--include-non-ids", help="MISP: also read attributes with to_ids false."),
]
TlpOption = Annotated[
    str | None,
    typer.Option("--tlp", help="TLP for rows and objects that carry none (default: profile)."),
]
WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        max=64,
        help="Processes for large CSV files (4 MiB and more); helps on idle cores only.",
    ),
]
MaxJsonOption = Annotated[
    int, typer.Option("--max-json-mb", min=1, help="Largest STIX or MISP JSON file read, in MiB.")
]


def _options(
    input_format: str | None,
    strict: bool,
    keep: bool,
    non_ids: bool,
    max_json_mb: int,
    workers: int,
) -> IngestOptions:
    return IngestOptions(
        format=input_format,
        strict=strict,
        keep_personal_data=keep,
        include_non_ids=non_ids,
        max_json_bytes=max_json_mb * 1024 * 1024,
        workers=workers,
    )


def parse_default_tlp(text: str | None) -> Tlp | None:
    """The --tlp option of validate, convert and push: never CLEAR."""
    if text is None:
        return None
    try:
        level = Tlp.parse(text)
    except ValueError as exc:
        raise UsageError(f"--tlp: {exc}") from None
    if level is Tlp.CLEAR:
        raise UsageError(
            "--tlp: the default TLP may not be CLEAR",
            hint="mark shareable rows 'clear' in a tlp column instead",
        )
    return level


def _context(ctx: typer.Context, tlp: Tlp | None, *, profile_required: bool) -> IngestContext:
    home = profile_home(ctx)
    now = utc_now()
    if profile_required or home.exists():
        return IngestContext.for_profile(home.load_profile(), now, tlp)
    created = stix_timestamp(now)
    placeholder = {
        "type": "identity",
        "spec_version": "2.1",
        "id": PLACEHOLDER_IDENTITY_ID,
        "created": created,
        "modified": created,
        "name": "cti-exchange (no agency profile)",
        "identity_class": "organization",
    }
    return IngestContext(
        identity=placeholder,
        default_tlp=tlp or Tlp.AMBER,
        default_confidence=50,
        lifetime_days=dict(DEFAULT_LIFETIME_DAYS),
        now=now,
        default_tlp_given=tlp is not None,
    )


def validate(
    ctx: typer.Context,
    inputs: InputsArgument,
    input_format: FormatOption = None,
    strict: StrictOption = False,
    keep_personal_data: KeepPersonalOption = False,
    include_non_ids: NonIdsOption = False,
    tlp: TlpOption = None,
    max_json_mb: MaxJsonOption = 64,
    workers: WorkersOption = 1,
    json_mode: JsonOption = False,
) -> None:
    """Check input files and report what would be shared, rejected and warned about.

    Nothing is written. Exit code 0: all accepted; 1: some rejected; 6: nothing usable.
    """
    out = Output(json_mode=json_mode)
    context = _context(ctx, parse_default_tlp(tlp), profile_required=False)
    if context.identity["id"] == PLACEHOLDER_IDENTITY_ID:
        out.note("No agency profile: using a placeholder identity and the built-in defaults.")
    options = _options(input_format, strict, keep_personal_data, include_non_ids, max_json_mb, workers)
    with spooled_inputs(inputs) as (paths, labels), progress_for(out) as progress, collector_paused():
        result = ingest_files(paths, context, replace(options, labels=labels), progress=progress)
    render_report(out, result)
    raise_for_verdict(result, json_report=json_mode)


def convert(
    ctx: typer.Context,
    inputs: InputsArgument,
    output: Annotated[Path, typer.Option("-o", "--output", help="Bundle file to write ('-' for stdout).")],
    input_format: FormatOption = None,
    strict: StrictOption = False,
    keep_personal_data: KeepPersonalOption = False,
    include_non_ids: NonIdsOption = False,
    tlp: TlpOption = None,
    max_json_mb: MaxJsonOption = 64,
    workers: WorkersOption = 1,
    json_mode: JsonOption = False,
) -> None:
    """Turn input files into one STIX 2.1 bundle with our identity and TLP 2.0 markings.

    The bundle is written only when something is usable. Exit code 0: all accepted; 1: some
    rejected (the rest is in the bundle); 6: nothing usable (nothing written).
    """
    if json_mode and str(output) == "-":
        # stdout holds the bundle: the JSON report would have nowhere to go.
        raise UsageError(
            "--json and -o - both want stdout (the bundle goes there)",
            hint="write the bundle to a file (`-o FILE --json`), or leave out --json: the report "
            "then goes to stderr",
        )
    out = Output(json_mode=json_mode or str(output) == "-")
    if str(output) != "-":
        # Before any work: a directory, a device (/dev/null would be renamed over) or a missing
        # directory is refused with exit 2, as every other `-o` is.
        check_output_target(output, hint="give -o a file path (or - for stdout)")
    context = _context(ctx, parse_default_tlp(tlp), profile_required=True)
    options = _options(input_format, strict, keep_personal_data, include_non_ids, max_json_mb, workers)
    with spooled_inputs(inputs) as (paths, labels), progress_for(out) as progress, collector_paused():
        result = ingest_files(paths, context, replace(options, labels=labels), progress=progress)
        written = None
        # Exit 6 writes nothing: marking-definitions alone (an IEP or statement marking) are
        # objects, but no content to share, and a script tests the file's existence.
        if result.verdict is not IngestVerdict.NOTHING_USABLE:
            progress.step("writing the bundle")
            bundle = build_bundle(result.objects, context.identity)
            written = _write(bundle, output)
    if str(output) == "-":
        render_report(Output(json_mode=False), result, to_stderr=True)
    else:
        render_report(out, result, extra={"output": str(output), "bytes": written})
        if written is not None and not json_mode:
            out.line(f"Wrote {len(result.objects):,} objects to {output} ({written:,} bytes)")
    raise_for_verdict(result, wrote=written is not None, json_report=json_mode)


def raise_for_verdict(result: IngestResult, *, wrote: bool = False, json_report: bool = False) -> None:
    """Exit 0 when everything was accepted; else the error whose exit code says what happened
    (1 some rejected, 6 nothing usable), rendered by the CLI as one line. `json_report`: the
    rejections are in the JSON on stdout, not printed above."""
    verdict = result.verdict
    where = "in the JSON report (rejections, warnings)" if json_report else "above"
    if verdict is IngestVerdict.NOTHING_USABLE:
        raise InputError(
            "nothing usable in the input"
            + ("" if not result.rejected_count else f" ({result.rejected_count:,} rejected)"),
            hint=result.nothing_usable_hint(f"see the rejections and warnings {where}", listed=True),
        )
    if verdict is IngestVerdict.SOME_REJECTED:
        rest = "the rest is in the bundle" if wrote else "the rest is usable"
        raise PartialFailure(
            f"{result.rejected_count:,} input item(s) rejected; {rest}",
            hint=f"see the rejections {where}" if json_report else "see the rejections above (or --json)",
        )


def _parent(output: Path) -> Path:
    return output.parent if str(output.parent) else Path(".")


def _write(bundle: dict[str, Any], output: Path) -> int:
    if str(output) == "-":
        with streaming_to_stdout():
            size = write_bundle(bundle, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        return size
    # Write beside the target and rename: a reader never sees half a bundle.
    directory = _parent(output)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=directory)
    except OSError as error:
        raise ConfigError(
            f"cannot write {output}: cannot create a file in {directory}: {error.strerror or error}",
            hint="check the directory exists and is writable",
        ) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            size = write_bundle(bundle, stream)
        check_output_target(output)  # again: it may have become a directory meanwhile
        os.replace(temporary, output)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError) and not is_storage_failure(error):
            raise ConfigError(f"cannot write {output}: {error.strerror or error}") from None
        raise
    return size


def report_data(result: IngestResult) -> dict[str, Any]:
    """The report as JSON-ready data (what --json prints)."""
    return {
        "verdict": result.verdict.value,
        "exit_code": int(result.verdict.exit_code),
        "formats": result.formats,
        "objects": len(result.objects),
        "accepted_by_type": dict(sorted(result.accepted_by_type.items())),
        "duplicates_merged": result.duplicates_merged,
        "rejected": result.rejected_count,
        "rejections_by_code": result.rejections_by_code,
        "rejections": [r.to_dict() for r in result.rejections],
        "warning_count": result.warning_count,
        "warnings_by_code": result.warnings_by_code,
        "warnings": [w.to_dict() for w in result.warnings],
        "skipped_lines": sum(result.skipped_lines_by_code.values()),
        "skipped_lines_by_code": result.skipped_lines_by_code,
    }


def show_warnings(out: Output, result: IngestResult) -> None:
    """Reading's warnings, the first SHOWN_WARNINGS_PER_CODE of each kind, then how many more
    of that kind (a CSV with one odd type cell per row warned once per row)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for warning in result.warnings:
        grouped[warning.code].append(str(warning))
    for code, texts in grouped.items():
        for text in texts[:SHOWN_WARNINGS_PER_CODE]:
            out.warn(text)
        hidden = result.warnings_by_code.get(code, len(texts)) - SHOWN_WARNINGS_PER_CODE
        if hidden > 0:
            out.warn(f"... and {hidden:,} more '{code}' warning(s) (see --json)")


def render_report(
    out: Output,
    result: IngestResult,
    *,
    extra: dict[str, Any] | None = None,
    to_stderr: bool = False,
) -> None:
    if out.json_mode and not to_stderr:
        out.data(report_data(result) | (extra or {}))
        return
    say = out.note if to_stderr else out.line
    for path, name in result.formats.items():
        say(f"{path}: read as {name}")
    show_warnings(out, result)
    for rejection in result.rejections[:SHOWN_REJECTIONS]:
        out.reject(str(rejection))
    if result.rejected_count > SHOWN_REJECTIONS:
        out.reject(f"... and {result.rejected_count - SHOWN_REJECTIONS:,} more (see --json)")
    rows = [[kind, f"{count:,}"] for kind, count in sorted(result.accepted_by_type.items())]
    if rows and not to_stderr:
        out.table(["accepted", "count"], rows)
    merged = f", {result.duplicates_merged:,} duplicates merged" if result.duplicates_merged else ""
    say(
        f"{result.verdict.value}: {_counted(len(result.objects), 'object')}{merged}; "
        f"{result.rejected_count:,} rejected; {_counted(result.warning_count, 'warning')}"
        f"{_skipped(result.skipped_lines_by_code)}"
    )


# What the warnings that skip lines call them, in the summary line.
_SKIPPED_NOUNS = {"table-rows": "table row", "code-block": "code-block line", "prose": "prose line"}


def _skipped(by_code: dict[str, int]) -> str:
    """`; not read: 74 table rows, 2 prose lines` (see the warnings), or nothing."""
    parts = [
        _counted(count, _SKIPPED_NOUNS.get(code, f"{code} line")) for code, count in by_code.items() if count
    ]
    return f"; not read: {', '.join(parts)} (see the warnings)" if parts else ""


def _counted(count: int, noun: str) -> str:
    """`1 object`, `2 objects`."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def register(app: typer.Typer) -> None:
    app.command(
        "validate",
        epilog="Example: cti-exchange validate iocs.csv advisory.txt --strict",
    )(validate)
    app.command(
        "convert",
        epilog="Example: cti-exchange convert iocs.csv event.misp.json -o bundle.json --tlp green",
    )(convert)
