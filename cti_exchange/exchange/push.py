"""push: inputs -> STIX 2.1 -> sharing policy -> sealed envelopes -> partners' TAXII collections.

Every envelope is recorded in the outbound log (with its channel position) before it is posted,
so an interrupted push resumes with the same envelopes: nothing lost, nothing doubled.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cti_exchange.audit.trail import sign_audit_head
from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.envelope.header import ChannelPosition
from cti_exchange.envelope.seal import SealedEnvelope
from cti_exchange.errors import ConfigError, CtiExchangeError, InputError
from cti_exchange.exchange.delivery import DeliveryOutcome, deliver_pending, taxii_client_for, unreachable
from cti_exchange.exchange.learned_values import decide_with_learned_values
from cti_exchange.exchange.parties import sender_keys
from cti_exchange.exchange.run import RunProgress
from cti_exchange.exchange.sealing import PartnerSealing, strictest_tlp
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.ingest import IngestResult, IngestVerdict, ingest_files
from cti_exchange.ingest_settings import IngestContext, IngestOptions
from cti_exchange.partnership import get_partner
from cti_exchange.policy.sharing import (
    RULE_LEARNED,
    RULE_MAX,
    RULE_ONWARD,
    RULE_RED,
    RULE_REFERS,
    RULE_STRICT,
    Refusal,
    SharingDecision,
    onward_hint,
    refusal_error,
)
from cti_exchange.profile.model import PartnerConfig
from cti_exchange.progress import NoProgress, ProgressReporter
from cti_exchange.readers.detect import detect_format
from cti_exchange.stix.bundle import content_objects, travelling_definitions
from cti_exchange.stix.tlp import Tlp, tlp_of
from cti_exchange.store.store import Store, open_store

QUEUED_MAX_CONTENT_LENGTH = 1024 * 1024  # for a partner whose server we have never read


def refusal_hint(
    refusals: list[Refusal],
    partners: list[PartnerConfig] | None = None,
    *,
    allow_red: bool = False,
    nothing_left: bool = False,
) -> str:
    """How to get past the refusals of a push: what fixes each rule that refused something.
    TLP:RED needs both the partner's entry and the push's flag: with `partners` and the
    push's `allow_red`, only the missing one is named. `nothing_left`: the policy refused
    everything, so `--skip-refused` is no way out (a push given it sent nothing)."""

    def names_for(rule: str) -> list[str]:
        return sorted({r.partner for r in refusals if r.rule == rule})

    def command(names: list[str], options: str) -> str:
        if len(names) == 1:
            return f"`cti-exchange partners set {names[0]} {options}`"
        return f"`cti-exchange partners set NAME {options}` for {', '.join(names)}"

    rules = {r.rule for r in refusals}
    fixes = []
    if RULE_RED in rules:
        red = names_for(RULE_RED)
        if partners is not None:
            allowing = {p.name for p in partners if p.allow_red}
            red = [name for name in red if name not in allowing]
        steps = [command(red, "--allow-red")] if red else []
        if partners is None or not allow_red:
            steps.append("--allow-red here")
        fixes.append("for TLP:RED, " + " and ".join(steps))
    if RULE_MAX in rules:
        fixes.append(f"above a max TLP, {command(names_for(RULE_MAX), '--max-tlp LEVEL')}")
    if RULE_STRICT in rules:
        fixes.append("TLP:AMBER+STRICT goes to one partner per push")
    onward = f"; {hint}" if (hint := onward_hint(refusals)) else ""
    if RULE_LEARNED in rules:
        onward += "; for values we observed ourselves, --observed-by-us"
    if rules <= {RULE_ONWARD, RULE_LEARNED, RULE_REFERS}:
        # No TLP to change: marking a partner's object lower is not ours to do.
        if nothing_left:
            return onward.removeprefix("; ") or "see `cti-exchange partners show NAME`"
        return "send the rest with --skip-refused" + onward
    first = (
        "change the TLP of the input"
        if nothing_left
        else "send the rest with --skip-refused, or change the TLP of the input"
    )
    return first + ("; or " + "; ".join(fixes) if fixes else "") + onward


class NothingToShare(InputError):
    """No object worth sharing came out of the inputs: `report` says what reading found."""

    def __init__(self, message: str, *, hint: str, report: IngestResult) -> None:
        super().__init__(message, hint=hint)
        self.report = report


@dataclass(frozen=True)
class PushRequest:
    inputs: list[Path]
    partners: list[str]
    allow_red: bool = False
    skip_refused: bool = False
    # Nothing sealed or sent; refusals are returned in the result even without skip_refused.
    dry_run: bool = False
    queue_only: bool = False
    reshare: bool = False  # share again what an identical earlier push already shared
    # Share objects shared before at a stricter TLP with the lower one this push gives them
    # (a deliberate downgrade); without it they keep the stricter one (see keep_stricter_tlp).
    lower_tlp: bool = False
    # The values are our own observations: share them even where partners sent us the same
    # values only at TLP:AMBER or stricter (lifts policy/sharing.py RULE_LEARNED, not the
    # creator rule).
    observed_by_us: bool = False
    # How to read the inputs, as `validate` and `convert` take it (format, strict, personal data,
    # MISP attributes with to_ids false, JSON size limit, workers).
    ingest: IngestOptions = field(default_factory=IngestOptions)


@dataclass
class PartnerPlan:
    partner: str
    objects: int
    # Counted by TLP value ("green", "amber+strict"; "unmarked" for none), as `sight`, `triage`
    # and `export` give a TLP in --json.
    by_tlp: dict[str, int]
    envelopes: list[str] = field(default_factory=list)
    # How many objects this run seals (a dry run: would seal): `objects` less those an
    # interrupted earlier run of the same request sealed.
    to_seal: int = 0
    # Envelopes that earlier run sealed which no server has acknowledged: this run posts them
    # (`--queue`: leaves them for `sync`).
    sealed_earlier: list[str] = field(default_factory=list)
    # Other envelopes waiting in the outbox for the partner (other shares): posted too.
    other_queued: int = 0
    # How many envelopes this run seals for `to_seal` objects (a dry run: would seal; None when
    # it cannot tell: an object alone is larger than the limit it assumed), the request limit
    # they are cut to and where it comes from: "server" (read as the run starts), "last-read"
    # (as a server was read before) or "default" (QUEUED_MAX_CONTENT_LENGTH). `--queue` cuts to
    # the last read or the default; so does a dry run, which contacts no server: without
    # `--queue` the real run reads the server's limit, and the dry run's count is an estimate.
    envelopes_to_seal: int | None = 0
    max_request_bytes: int | None = None
    limit_from: str | None = None
    envelopes_estimated: bool = False
    # The same push shared all of it with this partner before, and finished then: nothing is
    # sealed for it now (`envelopes`: those it was shared in). A push of the same input to
    # more partners sends to the others only.
    already_shared_at: str | None = None


@dataclass
class ShareResult:
    refusals: list[Refusal]
    plans: list[PartnerPlan]
    deliveries: list[DeliveryOutcome]
    dry_run: bool
    queued_only: bool
    # The same request finished before for every partner it names: nothing sent.
    already_shared_at: str | None = None
    resumed: bool = False  # an earlier run of the same request was interrupted: resumed
    # Objects shared before at a stricter TLP than this share gave them, counted by that TLP's
    # value ("amber"): kept at it, or (lower_tlp) lowered as asked.
    tlp_kept: dict[str, int] = field(default_factory=dict)
    tlp_lowered: dict[str, int] = field(default_factory=dict)
    # How to get past `refusals` (refusal_hint, knowing the partners' entries).
    refusal_hint: str = ""

    @property
    def failed(self) -> dict[str, dict[str, str]]:
        return {d.partner: d.failed for d in self.deliveries if d.failed}

    @property
    def all_refused(self) -> bool:
        """The sharing policy refused every object for every partner (a push with
        `--skip-refused`, or a dry run, goes on to report it): nothing of it was sent."""
        return bool(self.refusals) and not any(plan.objects for plan in self.plans)


@dataclass
class PushResult(ShareResult):
    ingest: IngestResult = field(default_factory=IngestResult)


def push(
    home: ProfileHome,
    request: PushRequest,
    *,
    reporter: ProgressReporter | None = None,
    now: datetime | None = None,
    default_tlp: Tlp | None = None,
) -> PushResult:
    """Reads the inputs and shares what they hold with the named partners."""
    progress = reporter or NoProgress()
    moment = now or utc_now()
    profile = home.load_profile()
    if not request.partners:
        raise ConfigError("name at least one partner with --to", hint="see `cti-exchange partners list`")
    partners = [get_partner(home, name) for name in dict.fromkeys(request.partners)]
    progress.step("reading inputs")
    ingested = ingest_files(
        request.inputs, IngestContext.for_profile(profile, moment, default_tlp), request.ingest
    )
    if ingested.verdict is IngestVerdict.NOTHING_USABLE:
        raise NothingToShare(
            "nothing usable to share in " + ", ".join(request.ingest.label_of(p) for p in request.inputs),
            hint=ingested.nothing_usable_hint(
                "run `cti-exchange validate` on the input to see what was rejected"
            ),
            report=ingested,
        )

    def request_ids_for(decision: SharingDecision, store: Store) -> dict[str, str]:
        as_run, tlp = _as_it_mattered(request, default_tlp, profile.sharing.default_tlp, ingested, decision)
        ids = push_request_ids(
            profile.agency_id, as_run, tlp, moment, ingested.formats, [p.name for p in partners]
        )

        def earlier(partner_names: list[str], *, policy_options: bool = True) -> str:
            then = replace(as_run, partners=partner_names)
            if not policy_options:  # as a push that nothing was refused in had it
                then = replace(then, allow_red=False, skip_refused=False)
            return push_request_id(profile.agency_id, then, tlp, moment, ingested.formats)

        # A push recorded before pushes were recorded per partner had one id for its set of
        # partners and its policy options: run again as it was, it is resumed, or shared
        # already, under that id; and a partner it alone was sent to (the usual push, to one
        # partner) is known to have it when it is pushed again to more.
        known = store.requests.state
        whole = earlier(list(request.partners))
        if known(whole)[0] != "new":
            return dict.fromkeys(ids, whole)
        for name in ids:
            for old in dict.fromkeys([earlier([name]), earlier([name], policy_options=False)]):
                if known(old)[0] != "new":
                    ids[name] = old
                    break
        return ids

    shared = share_objects(
        home,
        ingested.objects,
        partners,
        allow_red=request.allow_red,
        skip_refused=request.skip_refused,
        dry_run=request.dry_run,
        queue_only=request.queue_only,
        reporter=progress,
        now=moment,
        lower_tlp=request.lower_tlp,
        request_ids_for=request_ids_for,
        observed_by_us=request.observed_by_us,
    )
    return PushResult(**shared.__dict__, ingest=ingested)


def _as_it_mattered(
    request: PushRequest,
    default_tlp: Tlp | None,
    profile_tlp: Tlp,
    ingested: IngestResult,
    decision: SharingDecision,
) -> tuple[PushRequest, Tlp | None]:
    """The push's options as far as they changed what it shares, for its id: an option that
    changed nothing this time counts as not given, so a push run again with `--strict`,
    `--skip-refused` or the profile's TLP spelled out is the same push and sends nothing
    again. `--strict` counts when anything was rejected (it may be what rejected it)."""
    reading = request.ingest
    forced = reading.format
    if forced is not None:
        try:
            if all(detect_format(path) == forced.lower() for path in request.inputs):
                forced = None
        except CtiExchangeError:
            pass  # unreadable: the format as given stays part of the push
    defaulted = ingested.warnings_by_code.get("default-tlp", 0) > 0
    as_run = replace(
        request,
        allow_red=request.allow_red and any(tlp_of(o, decision.inline) is Tlp.RED for o in ingested.objects),
        skip_refused=request.skip_refused and bool(decision.refusals),
        ingest=replace(
            reading,
            format=forced,
            strict=reading.strict and ingested.rejected_count > 0,
            keep_personal_data=reading.keep_personal_data and "personal-data" in ingested.warnings_by_code,
        ),
    )
    tlp = default_tlp if default_tlp is not None and defaulted and default_tlp != profile_tlp else None
    return as_run, tlp


def push_request_id(
    agency_id: str,
    request: PushRequest,
    default_tlp: Tlp | None,
    now: datetime,
    formats: dict[str, str] | None = None,
) -> str:
    """The same push (same input bytes, partners and options) has the same id, so running it
    again after an interruption resumes it instead of sharing the same intelligence twice.
    `--reshare` makes a new request (new versions of the same objects). A push is recorded
    under one id per partner made from this one (`push_request_ids`); this id as it is names
    pushes recorded by earlier versions, which are still recognised.

    Options that change what is shared are part of it, as far as they changed it this time
    (push() passes `request` through `_as_it_mattered`); how the inputs are read (workers, the
    JSON size limit) is not, except where the limit kept a file out: read with a larger limit,
    it shares what the first run could not. `formats`: the format each input was read as
    (IngestResult.formats); --include-non-ids counts only where a MISP event was read."""
    options: dict[str, Any] = {
        "agency": agency_id,
        "partners": sorted(set(request.partners)),
        "allow_red": request.allow_red,
        "skip_refused": request.skip_refused,
        "format": request.ingest.format,
        "strict": request.ingest.strict,
        "keep_personal_data": request.ingest.keep_personal_data,
        "tlp": default_tlp.value if default_tlp else None,
    }
    read_as = formats or {}
    # Added only when they matter: the id of every other push stays what it was, so one
    # interrupted before an upgrade still resumes after it.
    if request.ingest.include_non_ids and "misp" in read_as.values():
        options["include_non_ids"] = True
    if request.lower_tlp:
        options["lower_tlp"] = True
    if request.observed_by_us:
        options["observed_by_us"] = True
    too_large = [
        n
        for n, path in enumerate(request.inputs)
        if read_as.get(request.ingest.label_of(path)) in ("stix", "misp")
        and path.stat().st_size > request.ingest.max_json_bytes
    ]
    if too_large:
        options["inputs_too_large"] = too_large
    digest = hashlib.sha256()
    digest.update(json.dumps(options, sort_keys=True).encode())
    for path in request.inputs:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    if request.reshare:
        digest.update(stix_timestamp(now).encode())
    return "push-" + digest.hexdigest()


def push_request_ids(
    agency_id: str,
    request: PushRequest,
    default_tlp: Tlp | None,
    now: datetime,
    formats: dict[str, str] | None,
    partners: list[str],
) -> dict[str, str]:
    """The push's request for each partner, by its name: the same content shared with the same
    partner has the same id, whichever other partners the push names. Run again with one more
    `--to`, a push sends to that partner only; the others are told it was shared with them.

    "The same content" is what `push_request_id` hashes but the partners and the options that
    only decide which objects the policy lets through (`--allow-red`, `--skip-refused`,
    `--observed-by-us`): the input's bytes and the options that change the objects made from
    them (how they are read, the default TLP, `--lower-tlp`). A file with one value, TLP or
    confidence changed is other bytes: a new request, whose objects go out as new versions.
    Within a request, what is sealed for a partner is kept per object (share_requests), so an
    object the policy refused in one run goes out in a later one that allows it, alone."""
    as_content = replace(request, partners=[], allow_red=False, skip_refused=False, observed_by_us=False)
    content = push_request_id(agency_id, as_content, default_tlp, now, formats)
    return {name: "push-" + hashlib.sha256(f"{content}\n{name}".encode()).hexdigest() for name in partners}


def share_objects(
    home: ProfileHome,
    objects: list[dict[str, Any]],
    partners: list[PartnerConfig],
    *,
    allow_red: bool = False,
    skip_refused: bool = False,
    dry_run: bool = False,
    queue_only: bool = False,
    reporter: ProgressReporter | None = None,
    now: datetime | None = None,
    request_id: str | None = None,
    request_ids_for: Callable[[SharingDecision, Store], dict[str, str]] | None = None,
    lower_tlp: bool = False,
    observed_by_us: bool = False,
) -> ShareResult:
    """Sharing policy, then sealed envelopes recorded in the outbox, then delivery.

    The Python API behind `push` once inputs are read, and behind `sight`. With a
    `request_id` (or `request_ids_for`, which makes one per partner, by name, from the
    policy's decision), an earlier run of the same request is taken up: objects already sealed
    for a partner are not sealed again, its envelopes are (re)posted, and a partner whose part
    finished with nothing left to seal gets nothing (PartnerPlan.already_shared_at; when that
    is every partner, ShareResult.already_shared_at). Objects shared before at a stricter TLP
    keep it, unless `lower_tlp` (keep_stricter_tlp). Indicators of ours whose values partners
    sent us at TLP:AMBER or stricter go only to those partners, unless `observed_by_us`
    (learned_values.py, RULE_LEARNED).
    """
    progress = RunProgress.of(reporter)  # its servers: those found out of reach in this push
    moment = now or utc_now()
    kept, lowered = keep_stricter_tlp(home, objects, lower=lower_tlp)
    decision = decide_with_learned_values(
        home, objects, partners, allow_red=allow_red, observed_by_us=observed_by_us
    )

    def request_ids(store: Store) -> dict[str, str | None]:
        """Each partner's request, by name (read with the store the run has open)."""
        made: dict[str, str | None] = dict(request_ids_for(decision, store)) if request_ids_for else {}
        return made or {partner.name: request_id for partner in partners}

    # What each partner is sent, plumbing (identities, marking definitions) aside.
    content = {partner.name: content_objects(decision.allowed[partner.name]) for partner in partners}
    nothing_left = not any(content.values())
    hint = (
        refusal_hint(decision.refusals, partners, allow_red=allow_red, nothing_left=nothing_left)
        if decision.refusals
        else ""
    )
    # A dry run goes past refusals to show the whole plan; its caller ends it as a refusal.
    if decision.refusals and not (skip_refused or dry_run):
        raise refusal_error(decision.refusals, outcome="; nothing was sent", hint=hint)
    plans = []
    # ... which travel along with the objects that refer to them (sealing.py).
    travelling = {
        partner.name: travelling_definitions(decision.allowed[partner.name]) for partner in partners
    }
    for partner in partners:
        shared = len(content[partner.name])
        plans.append(PartnerPlan(partner.name, shared, _by_tlp(content[partner.name]), to_seal=shared))
    result = ShareResult(
        decision.refusals,
        plans,
        [],
        dry_run,
        queue_only,
        tlp_kept=kept,
        tlp_lowered=lowered,
        refusal_hint=hint,
    )
    if dry_run:
        # Says what a real run would do, reading the store only: nothing again for a partner
        # whose part finished; for one interrupted, only what it did not seal is sealed.
        if not home.store_path().exists():
            for partner, plan in zip(partners, plans, strict=True):
                _count_envelopes(
                    home, None, partner, plan, content[partner.name], moment, queue_only, progress
                )
            return result
        with open_store(home) as store:
            left = _earlier_runs(store, request_ids(store), result, content)
            if result.already_shared_at is None:
                for partner, plan in zip(partners, plans, strict=True):
                    if plan.already_shared_at is None:
                        _count_envelopes(
                            home, store, partner, plan, left[partner.name], moment, queue_only, progress
                        )
        return result
    if not queue_only:
        # Said before anything is sealed: a partner reached by files only is no server failure
        # to keep envelopes in the outbox for (`seal` is for it, or `--queue` if it is to get
        # a server).
        for partner in partners:
            if partner.taxii is None:
                taxii_client_for(home, partner)  # the ConfigError naming what to set
    with open_store(home) as store:
        sender = sender_keys(home, moment)  # the time the envelopes are dated
        ids = request_ids(store)
        left = _earlier_runs(store, ids, result, content)
        if result.already_shared_at is not None:
            return result
        keep_first_created(store, objects, home.load_profile().identity_id)
        unreachable_servers: dict[str, CtiExchangeError] = {}
        for partner, plan in zip(partners, plans, strict=True):
            allowed = left[partner.name]
            if not allowed:
                continue
            partner_request = ids.get(partner.name)
            if partner_request is not None:
                store.requests.start(partner_request, stix_timestamp(moment))
            progress.step(f"sealing {len(allowed)} objects for {partner.name}")
            if queue_only:
                # Sealed now, posted later: cut to the server's limit as last read, or to a
                # size most servers take. Sealed too large, an envelope could never be posted,
                # and every later one on the channel would wait behind it.
                limit, plan.limit_from = assumed_max_content_length(store, partner)
            else:
                try:
                    with taxii_client_for(home, partner, servers=progress.servers) as client:
                        limit = client.max_content_length()
                except CtiExchangeError as error:
                    # Down or unreachable after the retry budget, our credentials refused, its
                    # settings wrong (not a TAXII API root, a TLS mismatch): sealed now, cut as
                    # `--queue` cuts, and kept in the outbox for the next `sync` or push to post
                    # once it is fixed; the failure is the partner's delivery outcome, with its
                    # exit code, and the push's report says it (`--json` too).
                    limit, plan.limit_from = assumed_max_content_length(store, partner)
                    unreachable_servers[partner.name] = error
                else:
                    plan.limit_from = "server"
                    store.outbound.remember_max_content_length(partner.name, limit, stix_timestamp(utc_now()))
            for sealed in seal_for_partner(
                home,
                store,
                partner,
                allowed,
                sender=sender,
                now=moment,
                max_request_bytes=limit,
                request_id=partner_request,
                travelling=travelling[partner.name],
            ):
                plan.envelopes.append(sealed.header.envelope_id)
                plan.envelopes_to_seal = (plan.envelopes_to_seal or 0) + 1
            plan.max_request_bytes = limit
        if not queue_only:
            # Not a partner that had all of it already: this push has nothing for it.
            shared_before = {plan.partner for plan in plans if plan.already_shared_at is not None}
            reachable = [p for p in partners if p.name not in unreachable_servers.keys() | shared_before]
            result.deliveries = deliver_pending(home, store, reachable, progress)
            result.deliveries += [unreachable(store, name, err) for name, err in unreachable_servers.items()]
        sign_audit_head(home, store)
        for partner_request in dict.fromkeys(ids.values()):
            if partner_request is not None:
                store.requests.finish_if_done(partner_request, stix_timestamp(utc_now()), queued=queue_only)
    return result


def _by_tlp(objects: list[dict[str, Any]]) -> dict[str, int]:
    """`objects` counted by TLP value ("unmarked" for none), as PartnerPlan.by_tlp has them."""
    counts: dict[str, int] = {}
    for obj in objects:
        level = tlp_of(obj)
        value = level.value if level else "unmarked"
        counts[value] = counts.get(value, 0) + 1
    return counts


def assumed_max_content_length(store: Store | None, partner: PartnerConfig) -> tuple[int, str]:
    """The request limit of the partner's server as last read, or a size most servers take;
    and which (PartnerPlan.limit_from)."""
    known = store.outbound.known_max_content_length(partner.name) if store is not None else None
    return (known, "last-read") if known else (QUEUED_MAX_CONTENT_LENGTH, "default")


def _count_envelopes(
    home: ProfileHome,
    store: Store | None,
    partner: PartnerConfig,
    plan: PartnerPlan,
    objects: list[dict[str, Any]],
    now: datetime,
    queue_only: bool,
    progress: ProgressReporter,
) -> None:
    """For a dry run: how many envelopes a real run would seal `objects` (what it has left to
    seal) in, cut as it would cut them (PartnerSealing) to the limit it would use. `--queue`
    uses the limit last read, as a dry run does; otherwise the real run reads the server's,
    which a dry run does not contact: its count is then an estimate. Reads the store only."""
    plan.envelopes_to_seal = 0
    if not objects:
        return
    limit, plan.limit_from = assumed_max_content_length(store, partner)
    plan.max_request_bytes = limit
    plan.envelopes_estimated = not queue_only
    progress.step(f"counting the envelopes of {len(objects)} objects for {partner.name}")
    first = (
        store.outbound.next_positions([partner.agency_id])[partner.agency_id]
        if store is not None
        else ChannelPosition(sequence=1, previous=None)
    )
    try:
        plan.envelopes_to_seal = PartnerSealing.for_counting(home, partner, now).count(objects, limit, first)
    except InputError:
        if not plan.envelopes_estimated:
            raise  # an object alone larger than the limit the real run uses: it would fail so
        plan.envelopes_to_seal = None  # larger than the limit assumed: the server's may be larger


def _earlier_runs(
    store: Store,
    ids: dict[str, str | None],
    result: ShareResult,
    content: dict[str, list[dict[str, Any]]],
) -> dict[str, list[dict[str, Any]]]:
    """What is left to seal for each partner (by name), knowing what earlier runs of its
    request did. A partner whose request finished with nothing left to seal for it is marked
    already shared (its plan names the envelopes it got); when no partner has anything left
    and one of them had it all, `result` says the push was shared already. `result.resumed`:
    an earlier run of a partner's request was interrupted. Reads the store only."""
    left: dict[str, list[dict[str, Any]]] = {}
    finished: list[str] = []
    for plan in result.plans:
        request_id = ids.get(plan.partner)
        left[plan.partner] = _left_to_seal(store, request_id, plan, content[plan.partner])
        if request_id is None:
            continue
        state, finished_at = store.requests.state(request_id)
        result.resumed = result.resumed or state == "unfinished"
        # A partner removed with `partners remove --drop-outbox` and pinned again under its
        # name got nothing of what was dropped: it is left to seal (share_requests).
        if state != "finished" or finished_at is None:
            continue
        if not left[plan.partner]:
            plan.already_shared_at = finished_at
            finished.append(finished_at)
        else:
            # Finished, but the policy refused some of it for this partner then (or it was
            # dropped with the partner): what goes now is those objects, in envelopes of their
            # own; what went then was delivered and is not this push's to count.
            plan.objects = len(left[plan.partner])
            plan.by_tlp = _by_tlp(left[plan.partner])
            plan.envelopes = []
            plan.other_queued += len(plan.sealed_earlier)  # still queued: posted with the rest
            plan.sealed_earlier = []
    # Not while another partner's part is unfinished: its envelopes, sealed, wait to be posted
    # by this run (the delivery leaves out only the partners marked already shared).
    if finished and not any(left.values()) and not result.resumed:
        result.already_shared_at = max(finished)
    return left


def _left_to_seal(
    store: Store, request_id: str | None, plan: PartnerPlan, allowed: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The objects of `allowed` this run seals for `plan.partner`: when resuming an interrupted
    run, not those it sealed. Notes in `plan` that run's envelopes, those of them still to post,
    and the other envelopes the delivery will post too. Reads the store only: a dry run says
    through it what a real run would do."""
    earlier: set[str] = set()
    if request_id is not None:
        done = store.requests.sealed_object_ids(request_id, plan.partner)
        plan.envelopes.extend(store.requests.envelopes(request_id, plan.partner))
        earlier = set(plan.envelopes)
        allowed = [o for o in allowed if o["id"] not in done]
    queued = store.outbound.pending_ids(plan.partner)
    plan.sealed_earlier = [e for e in queued if e in earlier]
    plan.other_queued = len(queued) - len(plan.sealed_earlier)
    plan.to_seal = len(allowed)
    return allowed


def keep_stricter_tlp(
    home: ProfileHome, objects: list[dict[str, Any]], *, lower: bool
) -> tuple[dict[str, int], dict[str, int]]:
    """Objects shared before at a stricter TLP than they now carry keep that TLP: a TLP
    belongs to the information, and a later list that marks the same indicator lower (a
    default TLP, `--tlp green`) must not downgrade what partners hold. With `lower` (the
    analyst's `--lower-tlp`) they go out at the lower TLP. Returns (kept, lowered), counted by
    the TLP value they were shared at ("amber"). Reads the store only, when there is one."""
    if not home.store_path().exists():
        return {}, {}
    with open_store(home) as store:
        earlier = store.outbound.shared_tlps([o["id"] for o in content_objects(objects)])
    kept: Counter[str] = Counter()
    lowered: Counter[str] = Counter()
    for obj in objects:
        before = earlier.get(obj["id"])
        level = tlp_of(obj) if before is not None else None
        if before is None or level is None or not level < before:
            continue
        if lower:
            lowered[before.value] += 1
            continue
        others = [ref for ref in obj.get("object_marking_refs", ()) if Tlp.from_marking_id(ref) is None]
        obj["object_marking_refs"] = [before.marking_id, *others]
        kept[before.value] += 1
    return dict(kept), dict(lowered)


def keep_first_created(store: Store, objects: list[dict[str, Any]], identity_id: str) -> None:
    """A re-share is a new version of objects we created: STIX 2.1 section 3.6 wants it to keep
    their original `created` (only `modified` moves on)."""
    ours = [o for o in objects if o.get("created_by_ref") == identity_id and "created" in o]
    first = store.outbound.first_created([o["id"] for o in ours])
    for obj in ours:
        created = first.get(obj["id"])
        if created is not None and created != obj["created"] and created <= obj.get("modified", created):
            obj["created"] = created


def seal_for_partner(
    home: ProfileHome,
    store: Store,
    partner: PartnerConfig,
    objects: list[dict[str, Any]],
    *,
    sender: Any,
    now: datetime,
    max_request_bytes: int,
    request_id: str | None = None,
    travelling: dict[str, dict[str, Any]] | None = None,
) -> list[SealedEnvelope]:
    """Seals `objects` for one partner in as few envelopes as fit the server's request limit,
    recording each one (and its channel position) before sealing the next."""
    sealing = PartnerSealing(home, partner, sender, now)
    sealed_all: list[SealedEnvelope] = []
    for sealed, part in sealing.pieces(
        objects, max_request_bytes, lambda: store.outbound.next_positions([partner.agency_id]), travelling
    ):
        store.outbound.record_sealed(
            sealed,
            partners={partner.agency_id: partner.name},
            tlp=strictest_tlp(part, travelling),
            objects=part,
            request_id=request_id,
        )
        sealed_all.append(sealed)
    return sealed_all
