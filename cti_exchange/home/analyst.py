"""Who is acting, for triage decisions and the audit trail: CTI_EXCHANGE_ANALYST if set (e.g.
a named analyst on a shared account), else the operating-system user."""

from __future__ import annotations

import getpass
import os

from cti_exchange.errors import UsageError
from cti_exchange.untrusted_text import UNPRINTABLE

ANALYST_ENV = "CTI_EXCHANGE_ANALYST"


def current_analyst() -> str:
    name = os.environ.get(ANALYST_ENV)
    if name:
        name = " ".join(name.split())[:100]
        # Recorded in every decision and audit record, shown by `triage show` and read by
        # whatever reads the audit export: an escape sequence or a bidi override there would
        # reach other analysts' terminals.
        bad = UNPRINTABLE.search(name)
        if bad is not None:
            raise UsageError(
                f"{ANALYST_ENV} holds the control or invisible character U+{ord(bad.group()):04X}",
                hint="set it to the analyst's name as plain text",
            )
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"
