"""`cti-exchange push` and `cti-exchange pull`: exchange over TAXII 2.1."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cti_exchange.cli.context import JsonOption, profile_home, writer_lock
from cti_exchange.cli.ingest_cmd import (
    FormatOption,
    InputsArgument,
    KeepPersonalOption,
    MaxJsonOption,
    NonIdsOption,
    StrictOption,
    TlpOption,
    parse_default_tlp,
    show_warnings,
)
from cti_exchange.cli.output import Output
from cti_exchange.cli.progress import progress_for
from cti_exchange.cli.stdin_input import spooled_inputs
from cti_exchange.collector import collector_paused
from cti_exchange.envelope.reasons import RejectReason
from cti_exchange.errors import (
    AuthError,
    ConfigError,
    IntegrityError,
    NetworkError,
    PartialFailure,
    PolicyError,
)
from cti_exchange.exchange.delivery import delivery_failure, describe_failed, for_partner
from cti_exchange.exchange.pull import PullResult, Quarantined, pull
from cti_exchange.exchange.push import (
    NothingToShare,
    PartnerPlan,
    PushRequest,
    PushResult,
    push,
)
from cti_exchange.ingest_settings import IngestOptions
from cti_exchange.policy.sharing import Refusal, refusal_error
from cti_exchange.stix.tlp import Tlp

if TYPE_CHECKING:
    from cti_exchange.ingest import IngestResult


def push_command(
    ctx: typer.Context,
    inputs: InputsArgument,
    to: Annotated[list[str], typer.Option("--to", help="Partner to send to (repeatable).")],
    input_format: FormatOption = None,
    tlp: TlpOption = None,
    allow_red: Annotated[
        bool, typer.Option("--allow-red", help="Send TLP:RED to partners whose entry allows it.")
    ] = False,
    skip_refused: Annotated[
        bool, typer.Option("--skip-refused", help="Send what the TLP policy allows, skip the rest.")
    ] = False,
    strict: StrictOption = False,
    keep_personal_data: KeepPersonalOption = False,
    include_non_ids: NonIdsOption = False,
    max_json_mb: MaxJsonOption = 64,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Processes for large CSV files (4 MiB and more); helps on idle cores only "
            "(default: 2 with two CPUs or more).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent to whom; send nothing.")
    ] = False,
    queue: Annotated[
        bool, typer.Option("--queue", help="Seal into the outbox only; `sync` posts it.")
    ] = False,
    reshare: Annotated[
        bool,
        typer.Option(
            "--reshare",
            help="Share again what the same push already shared (as new versions). Without it, "
            "re-running a push resumes it if it was interrupted, sends what the policy refused "
            "then and allows now, and otherwise sends nothing to a partner that had it.",
        ),
    ] = False,
    lower_tlp: Annotated[
        bool,
        typer.Option(
            "--lower-tlp",
            help="Share objects shared before at a stricter TLP at the lower one this input gives "
            "them (a deliberate downgrade). Without it they keep the stricter TLP.",
        ),
    ] = False,
    observed_by_us: Annotated[
        bool,
        typer.Option(
            "--observed-by-us",
            help="The values are our own observations: share them even where partners sent us the "
            "same values only at TLP:AMBER or stricter (without it they go only back to those "
            "partners).",
        ),
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    """Turn indicators into signed, encrypted envelopes and post them to partners' TAXII collections."""
    default_tlp = parse_default_tlp(tlp)
    out = Output(json_mode=json_mode)
    request = PushRequest(
        inputs=inputs,
        partners=to,
        allow_red=allow_red,
        # A dry run shows every refusal; it still ends as a refusal (below). The option is
        # passed as given: the id of a push recorded by an earlier version holds it
        # (push_request_id); it is no part of what makes the same content (push_request_ids).
        skip_refused=skip_refused,
        dry_run=dry_run,
        queue_only=queue,
        reshare=reshare,
        lower_tlp=lower_tlp,
        observed_by_us=observed_by_us,
        # Reading options only change the push's id (push_request_id) where they change what
        # is shared: --include-non-ids does on a MISP event; --workers never does.
        ingest=IngestOptions(
            format=input_format,
            strict=strict,
            keep_personal_data=keep_personal_data,
            include_non_ids=include_non_ids,
            max_json_bytes=max_json_mb * 1024 * 1024,
            # Large CSV inputs are read by two processes unless told otherwise: while a push
            # reads its input the TAXII server (if local) and the rest of the pipeline are idle.
            workers=workers if workers is not None else min(2, os.cpu_count() or 1),
        ),
    )
    home = profile_home(ctx)
    with (
        writer_lock(home, "push"),
        spooled_inputs(inputs) as (paths, labels),
        progress_for(out) as progress,
        collector_paused(),
    ):
        request = replace(request, inputs=paths, ingest=replace(request.ingest, labels=labels))
        try:
            result = push(home, request, reporter=progress, default_tlp=default_tlp)
        except NothingToShare as nothing:
            # For scripts, what reading found, as `validate --json` has it; on a terminal the
            # error stays one line, and its hint names `validate`.
            if out.json_mode:
                out.data(_reading_report(nothing.report) | {"nothing_usable": True})
            raise
    render_push(out, result)
    if dry_run and result.refusals and not skip_refused:
        # The message a real push gives, after the plan and every refusal were shown.
        raise refusal_error(result.refusals, outcome="; nothing was sent (dry run)", hint=result.refusal_hint)
    raise_for_push(result, json_report=out.json_mode)


SHOWN_REMARKS = 20


def _reading_report(report: IngestResult) -> dict[str, Any]:
    return {
        "accepted_by_type": dict(report.accepted_by_type),
        "rejected_rows": report.rejected_count,
        "rejections_by_code": report.rejections_by_code,
        "rejections": [r.to_dict() for r in report.rejections],
        # As `validate --json` has them: every warning counted, the first 10,000 listed.
        "warning_count": report.warning_count,
        "warnings_by_code": report.warnings_by_code,
        "warnings": [w.to_dict() for w in report.warnings],
        "skipped_lines": sum(report.skipped_lines_by_code.values()),
        "skipped_lines_by_code": report.skipped_lines_by_code,
    }


def _show_reading_remarks(out: Output, report: IngestResult) -> None:
    show_warnings(out, report)  # as `validate` shows them: a few of each kind, then a count
    for rejection in report.rejections[:SHOWN_REMARKS]:
        out.reject(str(rejection))
    if report.rejected_count > SHOWN_REMARKS:
        out.reject(f"... and {report.rejected_count - SHOWN_REMARKS:,} more (see --json)")


def render_push(out: Output, result: PushResult) -> None:
    report = result.ingest
    data = {
        "already_shared_at": result.already_shared_at,
        "resumed": result.resumed,
        "dry_run": result.dry_run,
        "queued_only": result.queued_only,
        **_reading_report(report),
        "refused": [r.describe() for r in result.refusals],
        # The policy refused every object for every partner: nothing of this push went out.
        "all_refused": result.all_refused,
        "tlp_kept": result.tlp_kept,
        "tlp_lowered": result.tlp_lowered,
        "partners": [
            {
                "partner": plan.partner,
                # The same push shared all of it with this partner then: nothing sent to it now.
                "already_shared_at": plan.already_shared_at,
                "objects": plan.objects,
                "by_tlp": plan.by_tlp,
                "envelopes": plan.envelopes,
                "to_seal": plan.to_seal,
                "envelopes_to_seal": plan.envelopes_to_seal,
                "envelopes_estimated": plan.envelopes_estimated,
                "max_request_bytes": plan.max_request_bytes,
                "max_request_bytes_from": plan.limit_from,
                "sealed_earlier": plan.sealed_earlier,
                "other_queued": plan.other_queued,
                "delivered": next((d.delivered for d in result.deliveries if d.partner == plan.partner), []),
                "failed": next((d.failed for d in result.deliveries if d.partner == plan.partner), {}),
                "withheld": next((d.withheld for d in result.deliveries if d.partner == plan.partner), 0),
                # Why posting to it stopped (its server down, our credentials refused...), as
                # `pull --json` has it; null when nothing failed.
                "error": next((d.error for d in result.deliveries if d.partner == plan.partner), None),
            }
            for plan in result.plans
        ],
    }
    if out.json_mode:
        out.data(data)
        return
    _show_reading_remarks(out, report)
    if result.tlp_kept:
        out.warn(
            f"{sum(result.tlp_kept.values()):,} object(s) shared before at a stricter TLP keep it "
            f"({_counted(result.tlp_kept)}), though this input marks them lower; to lower their "
            "TLP on purpose, run the push with --lower-tlp"
        )
    if result.tlp_lowered:
        out.warn(
            f"{sum(result.tlp_lowered.values()):,} object(s) shared before at a stricter TLP "
            f"({_counted(result.tlp_lowered)}) go out at the lower TLP this input gives them, as "
            "--lower-tlp asks"
        )
    for refusal in result.refusals[:SHOWN_REMARKS]:
        out.warn(f"not sent: {refusal.describe()}")
    if len(result.refusals) > SHOWN_REMARKS:
        rest = result.refusals[SHOWN_REMARKS:]
        out.warn(f"... and {len(rest):,} more not sent ({_count_refusals(rest)}; see --json)")
    for delivery in result.deliveries:
        if delivery.withheld:
            out.warn(
                f"{delivery.withheld} queued object(s) withheld from {delivery.partner}: its entry no "
                "longer allows their TLP (see the audit trail, `reseal`)"
            )
    if result.already_shared_at:
        nothing = "nothing would be sent" if result.dry_run else "nothing sent"
        out.line(
            f"Already shared by the same push on {result.already_shared_at}; {nothing} "
            "(use --reshare to share it again as new versions)."
        )
        return
    if result.dry_run and result.resumed:
        render_resumption(out, result)
        return
    verb = "would send" if result.dry_run else ("queued" if result.queued_only else "sent")
    outcomes = {d.partner: d for d in result.deliveries}
    rows = []
    for plan in result.plans:
        if plan.already_shared_at:
            out.line(
                f"{plan.partner}: already shared by the same push on {plan.already_shared_at}; "
                f"nothing {'would be ' if result.dry_run else ''}sent to it (use --reshare to share "
                "it again as new versions)."
            )
            continue
        tlps = _counted(plan.by_tlp)
        outcome = outcomes.get(plan.partner)
        # The delivery also posts what waited in the outbox: counted apart from this push's,
        # and with them in "N of M delivered" (M: every envelope this run tried to post).
        ours = set(plan.envelopes)
        tried = [*outcome.delivered, *outcome.failed] if outcome else []
        earlier = len([e for e in dict.fromkeys(tried) if e not in ours])
        parts = []
        if (plan.envelopes or earlier) and not result.queued_only and not result.dry_run:
            parts.append(f"{len(outcome.delivered) if outcome else 0} of {len(ours) + earlier} delivered")
        if outcome and outcome.failed:
            parts.append(f"{len(outcome.failed)} failed (kept in the outbox)")
        if result.dry_run and plan.other_queued and not result.queued_only:
            parts.append(f"would also post {plan.other_queued} envelope(s) queued earlier")
        status = ", ".join(parts)
        envelopes = str(len(plan.envelopes))
        if earlier:
            envelopes = f"{len(plan.envelopes)} new, {earlier} queued earlier"
        if result.dry_run:
            # None sealed yet: what the real run would seal.
            envelopes = envelope_count(plan, len(plan.envelopes))
        rows.append([plan.partner, str(plan.objects), tlps, envelopes, status])
    out.table(["partner", f"objects {verb}", "TLP", "envelopes", "delivery"], rows)
    note_estimates(out, result)


def tlp_label(value: str) -> str:
    """A TLP value as --json gives it ("amber+strict") as a table shows it ("TLP:AMBER+STRICT");
    "unmarked" as it is."""
    try:
        return Tlp(value).label
    except ValueError:
        return value


def _counted(by_value: dict[str, int]) -> str:
    """`TLP:AMBER 1, TLP:GREEN 2`: counts by TLP value, as a table or a warning shows them."""
    return ", ".join(
        f"{label} {count:,}" for label, count in sorted((tlp_label(v), n) for v, n in by_value.items())
    )


def _count_refusals(refusals: list[Refusal]) -> str:
    """`cert-in: 560 TLP:AMBER, 30 TLP:RED`: a long refusal list, counted per partner."""
    counts: dict[str, Counter[str]] = {}
    for refusal in refusals:
        counts.setdefault(refusal.partner, Counter())[refusal.tlp.label if refusal.tlp else "no TLP"] += 1
    return "; ".join(
        f"{partner}: " + ", ".join(f"{n:,} {label}" for label, n in sorted(labels.items()))
        for partner, labels in sorted(counts.items())
    )


def _count_rules(refusals: list[Refusal]) -> str:
    """`above-partner-max-tlp 2, tlp-red-needs-partner-and-flag 1`: refusals counted by rule."""
    counts = Counter(refusal.rule for refusal in refusals)
    return ", ".join(f"{rule} {count:,}" for rule, count in sorted(counts.items()))


def envelope_count(plan: PartnerPlan, sealed: int) -> str:
    """A dry run's count of the envelopes `sealed` already and those the real run would seal."""
    if plan.envelopes_to_seal is None:
        return "? (estimate)"
    return f"{sealed + plan.envelopes_to_seal}" + (" (estimate)" if plan.envelopes_estimated else "")


def note_estimates(out: Output, result: PushResult) -> None:
    """Why a dry run's envelope count is an estimate: the limit it assumed for each partner."""
    for plan in result.plans:
        if not (plan.envelopes_estimated and plan.max_request_bytes):
            continue
        limit = f"{plan.max_request_bytes:,} bytes"
        source = (
            "as its server was last read"
            if plan.limit_from == "last-read"
            else "a default: its server was never read"
        )
        if plan.envelopes_to_seal is None:
            out.warn(
                f"{plan.partner}: cannot count the envelopes: an object alone is larger than the "
                f"request limit assumed ({limit}, {source}); the real push reads the server's "
                "limit, and fails if that is not larger"
            )
        else:
            out.note(
                f"{plan.partner}: envelopes (estimate) counted for a request limit of {limit} "
                f"({source}); the real push reads the server's limit, which may cut them otherwise"
            )


def render_resumption(out: Output, result: PushResult) -> None:
    """A dry run of a push that was interrupted: what the real run would still do, which is
    not the whole plan (what it sealed is not sealed again, what it queued is posted)."""
    out.line("This push was interrupted before it finished; run again, it would resume:")
    post = "would stay in the outbox for `sync`" if result.queued_only else "would be posted"
    for plan in result.plans:
        if plan.already_shared_at:
            out.line(f"{plan.partner}: already shared by the same push on {plan.already_shared_at}")
            continue
        parts = []
        if plan.sealed_earlier:
            parts.append(
                f"{len(plan.sealed_earlier)} envelope(s) already sealed and waiting in the outbox {post}"
            )
        if plan.to_seal:
            then = "queued" if result.queued_only else "posted"
            count = "?" if plan.envelopes_to_seal is None else f"{plan.envelopes_to_seal}"
            estimate = ", estimate" if plan.envelopes_estimated else ""
            parts.append(
                f"{plan.to_seal} of {plan.objects} object(s) still to seal, then {then} "
                f"(in {count} envelope(s){estimate})"
            )
        if plan.other_queued and not result.queued_only:
            parts.append(f"{plan.other_queued} other envelope(s) queued earlier would be posted too")
        out.line(f"{plan.partner}: " + ("; ".join(parts) or "nothing left to seal or post"))
    note_estimates(out, result)


def raise_for_push(result: PushResult, *, json_report: bool = False) -> None:
    """The error a push ends in, if any. `json_report`: the rejected rows are in the JSON on
    stdout, not printed above (as `rejected:` lines)."""
    failures = result.failed
    if failures:
        message = f"delivery failed for {describe_failed(failures)}"
        hint = "the envelopes are kept in the outbox and are posted again by the next push or sync"
        partial = any(d.delivered for d in result.deliveries)
        raise delivery_failure(result.deliveries, message, hint=hint, partial=partial)
    if result.all_refused and not any(d.delivered for d in result.deliveries):
        # `--skip-refused` (or a dry run) with nothing left: the push did not do what it was
        # run for, and a script must not take it for a push that sent (exit 8, as without it).
        # Not when this run posted what an interrupted earlier run of it had sealed.
        nothing = "nothing would be sent" if result.dry_run else "nothing was sent"
        partners = ", ".join(plan.partner for plan in result.plans)
        raise PolicyError(
            f"{nothing}: the TLP policy refused every object for {partners} "
            f"({len(result.refusals):,} refusal(s): {_count_rules(result.refusals)})",
            hint=result.refusal_hint,
        )
    if result.ingest.rejected_count:
        # With --queue nothing was posted: the rest waits in the outbox.
        outcome = "checked" if result.dry_run else ("queued" if result.queued_only else "sent")
        if result.already_shared_at:
            outcome = f"shared already, on {result.already_shared_at}"
        raise PartialFailure(
            f"{result.ingest.rejected_count:,} input row(s) were rejected; the rest was {outcome}",
            hint=f"see the rejections {'in the JSON report' if json_report else 'above'}, or run "
            "`cti-exchange validate` on the input",
        )


def pull_command(
    ctx: typer.Context,
    from_: Annotated[
        list[str] | None, typer.Option("--from", help="Only these partners (repeatable).")
    ] = None,
    json_mode: JsonOption = False,
) -> None:
    """Fetch new envelopes from partners' collections, verify each before accepting it, store it.

    The summary gives, per partner, the envelopes accepted, the objects they held, and how many
    of those were stored as new versions (the rest were stored already: the sender's identity,
    marking definitions, an indicator shared again).
    """
    out = Output(json_mode=json_mode)
    home = profile_home(ctx)
    with (
        writer_lock(home, "pull"),
        progress_for(out) as progress,
        collector_paused(),
    ):
        result = pull(home, from_ or None, reporter=progress)
    render_pull(out, result)
    raise_for_pull(result)


def render_pull(out: Output, result: PullResult) -> None:
    if out.json_mode:
        out.data(
            {
                "partners": [
                    {
                        "partner": p.partner,
                        "accepted_envelopes": p.accepted,
                        "objects_received": p.objects_received,
                        "new_versions": p.new_versions,
                        "versions_not_applied": [n.to_dict() for n in p.not_applied],
                        "accepted_objects_revoked": p.revoked_accepted,
                        "withheld_as_erased": p.withheld_erased,
                        "quarantined": [q.__dict__ for q in p.quarantined],
                        "rejected_then_accepted": [q.__dict__ for q in p.accepted_since],
                        "closed_records": [c.__dict__ for c in p.closed],
                        "skipped": p.skipped,
                        "pages": p.pages,
                        "stopped_early": p.stopped_early,
                        "error": p.error,
                    }
                    for p in result.partners
                ]
            }
        )
        return
    out.table(
        # "objects received" counts everything the envelopes held (identities, markings, copies
        # of versions already stored); "stored" the new versions among them.
        ["partner", "envelopes accepted", "objects received", "stored (new versions)", "rejected", "error"],
        [
            [
                p.partner,
                str(len(p.accepted)),
                str(p.objects_received),
                str(p.new_versions),
                str(len(p.quarantined)),
                p.error or "",
            ]
            for p in result.partners
        ],
    )
    for p in result.partners:
        for q in p.quarantined:
            out.warn(f"{p.partner}: envelope {q.envelope_id} rejected: {q.reason}: {q.detail}")
        if note := p.accepted_since_note():
            out.note(note)
        if note := p.revoked_note():
            out.note(note)
        if note := p.withheld_note():
            out.note(note)
        if note := p.stopped_early_note():
            out.warn(note)
        if warning := p.not_applied_warning():
            out.warn(warning)
        if warning := p.closed_warning():
            out.warn(warning)


def raise_for_pull(result: PullResult, *, hint: str | None = None) -> None:
    """The error a pull with integrity alerts or failed partners ends in; `hint` is for the
    failures (the alerts say where they are kept)."""
    alerts = [(p.partner, q) for p in result.partners for q in p.integrity_alerts]
    if alerts:
        raise integrity_alert(alerts, sum(len(p.accepted_since) for p in result.partners))
    errors = [p for p in result.partners if p.error]
    if errors:
        names = "; ".join(for_partner(p.partner, p.error) for p in errors if p.error)
        if len(errors) < len(result.partners):
            raise PartialFailure(f"pull failed for {names}", hint=hint)
        if any(p.auth_failed for p in errors):
            raise AuthError(f"pull failed for {names}", hint=hint)
        # 7 only when every failure was a network one: its advice is to wait.
        if any(p.config_failed for p in errors):
            raise ConfigError(f"pull failed for {names}", hint=hint)
        raise NetworkError(f"pull failed for {names}", hint=hint)


def integrity_alert(alerts: list[tuple[str, Quarantined]], accepted_since: int) -> IntegrityError:
    """The error for a run's alerts (partner, rejection): how many envelopes are still in
    quarantine and how many were refused for good (their records closed), the first of them;
    and, not as alerts, how many rejected in the same run were accepted after all."""
    held = [alert for alert in alerts if alert[1].resolution is None]
    refused = [alert for alert in alerts if alert[1].resolution is not None]
    partner, first = (held or refused)[0]
    where = []
    if held:
        where.append(f"{len(held)} still in quarantine")
    if refused:
        where.append(f"{len(refused)} refused for good when opened again, record(s) closed")
    message = (
        f"{len(alerts)} envelope(s) rejected ({', '.join(where)}; first: {partner} "
        f"{first.envelope_id}: {first.reason}: {first.detail})"
    )
    if accepted_since:
        message += (
            f"; {accepted_since} other envelope(s) rejected in this run were accepted since "
            "(another copy, re-addressed or released), their records closed"
        )
    hint = "see `cti-exchange quarantine list`" if held else "`cti-exchange quarantine list --all` says why"
    if held and all(q.reason == RejectReason.UNKNOWN_KEY.value for _, q in held):
        # Most often a partner's `keys rotate`: pinning its new keys releases them.
        hint = (
            f"signed with a key of {', '.join(sorted({p for p, _ in held}))} not pinned yet: if the "
            "partner rotated its keys, get its new key file and run `cti-exchange partners "
            "update-keys NAME --jwks FILE`, and the next pull accepts them; else see "
            "`cti-exchange quarantine list`"
        )
    return IntegrityError(message, hint=hint)


def register(app: typer.Typer) -> None:
    app.command(
        "push",
        epilog="Example: cti-exchange push iocs.csv --to cert-in",
    )(push_command)
    app.command("pull", epilog="Example: cti-exchange pull --from cert-in --json")(pull_command)
