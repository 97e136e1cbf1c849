"""sync: the unattended run. Pull from every partner, send the receipts we owe, then post the
outbox (queued pushes, receipts, and anything that failed before). Safe to run every minute:
every step is idempotent, so a run with nothing new changes nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cti_exchange.audit.trail import sign_audit_head
from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.exchange.delivery import DeliveryOutcome, deliver_pending
from cti_exchange.exchange.parties import own_keys_expiring, sealing_key_problem
from cti_exchange.exchange.pull import PullResult, keep_search_index_current, pull
from cti_exchange.exchange.receipts import send_owed_receipts
from cti_exchange.exchange.run import RunProgress
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.profile.model import Profile
from cti_exchange.progress import ProgressReporter
from cti_exchange.store.store import Store, open_store

log = logging.getLogger(__name__)

KEY_EXPIRY_WARNING = timedelta(days=14)


@dataclass
class SyncResult:
    pull: PullResult
    receipts_sent: dict[str, int] = field(default_factory=dict)
    deliveries: list[DeliveryOutcome] = field(default_factory=list)
    # Envelopes left in the outbox (sealed or failed) for partners sync does not post to (no
    # TAXII settings or no write collection), by partner: they would wait there for good.
    waiting_without_taxii: dict[str, int] = field(default_factory=dict)
    # Why our keys cannot seal (expired, or dated ahead of our clock): receipts stay owed, and
    # the run ends with exit 2 once its integrity alerts are said (exchange/parties.py).
    cannot_seal: str | None = None

    def summary(self) -> str:
        accepted = sum(len(p.accepted) for p in self.pull.partners)
        objects = sum(p.objects_received for p in self.pull.partners)
        rejected = sum(len(p.quarantined) for p in self.pull.partners)
        accepted_since = sum(len(p.accepted_since) for p in self.pull.partners)
        closed = sum(len(p.closed) for p in self.pull.partners)
        posted = sum(len(d.delivered) for d in self.deliveries)
        waiting = self.waiting_without_taxii
        left = sum(len(d.failed) for d in self.deliveries) + sum(waiting.values())
        # Partners whose pull or posting stopped on an error (stderr says which and why): not
        # all "unreachable", a server that answered and refused is named here too.
        errors = [p.partner for p in self.pull.partners if p.error] + [
            d.partner for d in self.deliveries if d.error
        ]
        then_accepted = f" ({accepted_since} more rejected, then accepted)" if accepted_since else ""
        unposted = (
            " (without a TAXII server to post to: "
            + ", ".join(f"{n} envelope(s) waiting for {partner}" for partner, n in waiting.items())
            + ")"
            if waiting
            else ""
        )
        text = (
            f"sync: pulled {accepted} envelope(s), {objects} object(s), {rejected} rejected{then_accepted}; "
            f"posted {posted} envelope(s), {left} left in the outbox{unposted}; "
            f"{sum(self.receipts_sent.values())} receipt(s) queued"  # posted with the outbox above
        )
        if closed:
            text += f"; {closed} held envelope(s) refused for good when reopened (`quarantine list --all`)"
        erased = sum(len(p.withheld_erased) for p in self.pull.partners)
        if erased:
            text += f"; {erased} object(s) not stored: erased on request (`triage erased`)"
        withheld = {d.partner: d.withheld for d in self.deliveries if d.withheld}
        if withheld:
            text += "; withheld by the sharing policy: " + ", ".join(
                f"{n} object(s) for {partner}" for partner, n in sorted(withheld.items())
            )
        if errors:
            text += f"; errors with: {', '.join(sorted(set(errors)))}"
        return text


def sync(
    home: ProfileHome, *, reporter: ProgressReporter | None = None, now: datetime | None = None
) -> SyncResult:
    profile = home.load_profile()
    readable = [p.name for p in profile.partners.values() if p.taxii and p.taxii.read_collection]
    # One for the whole run: a server found out of reach while pulling is not tried again
    # when posting (taxii/servers.py).
    run = RunProgress.of(reporter)
    pulled = PullResult([])
    if readable:  # the text-search index last, after posting (keep_search_index_current below)
        pulled = pull(home, readable, reporter=run, now=now, index_text=False)
    for partner in pulled.partners:
        if partner.error:
            log.warning("pull from %s failed: %s", partner.partner, partner.error)
        if warning := partner.not_applied_warning():
            log.warning("%s", warning)
        if warning := partner.closed_warning():
            log.warning("%s", warning)
        if note := partner.accepted_since_note():
            log.info("%s", note)
        if note := partner.revoked_note():
            log.warning("%s", note)  # a blocklist the SOC relies on shrinks
        if note := partner.withheld_note():
            log.info("%s", note)
        if note := partner.stopped_early_note():
            log.warning("%s", note)
        for rejected in partner.quarantined:
            log.warning(
                "rejected envelope %s from %s: %s: %s",
                rejected.envelope_id,
                partner.partner,
                rejected.reason,
                rejected.detail,
            )
    result = SyncResult(pull=pulled)
    moment = now or utc_now()
    problem = sealing_key_problem(home, moment)
    if problem is not None:
        result.cannot_seal = problem.diagnostics()
        log.error("%s", result.cannot_seal)
    for key in own_keys_expiring(home, moment, KEY_EXPIRY_WARNING):
        # In the log only: stderr every five minutes for two weeks would be mail nobody reads
        # (`doctor`, run daily, warns from 30 days).
        log.warning(
            "our %s key %s expires at %s: run `cti-exchange keys rotate` before, then send partners "
            "a fresh `keys export`",
            key.use.value,
            key.kid,
            stix_timestamp(key.expires),
        )
    with open_store(home) as store:
        if problem is None:  # sealed by an expired key, a receipt would be quarantined
            result.receipts_sent = send_owed_receipts(home, store, queue_only=True).by_partner
        writable = [p for p in profile.partners.values() if p.taxii and p.taxii.write_collection]
        result.deliveries = deliver_pending(home, store, writable, run)
        result.waiting_without_taxii = waiting_without_taxii(profile, store)
        sign_audit_head(home, store)
        keep_search_index_current(store)  # last: posting comes first
    for outcome in result.deliveries:
        if outcome.error:
            log.warning("posting to %s failed: %s", outcome.partner, outcome.error)
    log.info("%s", result.summary())
    return result


def waiting_without_taxii(profile: Profile, store: Store) -> dict[str, int]:
    """Partner -> envelopes waiting in its outbox though it has no TAXII server or write
    collection to post them to (every `sync` ends with exit 2 until then; `doctor` says so)."""
    unposted = sorted(p.name for p in profile.partners.values() if not (p.taxii and p.taxii.write_collection))
    waiting = {name: len(store.outbound.pending(name)) for name in unposted}
    return {name: n for name, n in waiting.items() if n}
