"""The doctor's checklist: results (ok, warn, fail, skip, each with a one-line fix), the report,
the context checks share, and the guard that turns any exception inside a check into its
failed result."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cti_exchange.clock import stix_timestamp
from cti_exchange.errors import CtiExchangeError, ExitCode
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import Keyring
from cti_exchange.profile.model import Profile
from cti_exchange.store.store import Store

EXPIRY_WARNING_DAYS = 30


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


# What the hints of errors met elsewhere say of doctor: inside doctor's own output they point
# at itself, and are left out of its fixes.
_DOCTOR_SAYS = re.compile(
    r" ?\(`cti-exchange doctor`(?: checks (?:them|it))?\)"
    r"|; `cti-exchange doctor` checks (?:them|it)(?=\))"
    r"|`cti-exchange doctor` checks (?:them|it); "
)


def without_doctor(fix: str) -> str:
    """A fix as doctor gives it: without a pointer to `cti-exchange doctor` (the error's hint
    has it for the commands that met the same error)."""
    return _DOCTOR_SAYS.sub("", fix)


def warn(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, CheckStatus.WARN, detail, without_doctor(fix))


def fail(name: str, detail: str, fix: str, exit_code: ExitCode = ExitCode.USAGE) -> CheckResult:
    return CheckResult(name, CheckStatus.FAIL, detail, without_doctor(fix), exit_code)


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
        """An integrity failure (a tampered store or audit trail, a revoked key) first: it is a
        security event, and a configuration failure found earlier must not hide it. Else the
        family of the first failure."""
        if any(r.exit_code is ExitCode.INTEGRITY for r in self.failures):
            return ExitCode.INTEGRITY
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


def judge_key_expiry(name: str, expires: datetime, now: datetime, whose: str, fix: str) -> CheckResult:
    if expires <= now:
        return fail(name, f"{whose} expired at {stix_timestamp(expires)}", fix)
    left = expires - now
    if left < timedelta(days=EXPIRY_WARNING_DAYS):
        return warn(name, f"{whose} expires in {left.days} day(s), at {stix_timestamp(expires)}", fix)
    return ok(name, f"{whose} valid until {expires:%Y-%m-%d}")


def guarded(name: str, produce: Callable[[], Iterable[CheckResult]]) -> list[CheckResult]:
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
