"""The doctor's checks of this machine: config, key files and their modes, the passphrase
for unattended runs, our keys' expiry, the log sync writes, the store's integrity, the audit
chain, the outbox, what killed exports left."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from cti_exchange.audit.verification import verify_audit_trail
from cti_exchange.clock import parse_timestamp
from cti_exchange.doctor.checklist import (
    CheckResult,
    DoctorContext,
    fail,
    failed_with,
    judge_key_expiry,
    ok,
    warn,
)
from cti_exchange.errors import CtiExchangeError, ExitCode, KeyStoreError
from cti_exchange.exchange.sync import waiting_without_taxii
from cti_exchange.exporters.body_files import stale_bodies
from cti_exchange.home.logs import LOG_NAME
from cti_exchange.home.passphrase import PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, read_passphrase
from cti_exchange.home.safe_files import check_private_dir, check_private_file
from cti_exchange.keys.model import KeyStatus, KeyUse
from cti_exchange.store.database import UnreadableStore
from cti_exchange.store.outbound import FAILED, SEALED
from cti_exchange.store.schema_check import RESTORE, damaged_store, missing_from
from cti_exchange.store.store import open_store
from cti_exchange.store.store_file import STORE_MARKER


def _mode(path: Any) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def check_config(ctx: DoctorContext) -> Iterable[CheckResult]:
    ctx.profile = ctx.home.load_profile()
    partners = len(ctx.profile.partners)
    yield ok("config", f"{ctx.home.config_path} valid: {ctx.profile.agency_id}, {partners} partner(s)")


def check_key_files(ctx: DoctorContext) -> Iterable[CheckResult]:
    keys = ctx.home.keys
    for path in (keys.dir, keys.private_path):
        if not path.exists():
            yield fail("key files", f"{path} is missing", "restore it from backup")
            return
    # The directories are judged by the rule unlocking applies (key_store.check_key_dir), so
    # doctor fails exactly what `sync` would refuse; a ConfigError becomes this check's failure.
    keys.check_dirs()
    private = keys.private_path
    try:
        # The rule unlocking applies (read_private_file): ours or root's, not a link, no
        # group or other access except through an ACL that names only us.
        check_private_file(private, what="private key file")
    except KeyStoreError as exc:
        yield fail(
            "key files",
            exc.message,
            f"{exc.hint or 'see the message'}; rotate the keys if others could have copied them",
        )
        return
    ctx.keyring = ctx.home.keyring()  # public.json: missing or malformed raises
    yield ok(
        "key files",
        f"{keys.dir} ({_mode(keys.dir):04o}) holds public.json and private.jwe ({_mode(private):04o})",
    )


def check_passphrase(ctx: DoctorContext) -> Iterable[CheckResult]:
    name = "passphrase"
    if ctx.environ.get(PASSPHRASE_FILE_ENV):
        source = f"file {ctx.environ[PASSPHRASE_FILE_ENV]}"
    elif ctx.environ.get(PASSPHRASE_ENV):
        source = f"environment variable {PASSPHRASE_ENV}"
    else:
        yield fail(
            name,
            "no passphrase for unattended runs: without a terminal, sync could not unlock the keys",
            f"set {PASSPHRASE_FILE_ENV} to a 0600 file holding it (run doctor with the same "
            "environment as cron or the systemd unit)",
            ExitCode.AUTH,
        )
        return
    passphrase = read_passphrase(environ=ctx.environ)  # never prompts: a source is set
    private = ctx.home.keys.unlock(passphrase)
    assert ctx.keyring is not None
    missing = [k.kid for k in ctx.keyring.keys if k.status is KeyStatus.CURRENT and k.kid not in private]
    if missing:
        yield fail(
            name,
            f"the private half of {', '.join(missing)} is missing",
            "restore private.jwe from backup",
            ExitCode.INTEGRITY,
        )
        return
    if source.startswith("environment"):
        # Every process the job starts inherits it, and /proc/PID/environ shows it to the
        # service user's other processes and to root; a file is read once and can be 0400.
        yield warn(
            name,
            f"from the {source}; it unlocks our keys, but every process started from this "
            "environment inherits it",
            f"put it in a 0600 file named by {PASSPHRASE_FILE_ENV} and unset {PASSPHRASE_ENV}",
        )
        return
    yield ok(name, f"from the {source}; it unlocks our keys")


def check_our_keys(ctx: DoctorContext) -> Iterable[CheckResult]:
    assert ctx.keyring is not None
    for use, label in ((KeyUse.SIG, "signing"), (KeyUse.ENC, "encryption")):
        name = f"our {label} key"
        key = ctx.keyring.current_or_none(use)
        if key is None:
            yield fail(name, f"no current {label} key", f"cti-exchange keys rotate --use {use.value}")
            continue
        yield judge_key_expiry(
            name,
            key.expires,
            ctx.now,
            f"{key.kid}",
            f"cti-exchange keys rotate --use {use.value}, then send partners a fresh `keys export`",
        )


def check_log(ctx: DoctorContext) -> Iterable[CheckResult]:
    """What `sync` needs to open its log (home/logs.py), judged without creating anything: a
    sync that cannot open it ends with exit 2 before doing any work."""
    name = "log"
    logs = ctx.home.logs_dir
    path = logs / LOG_NAME
    fix = f"make {logs} a directory (mode 0700) where the user running sync can write {LOG_NAME}"
    if not logs.exists() and not logs.is_symlink():
        if os.access(ctx.home.root, os.W_OK | os.X_OK):
            yield ok(name, f"{logs} will be created by the first sync")
        else:
            yield fail(name, f"{logs} does not exist and {ctx.home.root} is not writable", fix)
        return
    if not logs.is_dir():
        yield fail(name, f"{logs} is not a directory", fix)
        return
    if logs.stat().st_uid != os.geteuid():  # ours is tightened to 0700 by sync itself
        check_private_dir(logs, what="log directory")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            yield fail(name, f"{path} is not a regular file", fix)
            return
        if not os.access(path, os.W_OK):
            yield fail(name, f"{path} is not writable", fix)
            return
    elif not os.access(logs, os.W_OK | os.X_OK):
        yield fail(name, f"{logs} is not writable: {LOG_NAME} cannot be created there", fix)
        return
    yield ok(name, f"{path} can be written")


def check_store(ctx: DoctorContext) -> Iterable[CheckResult]:
    """Judged as every command would open it (the same refusals, the same exit codes), then
    PRAGMA integrity_check, then the schema against what the migrations make."""
    path = ctx.home.store_path()
    if not path.exists() and not (ctx.home.root / STORE_MARKER).exists():
        yield fail(
            "store",
            f"{path} does not exist",
            "check [store] path in config.toml, or restore the store from backup",
        )
        return
    try:
        ctx.store = open_store(ctx.home)
        verdict = ctx.store.db.integrity_check()
        missing = missing_from(ctx.store.db.conn) if verdict == "ok" else []
    except (sqlite3.DatabaseError, UnreadableStore) as exc:
        # Database() reports a file it cannot open as a store as an error naming the path.
        detail = exc.message if isinstance(exc, CtiExchangeError) else f"{path}: {exc}"
        yield fail("store", detail, RESTORE, ExitCode.INTEGRITY)
        return
    except CtiExchangeError as exc:
        # Whose it is, a read-only disk, a lock, a newer release, a lost store: what every
        # command would say about it, not damage to restore.
        yield failed_with("store", exc)
        return
    if verdict != "ok":
        yield fail(
            "store",
            f"{path}: PRAGMA integrity_check: {verdict}",
            RESTORE,
            ExitCode.INTEGRITY,
        )
        return
    if missing:
        yield failed_with("store", damaged_store(path, missing))
        return
    yield ok("store", f"{path}: integrity_check ok, schema {ctx.store.db.schema_version} complete")


def check_audit_trail(ctx: DoctorContext) -> Iterable[CheckResult]:
    assert ctx.store is not None
    report = verify_audit_trail(ctx.home, ctx.store)
    if report.first_bad is not None:
        yield fail(
            "audit trail",
            f"first bad record {report.first_bad.seq}: {report.first_bad.reason}",
            "run `cti-exchange audit verify`; keep a copy of the store as evidence",
            ExitCode.INTEGRITY,
        )
        return
    if report.warnings:
        first = report.warnings[0]
        yield warn(
            "audit trail",
            f"record {first.seq}: {first.reason}",
            "run `cti-exchange audit verify`; once you have checked the trail, "
            "`cti-exchange audit verify --sign-anyway` signs its head",
        )
        return
    yield ok(
        "audit trail",
        f"{report.records} record(s) chained, {report.signed_heads} signed head(s), "
        f"{report.unsigned_tail} record(s) not yet signed",
    )


def check_outbox(ctx: DoctorContext) -> Iterable[CheckResult]:
    assert ctx.store is not None and ctx.profile is not None
    # Envelopes queued for a partner with nowhere to post them: every `sync` ends with exit 2
    # (cli/sync_cmd.raise_for_waiting) until it has a server, whatever their age.
    for name, waiting in waiting_without_taxii(ctx.profile, ctx.store).items():
        yield fail(
            "outbox",
            f"{waiting} envelope(s) wait in the outbox for {name}, which has no TAXII "
            "server or write collection to post them to: every `sync` fails (exit 2) until then",
            f"cti-exchange partners set {name} --api-root URL --read-collection ID "
            f"--write-collection ID (or `partners remove {name} --drop-outbox` to give them up)",
        )
        return
    hours = ctx.profile.operations.undelivered_after_hours
    cutoff = ctx.now - timedelta(hours=hours)
    stale = [
        d
        for d in ctx.store.outbound.deliveries()
        if d.status in (SEALED, FAILED) and parse_timestamp(d.created_at) < cutoff
    ]
    if stale:
        partners = sorted({d.partner for d in stale})
        oldest = min(d.created_at for d in stale)
        yield warn(
            "outbox",
            f"{len(stale)} envelope(s) undelivered for more than {hours} h "
            f"(to {', '.join(partners)}; oldest {oldest})",
            "check that `cti-exchange sync` runs and that those partners' servers are reachable",
        )
        return
    yield ok("outbox", f"nothing undelivered for more than {hours} h")


def check_quarantine(ctx: DoctorContext) -> Iterable[CheckResult]:
    """Envelopes held in quarantine (a sequence gap, an unknown key, a failed check): sync
    alerts (exit 4) when one arrives, then ends 0 while the channel behind it waits. Monitoring
    that runs doctor learns of it here, for as long as it lasts."""
    assert ctx.store is not None and ctx.profile is not None
    held = ctx.store.inbound.quarantined()
    if not held:
        yield ok("quarantine", "nothing waiting for review")
        return
    oldest = min(held, key=lambda r: r.received_at)
    senders = sorted({r.partner or r.sender or "?" for r in held})
    reasons = sorted({r.reason for r in held})
    detail = (
        f"{len(held)} envelope(s) held for review from {', '.join(senders)} ({', '.join(reasons)}; "
        f"oldest {oldest.received_at}): what those partners send after them waits too"
    )
    fixes = ["cti-exchange quarantine list"]
    if "sequence-gap" in reasons:
        fixes.append("a gap the partner confirms will not fill: quarantine accept-gap ID")
    if {"sequence-reorder", "chain-mismatch"} & set(reasons):
        # Not accept-gap: these were refused for good, and a gap cannot take them.
        fixes.append(
            "sequence-reorder or chain-mismatch: if the partner restored its store from a backup, "
            "made its profile again or had its signing key stolen (ask it), quarantine accept-restart ID"
        )
    fix = "; ".join(fixes)
    hours = ctx.profile.operations.undelivered_after_hours
    if parse_timestamp(oldest.received_at) < ctx.now - timedelta(hours=hours):
        yield fail("quarantine", f"{detail}, for more than {hours} h", fix, ExitCode.INTEGRITY)
        return
    yield warn("quarantine", detail, fix)


# The export records read for the directories exports went to: enough for any schedule, and a
# bounded read of a trail that can hold millions of records.
_EXPORT_RECORDS_READ = 1000


def _export_directories(ctx: DoctorContext) -> list[Path]:
    """The directories the latest exports wrote files to, as their audit records name them
    (absolute paths; `-` is a stream). An export killed before its first record left no trace
    here."""
    assert ctx.store is not None
    rows = ctx.store.db.conn.execute(
        "SELECT details FROM audit_log WHERE action = 'export' ORDER BY seq DESC LIMIT ?",
        (_EXPORT_RECORDS_READ,),
    ).fetchall()
    directories: dict[Path, None] = {}
    for (details,) in rows:
        try:
            files = json.loads(details).get("files") or []
            paths = [f["path"] for f in files if isinstance(f, dict) and isinstance(f.get("path"), str)]
        except (ValueError, AttributeError, TypeError):
            continue  # a record edited by hand: `audit trail` says so
        directories.update((Path(p).parent, None) for p in paths if p != "-" and os.path.isabs(p))
    return list(directories)


def check_export_leftovers(ctx: DoctorContext) -> Iterable[CheckResult]:
    """Partial bodies (`.cti-export-body.*`, TLP-marked) that killed exports left beside the
    files SOC tools read, in the directories exports were recorded writing to. Nothing is
    removed here: the next export to that directory removes them (exporters/body_files.py)."""
    directories = _export_directories(ctx)
    left = [body for directory in directories for body in stale_bodies(directory)]
    if not left:
        yield ok("export leftovers", f"no partial export file in {len(directories)} export directory(ies)")
        return
    size = sum(body.size for body in left)
    shown = ", ".join(str(body.path) for body in left[:3])
    if len(left) > 3:
        shown += f" and {len(left) - 3} more"
    yield warn(
        "export leftovers",
        f"{len(left)} partial export file(s) ({size:,} bytes) left by exports that were killed: {shown}",
        "run the export to that directory again (it removes them), or delete them",
    )
