"""`cti-exchange audit`: verify the hash-chained audit trail, show it, export signed extracts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated

import typer

from cti_exchange.audit.chain import AuditRecord
from cti_exchange.audit.extract import VerifiedExtract, export_audit_extract
from cti_exchange.audit.verification import (
    TrailReport,
    open_existing_store,
    sign_verified_head,
    verify_audit_trail,
)
from cti_exchange.cli.context import JsonOption, profile_home
from cti_exchange.cli.output import Output, refuse_stdout
from cti_exchange.clock import parse_timestamp, stix_timestamp, time_ago, utc_now
from cti_exchange.errors import CtiExchangeError, IntegrityError, UsageError
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import Keyring
from cti_exchange.untrusted_text import escape_controls

audit_app = typer.Typer(
    help="The tamper-evident audit trail: verify it, show it, export signed extracts.",
    epilog="Example: cti-exchange audit verify && cti-exchange audit show --since 24h",
    no_args_is_help=True,
)

_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# RFC 3339 starts with the full date: other ISO 8601 forms Python would also read (20300104,
# 2030-W01) are refused, or a compact --until date would silently mean the start of its day.
_RFC3339_START = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")
TIME_HELP = "RFC 3339 time, a date (UTC), or an age such as 30m, 24h, 7d, 2w."


def parse_when(text: str, option: str, *, end_of_day: bool = False, now: datetime | None = None) -> datetime:
    """A point in time from the command line. A bare date means the start of that day (UTC),
    or its end for --until, so `--since 2026-03-01 --until 2026-03-31` covers all of March."""
    value = text.strip()
    try:
        relative = time_ago(value, now or utc_now())
    except ValueError:
        raise UsageError(f"{option}: {value!r} reaches back too far", hint=TIME_HELP) from None
    if relative is not None:
        return relative
    if _DATE.match(value):
        try:
            day = datetime.strptime(value, "%Y-%m-%d").date()
        except ValueError:
            raise UsageError(f"{option}: {value!r} is not a valid date") from None
        return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    try:
        if not _RFC3339_START.match(value):
            raise ValueError(value)
        return parse_timestamp(value)
    except ValueError:
        raise UsageError(f"{option}: {value!r} is not a time", hint=TIME_HELP) from None


def _details_text(record: AuditRecord) -> str:
    return json.dumps(record.details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _record_time(record: AuditRecord) -> datetime | None:
    """When the record says it happened; None if its `at` is not a time (edited by hand)."""
    try:
        return parse_timestamp(record.at)
    except ValueError:
        return None


def _cells(row: list[str]) -> list[str]:
    # Records and findings quote partners' data (reject details, ids) and whatever a hand on
    # the store wrote: no terminal escape sequence or bidi override gets through to the screen.
    return [escape_controls(cell) for cell in row]


# -- verify -------------------------------------------------------------------------------


@audit_app.command(
    "verify",
    epilog="Example: cti-exchange audit verify --against cert-fr-audit-2026-03.jws",
)
def verify(
    ctx: typer.Context,
    no_sign: Annotated[
        bool,
        typer.Option("--no-sign", help="Only check; do not sign the verified head (read-only)."),
    ] = False,
    sign_anyway: Annotated[
        bool,
        typer.Option(
            "--sign-anyway",
            help="Sign the verified head even though a push, pull or audit-export record has no "
            "signed head over it (a warning: check why first).",
        ),
    ] = False,
    against: Annotated[
        list[Path] | None,
        typer.Option(
            "--against",
            metavar="EXTRACT",
            help="An extract we exported earlier and kept off this machine (repeatable): every "
            "record it holds must still be in the trail unchanged.",
        ),
    ] = None,
    json_mode: JsonOption = False,
) -> None:
    """Check every record's hash and link and every signed head; exit 4 naming the first bad
    record if anything was edited, inserted or deleted.

    With --against, the trail is also compared with extracts we exported earlier (each first
    checked with our key ring): this catches a rewrite of the whole chain and its signed heads
    by someone who held the store and the unlocked key, which the trail alone cannot show.

    When the trail is intact and has records no signed head covers yet, the verified head is
    signed with our key (if the passphrase is available), so a later truncation shows. A
    tampered trail is never signed. A push, pull or audit-export record that no signed head
    covers (an interrupted command, or deleted heads) is a warning, and the head is signed
    only with --sign-anyway. Use --no-sign to leave the store untouched.
    """
    if no_sign and sign_anyway:
        raise UsageError("give --no-sign or --sign-anyway, not both")
    home = profile_home(ctx)
    out = Output(json_mode=json_mode)
    signed_now = None
    not_signed: str | None = None
    anchors = []
    for extract in against or []:
        try:
            verified = _verified_extract(home, extract, None)[0]
        except IntegrityError as exc:
            raise IntegrityError(
                f"--against {extract}: {exc.message}",
                hint="an extract of ours that no longer verifies with our key ring means the "
                "extract or our keys changed since it was exported: keep both as evidence",
            ) from None
        anchors.append((str(extract), [*verified.records, *verified.continuation]))
    with open_existing_store(home) as store:
        report = verify_audit_trail(home, store, anchors=anchors)
        if report.ok and report.unsigned_tail and not no_sign:
            try:
                signed_now = sign_verified_head(home, store, report, despite_warnings=sign_anyway)
            except CtiExchangeError as exc:  # no passphrase, wrong one, expired key, a warning
                not_signed = exc.diagnostics()
    if json_mode:
        data = report.to_dict()
        data["signed_now"] = None if signed_now is None else {"seq": signed_now.seq, "kid": signed_now.kid}
        data["not_signed"] = not_signed
        out.data(data)
    else:
        _render_verify(out, report)
        if signed_now is not None:
            out.line(f"Signed the head at record {signed_now.seq} with key {signed_now.kid}.")
    for warning in report.warnings:
        out.warn(warning.describe())
    if not_signed:
        out.warn(f"the head was not signed: {not_signed}")
    if not report.ok:
        first = report.problems[0]
        raise IntegrityError(
            f"the audit trail was tampered with: first bad record {first.seq}: {first.reason}",
            hint="keep a copy of the store as evidence, then compare it with a backup or an exported extract",
        )


def _render_verify(out: Output, report: TrailReport) -> None:
    if report.ok:
        out.line(
            f"Audit trail intact: {report.records} record(s), head {report.head_seq} "
            f"({report.head_hash}), {report.signed_heads} signed head(s)."
        )
        if report.unsigned_tail:
            after = (
                f"after the last signed head ({report.last_signed_seq})"
                if report.last_signed_seq
                else "(no head signed yet)"
            )
            out.line(f"{report.unsigned_tail} record(s) {after} are linked but not yet signed.")
        return
    out.line(f"Audit trail TAMPERED: {len(report.problems)} problem(s).")
    out.table(
        ["record", "problem", "detail"],
        [_cells([str(p.seq), p.kind, p.reason]) for p in report.problems],
    )


# -- show ---------------------------------------------------------------------------------


@audit_app.command(
    "show",
    epilog="Example: cti-exchange audit show --since 7d --partner cert-in --action accept",
)
def show(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", help=f"From this time. {TIME_HELP}")] = None,
    until: Annotated[str | None, typer.Option("--until", help=f"Up to this time. {TIME_HELP}")] = None,
    partner: Annotated[str | None, typer.Option("--partner", help="Only records about this partner.")] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            help="Only this action: push, pull, seal, accept, reject, triage, export, sighting, "
            "key-change, drop, audit-export (docs/AUDIT.md lists them all).",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the most recent N matching records.")
    ] = None,
    json_mode: JsonOption = False,
) -> None:
    """List audit records, oldest first (this lists; `audit verify` checks)."""
    # An empty value (an unset shell variable) is refused, not taken as no filter at all.
    start = parse_when(since, "--since") if since is not None else None
    end = parse_when(until, "--until", end_of_day=True) if until is not None else None
    if start is not None and end is not None and end < start:
        raise UsageError("--until is before --since", hint="swap them")  # as audit export says
    home = profile_home(ctx)
    home.load_profile()
    with open_existing_store(home) as store:
        records = store.audit.records(action=action)
        # A mistyped name must not read as "nothing happened": said when it matches nothing.
        unknown = []
        if (action is not None and not records) or (
            partner is not None and not any(partner in (r.partner or "").split(",") for r in records)
        ):
            actions, partners = store.audit.names()
            if action is not None and action not in actions:
                unknown.append(f"no record has the action {action!r} (in the trail: {', '.join(actions)})")
            if partner is not None and partner not in partners:
                unknown.append(
                    f"no record names the partner {partner!r} (in the trail: {', '.join(partners) or 'none'})"
                )
    out = Output(json_mode=json_mode)
    chosen = []
    undated = []
    for r in records:
        # A sealed envelope names all its recipients, comma-separated.
        if partner is not None and partner not in (r.partner or "").split(","):
            continue
        if start is not None or end is not None:
            moment = _record_time(r)
            if moment is None:
                undated.append(r.seq)
                continue
            if (start is not None and moment < start) or (end is not None and moment > end):
                continue
        chosen.append(r)
    if undated:
        out.warn(
            f"record(s) {', '.join(map(str, undated))} left out: their time is unreadable; "
            "run `cti-exchange audit verify`"
        )
    if limit is not None:
        chosen = chosen[-limit:]
    if json_mode:
        out.data([r.to_dict() for r in chosen])
        return
    for line in unknown:
        out.warn(escape_controls(line))
    if not chosen:
        out.note("No audit record matches.")
        return
    out.table(
        ["seq", "at", "actor", "action", "partner", "details"],
        [_cells([str(r.seq), r.at, r.actor, r.action, r.partner or "", _details_text(r)]) for r in chosen],
    )


# -- export -------------------------------------------------------------------------------


@audit_app.command(
    "export",
    epilog="Example: cti-exchange audit export --since 2026-03-01 --until 2026-03-31 "
    "-o cert-fr-audit-2026-03.jws",
)
def export(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help=f"Period start. {TIME_HELP}")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write (compact JWS).")],
    until: Annotated[
        str | None, typer.Option("--until", help=f"Period end (a date: its end); default: now. {TIME_HELP}")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file if it exists (refused otherwise, exit 2).")
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    """Write a signed extract of a period (chain-of-custody evidence); see docs/AUDIT.md for
    how anyone can check it with any JOSE library and our public key. An existing file is not
    overwritten without --force."""
    refuse_stdout(output, "the extract is evidence, written 0600 and named in the audit trail")
    start = parse_when(since, "--since")
    end = parse_when(until, "--until", end_of_day=True) if until is not None else utc_now()
    if end < start:
        raise UsageError("--until is before --since")
    extract = export_audit_extract(profile_home(ctx), output, since=start, until=end, overwrite=force)
    document = extract.document
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data(
            {
                "file": str(output),
                "since": document["period"]["since"],
                "until": document["period"]["until"],
                "first_seq": extract.first_seq,
                "last_seq": extract.last_seq,
                "records": extract.record_count,
                "signed_head": document["signed_head"]["seq"],
                "signing_kid": document["signing_kid"],
                "signing_key_thumbprint": document["signing_key_thumbprint"],
                "sha256": extract.sha256,
            }
        )
        return
    out.line(
        f"Wrote {escape_controls(str(output))}: records {extract.first_seq} to {extract.last_seq} "
        f"({extract.record_count}) from {stix_timestamp(start)} to {stix_timestamp(end)}"
    )
    kid, thumbprint = document["signing_kid"], document["signing_key_thumbprint"]
    out.line(f"Signed with key {kid} (thumbprint {thumbprint})")
    out.line(f"SHA-256 of the file's JWS: {extract.sha256}")
    out.note("The reader checks it against our signing key fingerprint, obtained out of band.")


# -- check an extract ------------------------------------------------------------------------


@audit_app.command(
    "check-extract",
    epilog="Example: cti-exchange audit check-extract cert-fr-audit-2026-03.jws --partner cert-fr",
)
def check_extract(
    ctx: typer.Context,
    extract: Annotated[Path, typer.Argument(help="The extract file (from `audit export`).")],
    partner: Annotated[
        str | None,
        typer.Option(
            "--partner",
            help="The partner that exported it, checked against the keys we pinned for it "
            "(default: our own extract, checked against our key ring).",
        ),
    ] = None,
    json_mode: JsonOption = False,
) -> None:
    """Check a signed audit extract: signature by a pinned key valid when it was signed, the
    hash chain of its records, its period, the signed head; exit 4 naming what fails."""
    home = profile_home(ctx)
    verified, keyring = _verified_extract(home, extract, partner)
    document = verified.document
    records = verified.records
    head = verified.signed_head
    key = keyring.find(verified.signer_kid)
    result = {
        "ok": True,
        "agency": verified.agency_id,
        "exported_at": verified.exported_at,
        "exported_by": document.get("exported_by"),
        "since": document["period"]["since"],
        "until": document["period"]["until"],
        "first_seq": records[0].seq,
        "last_seq": records[-1].seq,
        "records": len(records),
        "signing_kid": verified.signer_kid,
        "signing_key_thumbprint": key.thumbprint if key else None,
        "signed_head": {"seq": head.seq, "signed_at": head.signed_at, "kid": head.kid},
    }
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data(result)
        return
    out.line(
        f"Extract VERIFIED: {escape_controls(verified.agency_id)} records {records[0].seq} to "
        f"{records[-1].seq} ({len(records)}) from {result['since']} to {result['until']}"
    )
    out.line(
        f"Exported at {verified.exported_at} by {escape_controls(str(result['exported_by']))}, "
        f"signed with key {verified.signer_kid} (thumbprint {result['signing_key_thumbprint']})"
    )
    out.line(f"Covered by the head signed at {head.signed_at} over record {head.seq} (key {head.kid})")


_MAX_EXTRACT_BYTES = 512 * 1024 * 1024


def _verified_extract(
    home: ProfileHome, extract: Path, partner: str | None
) -> tuple[VerifiedExtract, Keyring]:
    """An extract file checked against a partner's pinned keys, or (no partner) our key ring,
    refusing another agency's extract as ours; IntegrityError (exit 4) naming what fails."""
    from cti_exchange.audit.extract import embedded_keyring, verify_extract
    from cti_exchange.home.safe_files import read_bytes
    from cti_exchange.partnership import get_partner

    profile = home.load_profile()
    raw = read_bytes(extract, what="audit extract", limit=_MAX_EXTRACT_BYTES)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise IntegrityError(f"{extract} is not a signed audit extract (a compact JWS)") from None
    if partner is not None:
        keyring = home.partner_keyring(get_partner(home, partner))
    else:
        keyring = home.keyring()
        # Which agency the extract claims to come from: untrusted, only to say what to run.
        try:
            claimed = embedded_keyring(text).agency.id
        except CtiExchangeError:  # not an extract, or a mangled one: verify_extract says why
            claimed = profile.agency_id
        if claimed != profile.agency_id:
            known = profile.partner_by_agency(claimed)
            raise UsageError(
                f"{extract} is an extract of {escape_controls(claimed)}, not ours",
                hint=f"check it against the keys pinned for it: --partner {known.name}"
                if known
                else "pin that agency's keys first (`cti-exchange partners add`), then use --partner",
            )
    return verify_extract(text, keyring), keyring


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
