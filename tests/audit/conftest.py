"""An agency with a small audit trail, built once per module and copied for each test (the
tests tamper with their copy's SQLite file directly, as an attacker with file access would)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cti_exchange.audit.trail import record_event
from cti_exchange.home.profile_home import ProfileHome
from tests.conftest import Agency, make_agency

# Records 2 to 6 are dated 2030-01-02 to 2030-01-06, to filter and export by period.
EVENT_DAYS = range(2, 7)


def event_time(day: int) -> datetime:
    return datetime(2030, 1, day, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def trail_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit-template")
    agency = make_agency(root, "cert-fr", "CERT-FR")  # record 1: key-change (created)
    home = ProfileHome(agency.home)
    for day in EVENT_DAYS:
        record_event(
            home,
            "sighting" if day % 2 else "triage",
            partner="cert-in" if day % 2 else "cert-de",
            details={"day": day},
            now=event_time(day),
        )
    return agency.home


@pytest.fixture
def trail(trail_template: Path, tmp_path: Path) -> Agency:
    """CERT-FR with six audit records (1 key-change, then triage/sighting on days 2 to 6) and
    no signed head yet."""
    home = tmp_path / "cert-fr"
    shutil.copytree(trail_template, home)
    return Agency("cert-fr", "CERT-FR", home)


@pytest.fixture
def store_sql(trail: Agency) -> Iterator[sqlite3.Connection]:
    """Direct write access to the copy's store, as an attacker on the machine would have."""
    conn = sqlite3.connect(trail.home / "store.sqlite", isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


# Two agencies wired to a real TAXII server on 127.0.0.1, for what the exchange records.
from tests.exchange.conftest import exchange  # noqa: E402, F401
