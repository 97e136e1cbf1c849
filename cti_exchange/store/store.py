"""The local store as one object: `Store(path)` gives the inbound and outbound logs.

Each log is built (and its module imported) on first use: a command that only reads, such
as `triage list`, does not load the envelope and sent-log code it never touches.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from cti_exchange.home.analyst import current_analyst
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.store.database import BUSY_TIMEOUT_SECONDS, Database
from cti_exchange.store.store_file import STORE_MARKER

if TYPE_CHECKING:
    from cti_exchange.store.audit_log import AuditLog
    from cti_exchange.store.inbound import Inbound
    from cti_exchange.store.outbound import Outbound
    from cti_exchange.store.share_requests import ShareRequests


class Store:
    def __init__(
        self,
        path: Path,
        *,
        actor: str = "cti-exchange",
        existed_marker: Path | None = None,
        waiting: Callable[[str], None] | None = None,
        wait_seconds: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        """`existed_marker`, `waiting` and `wait_seconds`: see Database; `open_store` passes the
        home's."""
        self.db = Database(path, existed_marker=existed_marker, waiting=waiting, wait_seconds=wait_seconds)
        self.actor = actor  # recorded in the audit trail for what this store handle does

    @cached_property
    def inbound(self) -> Inbound:
        from cti_exchange.store.inbound import Inbound

        return Inbound(self.db, self.actor)

    @cached_property
    def outbound(self) -> Outbound:
        from cti_exchange.store.outbound import Outbound

        return Outbound(self.db, self.actor)

    @cached_property
    def audit(self) -> AuditLog:
        from cti_exchange.store.audit_log import AuditLog

        return AuditLog(self.db)

    @cached_property
    def requests(self) -> ShareRequests:
        from cti_exchange.store.share_requests import ShareRequests

        return ShareRequests(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(home: ProfileHome) -> Store:
    """The store of a profile home, acting as the current analyst (for the audit trail). A
    store missing where the home records one existed is refused (store_file.py)."""
    return Store(
        home.store_path(),
        actor=current_analyst(),
        existed_marker=home.root / STORE_MARKER,
        waiting=home.store_waiting,
        wait_seconds=home.load_profile().operations.store_wait_seconds,
    )
