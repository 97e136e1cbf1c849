"""Stores with known content for triage and export tests.

Two ways in, both on real SQLite files: `put` writes objects with the store's own
`write_objects` (as a pull does, without the network), fast enough to build a store per test;
the `exchange` fixture (tests/exchange/conftest.py) runs the real push and pull for what needs
envelopes, signatures and sightings on the wire.
"""

from __future__ import annotations

import csv
import os
import pty
import select
import sqlite3
import sys
import termios
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.objects import write_objects
from cti_exchange.store.store import Store
from tests.conftest import PASSPHRASE, Agency
from tests.exchange.conftest import exchange  # noqa: F401 - fixture re-exported for this package

DATA = Path(__file__).resolve().parents[1] / "data" / "triage"
FR_IDENTITY = "identity--11111111-1111-4111-8111-111111111111"
IN_IDENTITY = "identity--22222222-2222-4222-8222-222222222222"
_PATHS = {
    "ipv4-addr": "ipv4-addr:value",
    "ipv6-addr": "ipv6-addr:value",
    "domain-name": "domain-name:value",
    "url": "url:value",
    "email-addr": "email-addr:value",
    "file-name": "file:name",
    "md5": "file:hashes.MD5",
    "sha1": "file:hashes.'SHA-1'",
    "sha256": "file:hashes.'SHA-256'",
    "mutex": "mutex:name",
    "windows-registry-key": "windows-registry-key:key",
}


def indicator(
    value: str,
    ioc_type: str = "domain-name",
    *,
    tlp: str = "amber",
    confidence: int | None = 70,
    modified: str = "2026-01-10T10:00:00.000Z",
    valid_until: str | None = "2099-01-01T00:00:00.000Z",
    revoked: bool = False,
    object_id: str | None = None,
    created_by: str = FR_IDENTITY,
    name: str | None = None,
) -> dict[str, Any]:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": object_id or f"indicator--{uuid.uuid4()}",
        "created": "2026-01-10T10:00:00.000Z",
        "modified": modified,
        "created_by_ref": created_by,
        "name": name or value,
        "indicator_types": ["malicious-activity"],
        "pattern": f"[{_PATHS[ioc_type]} = '{escaped}']",
        "pattern_type": "stix",
        "valid_from": "2026-01-10T10:00:00.000Z",
        "object_marking_refs": [Tlp.parse(tlp).marking_id],
    }
    if valid_until is not None:
        obj["valid_until"] = valid_until
    if confidence is not None:
        obj["confidence"] = confidence
    if revoked:
        obj["revoked"] = True
    return obj


def identity(identity_id: str, name: str) -> dict[str, Any]:
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": name,
        "identity_class": "organization",
    }


def store_path(agency: Agency) -> Path:
    return agency.home / "store.sqlite"


def put(
    target: Agency | Path,
    objects: Iterable[dict[str, Any]],
    *,
    partner: str = "cert-fr",
    envelope_id: str | None = None,
    received_at: str = "2026-01-10T12:00:00.000Z",
) -> int:
    """Stores objects as a pull of one envelope from `partner` would."""
    path = store_path(target) if isinstance(target, Agency) else target
    with Store(path) as store, store.db.transaction() as conn:
        return write_objects(
            conn,
            list(objects),
            envelope_id=envelope_id or f"envelope--{uuid.uuid4()}",
            partner=partner,
            received_at=received_at,
        ).new_versions


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite"


def csv_export_round_trip(agency: Agency, directory: Path) -> tuple[set[tuple[str, str]], dict[str, int]]:
    """The CSV export's (type, value) rows, and what `convert` accepts of the file by type:
    the export is a push input, so its values come back as the same types."""
    exported = directory / "export.csv"
    assert agency.run("export", "--format", "csv", "-o", str(exported)).exit_code == 0
    with exported.open() as lines:
        rows = {
            (row["type"], row["value"]) for row in csv.DictReader(x for x in lines if not x.startswith("#"))
        }
    converted = agency.run("convert", str(exported), "-o", str(directory / "converted.json"), "--json")
    assert converted.exit_code == 0, converted.stderr
    return rows, dict(converted.json()["accepted_by_type"])


def projected_after_upgrade(path: Path, stored_by: int) -> tuple[int, list[tuple[Any, ...]]]:
    """The store at `path` as version `stored_by` left it (no IOC type nor value on any row,
    the later migrations not applied), then opened: its schema version and sorted (IOC type,
    value) rows."""
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version > ?", (stored_by,))
        conn.execute("UPDATE objects SET ioc_type = NULL, value = NULL")
    with Store(path) as store:
        rows = sorted(store.db.conn.execute("SELECT ioc_type, value FROM objects").fetchall())
        return store.db.schema_version, rows


def review_on_a_terminal(
    agency: Agency, *args: str, keys: tuple[bytes, ...], env: dict[str, str] | None = None
) -> tuple[bytes, int]:
    """`triage review` on a pseudo-terminal, typing `keys` at each prompt: its output and exit
    code."""
    executable = Path(sys.executable).with_name("cti-exchange")
    environ = dict(os.environ, CTI_EXCHANGE_PASSPHRASE=PASSPHRASE, COLUMNS="200", TERM="dumb", **(env or {}))
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with the pseudo-terminal as stdin and stdout
        argv = [str(executable), "--home", str(agency.home), "triage", "review", *args]
        os.execve(str(executable), argv, environ)  # noqa: S606 - exec the CLI in the forked child
    output, seen = b"", 0
    deadline = time.monotonic() + 30
    for key in keys:
        while output.count(b"[q]uit") <= seen and time.monotonic() < deadline:
            chunk = _read_terminal(fd)
            if chunk is None:
                break
            output += chunk
        seen += 1
        # A key typed before getchar() puts the terminal in raw mode would be flushed by it.
        while termios.tcgetattr(fd)[3] & termios.ICANON and time.monotonic() < deadline:
            time.sleep(0.05)
        os.write(fd, key)
    while time.monotonic() < deadline and (chunk := _read_terminal(fd)) is not None:
        output += chunk
    _, status = os.waitpid(pid, 0)
    return output, os.waitstatus_to_exitcode(status)


def on_a_terminal(agency: Agency, *args: str, columns: int = 400) -> str:
    """`cti-exchange ARGS` with a pseudo-terminal of `columns` as its stdout (xterm: rich takes a
    dumb one as 80 columns; NO_COLOR): what it wrote, once it exited 0."""
    executable = Path(sys.executable).with_name("cti-exchange")
    environ = dict(
        os.environ, CTI_EXCHANGE_PASSPHRASE=PASSPHRASE, COLUMNS=str(columns), TERM="xterm", NO_COLOR="1"
    )
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with the pseudo-terminal as stdout
        argv = [str(executable), "--home", str(agency.home), *args]
        os.execve(str(executable), argv, environ)  # noqa: S606 - exec the CLI in the forked child
    output = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (chunk := _read_terminal(fd)) is not None:
        output += chunk
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output.decode(errors="replace")
    return output.decode()


def _read_terminal(fd: int) -> bytes | None:
    """What the pseudo-terminal has; None once the other side is gone."""
    if not select.select([fd], [], [], 0.2)[0]:
        return b""
    try:
        return os.read(fd, 65536) or None
    except OSError:  # EIO: the child closed the terminal
        return None


def stix_object(kind: str, object_id: str, **properties: Any) -> dict[str, Any]:
    """A STIX 2.1 object CERT-FR created (malware, threat actor, infrastructure...)."""
    return {
        "type": kind,
        "spec_version": "2.1",
        "id": object_id,
        "created": "2026-01-10T10:00:00.000Z",
        "modified": "2026-01-10T10:00:00.000Z",
        "created_by_ref": FR_IDENTITY,
        **properties,
    }
