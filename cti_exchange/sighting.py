"""Sightings back to the source: the API behind `sight`.

When an indicator a partner shared is seen in our networks, the partner learns of it: a STIX
2.1 `sighting` (section 5.2) of the partner's own indicator id, with how many times and when it
was seen, where (`where_sighted_refs`: our identity), sealed and pushed like any envelope
(`share_objects`: TLP policy, outbox, TAXII). A value several partners sent is several
indicators (each agency mints its own id): each partner gets a sighting of its own indicator.
A value is one value in all its spellings, as for decisions (`bestarg.com`, `BESTARG.COM.`:
exporters/value_forms.py): a sighting of it, typed in any spelling or named by the id of any
of its indicators, is a sighting of every current object holding any spelling of it, one
sighting per object, each to the partners that sent that object (its TLP, its rules), grouped
per partner in one request. A sighting of a malware, tool or other domain object (STIX allows
`sighting_of_ref` to name any SDO) is of that object only.
A TLP:RED or TLP:AMBER+STRICT indicator a second partner relayed is sighted to its creator only:
those levels reach the named recipients and no one else, and the relay was never meant to hold
it. A partner we have since removed is skipped (and said to be).

The same sighting is sent once, as `push` shares the same thing once: a sighting of the same
indicators, to the same partner, with the same count, first and last seen, note and TLP is one
request (`sight_request_id`, recorded as push's are in share_requests). Run again, it says when
it was sent and in which envelope, and sends nothing; interrupted (killed, the server down), it
is resumed: its sightings keep their ids (derived from the request), so what was sealed is not
sealed twice and what was not posted is posted. `reshare` makes it a new request.

The sighting carries the indicator's TLP, or a stricter one if the analyst asks: telling a
partner where its indicator was seen says something about our networks, so it is never marked
less strictly than what it is about.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cti_exchange.clock import parse_timestamp, stix_timestamp, utc_now
from cti_exchange.errors import PolicyError, UsageError
from cti_exchange.exchange.delivery import DeliveryOutcome
from cti_exchange.exchange.push import ShareResult, share_objects
from cti_exchange.exporters.value_forms import bundled_value_forms
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.policy.sharing import RULE_RED, decide_sharing
from cti_exchange.profile.model import PartnerConfig, identity_id_for
from cti_exchange.progress import ProgressReporter
from cti_exchange.stix.guardrails import scrub_personal_data
from cti_exchange.stix.tlp import Tlp
from cti_exchange.stix.validate import SDO_TYPES, validate_object
from cti_exchange.store.audit_log import append_audit
from cti_exchange.store.object_queries import current_object, same_form, sources_of
from cti_exchange.store.store import open_store
from cti_exchange.store.triage_queries import DECIDED_AGAINST, StoredObject
from cti_exchange.triage import resolve_reference
from cti_exchange.untrusted_text import UNPRINTABLE

MAX_COUNT = 999_999_999  # STIX 2.1 section 5.2.1
MAX_NOTE = 2000  # characters of --note, after runs of white space become one space
_CLOCK_SKEW = timedelta(minutes=5)  # how far a sighting time may run ahead of our clock


@dataclass(frozen=True)
class SightingRequest:
    reference: str  # object id, unique id prefix, or indicator value
    count: int = 1
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    note: str | None = None
    tlp: Tlp | None = None  # stricter than the indicator's, if wanted
    allow_red: bool = False
    queue_only: bool = False
    reshare: bool = False  # send it again although the same sighting was sent before


@dataclass
class SentSighting:
    partner: str
    sighting_id: str
    sighting_of_ref: str
    tlp: str
    envelopes: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    # The same sighting was sent to the partner before, then (when that request finished):
    # nothing was sent this time; `envelopes` are that run's, `outbox` those of them not yet
    # posted (it was queued, or its delivery failed and no sync has posted it since).
    already_sent_at: str | None = None
    outbox: list[str] = field(default_factory=list)
    resumed: bool = False  # an interrupted earlier run of the same sighting was resumed
    value: str | None = None  # the spelling the sighted object holds (None: not an indicator)


@dataclass
class SightingResult:
    value: str | None
    sightings: list[SentSighting]
    queued_only: bool = False
    skipped: list[str] = field(default_factory=list)  # sources no longer configured as partners
    # object id -> "revoked" or "expired": sighted all the same (the partner may want to know
    # its withdrawn indicator is still seen), and the analyst is told
    stale: dict[str, str] = field(default_factory=dict)
    deliveries: list[DeliveryOutcome] = field(default_factory=list)  # per partner posted to
    # object id -> "false-positive" or "rejected": a holder of the value (in any spelling) we
    # decided against; sighted all the same, and the analyst is warned
    decided_against: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> dict[str, dict[str, str]]:
        return {s.partner: s.failed for s in self.sightings if s.failed}

    @property
    def already_sent(self) -> list[SentSighting]:
        return [s for s in self.sightings if s.already_sent_at is not None]


def build_sighting(
    *,
    identity_id: str,
    sighting_of_ref: str,
    count: int,
    first_seen: str,
    last_seen: str,
    tlp: Tlp,
    created: str,
    note: str | None = None,
    sighting_id: str | None = None,
) -> dict[str, Any]:
    """A STIX 2.1 sighting by us of `sighting_of_ref`; ValueError if it would not be valid."""
    sighting: dict[str, Any] = {
        "type": "sighting",
        "spec_version": "2.1",
        "id": sighting_id or f"sighting--{uuid.uuid4()}",
        "created": created,
        "modified": created,
        "created_by_ref": identity_id,
        "sighting_of_ref": sighting_of_ref,
        "count": count,
        "first_seen": first_seen,
        "last_seen": last_seen,
        "where_sighted_refs": [identity_id],
        "object_marking_refs": [tlp.marking_id],
    }
    if note:
        sighting["description"] = note
    problems = validate_object(sighting)
    if problems:
        raise ValueError(f"the sighting is not valid STIX 2.1: {problems[0]}")
    return sighting


def sight_request_id(
    agency_id: str,
    partner: str,
    aims: list[tuple[str, Tlp]],
    *,
    count: int,
    first_seen: str,
    last_seen: str,
    note: str | None,
    reshare_at: str | None = None,
) -> str:
    """One sighting to one partner (the indicators it is of, with the TLP of each, the count,
    first and last seen, the note as sent): the same id every time it is asked for, so a run
    again is recognised (nothing sent twice) or resumed. `reshare_at` (the run's time, for
    `--reshare`) makes a new request."""
    fields: dict[str, Any] = {
        "agency": agency_id,
        "partner": partner,
        "of": sorted([object_id, level.value] for object_id, level in aims),
        "count": count,
        "first_seen": first_seen,
        "last_seen": last_seen,
        "note": note,
    }
    if reshare_at is not None:
        fields["reshare_at"] = reshare_at
    return "sight-" + hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def sighting_id_for(request_id: str, sighting_of_ref: str) -> str:
    """The id of the sighting of `sighting_of_ref` a request sends: derived from the request,
    so a resumed run seals nothing its interrupted run sealed. A version 4 UUID (STIX 2.1
    section 2.9 asks SROs for one) whose random bits are a digest: unique per request."""
    digest = hashlib.sha256(f"{request_id}\n{sighting_of_ref}".encode()).digest()
    return f"sighting--{uuid.UUID(bytes=digest[:16], version=4)}"


def _window(request: SightingRequest, now: datetime) -> tuple[str, str]:
    # Neither given: seen now. Only the first given: seen since then, until now.
    for option, moment in (("--first-seen", request.first_seen), ("--last-seen", request.last_seen)):
        if moment is not None and moment > now + _CLOCK_SKEW:
            # A typo in the year, or a time zone taken for UTC: the partner would be told of
            # something seen in the future.
            raise UsageError(
                f"{option}: {stix_timestamp(moment)} is in the future (now {stix_timestamp(now)})",
                hint="give the time in UTC (Z) or with its offset, e.g. 2026-11-23T08:15:00+01:00",
            )
    last = request.last_seen or max(now, request.first_seen or now)
    first = request.first_seen or last
    if first > last:
        raise UsageError("--first-seen is after --last-seen", hint="swap them")
    return stix_timestamp(first), stix_timestamp(last)


@dataclass(frozen=True)
class _Target:
    object_id: str
    tlp: str | None
    created_by_ref: str | None
    sources: list[str]  # the partners that sent it to us, as object_sources names them
    stale: str | None = None  # "revoked" or "expired": the partner withdrew it or let it lapse
    value: str | None = None  # the spelling it holds


def _staleness(holder: StoredObject | None, now: datetime) -> str | None:
    if holder is None:
        return None
    if holder.revoked:
        return "revoked"
    if holder.valid_until is not None:
        try:
            if parse_timestamp(holder.valid_until) <= now:
                return "expired"
        except ValueError:
            return None
    return None


def _targets(
    home: ProfileHome, reference: str, now: datetime
) -> tuple[str | None, list[_Target], dict[str, str]]:
    """The value, every object holding it in any spelling that a partner created (our own
    indicator, relayed back to us, is nobody else's to hear of), and those of all its holders
    we decided against (object id -> status)."""
    own_identity = home.load_profile().identity_id
    with open_store(home) as store:
        conn = store.db.conn
        obj = current_object(conn, resolve_reference(store, reference))
        assert obj is not None
        if obj.type not in SDO_TYPES or obj.type == "identity":
            raise UsageError(
                f"{obj.object_id} is a {obj.type}: a sighting is of an indicator, malware or "
                "other domain object"
            )
        if obj.ioc_type is not None and obj.value is not None:
            # Every spelling of the value (`bestarg.com`, `BESTARG.COM.`), as decisions find them.
            found = same_form(conn, bundled_value_forms(), obj.ioc_type, [obj.value])
            holders = [holder for spelled in found.values() for holder in spelled]
            if obj.object_id not in {object_id for object_id, _ in holders}:
                holders.insert(0, (obj.object_id, obj.version))
        else:
            holders = [(obj.object_id, obj.version)]
        targets = []
        decided: dict[str, str] = {}
        for object_id, version in holders:
            holder = current_object(conn, object_id)
            if holder is not None and holder.status in DECIDED_AGAINST:
                decided[object_id] = holder.status
            if holder is not None and holder.created_by_ref == own_identity:
                continue
            partners = list(dict.fromkeys(s.partner for s in sources_of(conn, object_id, version)))
            targets.append(
                _Target(
                    object_id,
                    holder.tlp if holder else None,
                    holder.created_by_ref if holder else None,
                    partners,
                    _staleness(holder, now),
                    holder.value if holder else None,
                )
            )
    if not targets:
        raise UsageError(
            f"{obj.object_id} is our own {obj.type} (a partner sent it back to us): a sighting "
            "goes to the partner that created what was seen",
            hint="record it in our own tools; `sight` is for partners' indicators",
        )
    return obj.value, targets, decided


def _identity(partner: PartnerConfig) -> str:
    # Pinning checks the identity a key file names against the agency id's (partnership.py):
    # an entry without one has that one.
    return partner.identity_id or identity_id_for(partner.agency_id)


def _recipients(
    target: _Target, level: Tlp, configured: dict[str, PartnerConfig]
) -> tuple[list[str], list[str]]:
    """(partners to send the sighting of `target` to, sources skipped as no longer partners).

    CLEAR, GREEN, AMBER: every partner that sent it. RED and AMBER+STRICT: its creator only
    (a relay of such an indicator is not among those its creator shared it with); failing that,
    the one partner that sent it, if only one did."""
    if level not in (Tlp.RED, Tlp.AMBER_STRICT):
        live = [p for p in target.sources if p in configured]
        return live, [p for p in target.sources if p not in configured]
    creators = [
        p for p in target.sources if p in configured and _identity(configured[p]) == target.created_by_ref
    ]
    if creators:
        return creators, []
    if not target.sources:
        return [], []
    if len(target.sources) == 1:  # the only one that gave it to us
        only = target.sources[0]
        return ([only], []) if only in configured else ([], [only])
    raise PolicyError(
        f"{target.object_id} is {level.label}: a sighting of it goes to its creator only, and "
        f"the creator ({target.created_by_ref or 'not named'}) is none of the partners that sent "
        f"it ({', '.join(target.sources)}); nothing was sent",
        hint="the creator's identity is not among our partners' identities; compare it with "
        "`identity_id` in `cti-exchange partners show NAME --json`",
    )


def sight(
    home: ProfileHome,
    request: SightingRequest,
    *,
    reporter: ProgressReporter | None = None,
    now: datetime | None = None,
) -> SightingResult:
    """Sends a sighting of the named indicator to every partner that shared it with us."""
    if not 0 <= request.count <= MAX_COUNT:
        raise UsageError(f"--count: give a number from 0 to {MAX_COUNT:,}")
    moment = now or utc_now()
    first_seen, last_seen = _window(request, moment)
    note = " ".join(request.note.split()) if request.note else None
    if note and len(note) > MAX_NOTE:
        # Refused, not cut: the partner would read half a sentence as the whole of it.
        raise UsageError(
            f"--note: {len(note):,} characters, more than {MAX_NOTE:,}",
            hint="shorten it; details stay in our own case tools",
        )
    if note:
        # The note leaves the agency: no control, invisible or bidirectional-formatting
        # character, and no personal data (the checks free text passes on every other way out).
        bad = UNPRINTABLE.search(note)
        if bad is not None:
            raise UsageError(
                f"--note: holds the control or invisible character U+{ord(bad.group()):04X}",
                hint="write the note as plain text",
            )
        if scrub_personal_data(note)[1]:
            raise UsageError(
                "--note: holds an individual's e-mail address or phone number, personal data "
                "(GDPR, DPDP Act) that must not go to the partner",
                hint="leave it out, or name the host or a role mailbox (soc@, abuse@) instead",
            )
    profile = home.load_profile()
    value, targets, decided = _targets(home, request.reference, moment)
    values = {t.object_id: t.value for t in targets}
    created = stix_timestamp(moment)
    aims: dict[str, list[tuple[str, Tlp]]] = {}  # partner -> (indicator id, sighting's TLP)
    skipped: list[str] = []
    for target in targets:
        object_id = target.object_id
        own = Tlp(target.tlp) if target.tlp else profile.sharing.default_tlp
        if request.tlp is not None and request.tlp < own:
            raise UsageError(
                f"--tlp: a sighting of {object_id} cannot be less strict than its {own.label}",
                hint=f"leave --tlp out (the sighting is then {own.label}) or give a stricter level",
            )
        level = max(own, request.tlp) if request.tlp is not None else own
        partners, gone = _recipients(target, own, profile.partners)
        skipped += gone
        for partner in partners:
            aims.setdefault(partner, []).append((object_id, level))
    skipped = list(dict.fromkeys(skipped))
    by_partner: dict[str, list[tuple[dict[str, Any], SentSighting]]] = {}
    request_ids: dict[str, str] = {}
    for partner, of in aims.items():
        request_id = request_ids[partner] = sight_request_id(
            profile.agency_id,
            partner,
            of,
            count=request.count,
            first_seen=first_seen,
            last_seen=last_seen,
            note=note,
            reshare_at=created if request.reshare else None,
        )
        for object_id, level in of:
            sighting = build_sighting(
                identity_id=profile.identity_id,
                sighting_of_ref=object_id,
                count=request.count,
                first_seen=first_seen,
                last_seen=last_seen,
                tlp=level,
                created=created,
                note=note,
                sighting_id=sighting_id_for(request_id, object_id),
            )
            record = SentSighting(
                partner, sighting["id"], object_id, level.value, value=values.get(object_id)
            )
            by_partner.setdefault(partner, []).append((sighting, record))
    if skipped and not by_partner:
        raise UsageError(
            f"{value or targets[0].object_id} came only from {', '.join(skipped)}, no longer "
            "among our partners: there is no one to send the sighting to",
            hint="see `cti-exchange partners list`; a partner pinned again under the same name gets it",
        )
    # The sharing policy is checked for every partner before anything is sent: all or none.
    configs = {name: profile.partners[name] for name in by_partner}
    for name, entries in by_partner.items():
        refusals = decide_sharing(
            [sighting for sighting, _ in entries], [configs[name]], allow_red=request.allow_red
        ).refusals
        if refusals:
            red = refusals[0].rule == RULE_RED
            raise PolicyError(
                f"TLP policy refuses the sighting for {name}: {refusals[0].describe()}; nothing was sent",
                hint=(
                    "a TLP:RED sighting needs --allow-red here and a partner entry that allows it "
                    f"(`cti-exchange partners set {name} --allow-red`)"
                    if red
                    else f"see `cti-exchange partners show {name}` for what the partner may receive"
                ),
            )
    results: list[SentSighting] = []
    outcomes: list[DeliveryOutcome] = []
    for partner_name, entries in by_partner.items():
        shared: ShareResult = share_objects(
            home,
            [sighting for sighting, _ in entries],
            [configs[partner_name]],
            allow_red=request.allow_red,
            queue_only=request.queue_only,
            reporter=reporter,
            now=moment,
            request_id=request_ids[partner_name],
        )
        envelopes = [e for plan in shared.plans for e in plan.envelopes]
        outcome = next((d for d in shared.deliveries if d.partner == partner_name), None)
        if outcome is not None:
            outcomes.append(outcome)
        outbox = _still_in_outbox(home, partner_name, envelopes) if shared.already_shared_at else []
        for _, record in entries:
            record.envelopes = envelopes
            record.resumed = shared.resumed
            record.already_sent_at = shared.already_shared_at  # then nothing was sent now
            record.outbox = outbox
            if outcome is not None:
                record.delivered = list(outcome.delivered)
                record.failed = dict(outcome.failed) or (
                    {e: outcome.error for e in envelopes} if outcome.error else {}
                )
            results.append(record)
        # Sent before: recorded then, unless that run was killed between finishing the
        # request and recording it (then it is recorded now, once).
        _audit(
            home,
            entries,
            partner_name,
            envelopes,
            moment,
            request.count,
            first_seen,
            last_seen,
            request_ids[partner_name],
        )
    stale = {t.object_id: t.stale for t in targets if t.stale is not None}
    return SightingResult(value, results, request.queue_only, skipped, stale, outcomes, decided)


def _still_in_outbox(home: ProfileHome, partner: str, envelopes: list[str]) -> list[str]:
    """Those of `envelopes` still waiting in the outbox for `partner` (sealed or failed)."""
    with open_store(home) as store:
        waiting = set(store.outbound.pending_ids(partner))
    return [e for e in envelopes if e in waiting]


def _audit(
    home: ProfileHome,
    entries: list[tuple[dict[str, Any], SentSighting]],
    partner: str,
    envelopes: list[str],
    moment: datetime,
    count: int,
    first_seen: str,
    last_seen: str,
    request_id: str,
) -> None:
    # After share_objects, which seals and records the envelopes in its own transactions: the
    # "seal" record already holds the envelope; this one says what it was about. Dated when it
    # is written (the sighting's own time, `created`, is in its details), so that the trail's
    # times never run backwards past the seal and push records before it.
    created = stix_timestamp(moment)
    at = stix_timestamp(max(utc_now(), moment))
    with open_store(home) as store, store.db.transaction() as conn:
        for sighting, record in entries:
            if (record.resumed or record.already_sent_at) and _audited(conn, request_id, record.sighting_id):
                continue  # an earlier run of the same request recorded it
            append_audit(
                conn,
                at=at,
                actor=store.actor,
                action="sighting",
                partner=partner,
                details={
                    "sighting_id": record.sighting_id,
                    "created": created,
                    "sighting_of_ref": record.sighting_of_ref,
                    "count": count,
                    "first_seen": first_seen,
                    "last_seen": last_seen,
                    "tlp": record.tlp,
                    "envelopes": envelopes,
                    "note": sighting.get("description"),
                },
            )


def _audited(conn: sqlite3.Connection, request_id: str, sighting_id: str) -> bool:
    """Whether an interrupted run of the request recorded the sighting: read from the time
    the request started (the audit trail's time index), not the whole trail."""
    return (
        conn.execute(
            "SELECT 1 FROM audit_log WHERE at >= (SELECT created_at FROM share_requests "
            "WHERE request_id = ?) AND action = 'sighting' "
            "AND json_extract(details, '$.sighting_id') = ? LIMIT 1",
            (request_id, sighting_id),
        ).fetchone()
        is not None
    )
