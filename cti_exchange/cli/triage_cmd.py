"""`cti-exchange triage`: what partners sent.

Partner data is untrusted: every value shown on a terminal goes through `describe_value`
(control and bidirectional characters escaped) and JSON is shown ASCII-escaped.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Annotated, Any

import typer

from cti_exchange.cli.context import JsonOption, profile_home
from cti_exchange.cli.filter_options import (
    ExpiredOpt,
    MaxTlpOpt,
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
from cti_exchange.cli.output import Output
from cti_exchange.cli.render_triage import (
    render_detail,
    render_lines,
    render_review_item,
    short_time,
    table,
)
from cti_exchange.errors import UsageError
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.store.object_queries import KeptDecision
from cti_exchange.store.store import Store, open_store
from cti_exchange.store.triage_queries import TriageFilter, count_matching
from cti_exchange.triage import (
    TriageLine,
    iter_queue,
    list_objects,
    review_context,
    search_index_to_build,
    show_object,
    sightings_received,
)
from cti_exchange.triage_decisions import (
    DECISIONS,
    DecisionResult,
    decide,
    decide_in_review,
    review_loop,
)
from cti_exchange.triage_erasure import erase, erasure_preview, erasure_reason, erasures, unerase
from cti_exchange.untrusted_text import describe_value, escape_controls

triage_app = typer.Typer(
    help="Review what partners sent: list, show, accept, reject, mark false positives.",
    epilog="Example: cti-exchange triage list --status new --since 24h",
    no_args_is_help=True,
)

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
            _refuse_list_order_with_sighted(sort, ascending, count)
            sightings, token = sightings_received(store, filters, limit=limit, after=after)
            if json_mode:
                out.data({"sightings": [s.__dict__ for s in sightings], "next": token})
                return
            table(
                out,
                [
                    "of",  # an indicator, or another domain object (a tool, a malware)
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
                        "" if s.count is None else str(s.count),  # 0 is a count
                        short_time(s.first_seen),
                        short_time(s.last_seen),
                        short_time(s.received_at),
                        describe_value(s.description or "", 80),
                    ]
                    for s in sightings
                ],
            )
            if token:
                out.note(f"more: add --after {token}")
            return
        if out.stderr_is_terminal and (pending := search_index_to_build(store, filters)):
            out.note(
                f"indexing {pending:,} stored objects for text search, once: later searches, "
                "pulls and syncs keep the index current"
            )
        page = list_objects(
            store,
            filters,
            sort=sort,
            descending=None if ascending is None else not ascending,
            limit=limit,
            after=after,
            count=count,
        )
        strangers = [] if page.lines else _partners_never_seen(home, store, filters.partners)
        empty_note = "" if page.lines or strangers else _nothing_matches(store, filters, after)
    if json_mode:
        out.data(
            {
                "items": [line.to_dict() for line in page.lines],
                "next": page.next_page,
                "total": page.total,
            }
        )
        return
    if strangers:
        known = ", ".join(home.load_profile().partners) or "none yet"
        out.note(f"nothing matches: no partner named {strangers[0]!r} (partners: {known})")
    elif not page.lines:
        out.note(empty_note)
    else:
        render_lines(out, page.lines)
    if page.total is not None:
        out.note(f"{page.total:,} matching")
    if page.next_page:
        out.note(f"more: add --after {page.next_page}")


def _refuse_list_order_with_sighted(sort: str, ascending: bool | None, count: bool) -> None:
    """Sightings come newest first, a page at a time: an order or a count is not ignored."""
    for given, option in (
        (sort != "received", "--sort"),
        (ascending is not None, "--asc/--desc"),
        (count, "--count"),
    ):
        if given:
            raise UsageError(f"{option} does not apply to --sighted (sightings are listed newest first)")


def _nothing_matches(store: Store, filters: TriageFilter, after: str | None) -> str:
    """Why the list is empty: the filters (and how many objects their source revoked would
    match), the end of the pages, or an empty store. Never `pull` when the store holds
    objects: a filter that excludes everything is not "nothing came in"."""
    if after:
        return "no more lines after this token"
    if not filters.include_revoked:
        revoked = list_objects(store, replace(filters, include_revoked=True), limit=1)
        if revoked.lines:
            return "nothing matches; objects their source revoked do: add --include-revoked to list them"
    if replace(filters, now="") != TriageFilter():
        return "nothing matches these filters; `cti-exchange triage list` without them lists everything"
    return "nothing matches; `cti-exchange pull` fetches what partners sent"


def _partners_never_seen(home: ProfileHome, store: Store, names: tuple[str, ...]) -> list[str]:
    """`--partner` names neither configured nor in the store (a typo): said when nothing
    matches, so an empty list is not taken for "nothing came in"."""
    configured = home.load_profile().partners
    return [
        name
        for name in names
        if name not in configured
        and store.db.conn.execute("SELECT 1 FROM objects WHERE partner = ? LIMIT 1", (name,)).fetchone()
        is None
    ]


@triage_app.command("show", epilog="Example: cti-exchange triage show indicator--53fe3b22")
def show(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            help="Object id, unique id prefix, indicator value (pasted from a report too: "
            "203.0.113[.]7, EVIL.EXAMPLE), or exact name (APT1)."
        ),
    ],
    json_mode: JsonOption = False,
) -> None:
    """Show one object: its versions, sources and signatures, related objects, sightings."""
    out = Output(json_mode=json_mode)
    with open_store(profile_home(ctx)) as store:
        detail = show_object(store, reference.strip())
    if json_mode:
        out.data(detail.to_dict())
    else:
        render_detail(out, detail)


def _kept_summary(kept: list[KeptDecision]) -> str:
    """`1 object (by amelie at 2026-...)`, or with several deciders `3 objects`."""
    deciders = {(k.by or "unknown analyst", k.at or "an unknown time") for k in kept}
    count = f"{len(kept)} object(s)"
    if len(deciders) == 1:
        by, at = deciders.pop()
        return f"{count} (by {escape_controls(by)} at {at})"
    return f"{count}, decided earlier (see `triage show`)"


def _decision_command(decision: str) -> Any:
    def command(
        ctx: typer.Context,
        references: Annotated[
            list[str],
            typer.Argument(
                help="Object ids, unique id prefixes or values (pasted from a report too: "
                "203.0.113[.]7, EVIL.EXAMPLE)."
            ),
        ],
        note: Annotated[
            str | None, typer.Option("--note", metavar="TEXT", help="Why, for the record.")
        ] = None,
        json_mode: JsonOption = False,
    ) -> None:
        out = Output(json_mode=json_mode)
        with open_store(profile_home(ctx)) as store:
            # Stripped here: a reference with spaces around it (copied, from a script) must
            # get the same "names several objects" check as without them.
            result = decide(store, [r.strip() for r in references], decision, note=note)
        if json_mode:
            out.data(result.to_dict())
            return
        count = len(result.object_ids)
        if count or not result.kept:
            out.line(f"{result.decision}: {count} object(s) by {result.analyst} at {result.decided_at}")
        if result.kept:
            out.line(f"already {result.decision}, left as it was: {_kept_summary(result.kept)}")
        if result.revoked and result.decision == "accepted":
            out.note(
                f"{len(result.revoked)} of them revoked by their source: revoked objects never go "
                "into exports (see `triage show`)"
            )

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
        total = count_matching(store.db.conn, filters)  # as the queue starts: "#3 of 623"

        def present(line: TriageLine, number: int) -> None:
            render_review_item(out, line, review_context(store, line), number)
            of = f" of {total:,}" if number <= total else ""
            out.line(f"#{number}{of}  [a]ccept  [r]eject  [f]alse positive  [s]kip  [q]uit > ", style="bold")

        def apply(line: TriageLine, decision: str) -> DecisionResult | None:
            result = decide_in_review(store, line, decision, note=note, warn=out.warn)
            if result is not None:  # the key's effect, before the next item scrolls it away
                others = len(result.object_ids) - 1
                same = f" (and {others} other object(s) of the same value)" if others > 0 else ""
                out.line(f"-> {result.decision}{same}")
            return result

        summary = review_loop(
            iter_queue(store, filters),
            read_key=lambda: typer.getchar(echo=False),
            present=present,
            apply=apply,
            warn=out.warn,
            skipped=lambda line: out.line("-> skipped"),
        )
    if summary.reviewed == 0 and not summary.quit:
        out.line("Nothing new to review with these filters (`triage list --status new` lists them).")
        return
    decided = ", ".join(f"{n} {status}" for status, n in summary.decided.items()) or "no decisions"
    out.line(f"Reviewed {summary.reviewed}: {decided}, {summary.skipped} skipped.")


@triage_app.command(
    "erase",
    epilog="Example: cti-exchange triage erase victim@example.org --note 'DPDP erasure request 2026-114'",
)
def erase_(
    ctx: typer.Context,
    references: Annotated[
        list[str],
        typer.Argument(
            help="Object ids, unique id prefixes or values (every spelling of a value is erased)."
        ),
    ],
    note: Annotated[
        str | None,
        typer.Option(
            "--note", metavar="TEXT", help="Why (the request it answers); required. Kept in the audit trail."
        ),
    ] = None,
    partner: Annotated[
        str | None,
        typer.Option(
            "--partner",
            help="Only what this partner sent (a value another partner reported stays with it).",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    json_mode: JsonOption = False,
) -> None:
    """Erase partner data on request (GDPR, DPDP Act, or the partner asking).

    An id erases that object; a value, every object holding it in any spelling (from every
    partner, or only --partner's). With them go every version, the relationships and sightings
    about them, their triage notes, and the signed copies of the envelopes that carried them.
    Cannot be undone; the audit trail records the object ids and the reason, never the values.
    What a partner sends of them again is not stored (`triage unerase` lifts that)."""
    out = Output(json_mode=json_mode)
    references = [r.strip() for r in references]
    erasure_reason(note)  # a missing or bad --note is said before the question, not after
    expected = None
    with open_store(profile_home(ctx)) as store:
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError("refusing to erase without --yes when not on a terminal")
            found = erasure_preview(store, references, partner=partner)
            expected = found.object_ids
            typer.confirm(
                f"Erase {len(found.object_ids)} object(s) sent by {', '.join(found.partners) or 'nobody'}, "
                "every version of them, and the signed copies of the envelopes that carried them? "
                "This cannot be undone",
                abort=True,
            )
        result = erase(store, references, note=note, partner=partner, expected=expected)
    if json_mode:
        out.data(result.to_dict())
        return
    values = ", ".join(describe_value(v) for _, v in result.values[:5])
    more = f" and {len(result.values) - 5} more" if len(result.values) > 5 else ""
    out.line(
        f"erased: {len(result.object_ids)} object(s), {result.versions} version(s), by {result.analyst} "
        f"at {result.erased_at}" + (f": {values}{more}" if values else "")
    )
    if result.envelopes or result.quarantined:
        copies = f" (and {result.quarantined} in quarantine records)" if result.quarantined else ""
        out.note(
            f"the signed copies of {result.envelopes} envelope(s) that carried them are erased "
            f"too{copies}: their other objects stay, with who sent and signed them, but not the "
            "signed bytes"
        )
    if result.mentioned_in:
        shown = ", ".join(escape_controls(i) for i in result.mentioned_in[:3])
        more = ", ..." if len(result.mentioned_in) > 3 else ""
        out.warn(
            f"still named in the text of {len(result.mentioned_in)} other object(s): {shown}{more}; "
            "erase them by id if they must go too (`triage show ID` first)"
        )
    sources = ", ".join(result.partners) or "their sources"
    out.note(
        "not reached: exports already written (blocklists, IDS rules, MISP events) and backups "
        f"still hold them; ask {sources} to revoke them"
    )
    scope = f"{result.withheld_from} sends" if result.withheld_from else "a partner sends"
    out.note(
        f"what {scope} of them again is not stored (the envelope is accepted); "
        "`triage erased` lists the erasures, `triage unerase` lifts one"
    )
    if not result.log_emptied:
        out.warn(
            "a reader held the store open: the erased pages leave its write-ahead log at the next checkpoint"
        )


@triage_app.command(
    "erased",
    epilog="Example: cti-exchange triage erased --json",
)
def erased_(ctx: typer.Context, json_mode: JsonOption = False) -> None:
    """List the erasures that keep partners' objects out of the store.

    One line per erasure still in force: when, by whom, from which partner its values are
    withheld (or every partner), the object ids erased, the IOC type of each value erased, and
    the reason. Never the values: the store keeps only a keyed digest of them."""
    out = Output(json_mode=json_mode)
    with open_store(profile_home(ctx)) as store:
        found = erasures(store)
    if json_mode:
        out.data({"erasures": [e.to_dict() for e in found]})
        return
    if not found:
        out.line("No erasure withholds anything (`triage erase` makes one).")
        return
    rows = []
    for e in found:
        ids = e.object_ids
        objects = f"{len(ids)}: {escape_controls(ids[0])}" + (", ..." if len(ids) > 1 else "") if ids else "0"
        types: dict[str, int] = {}
        for t in e.value_types:
            types[t] = types.get(t, 0) + 1
        values = ", ".join(f"{n} value(s) ({escape_controls(t)})" for t, n in types.items()) or "-"
        rows.append(
            [
                str(e.erasure),
                short_time(e.erased_at),
                escape_controls(e.analyst or "?"),
                escape_controls(e.partner or "every partner") if e.value_types else "-",
                objects,
                values,
                describe_value(e.note or ""),
            ]
        )
    out.table(["erasure", "erased at", "by", "values from", "objects", "values", "reason"], rows)


@triage_app.command(
    "unerase",
    epilog="Example: cti-exchange triage unerase 203.0.113.9 --note 'cert-fr: attacker host, not a person'",
)
def unerase_(
    ctx: typer.Context,
    references: Annotated[
        list[str],
        typer.Argument(
            help="Erased values (any spelling) or erased object ids, as `triage erased` lists them."
        ),
    ],
    note: Annotated[
        str | None,
        typer.Option(
            "--note", metavar="TEXT", help="Why it may be stored again; required. Kept in the audit trail."
        ),
    ] = None,
    json_mode: JsonOption = False,
) -> None:
    """Let partners send again what an erasure keeps out of the store.

    A value lifts its erasure and that of the objects that held it (and the relationships and
    sightings about them); an object id, that object's (and those about it). Nothing erased
    comes back: what partners send from now on is stored. Exit 2 when nothing matches."""
    out = Output(json_mode=json_mode)
    with open_store(profile_home(ctx)) as store:
        result = unerase(store, [r.strip() for r in references], note=note)
    if json_mode:
        out.data(result.to_dict())
        return
    values = f", {len(result.value_types)} value(s)" if result.value_types else ""
    erasures_lifted = ", ".join(map(str, result.erasures))
    out.line(
        f"lifted: {len(result.object_ids)} object id(s){values} of erasure(s) {erasures_lifted}, by "
        f"{result.analyst} at {result.lifted_at}: partners sending them again are stored"
    )
    if result.values_still_erased:
        out.warn(
            f"the value of {escape_controls(result.values_still_erased[0])} is still erased: "
            "objects holding it stay out until the value is lifted (`triage unerase VALUE`)"
        )


# What an analyst would write for each decision (the --help example).
_EXAMPLE_NOTES = {
    "accept": "seen in proxy logs",
    "reject": "sinkholed since March",
    "false-positive": "shared hosting: blocks legitimate sites",
}


def register(app: typer.Typer) -> None:
    for decision in DECISIONS:
        triage_app.command(
            decision,
            epilog=f"Example: cti-exchange triage {decision} indicator--53fe3b22 "
            f"--note '{_EXAMPLE_NOTES[decision]}'",
        )(_decision_command(decision))
    app.add_typer(triage_app, name="triage")
