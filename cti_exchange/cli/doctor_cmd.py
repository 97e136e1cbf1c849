"""`cti-exchange doctor`: a checklist of what unattended operation needs, a fix for each failure."""

from __future__ import annotations

from typing import Annotated

import typer

from cti_exchange.cli.context import JsonOption, profile_home
from cti_exchange.cli.output import Output
from cti_exchange.doctor import CheckStatus, DoctorReport, run_doctor
from cti_exchange.errors import CtiExchangeError, ExitCode

DOCTOR_HELP = (
    "Check that this profile can run unattended: config, key files and permissions, the "
    "passphrase without a terminal, our keys and partners' pinned keys (expiry), the log "
    "sync writes, each "
    "partner's TAXII server (reachable, credentials, collection rights, clock skew), the "
    "store's integrity and the audit chain, and the outbox. Prints a checklist with a fix for "
    "each failure; warnings do not fail.\n\n"
    "Run it with the environment cron or systemd gives sync (CTI_EXCHANGE_HOME, "
    "CTI_EXCHANGE_PASSPHRASE_FILE, TAXII secrets).\n\n"
    "Exit codes: 0 no check failed; 4 when any integrity check failed (store, audit trail, "
    "a key missing from private.jwe: a security event no other failure hides); otherwise the "
    "family of the first failed check in the list: 2 configuration or files, 3 authentication "
    "(passphrase, TAXII credentials or rights), 7 network; 70 if a check itself hit a bug."
)

_MARKS = {
    CheckStatus.OK: "ok",
    CheckStatus.WARN: "WARN",
    CheckStatus.FAIL: "FAIL",
    CheckStatus.SKIP: "skip",
}


class DoctorFailure(CtiExchangeError):
    """Some checks failed; the exit code is the family of the first one."""

    def __init__(self, message: str, *, hint: str | None, exit_code: ExitCode) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def doctor_command(
    ctx: typer.Context,
    offline: Annotated[
        bool, typer.Option("--offline", help="Skip the checks that contact partners' servers.")
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    report = run_doctor(profile_home(ctx), offline=offline)
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data(
            {
                "ok": report.ok,
                "exit_code": int(report.exit_code),
                "checks": [r.to_dict() for r in report.results],
            }
        )
    else:
        _render(out, report)
    if not report.ok:
        first = report.failures[0]
        raise DoctorFailure(
            f"doctor: {len(report.failures)} check(s) failed; first: {first.name}: {first.detail}",
            hint=first.fix,
            exit_code=report.exit_code,
        )


def _render(out: Output, report: DoctorReport) -> None:
    out.table(
        ["status", "check", "result", "fix"],
        [
            [
                _MARKS[r.status],
                r.name,
                r.detail,
                r.fix if r.status in (CheckStatus.FAIL, CheckStatus.WARN) else "",
            ]
            for r in report.results
        ],
    )
    counts = {status: 0 for status in CheckStatus}
    for r in report.results:
        counts[r.status] += 1
    out.line(
        f"{counts[CheckStatus.OK]} ok, {counts[CheckStatus.WARN]} warning(s), "
        f"{counts[CheckStatus.FAIL]} failed, {counts[CheckStatus.SKIP]} skipped"
    )


def register(app: typer.Typer) -> None:
    app.command(
        "doctor",
        help=DOCTOR_HELP,
        epilog="Example: CTI_EXCHANGE_PASSPHRASE_FILE=/etc/cti-exchange/cert-fr/passphrase "
        "cti-exchange doctor",
    )(doctor_command)
