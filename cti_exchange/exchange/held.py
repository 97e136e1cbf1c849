"""Envelopes in quarantine, after the fact: held ones opened again, a gap accepted by an analyst,
records closed once reviewed.

Held (store/inbound.HELD_REASONS) means refused for now, not for good: every pull opens them
again (`retry_held_envelopes`). A gap that will never fill (the sender lost an envelope) holds
every later envelope of that channel; an analyst accepts it with `quarantine accept-gap ID`.
The gap accepted is the real one, the sequence numbers neither accepted nor held: on whichever
held record it is asked, the gap is taken by the first envelope held from that sender (in
sequence order) that opens with the gap allowed, under the partner it was read from, and the
envelopes held behind it follow, each in its own transaction, in sequence order. So no held
envelope is lost to a gap accepted on a later one. The maximum age still applies to the
envelope that takes the gap (envelope/open.py, check_not_too_old): one too old is passed over
(its record is closed as sequence-reorder once the gap is taken past it), and accept-gap on a
record that is itself too old names the first held envelope of that sender recent enough.
One held before it for another reason that cannot be opened yet (unknown-key,
sealed-to-unknown-key-of-ours, issued-in-future) stops accept-gap: taking the gap past it would
lose it. The sequence number of one held as unknown-key or sealed-to-unknown-key-of-ours is only
what its clear text claims (its signature could not be checked), and is said to be unverified.
A record held until a key ring changes (unknown-key: its sender's pinned keys; sealed-to-unknown-
key-of-ours: our own keys) is opened again only once that ring has changed since it was last
tried (`keys_fingerprint`): anyone who can write to the collection could otherwise make every
pull decrypt and inflate, unauthenticated, envelopes up to the plaintext limit.
A sequence-gap refusal names the numbers held in quarantine before it as held, with their
records, not as missing (`describe_gap`, `describe_held_gaps`).
Other records stay until an analyst closes them (`quarantine resolve`); a held one only with
`--discard`, since closing it means its content is never accepted.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cti_exchange.clock import parse_timestamp, stix_timestamp, utc_now
from cti_exchange.envelope.artifact import routing_hints
from cti_exchange.envelope.open import MAX_ACCEPTED_GAP, OpenedEnvelope, ReceiverContext, open_envelope
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.errors import IntegrityError, UsageError
from cti_exchange.exchange.parties import receiver_context
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.profile.model import PartnerConfig, Profile
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
    withheld_erased: list[str] = field(default_factory=list)  # erased on request: not stored
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
    artifact: dict[str, Any], ctx: ReceiverContext, *, accept_gap: bool = False, restart: bool = False
) -> OpenedEnvelope:
    """open_envelope, with an unforeseen failure (a bug some input trips) turned into a
    rejection: otherwise that one envelope would stop every later pull at the same place."""
    try:
        return open_envelope(artifact, ctx, accept_gap=accept_gap, restart=restart)
    except EnvelopeRejected:
        raise
    except Exception as exc:
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE,
            f"opening failed unexpectedly ({type(exc).__name__}); kept in quarantine: "
            "`cti-exchange quarantine show ID --artifact > a.json` and "
            "`cti-exchange open a.json --dry-run --debug` show why",
        ) from exc


# Held until a key ring changes; their signature was never checked, so neither was anything
# the envelope claims (its sequence number).
_UNVERIFIED = (RejectReason.UNKNOWN_KEY.value, RejectReason.SEALED_TO_UNKNOWN_KEY_OF_OURS.value)


def keys_fingerprint(ctx: ReceiverContext, reason: str, sender: str | None) -> str | None:
    """For a record held until a key ring changes, a fingerprint of that ring as it is now:
    for unknown-key the keys pinned for its (claimed) sender, for sealed-to-unknown-key-of-ours
    our own key ring and the private encryption keys we hold. None for other reasons."""
    if reason == RejectReason.UNKNOWN_KEY.value:
        ring = ctx.keyrings.get(sender) if sender else None
        held: list[str] = []
    elif reason == RejectReason.SEALED_TO_UNKNOWN_KEY_OF_OURS.value:
        ring = ctx.keyrings.get(ctx.agency_id)
        held = sorted(ctx.decryption_keys)
    else:
        return None
    keys = sorted(
        (key.kid, key.thumbprint, json.dumps(key.status_dict(), sort_keys=True, default=str))
        for key in (ring.keys if ring is not None else ())
    )
    text = json.dumps([reason, sender if ring is not None else None, keys, held])
    return hashlib.sha256(text.encode()).hexdigest()


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
    reasons_changed = False
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
            keys = keys_fingerprint(ctx, record.reason, record.sender)
            if keys is not None and store.inbound.keys_unchanged(record.id, keys):
                continue  # the keys it waits for have not changed: it would fail the same way
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
                describe_gap(store, ctx, rejected, artifact, partner.name)
                reasons_changed |= rejected.reason.value != record.reason
                store.inbound.note_held_again(record, rejected)
                if rejected.reason is RejectReason.SEQUENCE_GAP:
                    store.inbound.note_gap_tried(record.id, rejected.sender)
                tried = keys_fingerprint(ctx, rejected.reason.value, record.sender)
                if tried is not None:
                    store.inbound.note_keys_tried(record.id, tried)
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
            released.withheld_erased.extend(stored.withheld_erased)
            held.remove(listed)
            progress_made = True
    moved = bool(released.envelope_ids or released.closed) or reasons_changed
    if moved or partner.name in store.inbound.newly_held:
        # What each gap record says it waits for may have changed: envelopes held before it
        # since (read out of order), or released, or our channel moved.
        describe_held_gaps(store, ctx.agency_id, partner.name)
        store.inbound.newly_held.discard(partner.name)
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


# -- what a gap record waits for ------------------------------------------------------------

_NAMED = 5  # held envelopes (and runs of missing numbers) named in a gap record's detail


@dataclass(frozen=True)
class HeldEnvelope:
    sequence: int  # on our channel from its sender, as its routing hints give it
    record: QuarantineRecord


def held_in_order(
    store: Store,
    agency_id: str,
    partner: str | None,
    sender: str | None,
    records: list[QuarantineRecord] | None = None,
) -> list[HeldEnvelope]:
    """The open held records read from `partner` (`records`, when already read) and signed
    (or, unverified, said to be) by `sender`, in sequence order on our channel, then oldest
    record first. Their sequence comes from the routing hints: equal to the signed header for
    sequence-gap and too-old (checked before those), a claim for issued-in-future and
    unknown-key."""
    held = [
        HeldEnvelope(store.inbound.hinted_sequence(record.id, agency_id), record)
        for record in (store.inbound.held_records(partner) if records is None else records)
        if record.sender == sender
    ]
    return sorted((h for h in held if h.sequence > 0), key=lambda h: (h.sequence, h.record.id))


class _HeldBefore:
    """The envelopes held on one channel from `expected` (the next sequence number we would
    accept) on, to say of a gap record which numbers before it are missing and which held."""

    def __init__(self, held: list[HeldEnvelope], expected: int) -> None:
        self.expected = expected
        self.records: dict[int, list[QuarantineRecord]] = {}
        for h in held:
            if h.sequence >= expected:
                self.records.setdefault(h.sequence, []).append(h.record)
        self.sequences = sorted(self.records)
        # Equal along a run of consecutive sequence numbers: a run is skipped in one search.
        self._runs = [sequence - n for n, sequence in enumerate(self.sequences)]

    def describe(self, sender: str, sequence: int, suffix: str = "") -> str:
        """Why the envelope at `sequence` waits: the numbers missing before it (as open.py
        names them when none is held) and those held in quarantine, with their records."""
        held = bisect_left(self.sequences, sequence)
        missing = sequence - self.expected - held
        where = f"from {sender} before {sequence}{suffix}"
        if not held:
            return f"missing sequence numbers {self._missing(sequence, missing)} {where}"
        named = [self._held(n) for n in self.sequences[: min(held, _NAMED)]]
        if held > _NAMED:
            named.append(f"and {held - _NAMED} more")
        held_text = f"held in quarantine before it: {', '.join(named)}"
        if not missing:
            return f"no sequence number missing {where}: {held_text}"
        return f"missing sequence numbers {self._missing(sequence, missing)} {where}; {held_text}"

    def _held(self, sequence: int) -> str:
        records = self.records[sequence]
        ids = ", ".join(str(r.id) for r in records)
        reasons = sorted({r.reason for r in records} - {RejectReason.SEQUENCE_GAP.value})
        if all(r.reason in _UNVERIFIED for r in records):
            # What the clear text claims: anyone who can write to the collection chooses it.
            reasons.append("its sequence number unverified: its signature could not be checked")
        return f"{sequence} as record{'s' if len(records) > 1 else ''} {ids}" + (
            f" ({'; '.join(reasons)})" if reasons else ""
        )

    def _missing(self, sequence: int, count: int) -> str:
        """The numbers from `expected` to sequence - 1 that are not held: each of them up to
        five (as open.py), else runs as "3-40", the first few."""
        runs: list[tuple[int, int]] = []
        start, n, end = self.expected, 0, bisect_left(self.sequences, sequence)
        while n < end and len(runs) <= _NAMED:
            if self.sequences[n] > start:
                runs.append((start, self.sequences[n] - 1))
            last = bisect_right(self._runs, self._runs[n], n, end) - 1
            start, n = self.sequences[last] + 1, last + 1
        if len(runs) <= _NAMED and start < sequence:
            runs.append((start, sequence - 1))
        if count <= _NAMED:
            return ", ".join(str(x) for first, last in runs for x in range(first, last + 1))
        shown = [f"{first}-{last}" if last > first else str(first) for first, last in runs[:_NAMED]]
        return ", ".join(shown) + (", ..." if len(runs) > _NAMED else "")


def _suffix(detail: str) -> str:
    """What open.py adds after the numbers of a gap too large to accept, kept as it was."""
    limit = f" (more than {MAX_ACCEPTED_GAP} cannot be accepted)"
    return limit if limit in detail else ""


def describe_gap(
    store: Store, ctx: ReceiverContext, rejected: EnvelopeRejected, artifact: Any, partner: str | None
) -> None:
    """A `sequence-gap` refusal of an envelope read from `partner`: its detail names the
    sequence numbers held in quarantine before it as held, with their records, and only the
    others as missing (otherwise `open` and the record sent the analyst looking for envelopes
    it already has). Called before the refusal is stored or said; reads only."""
    if rejected.reason is not RejectReason.SEQUENCE_GAP or not rejected.sender:
        return
    if not isinstance(artifact, dict):
        return
    try:
        sequence = routing_hints(artifact).sequences.get(ctx.agency_id, 0)
    except EnvelopeRejected:
        return
    last = ctx.channel_state(rejected.sender)
    expected = last.sequence + 1 if last else 1
    if sequence <= expected:
        return
    before = _HeldBefore(held_in_order(store, ctx.agency_id, partner, rejected.sender), expected)
    rejected.detail = before.describe(rejected.sender, sequence, _suffix(rejected.detail))


def describe_held_gaps(store: Store, agency_id: str, partner: str | None) -> None:
    """Says again, for every open sequence-gap record read from `partner`, what it waits for:
    an envelope held after it was refused (files opened out of order) is no longer missing,
    and one released since is no longer held. Our channel as it stands now."""
    records = store.inbound.held_records(partner)
    changed: dict[int, str] = {}
    for sender in {r.sender for r in records if r.reason == RejectReason.SEQUENCE_GAP.value}:
        if sender is None:
            continue
        held = held_in_order(store, agency_id, partner, sender, records)
        last = store.inbound.channel_state(sender)
        before = _HeldBefore(held, last.sequence + 1 if last else 1)
        for h in held:
            if h.record.reason != RejectReason.SEQUENCE_GAP.value or h.sequence <= before.expected:
                continue
            detail = before.describe(sender, h.sequence, _suffix(h.record.detail))
            if detail != h.record.detail:
                changed[h.record.id] = detail
    store.inbound.note_gap_details(changed)


# -- an analyst's decisions ------------------------------------------------------------------


def _still_fails(record_id: int, rejected: EnvelopeRejected, too_old: Callable[[], str]) -> IntegrityError:
    """accept-gap's and accept-restart's refusal of a record whose envelope fails another check
    too; `too_old`: the hint for one past the age limit (how to let it in)."""
    return IntegrityError(
        f"quarantine record {record_id} still fails: {rejected.reason.value}: {rejected.detail}",
        hint=too_old()
        if rejected.reason is RejectReason.TOO_OLD
        else "nothing from it was accepted and it stays in quarantine",
    )


@dataclass(frozen=True)
class GapAccepted:
    record_id: int  # the record the gap was accepted on: the one asked, or the first held before it
    requested_record_id: int  # the record named to `accept-gap`
    partner: str
    envelope_id: str
    sequence: int | None
    missing: list[int]
    objects: int
    new_versions: int
    released: Released  # envelopes held behind it, accepted right after, in sequence order
    # Records of that partner still held afterwards, in sequence order (behind another gap,
    # or held for another reason).
    still_held: list[int] = field(default_factory=list)


def _partner_of(profile: Profile, record: QuarantineRecord) -> PartnerConfig:
    """The partner a quarantine record came from, which accept-gap and accept-restart accept
    it under; a usage error when it is not a partner any more."""
    partner = profile.partners.get(record.partner or "")
    if partner is None:
        raise UsageError(
            f"quarantine record {record.id} came from {record.partner or 'no known partner'}, "
            "which is not a partner any more",
            hint="pin the partner again (`partners add`), "
            "or close the record with `quarantine resolve --discard`",
        )
    return partner


def accept_gap(
    home: ProfileHome, record_id: int, *, note: str | None = None, now: datetime | None = None
) -> GapAccepted:
    """Accepts the gap behind a held envelope (recorded with the analyst): the sequence
    numbers neither accepted nor held in quarantine. The first envelope held from that sender
    inside the gap, or this one when none is, is accepted despite the numbers missing before
    it, then the envelopes held behind it are opened again and follow, in sequence order. The
    missing envelopes can no longer be accepted afterwards: they would come after a later one
    (`sequence-reorder`); held ones passed over (too old to take the gap) are closed so
    (`Released.closed`)."""
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
                hint=(
                    f"if its sender restored its store from a backup, made its profile again or had "
                    f"its signing key stolen (ask it), `cti-exchange quarantine accept-restart "
                    f"{record_id}` accepts it as the channel's new start"
                    if record.reason in RESTART_REASONS
                    else "only a gap can be accepted; `cti-exchange quarantine show ID` says why it was "
                    "refused"
                ),
            )
        partner = _partner_of(profile, record)
        artifact = store.inbound.quarantined_artifact(record_id)
        assert artifact is not None  # the record exists
        ctx = ctx or receiver_context(home, store, moment)
        try:
            opened = open_artifact(artifact, ctx, accept_gap=True)
            wrong = misplaced(opened, partner)
            if wrong is not None:
                raise wrong
        except EnvelopeRejected as rejected:
            raise _still_fails(
                record_id,
                rejected,
                lambda: too_old_hint(
                    store, ctx, partner, record.sender, besides=record_id, again="run accept-gap again"
                ),
            ) from None
        # Envelopes held before this one are not lost: the first of them takes the gap (only
        # the numbers before it are missing), and this one follows it with the others.
        first = _first_held_in_gap(store, ctx, partner, record, opened)
        taken, taken_artifact, taken_opened = first or (record, artifact, opened)
        asked = "" if taken.id == record_id else f" (asked on record {record_id}, held behind it)"
        # The missing envelopes may have arrived since and this one still be held (opened
        # again then, it was held for another reason, or a store kept from when `open` retried
        # nothing held): then no gap is accepted, and the record must not say one was.
        by = (
            f"gap accepted by {store.actor}{asked}"
            if taken_opened.gap_skipped
            else f"accepted by {store.actor} (no gap left: the missing envelopes had arrived)"
        ) + (f": {note}" if note else "")
        stored = _accept_held(store, taken_opened, partner, taken_artifact, taken.id, by)
        released = retry_held_envelopes(store, ctx, partner)
        still_held = [
            r.id
            for r in sorted(
                store.inbound.held_records(partner.name),
                key=lambda r: (r.sender or "", store.inbound.hinted_sequence(r.id, ctx.agency_id), r.id),
            )
        ]
    return GapAccepted(
        record_id=taken.id,
        requested_record_id=record_id,
        partner=partner.name,
        envelope_id=taken_opened.header.envelope_id,
        sequence=taken_opened.channel.sequence if taken_opened.channel else None,
        missing=list(taken_opened.gap_skipped),
        objects=taken_opened.header.object_count,
        new_versions=stored.new_versions,
        released=released,
        still_held=still_held,
    )


def _first_held_in_gap(
    store: Store,
    ctx: ReceiverContext,
    partner: PartnerConfig,
    record: QuarantineRecord,
    opened: OpenedEnvelope,
) -> tuple[QuarantineRecord, dict[str, Any], OpenedEnvelope] | None:
    """The first envelope held from the same sender inside the gap before `opened` (the
    envelope of `record`, opened with the gap allowed) that opens with the gap allowed, in
    sequence order, with its record and artifact; None when none is held there. Taking the gap
    on `opened` instead would refuse every one of them for good (sequence-reorder).
    One past the maximum age is passed over, as `too_old_hint` advises: it cannot take a gap,
    and is closed once the gap is taken past it. One refused for good now is passed over too
    (the retry closes its record). One held for another reason that cannot be opened yet stops
    accept-gap (IntegrityError, nothing accepted): taking the gap past it would lose it."""
    if not opened.gap_skipped:
        return None
    first, last = opened.gap_skipped[0], opened.gap_skipped[-1]
    for held in held_in_order(store, ctx.agency_id, partner.name, record.sender):
        if held.record.id == record.id or not first <= held.sequence <= last:
            continue
        artifact = store.inbound.quarantined_artifact(held.record.id)
        if not isinstance(artifact, dict):
            continue
        try:
            candidate = open_artifact(artifact, ctx, accept_gap=True)
        except EnvelopeRejected as rejected:
            if rejected.reason is RejectReason.TOO_OLD or rejected.reason.value not in HELD_REASONS:
                continue
            claimed = (
                f"an envelope claiming sequence {held.sequence} (unverified: its signature could not "
                "be checked)"
                if rejected.reason.value in _UNVERIFIED
                else f"sequence {held.sequence}"
            )
            raise IntegrityError(
                f"{claimed} from {partner.name}, inside the gap before record "
                f"{record.id}, is held in quarantine as record {held.record.id} and cannot be opened "
                f"yet ({rejected.reason.value}: {rejected.detail}): accepting the gap past it would "
                "lose it, so nothing was accepted",
                hint=_blocked_hint(rejected.reason, partner.name, held.record.id),
            ) from None
        position = candidate.channel
        if misplaced(candidate, partner) is not None or position is None:
            continue
        if first <= position.sequence <= last:
            return held.record, artifact, candidate
    return None


def _blocked_hint(reason: RejectReason, partner: str, record_id: int) -> str:
    discard = (
        f"`cti-exchange quarantine resolve {record_id} --discard` closes it for good (its content "
        "is then never accepted), and accept-gap then takes the gap past it"
    )
    if reason is RejectReason.UNKNOWN_KEY:
        return (
            f"if {partner} rotated its keys, pin its new key file (`cti-exchange partners "
            f"update-keys {partner} --jwks FILE`) and run accept-gap again; if that envelope is "
            f"not {partner}'s, {discard}"
        )
    if reason is RejectReason.SEALED_TO_UNKNOWN_KEY_OF_OURS:
        return (
            f"it is sealed to an encryption key of ours this profile does not hold: restore the "
            f"newer keys/ (from after the last `keys rotate`), or ask {partner} to re-seal it to "
            f"our current key, and run accept-gap again; if it is not {partner}'s, or our old "
            f"keys are lost for good (a profile made again), {discard}"
        )
    if reason is RejectReason.ISSUED_IN_FUTURE:
        return (
            f"{partner}'s clock ran ahead: run accept-gap again once that time has come (a pull "
            f"also opens it again then); or {discard}"
        )
    return f"run accept-gap again once it can be opened; or {discard}"


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
            describe_gap(store, ctx, rejected, artifact, record.partner)
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


# -- a partner's channel that went back -------------------------------------------------------

# Where an envelope stands on its channel, refused for good: the sender's channel went back (it
# restored its store from a backup, made its profile again) or a thief's envelopes took the
# positions. `quarantine accept-restart` takes these. Not a gap: a channel ahead of ours is not
# one that went back, and skipping it here would pass over accept-gap's safeguards (an envelope
# held in the gap, MAX_ACCEPTED_GAP).
RESTART_REASONS = (RejectReason.SEQUENCE_REORDER.value, RejectReason.CHAIN_MISMATCH.value)
_RESTART_TAKES = RESTART_REASONS
# Opened again after a restart, in sequence order: those held until a key ring changes are
# left to the retry (their sequence number is unverified, and they open only once the keys do).
_AFTER_RESTART = RESTART_REASONS + tuple(r for r in HELD_REASONS if r not in _UNVERIFIED)


@dataclass(frozen=True)
class RestartAccepted:
    record_id: int
    partner: str
    sender: str
    envelope_id: str
    previous: dict[str, Any] | None  # our position on its channel before: sequence, digest, issued_at
    sequence: int
    restarted: bool  # False: it chained to what we accepted by now, no restart was needed
    objects: int
    new_versions: int
    released: Released  # the envelopes refused or held behind it, accepted right after
    # Records of that sender still open afterwards, in sequence order (refused for their
    # position, or held).
    still_open: list[int] = field(default_factory=list)


def accept_restart(
    home: ProfileHome, record_id: int, *, note: str | None = None, now: datetime | None = None
) -> RestartAccepted:
    """Accepts the envelope of a record refused for where it stands on its channel
    (sequence-reorder, chain-mismatch, or held behind a gap that cannot fill) as the new start
    of its sender's channel, once the analyst has confirmed out of band that the sender
    restored its store from a backup, made its profile again or had its signing key stolen (a
    thief's envelopes took its positions). Every other check applies
    (signature, key validity, addressing, replay by envelope id, bundle; the maximum age, as
    it is not chained to what we accepted). A `channel-restart` audit record keeps the old and
    new positions, the analyst and the note. Then the other open records of that sender
    refused for their position or held are opened again in sequence order, and those that now
    chain are accepted. The new start must be the first of them: one from that sender before
    it in sequence order stops it (it would be lost)."""
    profile = home.load_profile()
    note = _clean_note(note)
    moment = now or utc_now()
    with open_store(home) as store:
        record = _open_record(store, record_id)
        ctx = receiver_context(home, store, moment)
        if record.reason in HELD_REASONS and record.reason != RejectReason.SEQUENCE_GAP.value:
            record = _held_now(store, ctx, record)
        if record.reason not in _RESTART_TAKES or record.sender is None:
            gap = record.reason == RejectReason.SEQUENCE_GAP.value
            raise UsageError(
                f"quarantine record {record_id} was "
                + (
                    "held behind a gap: its channel is ahead of ours, not back"
                    if gap
                    else f"refused for {record.reason}, not for where it stands on its sender's channel"
                ),
                hint=f"for a gap that will not fill, `cti-exchange quarantine accept-gap {record_id}`"
                if gap
                else "accept-restart takes an envelope refused as sequence-reorder or chain-mismatch "
                "once its sender confirms it restored its store from a backup, made its profile "
                "again or had its signing key stolen; `cti-exchange quarantine show ID` says why it "
                "was refused",
            )
        sender = record.sender
        partner = _partner_of(profile, record)
        sequence = store.inbound.hinted_sequence(record.id, ctx.agency_id)
        _refuse_restart_behind(store, ctx, partner, record, sequence)
        artifact = store.inbound.quarantined_artifact(record_id)
        assert artifact is not None  # the record exists
        previous = ctx.channel_state(sender)
        restarted = True
        try:
            try:
                opened = open_artifact(artifact, ctx)
                restarted = False  # it chains to what we accepted by now
            except EnvelopeRejected as rejected:
                if rejected.reason.value not in _RESTART_TAKES:
                    raise
                opened = open_artifact(artifact, ctx, restart=True)
            wrong = misplaced(opened, partner)
            if wrong is not None:
                raise wrong
        except EnvelopeRejected as rejected:
            raise _still_fails(
                record_id,
                rejected,
                lambda: (
                    f"once {partner.name} confirms it sent this one, raise envelope.max_age_days in "
                    "config.toml and run accept-restart again; or close it (`cti-exchange quarantine "
                    f"resolve {record_id}`) and run accept-restart on the next envelope from "
                    f"{partner.name}. Nothing from it was accepted"
                ),
            ) from None
        if opened.channel is None:  # our own copy: no channel of ours to restart
            raise UsageError(f"quarantine record {record_id} is not on a channel from {partner.name} to us")
        said = f": {note}" if note else ""
        old = (
            {
                "sequence": previous.sequence,
                "digest": previous.digest,
                "issued_at": stix_timestamp(previous.issued_at) if previous.issued_at else None,
            }
            if previous is not None
            else None
        )
        if restarted:
            was = f"was at sequence {previous.sequence}" if previous else "had none"
            resolution = (
                f"accepted by {store.actor} as the new start of {sender}'s channel ({was}, now "
                f"{opened.channel.sequence}){said}"
            )
            details: dict[str, Any] | None = {
                "sender": sender,
                "quarantine_id": record.id,
                "envelope_id": opened.header.envelope_id,
                "refused_as": record.reason,
                "previous_position": old,
                "new_position": {
                    "sequence": opened.channel.sequence,
                    "digest": opened.digest,
                    "issued_at": stix_timestamp(opened.header.issued_at),
                },
                "analyst": store.actor,
                "note": note,
            }
        else:
            resolution = f"accepted by {store.actor} (no restart needed: it chains to what we accepted){said}"
            details = None
        stored = store.inbound.accept(
            opened,
            partner=partner.name,
            received_at=stix_timestamp(utc_now()),
            artifact_id=artifact.get("id"),
            partner_identity=partner.identity_id,
            resolves=(record.id, resolution),
            restart=details,
        )
        released = _reopen_after_restart(store, ctx, partner, sender, record.id)
        _add_released(released, retry_held_envelopes(store, ctx, partner))
        still_open = [h.record.id for h in _restart_candidates(store, ctx.agency_id, partner.name, sender)]
    return RestartAccepted(
        record_id=record.id,
        partner=partner.name,
        sender=sender,
        envelope_id=opened.header.envelope_id,
        previous=old,
        sequence=opened.channel.sequence,
        restarted=restarted,
        objects=opened.header.object_count,
        new_versions=stored.new_versions,
        released=released,
        still_open=still_open,
    )


def _restart_candidates(store: Store, agency_id: str, partner: str, sender: str) -> list[HeldEnvelope]:
    """The open records read from `partner` and signed by `sender` that a restart may let
    through (refused for their position, or held but not until a key ring changes), in
    sequence order."""
    records = [r for r in store.inbound.quarantined() if r.partner == partner and r.reason in _AFTER_RESTART]
    return held_in_order(store, agency_id, partner, sender, records)


def _refuse_restart_behind(
    store: Store, ctx: ReceiverContext, partner: PartnerConfig, record: QuarantineRecord, sequence: int
) -> None:
    """The restart must be taken on the first envelope the sender sent since its channel went
    back: one held or refused before it would never chain afterwards. And an envelope from
    before our position that we never accepted at that position was passed over by an
    accepted gap: it came late, it is no restart (taken as one, it would have everything the
    sender sent since refused)."""
    assert record.sender is not None
    for held in _restart_candidates(store, ctx.agency_id, partner.name, record.sender):
        if held.record.id == record.id or held.sequence >= sequence:
            continue
        close = "resolve" + (" --discard" if held.record.reason in HELD_REASONS else "")
        raise UsageError(
            f"record {held.record.id} holds sequence {held.sequence} from {partner.name} "
            f"({held.record.reason}), before record {record.id} (sequence {sequence}): the "
            f"channel's new start is the first envelope {partner.name} sent since its restore, "
            "and the ones after it follow; nothing was accepted",
            hint=f"`cti-exchange quarantine accept-restart {held.record.id}`; if that envelope is "
            f"older than the restore, close it first (`cti-exchange quarantine {close} "
            f"{held.record.id}`)",
        )
    last = ctx.channel_state(record.sender)
    if (
        record.reason == RejectReason.SEQUENCE_REORDER.value
        and last is not None
        and 0 < sequence <= last.sequence
        and not store.inbound.accepted_at_sequence(record.sender, sequence)
    ):
        raise UsageError(
            f"sequence {sequence} from {partner.name} was never accepted: it was passed over when "
            "a gap was accepted, and arrived late; it is no restart (accepted as one, everything "
            f"{partner.name} sent since would be refused); nothing was accepted",
            hint=f"ask {partner.name} to send its content again, and close this record "
            f"(`cti-exchange quarantine resolve {record.id}`)",
        )


def _reopen_after_restart(
    store: Store, ctx: ReceiverContext, partner: PartnerConfig, sender: str, restart_record: int
) -> Released:
    """Opens again, in sequence order, the open records of `sender` refused for their position
    or held, until a round accepts none: those that now chain to the restart follow it. One
    refused now for another reason (a copy of an envelope accepted) is closed with it."""
    released = Released()
    progress_made = True
    while progress_made:
        progress_made = False
        for held in _restart_candidates(store, ctx.agency_id, partner.name, sender):
            record = store.inbound.quarantine_record(held.record.id)
            if record is None or record.resolved_at is not None:
                continue
            artifact = store.inbound.quarantined_artifact(record.id)
            if artifact is None:
                continue
            try:
                opened = open_artifact(artifact, ctx)
                wrong = misplaced(opened, partner)
                if wrong is not None:
                    raise wrong
            except EnvelopeRejected as rejected:
                if rejected.reason.value in HELD_REASONS:
                    describe_gap(store, ctx, rejected, artifact, partner.name)
                    store.inbound.note_held_again(record, rejected)
                    if rejected.reason is RejectReason.SEQUENCE_GAP:
                        store.inbound.note_gap_tried(record.id, rejected.sender)
                elif rejected.reason.value not in RESTART_REASONS:
                    copy = store.inbound.copy_of_accepted(rejected)
                    _close(
                        store,
                        record,
                        f"accepted: the same envelope, received again ({record.envelope_id})"
                        if copy
                        else f"rejected again: {rejected.reason.value}",
                    )
                    released.closed.append(_closed(record, rejected))
                continue  # still before the new start, or not chained to it: stays open
            stored = _accept_held(
                store,
                opened,
                partner,
                artifact,
                record.id,
                f"accepted after the restart of {sender}'s channel on record {restart_record} "
                f"(refused for {record.reason})",
            )
            released.envelope_ids.append(opened.header.envelope_id)
            released.objects += opened.header.object_count
            released.new_versions += stored.new_versions
            released.not_applied.extend(stored.not_applied)
            released.revoked_accepted.extend(stored.revoked_accepted)
            released.withheld_erased.extend(stored.withheld_erased)
            progress_made = True
    return released


def _add_released(into: Released, more: Released) -> None:
    into.envelope_ids.extend(more.envelope_ids)
    into.objects += more.objects
    into.new_versions += more.new_versions
    into.not_applied.extend(more.not_applied)
    into.revoked_accepted.extend(more.revoked_accepted)
    into.withheld_erased.extend(more.withheld_erased)
    into.closed.extend(more.closed)


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
            # `quarantine list` alone leaves resolved records out.
            hint="see `cti-exchange quarantine list --all`",
        )
    return record


def _clean_note(note: str | None) -> str | None:
    """One line, as triage notes: the note is shown in tables and kept in the audit trail."""
    return " ".join(note.split())[:1000] or None if note else None
