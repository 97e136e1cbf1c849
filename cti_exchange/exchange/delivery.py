"""Posting sealed envelopes to partners' TAXII collections and following the TAXII status.

Works from the outbound log, not from memory: whatever was sealed and not yet acknowledged
(pushes interrupted, servers down, `push --queue`) is posted, oldest first, until the server
acknowledges it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.envelope.readdress import has_usable_entry, readdressing
from cti_exchange.errors import (
    AuthError,
    ConfigError,
    CtiExchangeError,
    DeliveryFailed,
    ExitCode,
    KeyStoreError,
    PartialFailure,
)
from cti_exchange.exchange.parties import all_keyrings
from cti_exchange.exchange.reseal import reseal_queued
from cti_exchange.exchange.run import RunProgress
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import Keyring, KeyUse
from cti_exchange.policy.sharing import delivery_refusal
from cti_exchange.profile.model import PartnerConfig
from cti_exchange.progress import ProgressReporter
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.outbound import PendingDelivery
from cti_exchange.store.store import Store
from cti_exchange.taxii.client import AddStatus, TaxiiClient
from cti_exchange.taxii.secrets import resolve_secret
from cti_exchange.taxii.servers import ServersThisRun
from cti_exchange.untrusted_text import escape_controls

log = logging.getLogger(__name__)

STATUS_WAIT_SECONDS = 120.0
_ENVELOPE_OVERHEAD = 64  # {"objects":[...]} around the artifacts


@dataclass
class DeliveryOutcome:
    partner: str
    delivered: list[str] = field(default_factory=list)  # envelope ids acknowledged
    failed: dict[str, str] = field(default_factory=dict)  # envelope id -> error
    error: str | None = None  # why the partner could not be reached at all
    auth_failed: bool = False
    withheld: int = 0  # queued objects its entry no longer lets it receive (exchange/reseal.py)
    # Why posting stopped, as an exit-code family: NETWORK (unreachable), AUTH (credentials
    # refused, or the write collection refused: 404/403), USAGE (settings, keys), POLICY (its
    # entry no longer allows what is queued); None when its server answered and refused (too
    # large, a failed TAXII status)
    failure_code: ExitCode | None = None


def failure_exit_code(outcomes: list[DeliveryOutcome]) -> ExitCode:
    """The exit code of a run in which nothing due could be posted: authentication if a server
    refused our credentials; network only if every failure was one; else the first other
    cause named; PARTIAL when the servers answered and refused (too large, a failed status)."""
    codes = [o.failure_code for o in outcomes if o.failed]
    if ExitCode.AUTH in codes:
        return ExitCode.AUTH
    if codes and all(code is ExitCode.NETWORK for code in codes):
        return ExitCode.NETWORK
    return next((code for code in codes if code not in (None, ExitCode.NETWORK)), ExitCode.PARTIAL)


def delivery_failure(
    outcomes: list[DeliveryOutcome], message: str, *, hint: str, partial: bool
) -> CtiExchangeError:
    """The error of a run whose posting failed: a partial failure when part of the work went
    through (`partial`), else the cause's code (`failure_exit_code`)."""
    if partial:
        return PartialFailure(message, hint=hint)
    return DeliveryFailed(message, exit_code=failure_exit_code(outcomes), hint=hint)


def for_partner(partner: str, error: str) -> str:
    """`partner: error`, without naming the partner twice (the TAXII client's errors start
    with it already)."""
    return error if error.startswith(f"{partner}: ") else f"{partner}: {error}"


def describe_failed(failed: dict[str, dict[str, str]]) -> str:
    """Failed deliveries (partner -> envelope id -> error) in one line: per partner, how many
    envelopes and the first error (which may quote a server's answer)."""
    parts = []
    for partner, errors in failed.items():
        first = escape_controls(" ".join(next(iter(errors.values())).split()))
        parts.append(f"{partner}: {len(errors)} envelope(s) ({first})")
    return "; ".join(parts)


def taxii_client_for(
    home: ProfileHome, partner: PartnerConfig, *, servers: ServersThisRun | None = None
) -> TaxiiClient:
    """`servers`: the run's servers found out of reach, shared by its clients (taxii/servers.py)."""
    if partner.taxii is None:
        raise ConfigError(
            f"partner {partner.name} has no TAXII settings",
            hint=f"cti-exchange partners set {partner.name} --api-root URL --read-collection ID "
            "--write-collection ID",
        )
    secret = resolve_secret(partner.taxii, partner=partner.name, base_dir=home.root)
    return TaxiiClient(
        partner.taxii, partner=partner.name, secret=secret, base_dir=home.root, servers=servers
    )


def wait_until_final(
    client: TaxiiClient,
    status: AddStatus,
    *,
    timeout: float = STATUS_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> AddStatus:
    """TAXII 2.1 section 4.3: a status may stay 'pending' for a while; poll with backoff."""
    deadline = time.monotonic() + timeout
    pause = 0.2
    while status.status != "complete" and time.monotonic() < deadline:
        sleep(pause)
        pause = min(pause * 2, 5.0)
        status = client.refresh_status(status.id)
    return status


def _batches(pending: list[PendingDelivery], limit: int) -> list[tuple[list[PendingDelivery], int]]:
    """Groups envelopes into POSTs that stay under the API root's max_content_length, each
    with its request size (a lone envelope may exceed the limit: sealed for a larger one)."""
    batches: list[tuple[list[PendingDelivery], int]] = []
    for delivery in pending:
        length = len(json.dumps(delivery.artifact, separators=(",", ":"))) + 1
        if batches and batches[-1][1] + length <= limit:
            group, size = batches[-1]
            group.append(delivery)
            batches[-1] = (group, size + length)
        else:
            batches.append(([delivery], length + _ENVELOPE_OVERHEAD))
    return batches


def _fail_from(
    store: Store,
    partner: str,
    pending: list[PendingDelivery],
    first: PendingDelivery,
    error: str,
    outcome: DeliveryOutcome,
    code: ExitCode | None,
) -> None:
    """`first` and every envelope after it stay in the outbox, marked with `error` (`code`: its
    exit-code family, DeliveryOutcome.failure_code)."""
    outcome.error = error
    outcome.failure_code = code
    for delivery in pending[pending.index(first) :]:
        store.outbound.mark_failed(delivery.envelope_id, partner, error)
        outcome.failed[delivery.envelope_id] = error


def unreachable(store: Store, partner: str, error: CtiExchangeError) -> DeliveryOutcome:
    """The outcome for a partner whose server could not be reached or used before anything was
    posted (a push reading its request limit: down, our credentials refused, wrong settings):
    what waits for it stays in the outbox, marked with the reason, for the next `sync` or
    `push` to post."""
    outcome = DeliveryOutcome(partner=partner, auth_failed=isinstance(error, AuthError))
    pending = store.outbound.pending(partner)
    if pending:
        _fail_from(store, partner, pending, pending[0], error.diagnostics(), outcome, error.exit_code)
    return outcome


def _readdressed(
    home: ProfileHome,
    store: Store,
    partner: PartnerConfig,
    rings: Mapping[str, Keyring] | CtiExchangeError,
    pending: list[PendingDelivery],
    outcome: DeliveryOutcome,
) -> list[PendingDelivery]:
    """The envelopes to post, each wrapped for current keys where a key it was sealed to has
    been revoked since (envelope/readdress.py). One the partner cannot open (it revoked its key
    and none is pinned in its place) stays in the outbox, and the ones after it wait behind it
    (channel order). `rings`: every pinned ring and ours, or why they could not be read."""
    if isinstance(rings, CtiExchangeError):  # a pinned key file unreadable: nothing posted blind
        _fail_from(store, partner.name, pending, pending[0], rings.diagnostics(), outcome, rings.exit_code)
        return []
    ring = rings[partner.agency_id]
    ready = []
    for delivery in pending:
        try:
            readdressed, kids = readdressing(delivery.artifact, rings, home.private_keys)
            if readdressed is not None:
                store.outbound.readdress(
                    delivery.envelope_id,
                    readdressed.artifact,
                    {"removed": readdressed.removed, "added": readdressed.added},
                    stix_timestamp(utc_now()),
                )
                log.info(
                    "envelope %s re-addressed: revoked key(s) %s removed, key(s) %s added",
                    delivery.envelope_id,
                    ", ".join(readdressed.removed) or "none",
                    ", ".join(readdressed.added) or "none",
                )
                delivery = replace(delivery, artifact=readdressed.artifact)
            if kids is not None and ring.revoked_kids(KeyUse.ENC) and not has_usable_entry(kids, ring):
                raise KeyStoreError(
                    f"envelope {delivery.envelope_id} cannot be posted to {partner.name}: it "
                    "revoked the encryption key it was sealed to, and no current key of it is "
                    "pinned; it waits in the outbox",
                    hint=f"ask {partner.name} for a fresh `keys export`, then "
                    f"`cti-exchange partners update-keys {partner.name} --jwks FILE`",
                )
        except CtiExchangeError as exc:
            _fail_from(store, partner.name, pending, delivery, exc.diagnostics(), outcome, exc.exit_code)
            break
        ready.append(delivery)
    return ready


def _pinned_rings(home: ProfileHome, partner: PartnerConfig) -> Mapping[str, Keyring] | CtiExchangeError:
    """The rings posting to `partner` reads: its own and ours must be readable; another
    partner's unsafe or unreadable key file is left out (parties.all_keyrings), so that it
    holds up only what is posted to that partner, as it does only that partner's pull."""
    try:
        return all_keyrings(home, needed=partner)
    except CtiExchangeError as exc:
        return exc


def deliver_pending(
    home: ProfileHome,
    store: Store,
    partners: list[PartnerConfig],
    reporter: ProgressReporter | None = None,
) -> list[DeliveryOutcome]:
    progress = RunProgress.of(reporter)
    outcomes = []
    for partner in partners:
        pending = store.outbound.pending(partner.name)
        outcome = DeliveryOutcome(partner=partner.name)
        outcomes.append(outcome)
        if not pending:
            continue
        progress.step(f"posting {len(pending)} envelope(s) to {partner.name}")
        pending = _readdressed(home, store, partner, _pinned_rings(home, partner), pending, outcome)
        if not pending:
            continue
        try:
            client = taxii_client_for(home, partner, servers=progress.servers)
            assert partner.taxii is not None
            collection = partner.taxii.write_collection
            if not collection:
                raise ConfigError(
                    f"partner {partner.name} has no write_collection",
                    hint=f"cti-exchange partners set {partner.name} --write-collection ID",
                )
            limit = client.max_content_length()
            store.outbound.remember_max_content_length(partner.name, limit, stix_timestamp(utc_now()))
        except CtiExchangeError as exc:
            outcome.auth_failed = isinstance(exc, AuthError)
            _fail_from(store, partner.name, pending, pending[0], exc.diagnostics(), outcome, exc.exit_code)
            continue
        with client:
            _post_pending(home, store, partner, client, collection, pending, limit, outcome, progress)
    return outcomes


def _post_pending(
    home: ProfileHome,
    store: Store,
    partner: PartnerConfig,
    client: TaxiiClient,
    collection: str,
    pending: list[PendingDelivery],
    limit: int,
    outcome: DeliveryOutcome,
    progress: ProgressReporter,
) -> None:
    """Posts in channel order, in requests under `limit`. An envelope holding what the
    partner's entry no longer lets it receive, or sealed for a larger limit than the server now
    takes, is sealed again (exchange/reseal.py), with those after it; then posting starts again
    from it."""
    pending = _within_policy(home, store, partner, pending, limit, outcome)
    resealed = False
    restart = True
    while restart:
        restart = False
        for batch, size in _batches(pending, limit):
            if size > limit:
                # Never postable as it is (413): said as what it is, not as "unreachable".
                too_large = (
                    f"envelope {batch[0].envelope_id} is {size:,} bytes, more than "
                    f"{partner.name}'s server accepts ({limit:,})"
                )
                queued = pending[pending.index(batch[0]) :]
                try:
                    done = (
                        None
                        if resealed
                        else reseal_queued(home, store, partner, queued, limit, reason=too_large)
                    )
                except CtiExchangeError as exc:
                    why = f"sealing it again failed ({exc.message})"
                else:
                    if done is not None:
                        log.info("%s: sealed again as %s", too_large, ", ".join(done.sealed))
                        pending = [
                            d for d in store.outbound.pending(partner.name) if d.envelope_id in done.sealed
                        ]
                        resealed = restart = True
                        break
                    why = (
                        "even sealed again"
                        if resealed
                        else "it is for other partners too, so it cannot be sealed again alone"
                    )
                _fail_from(
                    store,
                    partner.name,
                    pending,
                    batch[0],
                    f"{too_large}: {why}, and the envelopes after it wait behind it; ask the partner "
                    "to raise max_content_length (see docs/OPERATIONS.md)",
                    outcome,
                    None,  # the server answered: not a network failure
                )
                return
            try:
                status = client.post_objects(collection, [d.artifact for d in batch])
                status = wait_until_final(client, status)
            except CtiExchangeError as exc:
                # The server is down, refuses our credentials, or has no such collection for us
                # (404/403: CollectionAccessError, exit 3): everything stays queued for next time.
                outcome.auth_failed = isinstance(exc, AuthError)
                _fail_from(store, partner.name, pending, batch[0], exc.diagnostics(), outcome, exc.exit_code)
                return
            _record_status(store, partner, batch, status, outcome)
            progress.advance(len(batch))


def _within_policy(
    home: ProfileHome,
    store: Store,
    partner: PartnerConfig,
    pending: list[PendingDelivery],
    limit: int,
    outcome: DeliveryOutcome,
) -> list[PendingDelivery]:
    """The envelopes to post once what the partner may no longer receive is taken out; those
    before the first such envelope, only, if that cannot be done."""
    first = next((d for d in pending if delivery_refusal(Tlp(d.tlp) if d.tlp else None, partner)), None)
    if first is None:
        return pending
    index = pending.index(first)
    assert first.tlp is not None
    reason = (
        f"envelope {first.envelope_id} holds {Tlp(first.tlp).label}, which {partner.name}'s entry no "
        "longer allows (max_tlp or allow_red changed after it was queued)"
    )
    try:
        done = reseal_queued(home, store, partner, pending[index:], limit, reason=reason)
    except CtiExchangeError as exc:
        why = f"sealing it again without that failed ({exc.message})"
    else:
        if done is not None:
            log.warning("%s: %d object(s) withheld, the rest sealed again", reason, done.withheld)
            outcome.withheld += done.withheld
            fresh = [d for d in store.outbound.pending(partner.name) if d.envelope_id in done.sealed]
            return pending[:index] + fresh
        why = "it is for other partners too, so it cannot be sealed again alone"
    # Never posted as it is: the envelopes before it go, it and those after it wait.
    error = f"{reason}: {why}; it and the envelopes after it wait in the outbox"
    for delivery in pending[index:]:
        store.outbound.mark_failed(delivery.envelope_id, partner.name, error)
        outcome.failed[delivery.envelope_id] = error
    outcome.error = error
    outcome.failure_code = ExitCode.POLICY
    return pending[:index]


def _record_status(
    store: Store,
    partner: PartnerConfig,
    batch: list[PendingDelivery],
    status: AddStatus,
    outcome: DeliveryOutcome,
) -> None:
    failed_ids = {str(f.get("id")): str(f.get("message", "")) for f in status.failures}
    for delivery in batch:
        artifact_id = str(delivery.artifact.get("id"))
        if artifact_id in failed_ids or status.status != "complete":
            reason = f"TAXII status {status.status}: " + (
                failed_ids.get(artifact_id) or f"{status.pending_count} still pending"
            )
            store.outbound.mark_failed(delivery.envelope_id, partner.name, reason)
            outcome.failed[delivery.envelope_id] = reason
            continue
        store.outbound.mark_posted(delivery.envelope_id, partner.name, stix_timestamp(utc_now()))
        outcome.delivered.append(delivery.envelope_id)
