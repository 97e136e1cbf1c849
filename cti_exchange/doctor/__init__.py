"""`doctor`: is this profile ready to run unattended? A list of named checks, each answering
ok, warn, fail or skip with a one-line fix.

No check raises: whatever goes wrong inside one (including a bug) becomes its failed result, so
the checklist is always complete. A failure carries the exit-code family of what failed
(configuration 2, authentication 3, integrity 4, network 7); `DoctorReport.exit_code` is 4 if
any check found an integrity failure (a security event no other failure may hide), else the
family of the first failure in checklist order, because the checks run from the ground up
(config, keys, passphrase, log, partners, servers, store) and an early failure usually explains the
later ones. Warnings never fail.

The checks: `local_checks` (this machine) and `partner_checks` (each partner and its server);
the results and report: `checklist`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial

from cti_exchange.clock import utc_now
from cti_exchange.doctor.checklist import CheckResult, CheckStatus, DoctorContext, DoctorReport, guarded, skip
from cti_exchange.doctor.local_checks import (
    check_audit_trail,
    check_config,
    check_export_leftovers,
    check_key_files,
    check_log,
    check_our_keys,
    check_outbox,
    check_passphrase,
    check_quarantine,
    check_store,
)
from cti_exchange.doctor.partner_checks import check_partners
from cti_exchange.home.profile_home import ProfileHome

__all__ = ["CHECKS", "CheckResult", "CheckStatus", "DoctorReport", "run_doctor"]

Check = Callable[[DoctorContext], Iterable[CheckResult]]

# (check, the checks whose failure makes it pointless, its name while it cannot run)
CHECKS: list[tuple[Check, tuple[str, ...], str]] = [
    (check_config, (), "config"),
    (check_key_files, ("config",), "key files"),
    (check_passphrase, ("key files",), "passphrase"),
    (check_our_keys, ("key files",), "our keys"),
    (check_log, ("config",), "log"),
    (check_partners, ("config",), "partners"),
    (check_store, ("config",), "store"),
    # public.json alone, read by the check itself: a key-file failure (a private key left
    # readable) must not hide a tampered trail.
    (check_audit_trail, ("store",), "audit trail"),
    (check_outbox, ("store",), "outbox"),
    (check_quarantine, ("store",), "quarantine"),
    (check_export_leftovers, ("store",), "export leftovers"),
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
            produced = guarded(name, partial(check, ctx))
            if any(r.status is CheckStatus.FAIL for r in produced):
                ctx.broken.add(name)
            results.extend(produced)
    finally:
        if ctx.store is not None:
            ctx.store.close()
    return DoctorReport(tuple(results))
