"""The local store as one object: `Store(path)` gives the inbound and outbound logs."""

from __future__ import annotations

from pathlib import Path

from cti_exchange.home.analyst import current_analyst
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.store.audit_log import AuditLog
from cti_exchange.store.database import Database
from cti_exchange.store.inbound import Inbound
from cti_exchange.store.outbound import Outbound, ShareRequests


class Store:
    def __init__(self, path: Path, *, actor: str = "cti-exchange") -> None:
        self.db = Database(path)
        self.actor = actor  # recorded in the audit trail for what this store handle does
        self.inbound = Inbound(self.db, actor)
        self.outbound = Outbound(self.db, actor)
        self.audit = AuditLog(self.db)
        self.requests = ShareRequests(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(home: ProfileHome) -> Store:
    """The store of a profile home, acting as the current analyst (for the audit trail)."""
    return Store(home.store_path(), actor=current_analyst())
