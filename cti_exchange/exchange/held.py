"""Envelopes in quarantine, after the fact: held ones opened again, a gap accepted by an analyst,
records closed once reviewed.

Held (store/inbound.HELD_REASONS) means refused for now, not for good: every pull opens them
again (`retry_held_envelopes`). A gap that will never fill (the sender lost an envelope) holds
every later envelope of that channel; an analyst accepts it with `quarantine accept-gap ID`,
which opens the held envelope again with the gap allowed, under the partner it was read from,
and then lets the envelopes held behind it through. The maximum age still applies to the
envelope the gap is accepted on (envelope/open.py, check_not_too_old): for one too old,
accept-gap names the first held envelope of that sender recent enough to take the gap instead.
Other records stay until an analyst closes them (`quarantine resolve`); a held one only with
`--discard`, since closing it means its content is never accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cti_exchange.clock import parse_timestamp, stix_timestamp, utc_now
from cti_exchange.envelope.artifact import routing_hints
from cti_exchange.envelope.open import OpenedEnvelope, ReceiverContext, open_envelope
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.errors import IntegrityError, UsageError
from cti_exchange.exchange.parties import receiver_context
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.profile.model import PartnerConfig
from cti_exchange.store.inbound import HELD_REASONS, QuarantineRecord
from cti_exchange.store.objects import NotApplied, StoredObjects
from cti_exchange.store.store import Store, open_store

_LIST_HINT = "see `cti-exchange quarantine list`"


@dataclass(frozen=True)
class ClosedRecord:
    """A held envelope refused for good when opened again: its quarantine record is closed
    ("rejected again: REASON"), its content never accepted."""

    id: int  # the quarantine record
    envelope_id: str | None
    reason: str
    detail: str


@dataclass
class Released:
    """Held envelopes accepted when opened again."""

    envelope_ids: list[str] = field(default_factory=list)
    objects: int = 0
    new_versions: int = 0
    not_applied: list[NotApplied] = field(default_factory=list)
    revoked_accepted: list[str] = field(default_factory=list)
    closed: list[ClosedRecord] = field(default_factory=list)


def misplaced(opened: OpenedEnvelope, partner: PartnerConfig) -> EnvelopeRejected | None:
    """An envelope signed by another agency but read from this partner's collection."""
    if opened.header.sender == partner.agency_id:
        return None
    refused = EnvelopeRejected(
        RejectReason.SENDER_KEY_MISMATCH,
        f"signed by {opened.header.sender}, found in {partner.name}'s collection",
    )
    refused.envelope_id, refused.sender = opened.header.envelope_id, opened.header.sender
    return refused


def open_artifact(
    artifact: dict[str, Any], ctx: ReceiverContext, *, accept_gap: bool = False
) -> OpenedEnvelope:
    """open_envelope, with an unforeseen failure (a bug some input trips) turned into a
    rejection: otherwise that one envelope would stop every later pull at the same place."""
    try:
        return open_envelope(artifact, ctx, accept_gap=accept_gap)
    except EnvelopeRejected:
        raise
    except Exception as exc:
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE,
            f"opening failed unexpectedly ({type(exc).__name__}); kept in quarantine: "
            "`cti-exchange quarantine show ID --artifact > a.json` and "
            "`cti-exchange open a.json --dry-run --debug` show why",
        ) from exc


def retry_held_envelopes(store: Store, ctx: ReceiverContext, partner: PartnerConfig) -> Released:
    """Opens this partner's held envelopes again, until a round accepts none: a gap may have
    been filled, the clocks may agree now, an old envelope may now be the next on its channel.
    One that now fails for good is closed with the reason."""
    released = Released()
    held = [
        record
        for record in store.inbound.quarantined()
        if record.partner == partner.name and record.reason in HELD_REASONS
    ]
    progress_made = True
    while held and progress_made:
        progress_made = False
        for listed in list(held):
            # Read again: accepting an envelope closes every other open record of it (another
            # copy held), and closing one again would fail.
            record = store.inbound.quarantine_record(listed.id)
            if record is None or record.resolved_at is not None:
                held.remove(listed)
                continue
            gap = record.reason == RejectReason.SEQUENCE_GAP.value
            if gap and store.inbound.gap_unchanged(record.id, record.sender):
                continue  # its sender's channel has not moved: the gap is still there
            artifact = store.inbound.quarantined_artifact(record.id)
            if artifact is None:
                continue
            try:
                opened = open_artifact(artifact, ctx)
            except EnvelopeRejected as rejected:
                if rejected.reason.value not in HELD_REASONS:
                    _close(store, record, f"rejected again: {rejected.reason.value}")
                    released.closed.append(_closed(record, rejected))
                    held.remove(listed)
                    continue
                store.inbound.note_held_again(record, rejected)
                if rejected.reason is RejectReason.SEQUENCE_GAP:
                    store.inbound.note_gap_tried(record.id, rejected.sender)
                continue
            if (wrong := misplaced(opened, partner)) is not None:
                # As on the direct path: never accepted under this partner's name.
                _close(store, record, f"rejected again: {wrong}")
                released.closed.append(_closed(record, wrong))
                held.remove(listed)
                continue
            stored = _accept_held(
                store,
                opened,
                partner,
                artifact,
                record.id,
                f"accepted when retried (held for {record.reason})",
            )
            released.envelope_ids.append(opened.header.envelope_id)
            released.objects += opened.header.object_count
            released.new_versions += stored.new_versions
            released.not_applied.extend(stored.not_applied)
            released.revoked_accepted.extend(stored.revoked_accepted)
            held.remove(listed)
            progress_made = True
    return released


def _accept_held(
    store: Store,
    opened: OpenedEnvelope,
    partner: PartnerConfig,
    artifact: dict[str, Any],
    record_id: int,
    resolution: str,
) -> StoredObjects:
    # The record is closed in the same transaction: an interruption in between would leave it
    # accepted but held, and the next retry would call it a replay.
    return store.inbound.accept(
        opened,
        partner=partner.name,
        received_at=stix_timestamp(utc_now()),
        artifact_id=artifact.get("id"),
        partner_identity=partner.identity_id,
        resolves=(record_id, resolution),
    )


def _close(store: Store, record: QuarantineRecord, resolution: str) -> None:
    store.inbound.resolve_quarantine([record.id], resolution, stix_timestamp(utc_now()))


def _closed(record: QuarantineRecord, rejected: EnvelopeRejected) -> ClosedRecord:
    return ClosedRecord(record.id, record.envelope_id, rejected.reason.value, rejected.detail)


# -- an analyst's decisions ------------------------------------------------------------------


@dataclass(frozen=True)
class GapAccepted:
    record_id: int
    partner: str
    envelope_id: str
    sequence: int | None
    missing: list[int]
    objects: int
    new_versions: int
    released: Released  # envelopes held behind it, accepted right after


def accept_gap(
    home: ProfileHome, record_id: int, *, note: str | None = None, now: datetime | None = None
) -> GapAccepted:
    """Accepts a held envelope despite the sequence numbers missing before it (recorded with
    the analyst), then opens again the envelopes held behind it. The missing envelopes can no
    longer be accepted afterwards: they would come after a later one (`sequence-reorder`); held
    ones are closed so (`Released.closed`)."""
    profile = home.load_profile()
    note = _clean_note(note)
    moment = now or utc_now()
    with open_store(home) as store:
        record = _open_record(store, record_id)
        ctx: ReceiverContext | None = None
        if record.reason != RejectReason.SEQUENCE_GAP.value and record.reason in HELD_REASONS:
            ctx = receiver_context(home, store, moment)
            record = _held_now(store, ctx, record)
        if record.reason != RejectReason.SEQUENCE_GAP.value:
            raise UsageError(
                f"quarantine record {record_id} was refused for {record.reason}, not for a sequence gap",
                hint="only a gap can be accepted; `cti-exchange quarantine show ID` says why it was refused",
            )
        partner = profile.partners.get(record.partner or "")
        if partner is None:
            raise UsageError(
                f"quarantine record {record_id} came from {record.partner or 'no known partner'}, "
                "which is not a partner any more",
                hint="pin the partner again (`partners add`), "
                "or close the record with `quarantine resolve --discard`",
            )
        artifact = store.inbound.quarantined_artifact(record_id)
        assert artifact is not None  # the record exists
        ctx = ctx or receiver_context(home, store, moment)
        try:
            opened = open_artifact(artifact, ctx, accept_gap=True)
            wrong = misplaced(opened, partner)
            if wrong is not None:
                raise wrong
        except EnvelopeRejected as rejected:
            raise IntegrityError(
                f"quarantine record {record_id} still fails: {rejected.reason.value}: {rejected.detail}",
                hint=too_old_hint(
                    store, ctx, partner, record.sender, besides=record_id, again="run accept-gap again"
                )
                if rejected.reason is RejectReason.TOO_OLD
                else "nothing from it was accepted and it stays in quarantine",
            ) from None
        # The missing envelopes may have arrived since and this one still be held (opened
        # again then, it was held for another reason, or a store kept from when `open` retried
        # nothing held): then no gap is accepted, and the record must not say one was.
        by = (
            f"gap accepted by {store.actor}"
            if opened.gap_skipped
            else f"accepted by {store.actor} (no gap left: the missing envelopes had arrived)"
        ) + (f": {note}" if note else "")
        stored = _accept_held(store, opened, partner, artifact, record_id, by)
        released = retry_held_envelopes(store, ctx, partner)
    return GapAccepted(
        record_id=record_id,
        partner=partner.name,
        envelope_id=opened.header.envelope_id,
        sequence=opened.channel.sequence if opened.channel else None,
        missing=list(opened.gap_skipped),
        objects=opened.header.object_count,
        new_versions=stored.new_versions,
        released=released,
    )


def _held_now(store: Store, ctx: ReceiverContext, record: QuarantineRecord) -> QuarantineRecord:
    """A record held for another reason may be behind a gap by now (the clocks agree since the
    last pull; an earlier version held an old envelope behind a gap as too-old): opened again,
    one held for a gap now says so, as a pull would record it."""
    artifact = store.inbound.quarantined_artifact(record.id)
    if artifact is None:
        return record
    try:
        open_artifact(artifact, ctx)
    except EnvelopeRejected as rejected:
        if rejected.reason is RejectReason.SEQUENCE_GAP:
            store.inbound.note_held_again(record, rejected)
            return store.inbound.quarantine_record(record.id) or record
    return record


def too_old_hint(
    store: Store,
    ctx: ReceiverContext,
    partner: PartnerConfig,
    sender: str | None,
    *,
    besides: int | None,
    again: str,
) -> str:
    """What to do with a gap whose envelope is past the maximum age (`accept-gap` on a held
    one, `open FILE --accept-gap`): take the gap on the first later envelope recent enough (the
    older ones are then refused as sequence-reorder), or raise the limit once the partner
    confirms it sent this one, then `again` (how to try this envelope again). `besides`: this
    envelope's own quarantine record, if it has one."""
    raise_limit = (
        f"or, once {partner.name} confirms it sent this one, raise envelope.max_age_days in "
        f"config.toml and {again}. Nothing from it was accepted"
    )
    recent = _first_recent_held(store, ctx, sender, partner.name, besides=besides)
    if recent is None:
        return (
            f"no envelope held from {partner.name} is recent enough: ask {partner.name} to send "
            f"again what was lost and accept the gap on that envelope; {raise_limit}"
        )
    return (
        f"accept the gap on the first envelope held from {partner.name} recent enough instead, "
        f"`cti-exchange quarantine accept-gap {recent}` (the older ones are then closed, never "
        f"accepted); {raise_limit}"
    )


def _first_recent_held(
    store: Store, ctx: ReceiverContext, sender: str | None, partner: str | None, *, besides: int | None
) -> int | None:
    """The held record (other than `besides`) of the first envelope from `sender`, read from
    `partner`, that is past our position on its channel and within the maximum age. Read from
    the clear-text routing hints, which only point the way: accept-gap on the record named
    opens it with every check."""
    oldest = ctx.now - ctx.max_age
    last = ctx.channel_state(sender) if sender else None
    found: list[tuple[int, int]] = []  # (sequence, record id)
    for other in store.inbound.quarantined():
        if other.id == besides or (other.sender, other.partner) != (sender, partner):
            continue
        artifact = store.inbound.quarantined_artifact(other.id)
        if other.reason not in HELD_REASONS or not isinstance(artifact, dict):
            continue
        try:
            hints = routing_hints(artifact)
            sequence = hints.sequences.get(ctx.agency_id)
            issued = parse_timestamp(hints.issued_at)
        except (EnvelopeRejected, ValueError):
            continue
        if sequence is not None and sequence > (last.sequence if last else 0) and issued >= oldest:
            found.append((sequence, other.id))
    return min(found)[1] if found else None


@dataclass(frozen=True)
class RecordsResolved:
    record_ids: list[int]
    resolution: str
    analyst: str
    resolved_at: str


def resolve_records(
    home: ProfileHome,
    record_ids: list[int],
    *,
    note: str | None = None,
    discard_held: bool = False,
    now: datetime | None = None,
) -> RecordsResolved:
    """Closes records an analyst has reviewed (all or none): they leave `quarantine list` and
    `sync status`, and stay in `quarantine list --all` with who closed them, when and why."""
    if not record_ids:
        raise UsageError("name at least one quarantine record", hint=_LIST_HINT)
    note = _clean_note(note)
    at = stix_timestamp(now or utc_now())
    with open_store(home) as store:
        records = [_open_record(store, record_id) for record_id in dict.fromkeys(record_ids)]
        held = [r for r in records if r.reason in HELD_REASONS]
        if held and not discard_held:
            first = held[0]
            raise UsageError(
                f"quarantine record {first.id} is held ({first.reason}): every pull opens it again "
                "and accepts it once it can",
                hint="`cti-exchange quarantine accept-gap ID` accepts a gap; --discard closes it "
                "for good (its content is then never accepted)",
            )
        verb = "discarded" if held else "resolved"
        resolution = f"{verb} by {store.actor}" + (f": {note}" if note else "")
        store.inbound.resolve_quarantine([r.id for r in records], resolution, at)
    return RecordsResolved([r.id for r in records], resolution, store.actor, at)


def _open_record(store: Store, record_id: int) -> QuarantineRecord:
    record = store.inbound.quarantine_record(record_id)
    if record is None:
        raise UsageError(f"no quarantine record {record_id}", hint=_LIST_HINT)
    if record.resolved_at is not None:
        raise UsageError(
            f"quarantine record {record_id} was already resolved at {record.resolved_at} "
            f"({record.resolution})",
            hint=_LIST_HINT,
        )
    return record


def _clean_note(note: str | None) -> str | None:
    """One line, as triage notes: the note is shown in tables and kept in the audit trail."""
    return " ".join(note.split())[:1000] or None if note else None
