"""`doctor`: is this profile ready to run unattended? A list of named checks, each answering
ok, warn, fail or skip with a one-line fix.

No check raises: whatever goes wrong inside one (including a bug) becomes its failed result, so
the checklist is always complete. A failure carries the exit-code family of what failed
(configuration 2, authentication 3, integrity 4, network 7); `DoctorReport.exit_code` is the
family of the first failure in checklist order, because the checks run from the ground up
(config, keys, passphrase, partners, servers, store) and an early failure usually explains the
later ones. Warnings never fail.

Network checks read the API root and the two collections' descriptions, never their objects,
with a short retry budget so a dead server costs seconds, not the sync's full two minutes.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from functools import partial
from typing import Any
from urllib.parse import urljoin

from cti_exchange.audit.verification import verify_audit_trail
from cti_exchange.clock import parse_timestamp, stix_timestamp, utc_now
from cti_exchange.errors import AuthError, CtiExchangeError, ExitCode, NetworkError
from cti_exchange.home.passphrase import PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, read_passphrase
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import Keyring, KeyStatus, KeyUse
from cti_exchange.profile.model import PartnerConfig, Profile
from cti_exchange.store.outbound import FAILED, SEALED
from cti_exchange.store.store import Store
from cti_exchange.taxii.client import MEDIA_TYPE_TAXII, TaxiiClient
from cti_exchange.taxii.retry import RequestFailed, call_with_retries
from cti_exchange.taxii.secrets import resolve_secret

EXPIRY_WARNING_DAYS = 30
SKEW_WARNING_SECONDS = 60
NETWORK_RETRY_SECONDS = 2.0
NETWORK_TIMEOUT_SECONDS = 10.0


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # could not be checked because an earlier check failed, or --offline


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None
    exit_code: ExitCode = ExitCode.USAGE  # the family of a failure

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, CheckStatus.OK, detail)


def warn(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, CheckStatus.WARN, detail, fix)


def fail(name: str, detail: str, fix: str, exit_code: ExitCode = ExitCode.USAGE) -> CheckResult:
    return CheckResult(name, CheckStatus.FAIL, detail, fix, exit_code)


def skip(name: str, detail: str) -> CheckResult:
    return CheckResult(name, CheckStatus.SKIP, detail)


def failed_with(name: str, exc: CtiExchangeError) -> CheckResult:
    return fail(name, " ".join(exc.message.split()), exc.hint or "see the message", exc.exit_code)


@dataclass(frozen=True)
class DoctorReport:
    results: tuple[CheckResult, ...]

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status is CheckStatus.FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> ExitCode:
        return self.failures[0].exit_code if self.failures else ExitCode.OK

    def result(self, name: str) -> CheckResult:
        return next(r for r in self.results if r.name == name)


@dataclass
class DoctorContext:
    home: ProfileHome
    environ: Mapping[str, str]
    now: datetime
    offline: bool
    profile: Profile | None = None
    keyring: Keyring | None = None
    store: Store | None = None
    broken: set[str] = field(default_factory=set)  # what failed, so dependants skip


# -- pure judgements (tested directly) -----------------------------------------------------


def judge_clock_skew(
    name: str, date_header: str | None, local_now: datetime, max_skew_seconds: int
) -> CheckResult:
    """Our clock against a server's HTTP Date (one-second resolution, so a second or two of
    difference is only latency). Envelopes are refused beyond max_skew_seconds (the profile's
    envelope.max_clock_skew_seconds), so that is the failure threshold."""
    if not date_header:
        return warn(
            name,
            "the server sent no Date header; skew unknown",
            "compare clocks by hand (e.g. `date -u`)",
        )
    try:
        server = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return warn(name, f"unreadable Date header {date_header!r}", "compare clocks by hand")
    skew = (local_now - server).total_seconds()
    where = "ahead of" if skew > 0 else "behind"
    detail = f"our clock is {abs(skew):.0f} s {where} the server's"
    fix = "enable time synchronisation (chrony, systemd-timesyncd) here; ask the partner too"
    if abs(skew) > max_skew_seconds:
        return fail(name, f"{detail}, beyond the {max_skew_seconds} s envelopes allow", fix)
    if abs(skew) > SKEW_WARNING_SECONDS:
        return warn(name, f"{detail} (more than {SKEW_WARNING_SECONDS} s)", fix)
    return ok(name, detail)


def judge_key_expiry(name: str, expires: datetime, now: datetime, whose: str, fix: str) -> CheckResult:
    if expires <= now:
        return fail(name, f"{whose} expired at {stix_timestamp(expires)}", fix)
    left = expires - now
    if left < timedelta(days=EXPIRY_WARNING_DAYS):
        return warn(name, f"{whose} expires in {left.days} day(s), at {stix_timestamp(expires)}", fix)
    return ok(name, f"{whose} valid until {expires:%Y-%m-%d}")


def _mode(path: Any) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- the checks -----------------------------------------------------------------------------


def check_config(ctx: DoctorContext) -> Iterable[CheckResult]:
    ctx.profile = ctx.home.load_profile()
    partners = len(ctx.profile.partners)
    yield ok("config", f"{ctx.home.config_path} valid: {ctx.profile.agency_id}, {partners} partner(s)")


def check_key_files(ctx: DoctorContext) -> Iterable[CheckResult]:
    keys = ctx.home.keys
    for path, mode in ((keys.dir, "700"), (keys.private_path, "600")):
        if not path.exists():
            yield fail("key files", f"{path} is missing", "restore it from backup")
            return
        if _mode(path) & 0o077:
            yield fail(
                "key files",
                f"{path} is open to group or others (mode {_mode(path):04o})",
                f"chmod {mode} {path}, and rotate the keys if others could have copied them",
            )
            return
    ctx.keyring = ctx.home.keyring()  # public.json: missing or malformed raises
    yield ok("key files", f"{keys.dir} (0700) holds public.json and private.jwe (0600)")


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


def check_partner_keys(ctx: DoctorContext, partner: PartnerConfig) -> Iterable[CheckResult]:
    name = f"partner {partner.name}: pinned keys"
    fix = (
        f"ask {partner.name} for a fresh `keys export`, then "
        f"`cti-exchange partners update-keys {partner.name} --jwks FILE`"
    )
    keyring = ctx.home.partner_keyring(partner)  # checks the pinned fingerprint is in the file
    results = []
    for use, label in ((KeyUse.SIG, "signing"), (KeyUse.ENC, "encryption")):
        key = keyring.current_or_none(use)
        if key is None:
            results.append(fail(name, f"no current {label} key pinned", fix))
            continue
        results.append(judge_key_expiry(name, key.expires, ctx.now, f"their {label} key {key.kid}", fix))
    worst = next((r for r in results if r.status is CheckStatus.FAIL), None) or next(
        (r for r in results if r.status is CheckStatus.WARN), None
    )
    yield worst or ok(
        name, f"fingerprint {partner.fingerprint[:12]}... pinned; signing and encryption keys valid"
    )


def _partner_client(ctx: DoctorContext, partner: PartnerConfig) -> TaxiiClient:
    settings = partner.taxii
    assert settings is not None
    quick = replace(
        settings,
        retry_budget_seconds=min(settings.retry_budget_seconds, NETWORK_RETRY_SECONDS),
        timeout_seconds=min(settings.timeout_seconds, NETWORK_TIMEOUT_SECONDS),
    )
    secret = resolve_secret(settings, partner=partner.name, base_dir=ctx.home.root, environ=ctx.environ)
    return TaxiiClient(quick, partner=partner.name, secret=secret, base_dir=ctx.home.root)


def _collection_rights(client: TaxiiClient, collection_id: str) -> dict[str, Any]:
    url = urljoin(client.api_root_url, f"collections/{collection_id}/")
    info = call_with_retries(
        lambda: client.conn.get(url, headers={"Accept": MEDIA_TYPE_TAXII}),
        what=f"{client.partner}: reading collection {collection_id}'s description",
        policy=client.policy,
    )
    return info if isinstance(info, dict) else {}


def check_partner_server(ctx: DoctorContext, partner: PartnerConfig) -> Iterable[CheckResult]:
    prefix = f"partner {partner.name}"
    settings = partner.taxii
    fix_set = (
        f"cti-exchange partners set {partner.name} --api-root URL --read-collection ID --write-collection ID"
    )
    if settings is None:
        yield fail(f"{prefix}: TAXII settings", "no TAXII server configured", fix_set)
        return
    missing = [n for n in ("read_collection", "write_collection") if not getattr(settings, n)]
    if missing:
        yield fail(f"{prefix}: TAXII settings", f"no {' or '.join(missing)}", fix_set)
        return
    try:
        client = _partner_client(ctx, partner)
    except CtiExchangeError as exc:
        yield failed_with(f"{prefix}: TAXII settings", exc)
        return
    yield ok(f"{prefix}: TAXII settings", f"{settings.api_root}, auth {settings.auth}")
    if ctx.offline:
        for what in ("reachable", "access", "clock"):
            yield skip(f"{prefix}: {what}", "--offline")
        return
    with client:
        yield from _probe_server(ctx, client, partner, prefix)


def _probe_server(
    ctx: DoctorContext, client: TaxiiClient, partner: PartnerConfig, prefix: str
) -> Iterable[CheckResult]:
    assert ctx.profile is not None and partner.taxii is not None
    refused: AuthError | None = None
    try:
        client.max_content_length()
    except AuthError as exc:
        refused = exc  # it answered: reachable, but will not let us in
    except NetworkError as exc:
        yield fail(
            f"{prefix}: reachable",
            exc.message,
            "check the api_root URL, DNS, the firewall, and that the server is up",
            ExitCode.NETWORK,
        )
        yield skip(f"{prefix}: access", "server unreachable")
        yield skip(f"{prefix}: clock", "server unreachable")
        return
    answered_at = utc_now()
    date_header = client.last_response_date()
    yield ok(f"{prefix}: reachable", f"{client.api_root_url} answered")
    if refused is not None:
        yield failed_with(f"{prefix}: access", refused)
    else:
        yield _check_access(client, partner, prefix)
    yield judge_clock_skew(
        f"{prefix}: clock", date_header, answered_at, ctx.profile.envelope.max_clock_skew_seconds
    )


def _check_access(client: TaxiiClient, partner: PartnerConfig, prefix: str) -> CheckResult:
    assert partner.taxii is not None
    name = f"{prefix}: access"
    fix = f"ask {partner.name} to check our account's rights on its collections"
    for collection, right in (
        (partner.taxii.read_collection, "can_read"),
        (partner.taxii.write_collection, "can_write"),
    ):
        assert collection is not None
        try:
            info = _collection_rights(client, collection)
        except RequestFailed as exc:
            return fail(
                name,
                f"collection {collection}: {exc} (wrong id, or no right on it)",
                fix,
                ExitCode.AUTH,
            )
        except (AuthError, NetworkError) as exc:
            return failed_with(name, exc)
        if not info.get(right):
            return fail(
                name,
                f"our account has no {right.replace('can_', '')} right on collection {collection}",
                fix,
                ExitCode.AUTH,
            )
    return ok(name, "credentials accepted; read and write rights on our two collections")


def check_partners(ctx: DoctorContext) -> Iterable[CheckResult]:
    assert ctx.profile is not None
    if not ctx.profile.partners:
        yield warn(
            "partners",
            "no partner pinned yet",
            "cti-exchange partners add NAME --jwks FILE --fingerprint FP",
        )
        return
    for partner in sorted(ctx.profile.partners.values(), key=lambda p: p.name):
        name = f"partner {partner.name}"
        yield from _guarded(f"{name}: pinned keys", partial(check_partner_keys, ctx, partner))
        yield from _guarded(f"{name}: TAXII settings", partial(check_partner_server, ctx, partner))


_RESTORE_STORE = "restore the store from backup (or try `sqlite3 FILE .recover`), keeping the damaged copy"


def check_store(ctx: DoctorContext) -> Iterable[CheckResult]:
    path = ctx.home.store_path()
    if not path.exists():
        yield fail(
            "store",
            f"{path} does not exist",
            "check [store] path in config.toml, or restore the store from backup",
        )
        return
    try:
        ctx.store = Store(path)
        verdict = ctx.store.db.integrity_check()
    except (sqlite3.DatabaseError, CtiExchangeError) as exc:
        # Database() reports an unreadable file as a ConfigError naming the path already.
        detail = exc.message if isinstance(exc, CtiExchangeError) else f"{path}: {exc}"
        yield fail("store", detail, _RESTORE_STORE, ExitCode.INTEGRITY)
        return
    if verdict != "ok":
        yield fail(
            "store",
            f"{path}: PRAGMA integrity_check: {verdict}",
            _RESTORE_STORE,
            ExitCode.INTEGRITY,
        )
        return
    yield ok("store", f"{path}: integrity_check ok")


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
    yield ok(
        "audit trail",
        f"{report.records} record(s) chained, {report.signed_heads} signed head(s), "
        f"{report.unsigned_tail} record(s) not yet signed",
    )


def check_outbox(ctx: DoctorContext) -> Iterable[CheckResult]:
    assert ctx.store is not None and ctx.profile is not None
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


# -- running them ---------------------------------------------------------------------------

Check = Callable[[DoctorContext], Iterable[CheckResult]]

# (check, the checks whose failure makes it pointless, its name while it cannot run)
CHECKS: list[tuple[Check, tuple[str, ...], str]] = [
    (check_config, (), "config"),
    (check_key_files, ("config",), "key files"),
    (check_passphrase, ("key files",), "passphrase"),
    (check_our_keys, ("key files",), "our keys"),
    (check_partners, ("config",), "partners"),
    (check_store, ("config",), "store"),
    (check_audit_trail, ("store", "key files"), "audit trail"),
    (check_outbox, ("store",), "outbox"),
]


def _guarded(name: str, produce: Callable[[], Iterable[CheckResult]]) -> list[CheckResult]:
    """Runs one check to completion; an exception becomes its failed result."""
    try:
        return list(produce())
    except CtiExchangeError as exc:
        return [failed_with(name, exc)]
    except Exception as exc:  # a bug in a check must not hide the other checks
        return [
            fail(
                name,
                f"internal error: {type(exc).__name__}: {exc}",
                "please report this bug with the message",
                ExitCode.INTERNAL,
            )
        ]


def run_doctor(
    home: ProfileHome,
    *,
    offline: bool = False,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    checks: list[tuple[Check, tuple[str, ...], str]] | None = None,
) -> DoctorReport:
    ctx = DoctorContext(
        home=home,
        environ=os.environ if environ is None else environ,
        now=now or utc_now(),
        offline=offline,
    )
    results: list[CheckResult] = []
    try:
        for check, needs, name in checks or CHECKS:
            blocked = [n for n in needs if n in ctx.broken]
            if blocked:
                results.append(skip(name, f"needs {', '.join(blocked)}"))
                ctx.broken.add(name)
                continue
            produced = _guarded(name, partial(check, ctx))
            if any(r.status is CheckStatus.FAIL for r in produced):
                ctx.broken.add(name)
            results.extend(produced)
    finally:
        if ctx.store is not None:
            ctx.store.close()
    return DoctorReport(tuple(results))
