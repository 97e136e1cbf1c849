"""pull: read each partner's collection from where we stopped, open every envelope (verify
before accept), store what passes, quarantine what fails.

Exactly once, whatever happens:
- every TAXII object read is recorded as processed in the same transaction as its outcome, so
  re-reading it (after a crash, a retry, an expired `next` token, a server restart) skips it;
- the cursor (`added_after`) only moves once everything it covers is committed. Objects of one
  POST share one `date_added` and may span pages, so after a page the cursor stops just before
  the page's last `date_added`; only at the end of the collection does it reach it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cti_exchange.audit.trail import sign_audit_head
from cti_exchange.clock import parse_timestamp, stix_timestamp, utc_now
from cti_exchange.envelope.artifact import is_envelope_artifact
from cti_exchange.envelope.open import ReceiverContext, naming_record
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.errors import AuthError, ConfigError, NetworkError
from cti_exchange.exchange.delivery import taxii_client_for
from cti_exchange.exchange.held import (
    ClosedRecord,
    describe_gap,
    keys_fingerprint,
    misplaced,
    open_artifact,
    retry_held_envelopes,
)
from cti_exchange.exchange.parties import receiver_context
from cti_exchange.exchange.run import RunProgress
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.partnership import get_partner
from cti_exchange.profile.model import Operations, PartnerConfig
from cti_exchange.progress import ProgressReporter
from cti_exchange.store import text_index
from cti_exchange.store.erasure_tombstones import withheld_note
from cti_exchange.store.inbound import TaxiiOrigin
from cti_exchange.store.objects import NotApplied, not_applied_summary, revoked_accepted_note
from cti_exchange.store.store import Store, open_store
from cti_exchange.taxii.client import ResponseTooLarge, TaxiiClient, too_large_hint
from cti_exchange.untrusted_text import escape_controls

log = logging.getLogger(__name__)
_MAX_RECOVERY_PAGE = 10_000
# New objects a pull processes from one collection in one run: config.toml
# `operations.max_objects_per_run` (profile/model.py says why).
_MAX_STALLED_PAGES = 8


@dataclass
class Quarantined:
    envelope_id: str | None
    reason: str
    detail: str
    record_id: int | None = None  # its quarantine record (`cti-exchange quarantine show ID`)
    # Set when the record was closed before the pull ended: its resolution. Still in
    # quarantine while None.
    resolution: str | None = None


@dataclass
class PartnerPull:
    partner: str
    accepted: list[str] = field(default_factory=list)  # envelope ids
    new_versions: int = 0
    # Newer versions of objects another partner owns: kept, not made current (store/objects.py).
    not_applied: list[NotApplied] = field(default_factory=list)
    # Accepted objects their source revoked in this pull: they leave every export.
    revoked_accepted: list[str] = field(default_factory=list)
    # Objects not stored because erased on request (store/erasure_tombstones.py): their ids.
    withheld_erased: list[str] = field(default_factory=list)
    objects_received: int = 0
    # Rejected in this run and not accepted since: still in quarantine, or (`resolution` set)
    # held, then refused for good when opened again in this run (also in `closed`).
    quarantined: list[Quarantined] = field(default_factory=list)
    # Rejected in this run, then accepted in it all the same, their records closed: a copy
    # wrapped for a key we revoked whose sender re-addressed it, or a held envelope released.
    accepted_since: list[Quarantined] = field(default_factory=list)
    # Held envelopes opened again and refused for good (sequence-reorder once a gap was
    # accepted past them): their records are closed, so `quarantine list` no longer shows them.
    closed: list[ClosedRecord] = field(default_factory=list)
    skipped: int = 0  # already processed, duplicates, not for us
    pages: int = 0
    stopped_early: bool = False  # `object_limit` reached: the next run goes on
    # New objects this run may process from the collection (operations.max_objects_per_run).
    object_limit: int = Operations.max_objects_per_run
    error: str | None = None
    auth_failed: bool = False  # credentials refused, or the collection refused (404/403): exit 3
    config_failed: bool = False  # the partner entry (or a file it names) is wrong: exit 2, not 7

    @property
    def integrity_alerts(self) -> list[Quarantined]:
        return [q for q in self.quarantined if RejectReason(q.reason).is_integrity_alert]

    def accepted_since_note(self) -> str | None:
        """One line on envelopes rejected in this run and then accepted in it, or None."""
        if not self.accepted_since:
            return None
        ids = ", ".join(str(q.envelope_id) for q in self.accepted_since)
        return (
            f"{self.partner}: {len(self.accepted_since)} envelope(s) rejected, then accepted in the "
            f"same run (another copy, re-addressed to our current key, or released when opened "
            f"again), their quarantine record(s) closed: {ids}"
        )

    def stopped_early_note(self) -> str | None:
        if not self.stopped_early:
            return None
        return (
            f"{self.partner}: stopped after {self.object_limit:,} new objects in this run (what was "
            "read is stored); the next pull goes on from there. If it keeps happening, the "
            "partner's server may be sending junk: tell its operator (the limit is config.toml "
            "operations.max_objects_per_run)"
        )

    def revoked_note(self) -> str | None:
        return revoked_accepted_note(self.partner, self.revoked_accepted)

    def withheld_note(self) -> str | None:
        return withheld_note(self.partner, self.withheld_erased)

    def not_applied_warning(self) -> str | None:
        """One line on newer versions kept but not applied, or None if there were none."""
        summary = not_applied_summary(self.not_applied)
        if summary is None:
            return None
        first = self.not_applied[0].object_id
        return f"{self.partner} sent {summary}; first: {first}, see `cti-exchange triage show`"

    def closed_warning(self) -> str | None:
        """One line on held envelopes refused for good when opened again, or None."""
        if not self.closed:
            return None
        by_reason: dict[str, list[str]] = {}
        for closed in self.closed:
            by_reason.setdefault(closed.reason, []).append(str(closed.id))
        records = "; ".join(f"{', '.join(ids)} ({reason})" for reason, ids in by_reason.items())
        return (
            f"{self.partner}: {len(self.closed)} held envelope(s) refused for good when opened "
            f"again, their quarantine record(s) closed: {records}; "
            "`cti-exchange quarantine list --all` says why"
        )


@dataclass
class PullResult:
    partners: list[PartnerPull]


def pull(
    home: ProfileHome,
    partner_names: list[str] | None = None,
    *,
    reporter: ProgressReporter | None = None,
    now: datetime | None = None,
    index_text: bool = True,  # False: the caller keeps the text-search index current (sync)
) -> PullResult:
    profile = home.load_profile()
    if partner_names:
        partners = [get_partner(home, name) for name in partner_names]
    else:
        partners = [p for p in profile.partners.values() if p.taxii and p.taxii.read_collection]
        if not partners:
            raise ConfigError(
                "no partner has a TAXII collection to read",
                hint="cti-exchange partners set NAME --api-root URL --read-collection ID",
            )
    # Our keys are unlocked before anything is read or recorded: a wrong or unreadable
    # passphrase fails the pull here, with nothing done and no `pull` record written. A record
    # written then could get no signed head (signing needs the same keys), and a pull record
    # without one is what `audit verify` must take for an interrupted run or deleted heads
    # (docs/AUDIT.md §4, "head-expected").
    home.private_keys()
    results = []
    run = RunProgress.of(reporter)  # one for every partner: the servers found out of reach
    with open_store(home) as store:
        for partner in partners:
            outcome = pull_partner(home, store, partner, reporter=run, now=now)
            results.append(outcome)
            store.audit.append(
                at=stix_timestamp(utc_now()),
                actor=store.actor,
                action="pull",
                partner=partner.name,
                details={
                    "accepted": outcome.accepted,
                    "rejected": [q.envelope_id for q in outcome.quarantined],
                    "rejected_then_accepted": [q.envelope_id for q in outcome.accepted_since],
                    "objects": outcome.objects_received,
                    "pages": outcome.pages,
                    "error": outcome.error,
                    # Cut to the first 1,000: a record stays small.
                    "accepted_objects_revoked": outcome.revoked_accepted[:1000],
                    # Erased on request, not stored again: how many, and the first ids (no values).
                    **(
                        {
                            "withheld_as_erased": len(outcome.withheld_erased),
                            "withheld_sample": outcome.withheld_erased[:20],
                        }
                        if outcome.withheld_erased
                        else {}
                    ),
                    "stopped_early": outcome.stopped_early,
                },
            )
        sign_audit_head(home, store)
        if index_text:
            keep_search_index_current(store)
    return PullResult(results)


def keep_search_index_current(store: Store) -> None:
    """Indexes for text search what this run stored, once an analyst has searched (the index
    exists), so the next search does not (store/text_index.py). Never fails the run: a later
    search or pull indexes what is left."""
    if (why := text_index.keep_current(store.db.conn, hooks=store.db)) is not None:
        log.info("text-search index not brought up to date (a search will): %s", why)


def pull_partner(
    home: ProfileHome,
    store: Store,
    partner: PartnerConfig,
    *,
    reporter: ProgressReporter | None = None,
    now: datetime | None = None,
) -> PartnerPull:
    progress = RunProgress.of(reporter)
    outcome = PartnerPull(
        partner=partner.name, object_limit=home.load_profile().operations.max_objects_per_run
    )
    try:
        if partner.taxii is None or not partner.taxii.read_collection:
            raise ConfigError(
                f"partner {partner.name} has no read_collection",
                hint=f"cti-exchange partners set {partner.name} --read-collection ID",
            )
        collection = partner.taxii.read_collection
        ctx = receiver_context(home, store, now or utc_now(), partner=partner)
        progress.step(f"pulling from {partner.name}")
        with taxii_client_for(home, partner, servers=progress.servers) as client:
            _read_collection(client, store, ctx, partner, collection, outcome, progress)
        released = retry_held_envelopes(store, ctx, partner)
        outcome.accepted += released.envelope_ids
        outcome.objects_received += released.objects
        outcome.new_versions += released.new_versions
        outcome.not_applied += released.not_applied
        outcome.revoked_accepted += released.revoked_accepted
        outcome.withheld_erased += released.withheld_erased
        outcome.closed += released.closed
    except (NetworkError, AuthError, ConfigError) as exc:
        outcome.error = exc.diagnostics()
        outcome.auth_failed = isinstance(exc, AuthError)
        outcome.config_failed = isinstance(exc, ConfigError)
    # Also after a failure: what was read before it may have closed records of this run.
    _note_closed_records(store, outcome)
    return outcome


def _note_closed_records(store: Store, outcome: PartnerPull) -> None:
    """Sorts this run's rejections by what became of their quarantine records: still open;
    closed because the same envelope was accepted after all (a re-addressed copy, a held one
    released: `accepted_since`, no longer an alert); closed as refused for good when opened
    again (kept in `quarantined`: never accepted, still an alert). Read from the records, not
    matched by envelope id: a forged copy of an accepted envelope keeps its own open record."""
    refused = {closed.id for closed in outcome.closed}
    still: list[Quarantined] = []
    for rejected in outcome.quarantined:
        record = store.inbound.quarantine_record(rejected.record_id) if rejected.record_id else None
        if record is None or record.resolved_at is None:
            still.append(rejected)
            continue
        rejected.resolution = record.resolution
        if record.id in refused:
            still.append(rejected)
        else:
            outcome.accepted_since.append(rejected)
    outcome.quarantined = still


def _read_collection(
    client: TaxiiClient,
    store: Store,
    ctx: ReceiverContext,
    partner: PartnerConfig,
    collection: str,
    outcome: PartnerPull,
    progress: ProgressReporter,
) -> None:
    assert partner.taxii is not None
    cursor = store.inbound.cursor(partner.name, collection)
    processed = 0  # objects not processed before this run: re-reads do not count
    next_token: str | None = None
    limit = partner.taxii.page_size
    stalled = 0  # pages in a row that brought nothing new (guards against endless loops)
    rereads = 0  # objects read again by following `next` since a page brought one not read yet
    # Every object read in this run: following `next` never brings one twice from an honest
    # server, so a `next` page of nothing but those is a loop (a token repeated, or new tokens
    # over the same objects), not progress.
    read_here: set[tuple[str, str]] = set()
    while True:
        try:
            page = client.get_page(collection, added_after=cursor, next_token=next_token, limit=limit)
        except ResponseTooLarge as exc:
            if limit <= 1:
                # One object alone: every run would stop here again, so waiting (exit 7) does
                # not help; someone must act (exit 2).
                raise ConfigError(
                    f"{partner.name}: reading collection {collection}: {exc.message}, for one "
                    "object alone: it is not read, and every pull stops at it",
                    hint=too_large_hint(
                        partner.name,
                        partner.taxii.max_response_bytes,
                        operator="ask the partner's server operator to remove it",
                    ),
                ) from None
            limit = max(1, limit // 8)  # the same objects, fewer to a page
            continue
        except NetworkError:
            # A 404 or 403 for the collection is not one (CollectionAccessError): it says the
            # same with or without a token, and ends this partner's pull at once (exit 3).
            if next_token is None:
                raise
            # An expired or unknown `next` token (HTTP 400): start again from the durable
            # cursor; objects already processed are skipped. Objects sharing the cursor's
            # date_added may fill the first page again, so ask for larger pages until we get
            # past them.
            next_token = None
            cursor = store.inbound.cursor(partner.name, collection)
            limit = min(limit * 4, _MAX_RECOVERY_PAGE)
            continue
        outcome.pages += 1
        fresh = unread = 0
        for obj in page.objects:
            key = (str(obj.get("id")), str(obj.get("modified") or obj.get("created") or ""))
            unread += key not in read_here
            read_here.add(key)
            fresh += _process(store, ctx, partner, collection, obj, outcome)
            progress.advance()
        processed += fresh
        last = _bounded(page.date_added_last)
        if not page.more:
            if last:
                _move_cursor(store, partner, collection, last)
            return
        if last:
            # Everything before `last` is committed; objects at `last` may continue on the next
            # page (one POST shares one date_added), so the cursor stops just before it.
            _move_cursor(store, partner, collection, last - timedelta(microseconds=1))
        # Re-reading from a cursor may not move forward. Following `next` does: to objects not
        # processed yet or, after a restart from the cursor, through those read before it to
        # the ones not read yet in this run; never through the same ones for ever.
        if next_token is None:
            stalled = stalled + 1 if not fresh else 0
            rereads = rereads if not fresh else 0
        elif unread:
            stalled = rereads = 0
        else:
            rereads += max(1, len(page.objects))
        if stalled > _MAX_STALLED_PAGES:
            raise NetworkError(
                f"{partner.name}: reading collection {collection} makes no progress "
                f"({stalled} pages in a row held nothing new)",
                hint="the server's `next` tokens may expire too fast for the page size",
            )
        if rereads > len(read_here) * (stalled + 1) + _MAX_STALLED_PAGES:
            raise NetworkError(
                f"{partner.name}: reading collection {collection} makes no progress (its `next` "
                f"pages keep bringing back {len(read_here)} object(s) already read in this run)",
                hint="the TAXII server's paging loops; tell its operator",
            )
        if processed >= outcome.object_limit:
            outcome.stopped_early = True  # everything read so far is stored, the cursor with it
            return
        if page.next:
            next_token = page.next
        elif last:
            cursor = store.inbound.cursor(partner.name, collection)  # paginate by added_after
            if not fresh:
                limit = min(limit * 4, _MAX_RECOVERY_PAGE)
        else:
            raise NetworkError(
                f"{partner.name}: the server says there is more but gives no way to read it",
                hint="the TAXII server must return `next` or X-TAXII-Date-Added-Last",
            )


def _bounded(date_added: str | None) -> datetime | None:
    """The server's X-TAXII-Date-Added-Last, no later than our clock: a server, or a man in
    the middle, naming a date ahead would otherwise move the cursor past everything posted
    until then, which no later pull would ever read (not even a few minutes of clock skew:
    what is posted in those minutes would be lost). Earlier than the truth (a server clock
    ahead of ours), the cursor only makes the next pull read again what it then skips."""
    if not date_added:
        return None
    return min(parse_timestamp(date_added), utc_now())


def _move_cursor(store: Store, partner: PartnerConfig, collection: str, moment: datetime) -> None:
    # Microsecond precision, so stepping back one microsecond is exact.
    added_after = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    store.inbound.move_cursor(partner.name, collection, added_after, stix_timestamp(utc_now()))


def _process(
    store: Store,
    ctx: ReceiverContext,
    partner: PartnerConfig,
    collection: str,
    obj: dict[str, Any],
    outcome: PartnerPull,
) -> int:
    """Opens one TAXII object; returns 1 if it had not been processed before, else 0."""
    # Escaped: the server chooses these, and a lone surrogate (valid JSON, "\\ud800") cannot
    # be stored: the pull would fail at this object every time, never reading past it.
    version = escape_controls(str(obj.get("modified") or obj.get("created") or ""))
    origin = TaxiiOrigin(partner.name, collection, escape_controls(str(obj.get("id"))), version)
    if store.inbound.processed(origin):
        outcome.skipped += 1
        return 0
    received_at = stix_timestamp(utc_now())
    if not is_envelope_artifact(obj) or origin.object_id != obj.get("id"):
        store.inbound.mark_processed(origin, "not-an-envelope")
        outcome.skipped += 1
        return 1
    if store.inbound.accepted_artifact(partner.name, str(obj.get("id"))):
        # The same artifact posted twice (a retried POST whose answer was lost): no new content.
        store.inbound.mark_processed(origin, "duplicate")
        outcome.skipped += 1
        return 1
    try:
        opened = open_artifact(obj, ctx)
    except EnvelopeRejected as rejected:
        if rejected.reason is RejectReason.NOT_ADDRESSED_TO_US:
            # Only another agency's: one whose clear text says it is for us but that no key
            # of ours opens is held (sealed-to-unknown-key-of-ours, envelope/open.py), never
            # dropped: marked processed here, it would not be read again once keys/ is right.
            store.inbound.mark_processed(origin, "not-for-us")
            outcome.skipped += 1
            return 1
        if store.inbound.copy_of_accepted(rejected) is not None:
            # The same signed envelope we accepted, re-addressed by its sender after we revoked
            # an encryption key (or posted twice): nothing new, nothing to alert about.
            store.inbound.mark_processed(origin, "duplicate")
            outcome.skipped += 1
            return 1
        describe_gap(store, ctx, rejected, obj, partner.name)
        _quarantine(store, ctx, obj, rejected, partner, received_at, origin, outcome)
        return 1
    if (wrong := misplaced(opened, partner)) is not None:
        _quarantine(store, ctx, obj, wrong, partner, received_at, origin, outcome)
        return 1
    stored = store.inbound.accept(
        opened,
        partner=partner.name,
        received_at=received_at,
        artifact_id=obj.get("id"),
        origin=origin,
        partner_identity=partner.identity_id,
    )
    outcome.new_versions += stored.new_versions
    outcome.not_applied.extend(stored.not_applied)
    outcome.revoked_accepted.extend(stored.revoked_accepted)
    outcome.withheld_erased.extend(stored.withheld_erased)
    outcome.accepted.append(opened.header.envelope_id)
    outcome.objects_received += opened.header.object_count
    return 1


def _quarantine(
    store: Store,
    ctx: ReceiverContext,
    artifact: dict[str, Any],
    rejected: EnvelopeRejected,
    partner: PartnerConfig,
    received_at: str,
    origin: TaxiiOrigin,
    outcome: PartnerPull,
) -> None:
    record_id = store.inbound.quarantine(
        artifact,
        rejected,
        partner=partner.name,
        received_at=received_at,
        origin=origin,
        # Held until a key ring changes: not opened again at the end of this pull, nor later
        # while that ring stays as it is (exchange/held.py).
        tried_with_keys=keys_fingerprint(ctx, rejected.reason.value, rejected.sender),
    )
    outcome.quarantined.append(
        Quarantined(
            rejected.envelope_id,
            rejected.reason.value,
            naming_record(rejected.detail, record_id or None),
            record_id or None,
        )
    )
