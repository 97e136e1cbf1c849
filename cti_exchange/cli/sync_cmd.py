"""`cti-exchange sync`, `status` and `sent`: unattended operation and the sent log."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

import typer

from cti_exchange.cli.app import Terminated
from cti_exchange.cli.context import JsonOption, profile_home
from cti_exchange.cli.exchange_cmd import raise_for_pull
from cti_exchange.cli.output import Output
from cti_exchange.cli.progress import progress_for
from cti_exchange.clock import parse_timestamp, utc_now
from cti_exchange.collector import collector_paused
from cti_exchange.errors import (
    AuthError,
    ConfigError,
    CtiExchangeError,
    KeyStoreError,
)
from cti_exchange.exchange.delivery import delivery_failure, for_partner
from cti_exchange.exchange.sync import SyncResult, sync
from cti_exchange.home.lock import profile_lock
from cti_exchange.home.logs import LOG_NAME, enable_file_log
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.store.outbound import DROPPED, EXPORTED, FAILED, POSTED, RECEIVED, RESEALED, SEALED
from cti_exchange.store.receipts import receipt_only_envelopes
from cti_exchange.store.store import open_store
from cti_exchange.untrusted_text import describe_value

# `status`: posted envelopes that hold only our receipts (never acknowledged) are counted here.
RECEIPTS_POSTED = "receipts_posted"
_SENT_COLUMNS = (
    ("sealed", "sealed"),
    ("posted", "posted"),
    ("received", "received (receipt)"),
    ("failed", "failed"),
    ("exported", "exported (file)"),
    (RECEIPTS_POSTED, "our receipts posted"),
)
# `status --json` gives every partner each of these counts, zeros included.
_COUNTED = (SEALED, POSTED, RECEIVED, FAILED, EXPORTED, RESEALED, DROPPED, RECEIPTS_POSTED)

SYNC_HELP = (
    "Pull from every partner, send receipts, then post the outbox; one line of summary. "
    "Safe every minute from cron: a second run while one is going exits at once (code 5); it "
    "never prompts without a terminal; it logs to <home>/logs/cti-exchange.log.\n\n"
    "Exit codes: 0 success; 1 partial failure; 2 configuration error; 3 authentication "
    "failure; 4 integrity alert (a rejected envelope, a sequence gap, a revoked key); "
    "5 another instance holds the lock; 7 network failure; 70 internal error (a bug); "
    "143 terminated by SIGTERM (systemctl stop, timeout): logged, and the next run resumes."
)


_log = logging.getLogger("cti_exchange.sync")


def enable_sync_log(home: ProfileHome) -> None:
    """The run's log, or a configuration error naming what is wrong with it (not exit 70)."""
    try:
        enable_file_log(home.logs_dir)
    except OSError as exc:
        where = exc.filename or home.logs_dir / LOG_NAME
        raise ConfigError(
            f"cannot open the log {where}: {exc.strerror or exc}",
            hint=f"make {home.logs_dir} a directory (mode 0700) where the user running sync can "
            f"write {LOG_NAME}",
        ) from None


def sync_command(ctx: typer.Context, json_mode: JsonOption = False) -> None:
    home = profile_home(ctx)
    home.load_profile()  # a missing or broken profile is said before the log is opened
    enable_sync_log(home)
    out = Output(json_mode=json_mode)
    try:
        with (
            profile_lock(home.root, wait_seconds=0, what="sync"),
            progress_for(out) as progress,
            collector_paused(),
        ):
            result = sync(home, reporter=progress)
        if json_mode:
            out.data(_sync_json(result))
        else:
            out.line(result.summary())
        raise_for_sync(result)
        raise_for_waiting(result.waiting_without_taxii)
    except CtiExchangeError as exc:
        # cron mails stderr at best: the log keeps every run's ending, failures included.
        _log.error("sync ended with exit code %d: %s", int(exc.exit_code), exc.diagnostics())
        raise
    except Exception as exc:
        _log.error("sync ended with an internal error: %s", type(exc).__name__)
        raise
    except Terminated as exc:
        # systemctl stop, `timeout`, TimeoutStartSec: unwound as after Ctrl-C (CtiGroup).
        _log.error("sync ended: terminated by %s (exit %d)", exc.signal_name, exc.exit_code)
        raise
    except KeyboardInterrupt:
        _log.error("sync ended: interrupted (exit 130)")
        raise


def raise_for_waiting(waiting: dict[str, int]) -> None:
    if not waiting:
        return
    partner, n = next(iter(waiting.items()))
    others = f" (and for {', '.join(list(waiting)[1:])})" if len(waiting) > 1 else ""
    raise ConfigError(
        f"{n} envelope(s) wait in the outbox for {partner}{others}, which has no TAXII server "
        "or write collection to post them to",
        hint=f"cti-exchange partners set {partner} --api-root URL --read-collection ID "
        f"--write-collection ID (or `partners remove {partner} --drop-outbox` to give them up)",
    )


def _sync_json(result: SyncResult) -> dict[str, object]:
    return {
        "summary": result.summary(),
        "pulled": [
            {
                "partner": p.partner,
                "accepted_envelopes": p.accepted,
                "objects_received": p.objects_received,
                "versions_not_applied": [n.to_dict() for n in p.not_applied],
                "accepted_objects_revoked": p.revoked_accepted,
                "withheld_as_erased": p.withheld_erased,
                "stopped_early": p.stopped_early,
                "quarantined": [q.__dict__ for q in p.quarantined],
                "rejected_then_accepted": [q.__dict__ for q in p.accepted_since],
                "closed_records": [c.__dict__ for c in p.closed],
                "error": p.error,
            }
            for p in result.pull.partners
        ],
        "receipts_sent": result.receipts_sent,
        "posted": {d.partner: d.delivered for d in result.deliveries},
        "failed": {d.partner: d.failed for d in result.deliveries if d.failed},
        "withheld": {d.partner: d.withheld for d in result.deliveries if d.withheld},
        "waiting_without_taxii": result.waiting_without_taxii,
        "cannot_seal": result.cannot_seal,
    }


def raise_for_sync(result: SyncResult) -> None:
    raise_for_pull(result.pull)  # integrity alerts first, then pull failures
    if result.cannot_seal:  # one line naming the key and `keys rotate`
        raise KeyStoreError(result.cannot_seal)
    failed = [d for d in result.deliveries if d.failed]
    if failed:
        names = "; ".join(for_partner(d.partner, d.error or next(iter(d.failed.values()))) for d in failed)
        if any(d.auth_failed for d in failed):
            raise AuthError(f"posting failed for {names}")
        # Not partial: the cause's exit code, 7 only when every server was out of reach.
        partial = any(d.delivered for d in result.deliveries) or len(failed) < len(result.deliveries)
        raise delivery_failure(
            result.deliveries, f"posting failed for {names}", hint="it stays in the outbox", partial=partial
        )


def status(ctx: typer.Context, json_mode: JsonOption = False) -> None:
    """What is still undelivered, what waits in quarantine, and when each partner last synced."""
    home = profile_home(ctx)
    profile = home.load_profile()
    threshold = timedelta(hours=profile.operations.undelivered_after_hours)
    now = utc_now()
    with open_store(home) as store:
        deliveries = store.outbound.deliveries()
        receipts_only = receipt_only_envelopes(store.db.conn)
        quarantined = store.inbound.quarantined()
        pulls = {name: store.audit.last_pull(name) for name in profile.partners}
    last_pull = {name: ok for name, (ok, _) in pulls.items()}
    last_pull_error = {name: error for name, (_, error) in pulls.items()}
    # Resealed and dropped envelopes were never posted and never will be, and a posted
    # envelope of receipts is never acknowledged itself: nothing to wait for.
    awaited = [
        d
        for d in deliveries
        if d.status not in (RECEIVED, EXPORTED, RESEALED, DROPPED)
        and not (d.status == POSTED and d.envelope_id in receipts_only)
    ]
    overdue = [d for d in awaited if now - parse_timestamp(d.created_at) > threshold]
    # A partner removed since never sends the receipt: its envelopes are listed apart, not as
    # undelivered, so a monitor alerting on `undelivered` is not woken for ever by an agency we
    # chose to stop talking to. The sent log keeps them as they are (pinned again, the partner
    # may still acknowledge them).
    late = [d for d in overdue if d.partner in profile.partners]
    to_removed = [d for d in overdue if d.partner not in profile.partners]
    counts: dict[str, dict[str, int]] = {}
    for d in deliveries:
        # A posted envelope of our receipts stays "posted" for good: counted apart, so that
        # the posted column holds only envelopes that still wait for the partner's receipt.
        kind = RECEIPTS_POSTED if d.status == POSTED and d.envelope_id in receipts_only else d.status
        counts.setdefault(d.partner, {}).setdefault(kind, 0)
        counts[d.partner][kind] += 1
    # For scripts, every partner (ours now, or sent to before) with every count, zeros included:
    # `["posted"]` is 0, never a KeyError.
    by_partner = {
        name: {kind: counts.get(name, {}).get(kind, 0) for kind in _COUNTED}
        for name in sorted({*profile.partners, *counts})
    }
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data(
            {
                "deliveries_by_partner": by_partner,
                "undelivered_after_hours": profile.operations.undelivered_after_hours,
                "undelivered": [d.__dict__ for d in late],
                "unconfirmed_to_removed_partners": [d.__dict__ for d in to_removed],
                "quarantined": len(quarantined),
                "last_pull": last_pull,
                "last_pull_error": last_pull_error,
            }
        )
        return
    out.heading("Partners", first=True)
    out.table(
        ["partner", "last pull", "last attempt failed"],
        [
            [name, at or "never", describe_value(last_pull_error[name] or "", 160)]
            for name, at in sorted(last_pull.items())
        ],
        title="Partners",
    )
    out.heading("Sent envelopes")
    out.table(
        ["partner", *(heading for _, heading in _SENT_COLUMNS)],
        [[p, *(str(c.get(kind, 0)) for kind, _ in _SENT_COLUMNS)] for p, c in sorted(counts.items())],
        title="Sent envelopes",
    )
    if not out.is_terminal:
        out.line("")
    if late:
        out.line(f"{len(late)} envelope(s) without a receipt after {threshold.total_seconds() / 3600:g} h:")
        out.table(
            ["envelope", "partner", "status", "created", "last error"],
            [[d.envelope_id, d.partner, d.status, d.created_at, d.last_error or ""] for d in late],
        )
    else:
        waiting = len(awaited) - len(overdue)
        younger = f" ({waiting} younger one(s) still wait for theirs)" if waiting else ""
        which = "to a partner we still have " if to_removed else ""
        out.line(
            f"Every envelope {which}older than {threshold.total_seconds() / 3600:g} h has a receipt{younger}."
        )
    if to_removed:
        removed = sorted({d.partner for d in to_removed})
        out.line(
            f"{len(to_removed)} envelope(s) to removed partner(s) {', '.join(removed)} never got a "
            "receipt; not counted as undelivered (`cti-exchange sent --partner "
            f"{removed[0]}` lists them)"
        )
    out.line(f"Quarantined envelopes waiting for review: {len(quarantined)}")


def sent(
    ctx: typer.Context,
    partner: Annotated[str | None, typer.Option("--partner", help="Only this partner.")] = None,
    json_mode: JsonOption = False,
) -> None:
    """The sent log: every envelope we shared, with whom, when, and its delivery status."""
    home = profile_home(ctx)
    home.load_profile()
    with open_store(home) as store:
        deliveries = store.outbound.deliveries(partner)
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data([d.__dict__ for d in deliveries])
        return
    out.table(
        ["envelope", "partner", "objects", "created", "status", "posted", "receipt", "note"],
        [
            [
                d.envelope_id,
                d.partner,
                str(d.object_count),
                d.created_at,
                d.status,
                d.posted_at or "",
                d.received_at or "",
                # Why it failed, or what replaced it (`resealed`): partner text may be quoted.
                describe_value(d.last_error or "", 160),
            ]
            for d in deliveries
        ],
        optional=("created", "posted", "objects"),  # on a narrow terminal: `sent --json` has them
    )


# The full path: cron's PATH is short. examples/crontab has the environment it needs.
_SYNC_EXAMPLE = (
    "Example (crontab; examples/crontab sets the environment): "
    "*/5 * * * * /opt/cti-exchange/bin/cti-exchange sync >/dev/null (the summary dropped, errors mailed)"
)


def register(app: typer.Typer) -> None:
    app.command("sync", help=SYNC_HELP, epilog=_SYNC_EXAMPLE)(sync_command)
    app.command("status", epilog="Example: cti-exchange status --json")(status)
    app.command("sent", epilog="Example: cti-exchange sent --partner cert-in")(sent)
