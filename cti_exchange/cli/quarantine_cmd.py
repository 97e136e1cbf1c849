"""`cti-exchange quarantine`: envelopes refused on arrival, kept with the reason; closing them
once reviewed, accepting a sequence gap that will never fill, and accepting a partner's
channel restart (its store restored from a backup, its profile made again) (exchange/held.py)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cti_exchange.cli.context import JsonOption, profile_home, writer_lock
from cti_exchange.cli.output import Output
from cti_exchange.cli.render_released import released_json, show_released
from cti_exchange.cli.render_triage import short_time
from cti_exchange.errors import UsageError
from cti_exchange.store.store import open_store
from cti_exchange.untrusted_text import describe_value, escape_controls

if TYPE_CHECKING:
    from cti_exchange.exchange.held import GapAccepted, Released, RestartAccepted
    from cti_exchange.store.inbound import QuarantinedEnvelope

quarantine_app = typer.Typer(
    help="Envelopes refused on arrival, kept with the reason: list, show, resolve, accept a gap or a "
    "partner's channel restart.",
    epilog="Example: cti-exchange quarantine list",
    no_args_is_help=True,
)

NoteOpt = Annotated[str | None, typer.Option("--note", metavar="TEXT", help="Why, for the record.")]


@quarantine_app.command("list", epilog="Example: cti-exchange quarantine list --all --json")
def quarantine_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Also records already resolved.")] = False,
    json_mode: JsonOption = False,
) -> None:
    """List envelopes refused on arrival, with the check that refused them.

    sequence-gap, issued-in-future, too-old and unknown-key are held: every pull opens them again.
    """
    out = Output(json_mode=json_mode)
    with open_store(profile_home(ctx)) as store:
        records = store.inbound.quarantined(include_resolved=all_)
    if json_mode:
        out.data([r.__dict__ for r in records])
        return
    if not records:
        out.note("the quarantine is empty")
        return
    columns = ["id", "received", "partner", "sender", "envelope", "reason", "detail"]
    out.table(
        columns + (["resolution"] if all_ else []),
        [
            [
                str(r.id),
                short_time(r.received_at),
                r.partner or "",
                describe_value(r.sender or "", 60),
                describe_value(r.envelope_id or "", 60),
                r.reason,
                describe_value(r.detail, 120),
            ]
            + ([describe_value(r.resolution or "", 120)] if all_ else [])
            for r in records
        ],
    )


@quarantine_app.command("show", epilog="Example: cti-exchange quarantine show 3 --artifact > envelope.json")
def quarantine_show(
    ctx: typer.Context,
    record_id: Annotated[int, typer.Argument(help="The id from `quarantine list`.")],
    artifact: Annotated[
        bool,
        typer.Option(
            "--artifact",
            help="Print only the refused envelope, byte for byte as received where its bytes were "
            "kept (an envelope file `open` refused); `open` reads it back.",
        ),
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    """Show one refused envelope: why, from whom, when, and how it was resolved."""
    out = Output(json_mode=json_mode)
    with open_store(profile_home(ctx)) as store:
        record = store.inbound.quarantine_record(record_id)
        raw = store.inbound.quarantined_artifact(record_id) if record else None
        kept = store.inbound.quarantined_envelope(record_id) if record and artifact else None
    if record is None:
        raise UsageError(f"no quarantine record {record_id}", hint="see `cti-exchange quarantine list --all`")
    if json_mode:
        extra = {"artifact": raw, "artifact_as_received": kept.received is not None} if kept else {}
        out.data(record.__dict__ | extra)
        return
    if artifact and kept is None:
        raise UsageError(
            f"quarantine record {record_id} keeps no envelope: it was erased (`triage erase`, "
            "see `audit show --action erase`)"
        )
    if kept is not None:
        # Only the envelope on stdout, so `> envelope.json` is a file `open` reads.
        out.note(f"quarantine record {record_id}: {record.reason}: {describe_value(record.detail, 300)}")
        _print_envelope(out, kept)
        return
    out.table(
        ["field", "value"],
        [[k, describe_value("" if v is None else str(v), 2000)] for k, v in record.__dict__.items()],
        title=f"Quarantine record {record_id}",
    )
    if isinstance(raw, dict):
        out.note(f"envelope fields: {', '.join(sorted(map(str, raw)))}; --artifact prints it")
    if record.resolved_at is None and record.reason in ("sequence-reorder", "chain-mismatch"):
        out.note(
            f"refused for where it stands on {record.partner or 'its sender'}'s channel: if "
            f"{record.partner or 'the sender'} restored its store from a backup, made its profile "
            f"again or had its signing key stolen (ask it), `cti-exchange quarantine accept-restart "
            f"{record_id}` accepts it as the "
            "channel's new start, and the envelopes refused behind it follow"
        )


def _print_envelope(out: Output, kept: QuarantinedEnvelope) -> None:
    """The bytes received, exactly (a file, `> envelope.json`); escaped on a terminal, which
    they could drive (the stored JSON is ASCII). Where they were not kept, the artifact as
    stored, and stderr says so rather than pass it off as the bytes received."""
    if kept.received is None:
        why = (
            "read from TAXII, where it had no bytes of its own (one object of a server response)"
            if kept.from_taxii
            else "its bytes were not kept (it came inside a bundle file, or before they were kept)"
        )
        out.note(
            f"not the bytes as received: {why}; this is the envelope as stored, the same JSON "
            "content (keys in the order received) written compactly"
        )
        sys.stdout.write((kept.stored or "") + "\n")
        return
    if out.is_terminal:
        out.note("on a terminal, control characters are escaped: redirect to a file for the exact bytes")
        text = kept.received.decode("utf-8", "replace")
        out.line("\n".join(escape_controls(line) for line in text.split("\n")))
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(kept.received)
    sys.stdout.buffer.flush()


@quarantine_app.command(
    "resolve",
    epilog="Example: cti-exchange quarantine resolve 3 4 --note 'reported to CERT-FR, ticket 1234'",
)
def quarantine_resolve(
    ctx: typer.Context,
    record_ids: Annotated[list[int], typer.Argument(help="Ids from `quarantine list`.")],
    note: NoteOpt = None,
    discard: Annotated[
        bool,
        typer.Option(
            "--discard",
            help="Also close held records (sequence-gap, issued-in-future, too-old, unknown-key): pull stops "
            "retrying them and their content is never accepted.",
        ),
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    """Close records you have reviewed, with your name, the time and a note.

    They leave `quarantine list` and `status`; `quarantine list --all` keeps them, and the audit
    trail records each as `quarantine-resolve`. Nothing is deleted.
    """
    from cti_exchange.exchange.held import resolve_records

    out = Output(json_mode=json_mode)
    result = resolve_records(profile_home(ctx), record_ids, note=note, discard_held=discard)
    if json_mode:
        out.data(result.__dict__)
        return
    out.line(f"{len(result.record_ids)} record(s) closed: {describe_value(result.resolution, 300)}")


@quarantine_app.command(
    "accept-gap", epilog="Example: cti-exchange quarantine accept-gap 7 --note 'CERT-FR lost 41'"
)
def quarantine_accept_gap(
    ctx: typer.Context,
    record_id: Annotated[int, typer.Argument(help="A sequence-gap record from `quarantine list`.")],
    note: NoteOpt = None,
    json_mode: JsonOption = False,
) -> None:
    """Accept a held envelope although envelopes before it never arrived.

    For a gap that will not fill (ask the partner first: a withheld envelope is what the check
    is for). The gap accepted is the sequence numbers neither accepted nor held: envelopes held
    before this one are not lost, the first of them takes the gap and the others follow in
    sequence order, each opened again with every other check and accepted under the partner
    it came from. The missing ones can no longer be accepted afterwards (they would be refused
    as sequence-reorder).
    """
    from cti_exchange.exchange.held import accept_gap

    out = Output(json_mode=json_mode)
    home = profile_home(ctx)
    # It opens held envelopes and accepts them, as pull does: under the same lock, or a sync
    # running meanwhile could accept the same envelope (one of the two would fail).
    with writer_lock(home, "quarantine accept-gap"):
        result = accept_gap(home, record_id, note=note)
    released = result.released
    if json_mode:
        out.data(
            {
                "record_id": result.record_id,
                "requested_record_id": result.requested_record_id,
                "partner": result.partner,
                "envelope_id": result.envelope_id,
                "sequence": result.sequence,
                "missing": result.missing,
                "objects": result.objects,
                "new_versions": result.new_versions,
                **released_json(released),
                "still_held": result.still_held,
            }
        )
        return
    if result.record_id != result.requested_record_id:
        out.note(
            f"record {result.requested_record_id} waits behind envelope(s) held from {result.partner}: "
            f"the gap is accepted on the first of them, record {result.record_id}, and the others "
            "follow in sequence order"
        )
    if result.missing:
        out.warn(f"accepted despite missing sequence numbers {result.missing} from {result.partner}")
    else:
        out.note(f"no gap left before it: the envelopes missing from {result.partner} had arrived")
    _show_accepted(out, result, released, result.still_held, "held in quarantine", "what each waits for")


@quarantine_app.command(
    "accept-restart",
    epilog="Example: cti-exchange quarantine accept-restart 9 --note 'CERT-FR restored a backup, call 12-06'",
)
def quarantine_accept_restart(
    ctx: typer.Context,
    record_id: Annotated[
        int,
        typer.Argument(help="A sequence-reorder or chain-mismatch record from `quarantine list`."),
    ],
    note: NoteOpt = None,
    json_mode: JsonOption = False,
) -> None:
    """Accept a partner's envelope as the new start of its channel to us.

    After the partner confirmed (out of band) that it restored its store or profile from a
    backup, or made its profile again: its channel went back, so its envelopes are refused as
    sequence-reorder or chain-mismatch. Name the first one it sent since. It is opened again
    with every other check (signature, keys, addressing, replay, age, bundle) and accepted as
    the channel's new start (audit record `channel-restart`); the envelopes refused or held
    behind it are opened again in sequence order and those that now chain follow. An envelope
    id already accepted stays a duplicate.
    """
    from cti_exchange.exchange.held import accept_restart

    out = Output(json_mode=json_mode)
    home = profile_home(ctx)
    # It accepts envelopes as pull does: under the same lock.
    with writer_lock(home, "quarantine accept-restart"):
        result = accept_restart(home, record_id, note=note)
    released = result.released
    if json_mode:
        out.data(
            {
                "record_id": result.record_id,
                "partner": result.partner,
                "sender": result.sender,
                "envelope_id": result.envelope_id,
                "restarted": result.restarted,
                "previous_position": result.previous,
                "sequence": result.sequence,
                "objects": result.objects,
                "new_versions": result.new_versions,
                **released_json(released),
                "still_open": result.still_open,
            }
        )
        return
    if result.restarted:
        was = f"sequence {result.previous['sequence']}" if result.previous else "no envelope accepted yet"
        out.warn(
            f"{result.partner}'s channel restarted at sequence {result.sequence} (we were at {was}): "
            "recorded in the audit trail as channel-restart"
        )
    else:
        out.note(f"no restart needed: it chains to what we accepted from {result.partner}")
    _show_accepted(out, result, released, result.still_open, "in quarantine", "why each was refused or waits")


def _show_accepted(
    out: Output,
    result: GapAccepted | RestartAccepted,
    released: Released,
    still: list[int],
    where: str,
    says: str,
) -> None:
    """The envelope accept-gap or accept-restart accepted, what followed it, and what is still
    `where` (held in quarantine, in quarantine)."""
    out.line(
        f"Accepted envelope {result.envelope_id} (sequence {result.sequence}, {result.objects} objects, "
        f"{result.new_versions} new versions) from {result.partner}"
    )
    show_released(out, released, result.partner)
    if still:
        records = ", ".join(map(str, still))
        out.warn(
            f"{len(still)} envelope(s) from {result.partner} still {where} (record(s) {records}): "
            f"`cti-exchange quarantine list` says {says}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(quarantine_app, name="quarantine")
