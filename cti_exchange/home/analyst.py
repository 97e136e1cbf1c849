"""Who is acting, for triage decisions and the audit trail: CTI_EXCHANGE_ANALYST if set (e.g.
a named analyst on a shared account), else the operating-system user."""

from __future__ import annotations

import getpass
import os

ANALYST_ENV = "CTI_EXCHANGE_ANALYST"


def current_analyst() -> str:
    name = os.environ.get(ANALYST_ENV)
    if name:
        return " ".join(name.split())[:100]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"
