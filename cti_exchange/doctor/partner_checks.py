"""The doctor's checks of each partner: pinned keys, TAXII settings, and (unless --offline)
its server: reachable, our credentials and collection rights, the clock skew.

They read the API root and the two collections' descriptions, never their objects, with a
short retry budget so a dead server costs seconds, not the sync's full two minutes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path

from cti_exchange.clock import utc_now
from cti_exchange.doctor.checklist import (
    CheckResult,
    CheckStatus,
    DoctorContext,
    fail,
    failed_with,
    guarded,
    judge_key_expiry,
    ok,
    skip,
    warn,
)
from cti_exchange.errors import (
    AuthError,
    ConfigError,
    CtiExchangeError,
    ExitCode,
    KeyStoreError,
    NetworkError,
)
from cti_exchange.home.safe_files import read_trusted_file
from cti_exchange.keys.model import Keyring, KeyStatus, KeyUse
from cti_exchange.profile.model import PartnerConfig, collection_id_problem
from cti_exchange.taxii.client import TaxiiClient
from cti_exchange.taxii.endpoint import shown_url
from cti_exchange.taxii.retry import DiagnosedNetworkError, RequestFailed
from cti_exchange.taxii.secrets import resolve_secret

SKEW_WARNING_SECONDS = 60
NETWORK_RETRY_SECONDS = 2.0
NETWORK_TIMEOUT_SECONDS = 10.0


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
    if server.tzinfo is None:
        # `-0000` (RFC 5322: "no zone information"), or two Date headers joined by requests.
        return warn(name, f"Date header without a time zone: {date_header!r}", "compare clocks by hand")
    skew = (local_now - server).total_seconds()
    where = "ahead of" if skew > 0 else "behind"
    detail = f"our clock is {abs(skew):.0f} s {where} the server's"
    fix = "enable time synchronisation (chrony, systemd-timesyncd) here; ask the partner too"
    if abs(skew) > max_skew_seconds:
        return fail(name, f"{detail}, beyond the {max_skew_seconds} s envelopes allow", fix)
    if abs(skew) > SKEW_WARNING_SECONDS:
        return warn(name, f"{detail} (more than {SKEW_WARNING_SECONDS} s)", fix)
    return ok(name, detail)


def check_partner_keys(ctx: DoctorContext, partner: PartnerConfig) -> Iterable[CheckResult]:
    name = f"partner {partner.name}: pinned keys"
    fix = (
        f"ask {partner.name} for a fresh `keys export`, then "
        f"`cti-exchange partners update-keys {partner.name} --jwks FILE`"
    )
    keyring = ctx.home.partner_keyring(partner)  # checks the pinned fingerprint is in the file
    evidence = ctx.home.partner_evidence_path(partner.name)
    if not evidence.exists():
        yield warn(
            name,
            f"{evidence}, the signed key file the pinned keys came in, is missing: they cannot be "
            "checked against it",
            fix,
        )
        return
    if (differs := _differs_from_evidence(keyring, evidence, partner)) is not None:
        yield fail(
            name,
            differs,
            f"treat it as a security event: find out who changed {ctx.home.resolve_path(partner.jwks)}; "
            f"then {fix}",
            ExitCode.INTEGRITY,
        )
        return
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
    yield worst or ok(name, f"fingerprint {partner.fingerprint} pinned; signing and encryption keys valid")


def _differs_from_evidence(keyring: Keyring, evidence: Path, partner: PartnerConfig) -> str | None:
    """How the pinned keys differ from the signed key file they last came in, or None. Every
    key pinned as current must be in that file, with the same key material and not revoked
    there, and the file must still verify: a key swapped in the pinned file alone (ours to
    write, read as is by every run) would have our envelopes sealed to its holder."""
    from cti_exchange.keys.key_document import verify_key_document  # jwcrypto: only here

    raw = read_trusted_file(
        evidence,
        what=f"signed key file of partner {partner.name}",
        directory="partner key directory",
        hint="then pin the partner's keys again",
    )
    try:
        document = verify_key_document(raw, source=str(evidence))
    except KeyStoreError as exc:
        return f"the signed key file the pinned keys came in no longer verifies: {exc.message}"
    if document.keyring.by_thumbprint(partner.fingerprint) is None:
        return f"{evidence} does not hold the pinned key (fingerprint {partner.fingerprint})"
    for key in keyring.keys:
        if key.status is not KeyStatus.CURRENT:
            continue
        signed = document.keyring.find(key.kid)
        if signed is None or signed.thumbprint != key.thumbprint or signed.status is KeyStatus.REVOKED:
            return (
                f"pinned key {key.kid} ({key.use.value}) is not the one in the signed key file it "
                f"came in ({evidence})"
            )
    return None


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


def check_partner_server(ctx: DoctorContext, partner: PartnerConfig) -> Iterable[CheckResult]:
    prefix = f"partner {partner.name}"
    settings = partner.taxii
    fix_set = (
        f"cti-exchange partners set {partner.name} --api-root URL --read-collection ID --write-collection ID"
    )
    if settings is None:
        # A partner reached by files only (`seal` / `open`) is a valid set-up; one whose TAXII
        # settings were forgotten shows here, and envelopes waiting for it fail `outbox`.
        yield warn(
            f"{prefix}: TAXII settings",
            "no TAXII server configured: only envelopes carried as files (`seal`, `open`) reach it",
            f"if it has a server: {fix_set}",
        )
        for what in ("reachable", "access", "clock"):
            yield skip(f"{prefix}: {what}", "no TAXII server")
        return
    missing = [n for n in ("read_collection", "write_collection") if not getattr(settings, n)]
    if missing:
        yield fail(f"{prefix}: TAXII settings", f"no {' or '.join(missing)}", fix_set)
        return
    # `partners set` refuses such an id; one typed into config.toml by hand is only found here
    # (otherwise every pull and push fails with HTTP 404 from the server).
    for option, value in (
        ("--read-collection", settings.read_collection),
        ("--write-collection", settings.write_collection),
    ):
        if value is not None and (problem := collection_id_problem(value)) is not None:
            yield fail(
                f"{prefix}: TAXII settings",
                f"{option.removeprefix('--').replace('-', '_')} {problem}",
                f"cti-exchange partners set {partner.name} {option} ID, the UUID its server's operator gives",
            )
            return
    try:
        client = _partner_client(ctx, partner)
    except CtiExchangeError as exc:
        yield failed_with(f"{prefix}: TAXII settings", exc)
        return
    yield ok(f"{prefix}: TAXII settings", f"{shown_url(settings.api_root)}, auth {settings.auth}")
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
    except ConfigError as exc:  # it answered 404 at the API root: a wrong --api-root
        yield failed_with(f"{prefix}: reachable", exc)
        yield skip(f"{prefix}: access", "no API root at that URL")
        yield skip(f"{prefix}: clock", "no API root at that URL")
        return
    except DiagnosedNetworkError as exc:  # it answered, or TLS named the cause: its own fix
        yield failed_with(f"{prefix}: reachable", exc)
        yield skip(f"{prefix}: access", "see reachable")
        yield skip(f"{prefix}: clock", "see reachable")
        return
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
    yield ok(f"{prefix}: reachable", f"{shown_url(client.api_root_url)} answered")
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
            info = client.collection_description(collection)
        except RequestFailed as exc:
            # 404 (no such collection, or one hidden from our account) or 403: what pull, push
            # and sync exit 3 on too (taxii/client.py, CollectionAccessError).
            option = f"--{right.removeprefix('can_')}-collection"
            return fail(
                name,
                f"{str(exc).rstrip('. ')} (wrong id, or no right on it)",
                f"check {option} with the server's operator: the collection id, and our account's "
                f"rights on it (`cti-exchange partners set {partner.name} {option} ID` changes the id)",
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
        yield from guarded(f"{name}: pinned keys", partial(check_partner_keys, ctx, partner))
        yield from guarded(f"{name}: TAXII settings", partial(check_partner_server, ctx, partner))
