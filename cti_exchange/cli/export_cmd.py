"""`cti-exchange export`: accepted indicators as blocklists, CSV, STIX, IDS rules or MISP."""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from cti_exchange.cli.context import JsonOption, profile_home
from cti_exchange.cli.filter_options import (
    MinConfidenceOpt,
    PartnerOpt,
    RevokedOpt,
    SearchOpt,
    SinceOpt,
    StatusOpt,
    TlpOpt,
    TypeOpt,
    filters_from_options,
)
from cti_exchange.cli.output import Output, reader_went_away
from cti_exchange.errors import UsageError
from cti_exchange.export import EXPORTERS, ExportRequest, ExportResult, export_indicators
from cti_exchange.exporters.ids_rules import RULE_TOO_LONG
from cti_exchange.exporters.interface import ExportSummary
from cti_exchange.store.store import open_store
from cti_exchange.store.triage_queries import STATUSES, count_matching


def export_command(
    ctx: typer.Context,
    format_: Annotated[
        str,
        typer.Option("--format", metavar="FORMAT", help="plain, csv, stix, suricata, snort or misp."),
    ] = "plain",
    output_arg: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="File to write; a directory gives one plain file per type. Default (or -): stdout.",
        ),
    ] = None,
    i_understand_tlp: Annotated[
        bool,
        typer.Option("--i-understand-tlp", help="Allow TLP:RED and TLP:AMBER+STRICT content in the file."),
    ] = False,
    allow_broad: Annotated[
        bool,
        typer.Option(
            "--allow-broad",
            help="Also write overly broad values (the default route, reserved ranges, bare "
            "top-level domains, localhost, wildcards, well-known benign values), which are "
            "otherwise left out and listed in the file's head.",
        ),
    ] = False,
    partner: PartnerOpt = None,
    type_: TypeOpt = None,
    tlp: TlpOpt = None,
    max_tlp: Annotated[
        str | None,
        typer.Option(
            "--max-tlp",
            metavar="TLP",
            help="Marked at most this TLP (a value no object of which is marked counts as the "
            "profile's default TLP).",
        ),
    ] = None,
    min_confidence: MinConfidenceOpt = None,
    since: SinceOpt = None,
    status: StatusOpt = None,
    any_status: Annotated[bool, typer.Option("--any-status", help="Whatever the triage status.")] = False,
    search: SearchOpt = None,
    include_expired: Annotated[
        bool,
        typer.Option("--include-expired", help="Also indicators whose valid_until has passed."),
    ] = False,
    include_revoked: RevokedOpt = False,
    json_mode: JsonOption = False,
) -> None:
    """Write indicators for defensive tools (default: accepted, not expired, not revoked), each
    value once, headed by its TLP."""
    out = Output(json_mode=json_mode)
    output = None if output_arg in (None, "-") else Path(output_arg)  # "-": stdout, as keys export
    if output_arg is not None and output_arg.endswith(("/", os.sep)) and not Path(output_arg).is_dir():
        # Path() drops the trailing slash: `-o rules/` would write one file named rules.
        raise UsageError(
            f"-o {output_arg}: not an existing directory",
            hint=f"create it first (mkdir {output_arg}) for one file per type, or drop the "
            "trailing / to write one file",
        )
    if json_mode and output is None:
        raise UsageError("--json writes the export's summary to stdout", hint="give the file with --output")
    filters = filters_from_options(
        partner=partner,
        type_=type_,
        tlp=tlp,
        max_tlp=max_tlp,
        min_confidence=min_confidence,
        since=since,
        status=status,
        search=search,
        expired=None,
        include_revoked=include_revoked,
    )
    if any_status and filters.statuses:
        raise UsageError(
            "--status and --any-status contradict each other: --any-status takes every status",
            hint="give one of them",
        )
    filters = replace(
        filters,
        statuses=STATUSES if any_status else (filters.statuses or ("accepted",)),
        expired=None if include_expired else False,
    )
    home = profile_home(ctx)
    profile = home.load_profile()
    request = ExportRequest(
        format_,
        filters,
        output,
        i_understand_tlp,
        allow_broad,
        unmarked_tlp=profile.sharing.default_tlp.value,
    )
    with open_store(home) as store:
        result = export_indicators(
            store, request, producer=profile.agency_id, identity=profile.identity, stream=sys.stdout
        )
        # --any-status takes values analysts judged benign too: a blocklist then blocks them.
        decided_against = (
            count_matching(store.db.conn, replace(filters, statuses=("false-positive", "rejected")))
            if any_status and result.values
            else 0
        )
    if not result.complete:  # the export is in the audit trail, marked incomplete
        reader_went_away()
    render_export(out, result)
    if decided_against:
        out.warn(
            f"--any-status: {_count(decided_against, 'object')} marked false-positive or rejected "
            f"{'is' if decided_against == 1 else 'are'} in this export: a blocklist holding them "
            "blocks what analysts judged benign or wrong (`--status new --status accepted` leaves "
            "them out)"
        )


def render_export(out: Output, result: ExportResult) -> None:
    data = {
        "format": result.format,
        "values": result.values,
        "sids_assigned": result.sids_assigned,
        "rules_revised": result.rules_revised,
        "files": [
            {
                "path": f.path,
                "values": f.values,
                "bytes": f.bytes,
                "sha256": f.sha256,
                "tlp": f.tlp,
                "by_type": dict(f.summary.by_type),
                "skipped": dict(f.summary.skipped),
                "refused": dict(f.summary.refused),
                "refused_values": [r.to_dict() for r in f.summary.refused_listed],
                "rules": f.summary.rules,
                "merged_spellings": f.summary.merged,
                # Values not written: a current object marked false-positive or rejected holds
                # them in some spelling (by IOC type).
                "withheld": dict(f.summary.withheld),
                # Why the `skipped` values were left out: IOC type -> {reason: values}
                "skipped_reasons": _skipped_reasons(f.summary),
                # MISP: values written as deleted attributes, now decided against or revoked
                "withdrawn": dict(f.summary.withdrawn),
                # URLs written without their #fragment and user:password@ (by IOC type)
                "trimmed": dict(f.summary.trimmed),
                # Values no object of which was marked: written at the profile's default TLP
                "unmarked": dict(f.summary.unmarked),
            }
            for f in result.files
        ],
        "refused": result.refused,
    }
    if out.json_mode:
        out.data(data)
        return
    listed_in = "the file's head" if EXPORTERS[result.format].comment else "--json, with -o"
    written = [f for f in result.files if f.path != "-"]
    # A directory holds a file per type, most of them empty: one line for those, not twenty.
    empty = [f for f in written if not (f.values or f.refused or f.summary.merged or f.summary.skipped)]
    if len(written) > 1 and len(empty) > 1:
        written = [f for f in written if f not in empty]
    else:
        empty = []
    # The summary is the command's report: on stdout, as sync's is, so that a cron export drops
    # it with `>/dev/null` and mails only warnings and errors; on stderr when the data may itself
    # have gone to stdout (streamed, or written through `/dev/stdout` or a FIFO).
    report = out.note if any(f.streamed for f in result.files) else out.line
    for f in written:
        too_long = sum(n for (_, reason), n in f.summary.skipped_for.items() if reason == RULE_TOO_LONG)
        own = sum(f.summary.skipped_for.values()) - too_long
        skipped = sum(f.summary.skipped.values()) - too_long - own
        withdrawn = sum(f.summary.withdrawn.values())
        level = "TLP:" + f.tlp.upper() if f.tlp else "no TLP"
        report(
            f"wrote {_count(f.values, 'value')} to {f.path} ({level})"
            + (f", {skipped:,} not expressible in {result.format}" if skipped else "")
            + (f", {too_long:,} left out (rule too long, see {listed_in})" if too_long else "")
            + (f", {own:,} left out for a reason of their own (see {listed_in})" if own else "")
            + (
                f", {_count(withdrawn, 'value')} decided against or revoked written as withdrawn "
                "(deleted in MISP)"
                if withdrawn
                else ""
            )
            + (f", {f.refused:,} invalid or overly broad left out (see {listed_in})" if f.refused else "")
            + (
                f", {_count(f.summary.merged, 'other spelling')} of values written"
                if f.summary.merged
                else ""
            )
        )
    if empty:
        report(
            f"wrote 0 values to {len(empty)} {'other ' if written else ''}files in "
            f"{Path(empty[0].path).parent} (one per type, emptied so that a tool reading them "
            "drops what is no longer exported)"
        )
    unmarked = sum(sum(f.summary.unmarked.values()) for f in result.files)
    if unmarked:
        out.note(
            f"{_count(unmarked, 'value')} carried no TLP marking (a partner's objects without one): "
            "written at this profile's default TLP (sharing.default_tlp), as our own unmarked "
            "input is marked"
        )
    set_aside = sum(sum(f.summary.skipped_for.values()) for f in result.files if f.path == "-")
    if set_aside and not EXPORTERS[result.format].comment:  # a head says it where there is one
        reasons = sorted({reason for f in result.files for (_, reason) in f.summary.skipped_for})
        out.warn(
            f"{_count(set_aside, 'value')} left out: {reasons[0]}"
            + (" (and more)" if len(reasons) > 1 else "")
        )
    if result.refused and all(f.path == "-" for f in result.files):
        out.warn(
            f"{_count(result.refused, 'invalid or overly broad value')} left out (listed in {listed_in}; "
            "--allow-broad writes the overly broad ones)"
        )
    if result.values == 0:
        out.warn(
            "nothing matched: exports hold accepted indicators that have not expired (see "
            "`triage accept`); --any-status and --include-expired widen that"
        )


def _skipped_reasons(summary: ExportSummary) -> dict[str, dict[str, int]]:
    """IOC type -> {why values of it were not written: how many}."""
    found: dict[str, dict[str, int]] = {}
    for ioc_type, count in sorted(summary.skipped.items()):
        own = {reason: n for (kind, reason), n in summary.skipped_for.items() if kind == ioc_type}
        reasons = found[ioc_type] = {}
        if rest := count - sum(own.values()):
            reasons[summary.skip_reasons[ioc_type]] = rest
        reasons.update(own)
    return found


def _count(n: int, noun: str) -> str:
    """`n` and the noun, plural unless one: "1 value", "2 values", "1,000 values"."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def register(app: typer.Typer) -> None:
    app.command(
        "export",
        epilog="Example: cti-exchange export --format suricata --type domain-name -o cti.rules",
        help=inspect.cleandoc(export_command.__doc__ or "") + f"\n\nFormats: {', '.join(EXPORTERS)}.",
    )(export_command)
