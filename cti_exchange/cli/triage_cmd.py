"""`cti-exchange triage` and `cti-exchange quarantine`: what partners sent, and what was refused.

Partner data is untrusted: every value shown on a terminal goes through `describe_value`
(control and bidirectional characters escaped) and JSON is shown ASCII-escaped.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from cti_exchange.cli.context import JsonOption, profile_home
from cti_exchange.cli.output import Output
from cti_exchange.errors import UsageError
from cti_exchange.store.store import open_store
from cti_exchange.store.triage_queries import TriageFilter
from cti_exchange.triage import (
    DECISIONS,
    ObjectDetail,
    TriageLine,
    build_filter,
    decide,
    iter_queue,
    list_objects,
    review_loop,
    show_object,
    sightings_received,
)
from cti_exchange.untrusted_text import describe_value

triage_app = typer.Typer(
    help="Review what partners sent: list, show, accept, reject, mark false positives.",
    epilog="Example: cti-exchange triage list --status new --since 24h",
    no_args_is_help=True,
)
quarantine_app = typer.Typer(
    help="Envelopes refused on arrival, kept with the reason: list and show.",
    epilog="Example: cti-exchange quarantine list",
    no_args_is_help=True,
)

# -- filter options, shared with `export` -------------------------------------------------

PartnerOpt = Annotated[
    list[str] | None,
    typer.Option("--partner", metavar="PARTNER", help="Sent by this partner (repeatable)."),
]
TypeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--type",
        metavar="TYPE",
        help="IOC type (ipv4-addr, domain-name, url, sha256, ...) or STIX type (malware, ...); repeatable.",
    ),
]
TlpOpt = Annotated[
    list[str] | None,
    typer.Option("--tlp", metavar="TLP", help="Marked with this TLP (repeatable)."),
]
MaxTlpOpt = Annotated[
    str | None,
    typer.Option("--max-tlp", metavar="TLP", help="Marked at most this TLP (unmarked passes)."),
]
MinConfidenceOpt = Annotated[
    int | None,
    typer.Option("--min-confidence", metavar="N", help="Confidence at least this (0-100)."),
]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", metavar="WHEN", help="Received since: 24h, 7d, or a timestamp."),
]
StatusOpt = Annotated[
    list[str] | None,
    typer.Option("--status", metavar="STATUS", help="new, accepted, rejected, false-positive (repeatable)."),
]
SearchOpt = Annotated[
    str | None,
    typer.Option("--search", metavar="TEXT", help="Text in the value or the name (any case)."),
]
ExpiredOpt = Annotated[
    bool | None,
    typer.Option(
        "--expired/--not-expired",
        help="Only expired (valid_until passed) / only still valid.",
        show_default=False,
    ),
]
RevokedOpt = Annotated[bool, typer.Option("--include-revoked", help="Also objects their source revoked.")]


def filters_from_options(
    *,
    partner: list[str] | None,
    type_: list[str] | None,
    tlp: list[str] | None,
    max_tlp: str | None,
    min_confidence: int | None,
    since: str | None,
    status: list[str] | None,
    search: str | None,
    expired: bool | None,
    include_revoked: bool,
) -> TriageFilter:
    return build_filter(
        partners=partner or (),
        types=type_ or (),
        tlps=tlp or (),
        max_tlp=max_tlp,
        min_confidence=min_confidence,
        since=since,
        statuses=status or (),
        text=search,
        expired=expired,
        include_revoked=include_revoked,
    )


# -- rendering ----------------------------------------------------------------------------


def _when(timestamp: str | None) -> str:
    return timestamp[:16].replace("T", " ") if timestamp else ""


def _label(line: TriageLine, limit: int) -> str:
    o = line.object
    return describe_value(o.value if o.value is not None else (o.name or ""), limit)


def _short_id(object_id: str) -> str:
    kind, _, rest = object_id.partition("--")
    return f"{kind}--{rest[:8]}"


def _tlp(value: str | None) -> str:
    return "TLP:" + value.upper() if value else "-"


def _status(line: TriageLine) -> str:
    o = line.object
    flags = [o.status] + (["expired"] if line.expired else []) + (["revoked"] if o.revoked else [])
    return ", ".join(flags)


def render_lines(out: Output, lines: list[TriageLine]) -> None:
    terminal = out.is_terminal
    out.table(
        [
            "id",
            "type",
            "value / name",
            "TLP",
            "conf",
            "status",
            "sources",
            "signed by",
            "received",
            "valid until",
        ],
        [
            [
                _short_id(line.object.object_id) if terminal else line.object.object_id,
                line.object.ioc_type or line.object.type,
                _label(line, 60 if terminal else 100_000),
                _tlp(line.strictest_tlp),
                "" if line.object.confidence is None else str(line.object.confidence),
                _status(line),
                " ".join(line.partners),
                " ".join(k[:16] for k in line.signers) if terminal else " ".join(line.signers),
                _when(line.object.received_at),
                _when(line.object.valid_until),
            ]
            for line in lines
        ],
    )


def _ascii_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True)


def render_detail(out: Output, detail: ObjectDetail) -> None:
    o = detail.line.object
    facts = [
        ("id", o.object_id),
        ("type", o.type + (f" ({o.ioc_type})" if o.ioc_type else "")),
        ("value", describe_value(o.value or "", 500)),
        ("name", describe_value(o.name or "", 500)),
        (
            "TLP",
            _tlp(o.tlp)
            + (
                f" (strictest of all sources: {_tlp(detail.line.strictest_tlp)})"
                if detail.line.strictest_tlp != o.tlp
                else ""
            ),
        ),
        ("confidence", "" if o.confidence is None else str(o.confidence)),
        (
            "valid",
            f"{o.valid_from or '?'} to {o.valid_until or 'no end'}"
            + (" (expired)" if detail.line.expired else ""),
        ),
        (
            "status",
            o.status
            + (f" by {o.status_by} at {o.status_at}" if o.status_by else "")
            + (f": {describe_value(o.status_note, 300)}" if o.status_note else ""),
        ),
        ("revoked", "yes" if o.revoked else "no"),
        ("sources", " ".join(detail.line.partners)),
    ]
    out.table(["field", "value"], facts, title="Object")
    out.table(
        ["partner", "envelope", "received", "TLP", "signer key", "signer thumbprint"],
        [
            [
                s.partner,
                s.envelope_id,
                s.received_at,
                _tlp(s.tlp),
                s.signer_kid or "?",
                s.signer_thumbprint or "?",
            ]
            for s in detail.sources
        ],
        title="Sources and signatures",
    )
    if detail.same_value:
        out.table(
            ["id", "partner", "TLP", "conf", "status", "received"],
            [
                [
                    s.object.object_id,
                    s.object.partner,
                    _tlp(s.object.tlp),
                    str(s.object.confidence or ""),
                    s.object.status,
                    s.object.received_at,
                ]
                for s in detail.same_value
            ],
            title="Same value from other sources",
        )
    out.table(
        ["version", "current", "revoked", "partner", "envelope", "received"],
        [
            [
                v.version,
                "yes" if v.is_current else "",
                "yes" if v.revoked else "",
                v.partner,
                v.envelope_id,
                v.received_at,
            ]
            for v in detail.versions
        ],
        title="Versions",
    )
    if detail.related:
        out.table(
            ["relationship", "type", "name", "id", "via"],
            [
                [
                    ("-> " if r.direction == "to" else "<- ") + r.relationship_type,
                    r.type or "(not stored)",
                    describe_value(r.name or "", 80),
                    r.object_id,
                    r.via or "",
                ]
                for r in detail.related
            ],
            title="Related objects",
        )
    if detail.sightings:
        out.table(
            ["sighting", "partner", "count", "first seen", "last seen", "received"],
            [
                [
                    s.sighting_id,
                    s.partner,
                    str(s.count or ""),
                    s.first_seen or "",
                    s.last_seen or "",
                    s.received_at,
                ]
                for s in detail.sightings
            ],
            title="Sightings",
        )
    if detail.decisions:
        out.table(
            ["decision", "analyst", "at", "note"],
            [
                [d.decision, d.analyst, d.decided_at, describe_value(d.note or "", 200)]
                for d in detail.decisions
            ],
            title="Decisions",
        )
    out.line("STIX object:")
    out.line(_ascii_json(detail.stix))


# -- triage commands ----------------------------------------------------------------------


@triage_app.command(
    "list",
    epilog="Example: cti-exchange triage list --status new --type domain-name --since 24h",
)
def list_(
    ctx: typer.Context,
    partner: PartnerOpt = None,
    type_: TypeOpt = None,
    tlp: TlpOpt = None,
    max_tlp: MaxTlpOpt = None,
    min_confidence: MinConfidenceOpt = None,
    since: SinceOpt = None,
    status: StatusOpt = None,
    search: SearchOpt = None,
    expired: ExpiredOpt = None,
    include_revoked: RevokedOpt = False,
    sighted: Annotated[
        bool, typer.Option("--sighted", help="Sightings partners sent of indicators we shared.")
    ] = False,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            metavar="KEY",
            help="received, confidence, value, valid-until, partner, status.",
        ),
    ] = "received",
    ascending: Annotated[
        bool | None,
        typer.Option(
            "--asc/--desc",
            help="Order (default: newest, highest first; values A-Z).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="Lines per page (1-1000).")] = 50,
    after: Annotated[
        str | None,
        typer.Option("--after", metavar="TOKEN", help="Page token printed by the previous page."),
    ] = None,
    count: Annotated[bool, typer.Option("--count", help="Also count every match (reads them all).")] = False,
    json_mode: JsonOption = False,
) -> None:
    """List current objects from partners, one line per indicator value with all its sources."""
    out = Output(json_mode=json_mode)
    home = profile_home(ctx)
    filters = filters_from_options(
        partner=partner,
        type_=type_,
        tlp=tlp,
        max_tlp=max_tlp,
        min_confidence=min_confidence,
        since=since,
        status=status,
        search=search,
        expired=expired,
        include_revoked=include_revoked,
    )
    with open_store(home) as store:
        if sighted:
            sightings, token = sightings_received(
                store, partners=filters.partners, since=filters.since, limit=limit, after=after
            )
            if json_mode:
                out.data({"sightings": [s.__dict__ for s in sightings], "next": token})
                return
            out.table(
                [
                    "indicator",
                    "value",
                    "seen by",
                    "count",
                    "first seen",
                    "last seen",
                    "received",
                    "note",
                ],
                [
                    [
                        s.sighting_of_ref,
                        describe_value(s.value or "", 100),
                        s.partner,
                        str(s.count or ""),
                        _when(s.first_seen),
                        _when(s.last_seen),
                        _when(s.received_at),
                        describe_value(s.description or "", 80),
                    ]
                    for s in sightings
                ],
            )
            if token:
                out.note(f"more: add --after {token}")
            return
        page = list_objects(
            store,
            filters,
            sort=sort,
            descending=None if ascending is None else not ascending,
            limit=limit,
            after=after,
            count=count,
        )
    if json_mode:
        out.data(
            {
                "items": [line.to_dict() for line in page.lines],
                "next": page.next_page,
                "total": page.total,
            }
        )
        return
    if not page.lines:
        out.note("nothing matches; `cti-exchange pull` fetches what partners sent")
    else:
        render_lines(out, page.lines)
    if page.total is not None:
        out.note(f"{page.total:,} matching")
    if page.next_page:
        out.note(f"more: add --after {page.next_page}")


@triage_app.command("show", epilog="Example: cti-exchange triage show indicator--53fe3b22")
def show(
    ctx: typer.Context,
    reference: Annotated[str, typer.Argument(help="Object id, unique id prefix, or indicator value.")],
    json_mode: JsonOption = False,
) -> None:
    """Show one object: its versions, sources and signatures, related objects, sightings."""
    out = Output(json_mode=json_mode)
    with open_store(profile_home(ctx)) as store:
        detail = show_object(store, reference)
    if json_mode:
        out.data(detail.to_dict())
    else:
        render_detail(out, detail)


def _decision_command(decision: str) -> Any:
    def command(
        ctx: typer.Context,
        references: Annotated[list[str], typer.Argument(help="Object ids, unique id prefixes or values.")],
        note: Annotated[
            str | None, typer.Option("--note", metavar="TEXT", help="Why, for the record.")
        ] = None,
        json_mode: JsonOption = False,
    ) -> None:
        out = Output(json_mode=json_mode)
        with open_store(profile_home(ctx)) as store:
            result = decide(store, references, decision, note=note)
        if json_mode:
            out.data(result.__dict__)
            return
        count = len(result.object_ids)
        out.line(f"{result.decision}: {count} object(s) by {result.analyst} at {result.decided_at}")

    command.__doc__ = {
        "accept": "Accept objects: they go into exports to defensive tools.",
        "reject": "Reject objects: not used, kept for the record.",
        "false-positive": "Mark objects as false positives: not used; say why with --note.",
    }[decision]
    return command


@triage_app.command("review", epilog="Example: cti-exchange triage review --partner cert-in")
def review(
    ctx: typer.Context,
    partner: PartnerOpt = None,
    type_: TypeOpt = None,
    tlp: TlpOpt = None,
    min_confidence: MinConfidenceOpt = None,
    since: SinceOpt = None,
    search: SearchOpt = None,
    note: Annotated[
        str | None,
        typer.Option("--note", metavar="TEXT", help="Note recorded with every decision."),
    ] = None,
) -> None:
    """Step through new objects on a terminal: a accept, r reject, f false positive, s skip,
    q quit."""
    if not sys.stdin.isatty():
        raise UsageError(
            "triage review reads single keys from a terminal and stdin is not one",
            hint="use `triage list --status new` and `triage accept|reject|false-positive ID...`",
        )
    out = Output()
    filters = filters_from_options(
        partner=partner,
        type_=type_,
        tlp=tlp,
        max_tlp=None,
        min_confidence=min_confidence,
        since=since,
        status=["new"],
        search=search,
        expired=None,
        include_revoked=False,
    )
    with open_store(profile_home(ctx)) as store:

        def present(line: TriageLine, number: int) -> None:
            out.line("")
            render_lines(out, [line])
            out.line(f"#{number}  [a]ccept  [r]eject  [f]alse positive  [s]kip  [q]uit > ", style="bold")

        summary = review_loop(
            iter_queue(store, filters),
            read_key=lambda: typer.getchar(echo=False),
            present=present,
            apply=lambda line, decision: decide(store, [line.object.object_id], decision, note=note),
            warn=out.warn,
        )
    decided = ", ".join(f"{n} {status}" for status, n in summary.decided.items()) or "no decisions"
    out.line(f"Reviewed {summary.reviewed}: {decided}, {summary.skipped} skipped.")


# -- quarantine ---------------------------------------------------------------------------


@quarantine_app.command("list", epilog="Example: cti-exchange quarantine list --all --json")
def quarantine_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Also records already resolved.")] = False,
    json_mode: JsonOption = False,
) -> None:
    """List envelopes refused on arrival, with the check that refused them."""
    out = Output(json_mode=json_mode)
    with open_store(profile_home(ctx)) as store:
        records = store.inbound.quarantined(include_resolved=all_)
    if json_mode:
        out.data([r.__dict__ for r in records])
        return
    if not records:
        out.note("the quarantine is empty")
        return
    out.table(
        ["id", "received", "partner", "sender", "envelope", "reason", "detail"],
        [
            [
                str(r.id),
                _when(r.received_at),
                r.partner or "",
                describe_value(r.sender or "", 60),
                describe_value(r.envelope_id or "", 60),
                r.reason,
                describe_value(r.detail, 120),
            ]
            for r in records
        ],
    )


@quarantine_app.command("show", epilog="Example: cti-exchange quarantine show 3 --artifact")
def quarantine_show(
    ctx: typer.Context,
    record_id: Annotated[int, typer.Argument(help="The id from `quarantine list`.")],
    artifact: Annotated[
        bool, typer.Option("--artifact", help="Print the refused envelope as received.")
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    """Show one refused envelope: why, from whom, when; and, if asked, the envelope itself."""
    out = Output(json_mode=json_mode)
    with open_store(profile_home(ctx)) as store:
        record = next(
            (r for r in store.inbound.quarantined(include_resolved=True) if r.id == record_id), None
        )
        raw = store.inbound.quarantined_artifact(record_id) if record else None
    if record is None:
        raise UsageError(f"no quarantine record {record_id}", hint="see `cti-exchange quarantine list --all`")
    if json_mode:
        out.data(record.__dict__ | ({"artifact": raw} if artifact else {}))
        return
    out.table(
        ["field", "value"],
        [[k, describe_value("" if v is None else str(v), 2000)] for k, v in record.__dict__.items()],
        title=f"Quarantine record {record_id}",
    )
    if artifact:
        out.line(_ascii_json(raw))
    elif isinstance(raw, dict):
        out.note(f"envelope fields: {', '.join(sorted(map(str, raw)))}; --artifact prints it")


def register(app: typer.Typer) -> None:
    for decision in DECISIONS:
        triage_app.command(
            decision,
            epilog=f"Example: cti-exchange triage {decision} indicator--53fe3b22 --note 'seen in proxy logs'",
        )(_decision_command(decision))
    app.add_typer(triage_app, name="triage")
    app.add_typer(quarantine_app, name="quarantine")
