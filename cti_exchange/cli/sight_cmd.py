"""`cti-exchange sight`: tell the partner that shared an indicator that we saw it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

import typer

from cti_exchange.cli.context import JsonOption, profile_home, writer_lock
from cti_exchange.cli.output import Output
from cti_exchange.cli.progress import progress_for
from cti_exchange.clock import parse_timestamp, time_ago, utc_now
from cti_exchange.errors import UsageError
from cti_exchange.exchange.delivery import delivery_failure
from cti_exchange.sighting import SightingRequest, SightingResult, sight
from cti_exchange.stix.tlp import Tlp
from cti_exchange.untrusted_text import describe_value

# Nothing was sighted on a network before this; an earlier year is a typo (and a year before
# 1000 cannot be written as a STIX timestamp, nor one near 0001-01-01 moved to UTC at all).
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# A date and a time of day with neither Z nor an offset after it (a bare date is midnight UTC).
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$", re.IGNORECASE)


def _moment(text: str | None, option: str, now: datetime) -> datetime | None:
    """A timestamp with its zone, or an age before now (30m, 24h, 7d) as --since takes it."""
    if text is None:
        return None
    try:
        ago = time_ago(text, now)
    except ValueError as exc:  # an age, too large: said as such, not as "not an age"
        raise UsageError(
            f"{option}: a duration too large: {exc}", hint="give a shorter age, or a timestamp"
        ) from None
    if ago is not None:
        return ago
    if _LOCAL_TIME.match(text.strip()):
        # 08:00 typed in Delhi or Paris, taken for UTC, would tell the partner a time hours off.
        raise UsageError(
            f"{option}: {text!r} has no time zone",
            hint="add Z for UTC or the offset, e.g. 2026-11-23T08:15:00+05:30",
        )
    try:
        moment = parse_timestamp(text)
    except (ValueError, OverflowError):
        moment = None
    if moment is None or moment < _EARLIEST:
        raise UsageError(
            f"{option}: {text!r} is not a timestamp after 1970 or an age",
            hint="e.g. 2026-11-23T08:15:00Z, or 24h for a day ago",
        )
    return moment


def sight_command(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            help="Indicator id, unique id prefix, or value (pasted from a report too: "
            "203.0.113[.]7, EVIL.EXAMPLE)."
        ),
    ],
    count: Annotated[int, typer.Option("--count", metavar="N", help="How many times it was seen.")] = 1,
    first_seen: Annotated[
        str | None,
        typer.Option(
            "--first-seen",
            metavar="WHEN",
            help="First seen: a timestamp, or an age (24h) (default: last seen).",
        ),
    ] = None,
    last_seen: Annotated[
        str | None,
        typer.Option("--last-seen", metavar="WHEN", help="Last seen: a timestamp, or an age (default: now)."),
    ] = None,
    note: Annotated[
        str | None,
        typer.Option("--note", metavar="TEXT", help="What was seen where, for the partner."),
    ] = None,
    tlp: Annotated[
        str | None,
        typer.Option("--tlp", metavar="TLP", help="Mark stricter than the indicator (never less strict)."),
    ] = None,
    allow_red: Annotated[
        bool,
        typer.Option("--allow-red", help="Send a TLP:RED sighting to partners whose entry allows it."),
    ] = False,
    queue: Annotated[
        bool, typer.Option("--queue", help="Seal into the outbox only; `sync` posts it.")
    ] = False,
    reshare: Annotated[
        bool,
        typer.Option(
            "--reshare",
            help="Send again a sighting already sent (same indicator, count, first and last seen, "
            "note, TLP), as a new sighting. Without it, running the same sighting again resumes "
            "it if it was interrupted and otherwise sends nothing.",
        ),
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    """Send a STIX sighting of a partner's indicator back to every partner that shared it.

    A value is one value in all its spellings (bestarg.com, BESTARG.COM.): each object holding
    any of them gets its own sighting, at its own TLP, to the partners that sent it. A malware,
    tool or other domain object is sighted by its id.

    The same sighting is sent once: run again with the same count, times and note, it says
    when it was sent and in which envelope, and sends nothing (exit 0). Times given as an age
    (24h) or left out (now) differ on every run: give timestamps to make a run repeatable.
    """
    now = utc_now()
    level = None
    if tlp is not None:
        try:
            level = Tlp.parse(tlp)
        except ValueError as exc:
            raise UsageError(f"--tlp: {exc}") from None
    request = SightingRequest(
        reference=reference,
        count=count,
        first_seen=_moment(first_seen, "--first-seen", now),
        last_seen=_moment(last_seen, "--last-seen", now),
        note=note,
        tlp=level,
        allow_red=allow_red,
        queue_only=queue,
        reshare=reshare,
    )
    out = Output(json_mode=json_mode)
    home = profile_home(ctx)
    # Under the profile lock, as push: it seals and posts, which a sync must not do at once.
    with writer_lock(home, "sight"), progress_for(out) as progress:
        result = sight(home, request, reporter=progress)
    render_sighting(out, result)
    if result.failed:
        names = "; ".join(f"{p}: {next(iter(f.values()))}" for p, f in result.failed.items())
        error = f"delivery failed for {names}"
        hint = "the sighting is in the outbox; the next push or sync posts it"
        partial = any(s.delivered for s in result.sightings)
        raise delivery_failure(result.deliveries, error, hint=hint, partial=partial)


def render_sighting(out: Output, result: SightingResult) -> None:
    if result.skipped:
        # On stderr in --json mode too: stdout stays the JSON document.
        out.note(
            f"Not sent to {', '.join(result.skipped)}: no longer among our partners "
            "(`cti-exchange partners list`)."
        )
    if result.decided_against:
        # A hint, not a refusal: the value may be seen again after all, or the decision wrong.
        statuses = " or ".join(sorted(set(result.decided_against.values())))
        shown = describe_value(result.value or next(iter(result.decided_against)), 100)
        out.warn(
            f"{shown} is marked {statuses} here "
            f"({len(result.decided_against)} object(s), in any spelling); the sighting goes all "
            "the same (see `cti-exchange triage show`)"
        )
    for object_id, why in result.stale.items():
        out.note(
            f"{object_id} is {why} at its source; the sighting goes to it all the same "
            "(the source learns its indicator is still seen)."
        )
    if out.json_mode:
        out.data(
            {
                "value": result.value,
                "sightings": [s.__dict__ for s in result.sightings],
                "skipped": result.skipped,
                "stale": result.stale,
                "decided_against": result.decided_against,
            }
        )
        return
    for s in result.already_sent:
        waiting = "; still in the outbox: `cti-exchange sync` posts it" if s.outbox else ""
        out.line(
            f"Already sent to {s.partner} on {s.already_sent_at}: {s.sighting_id} of "
            f"{s.sighting_of_ref} in {' '.join(s.envelopes) or 'no envelope'}{waiting}; nothing "
            "sent (use --reshare to send it again as a new sighting)."
        )
    sent = [s for s in result.sightings if s.already_sent_at is None]
    if not sent:
        return
    if any(s.resumed for s in sent):
        out.note("resumed an interrupted run of the same sighting: nothing sealed twice")
    verb = "queued" if result.queued_only else "sent"
    out.table(
        # "of": an indicator, or a malware, tool or other domain object (STIX 2.1 allows any).
        ["partner", "sighting", "of", "value", "TLP", "envelopes", "delivery"],
        [
            [
                s.partner,
                s.sighting_id,
                s.sighting_of_ref,
                describe_value(s.value or "", 100),  # partner data
                "TLP:" + s.tlp.upper(),
                " ".join(s.envelopes),
                verb if result.queued_only else ("failed" if s.failed else "delivered"),
            ]
            for s in sent
        ],
    )


def register(app: typer.Typer) -> None:
    app.command(
        "sight",
        epilog="Example: cti-exchange sight 203.0.113.7 --count 12 "
        "--first-seen 2026-11-22T08:00:00Z --last-seen 2026-11-23T09:30:00Z "
        "--note 'outbound proxy logs'\n"
        "The same command again sends nothing; add --reshare to send it again.",
    )(sight_command)
