"""Two agencies wired to a real TAXII server (medallion + the SQLite backend) on 127.0.0.1.

Each test gets a fresh server data directory and fresh agencies: no state leaks between tests,
and every server is stopped by its fixture, even when the test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.server.provisioning import collection_id_for, plan_exchange, provision
from cti_exchange.server.runner import ServerProcess
from tests.conftest import PASSPHRASE, Agency, make_agency, pin
from tests.fault_proxy import FaultProxy, FaultScript


@dataclass
class Exchange:
    fr: Agency
    india: Agency
    server: ServerProcess
    passwords: dict[str, str]

    def wire(self, agency: Agency, partner: Agency, api_root: str | None = None, **extra: str) -> None:
        secret = agency.home / "taxii.secret"
        if not secret.exists():
            secret.write_text(self.passwords[agency.agency_id])
            secret.chmod(0o600)
        args = [
            "partners",
            "set",
            partner.agency_id,
            "--api-root",
            api_root or self.server.api_root_url,
            "--read-collection",
            collection_id_for(partner.agency_id, agency.agency_id),
            "--write-collection",
            collection_id_for(agency.agency_id, partner.agency_id),
            "--auth",
            "basic",
            "--username",
            agency.agency_id,
            "--secret-file",
            str(secret),
            "--retry-budget",
            "20",
            "--timeout",
            "10",
        ]
        for name, value in extra.items():
            args += [f"--{name.replace('_', '-')}", value]
        result = agency.run(*args)
        assert result.exit_code == 0, result.stderr

    def through(self, proxy: FaultProxy, **extra: str) -> None:
        """Both agencies talk to the server through `proxy`."""
        url = f"{proxy.url}exchange/"
        self.wire(self.fr, self.india, url, **extra)
        self.wire(self.india, self.fr, url, **extra)


def start_exchange(
    tmp_path: Path, fr: Agency, india: Agency, *, max_content_length: int | None = None
) -> tuple[ServerProcess, dict[str, str]]:
    passwords = {a: secrets.token_urlsafe(16) for a in (fr.agency_id, india.agency_id)}
    kwargs = {} if max_content_length is None else {"max_content_length": max_content_length}
    layout = plan_exchange([(fr.agency_id, fr.name), (india.agency_id, india.name)], **kwargs)
    provision(tmp_path / "taxii-server", layout, passwords=passwords)
    server = ServerProcess(tmp_path / "taxii-server").start()
    return server, passwords


@contextmanager
def running_exchange(
    tmp_path: Path, fr: Agency, india: Agency, *, max_content_length: int | None = None
) -> Iterator[Exchange]:
    """The server running, both agencies wired to it both ways; stopped on the way out."""
    server, passwords = start_exchange(tmp_path, fr, india, max_content_length=max_content_length)
    try:
        wired = Exchange(fr, india, server, passwords)
        wired.wire(fr, india)
        wired.wire(india, fr)
        yield wired
    finally:
        server.stop()


@pytest.fixture
def exchange(tmp_path: Path, partnered: tuple[Agency, Agency]) -> Iterator[Exchange]:
    fr, india = partnered
    with running_exchange(tmp_path, fr, india) as wired:
        yield wired


@pytest.fixture
def trio(tmp_path: Path, partnered: tuple[Agency, Agency]) -> Iterator[tuple[Exchange, Agency]]:
    """CERT-FR and CERT-In as usual, plus CERT-DE sharing with CERT-In, on one server."""
    fr, india = partnered
    de = make_agency(tmp_path, "cert-de", "CERT-DE")
    pin(india, de, tmp_path)
    pin(de, india, tmp_path)
    agencies = (fr, india, de)
    passwords = {a.agency_id: secrets.token_urlsafe(16) for a in agencies}
    provision(
        tmp_path / "taxii-server",
        plan_exchange([(a.agency_id, a.name) for a in agencies]),
        passwords=passwords,
    )
    server = ServerProcess(tmp_path / "taxii-server").start()
    try:
        wired = Exchange(fr, india, server, passwords)
        wired.wire(fr, india)
        wired.wire(india, fr)
        wired.wire(india, de)
        wired.wire(de, india)
        yield wired, de
    finally:
        server.stop()


@pytest.fixture
def fault_proxy(exchange: Exchange) -> Iterator[FaultProxy]:
    proxy = FaultProxy(exchange.server.url, FaultScript()).start()
    try:
        exchange.through(proxy)
        yield proxy
    finally:
        proxy.stop()


def write_iocs(path: Path, count: int, *, tlp: str = "amber", start: int = 0) -> Path:
    """A CSV of `count` distinct indicators (documentation names and ranges)."""
    lines = ["value,type,tlp"]
    for n in range(start, start + count):
        if n % 2:
            lines.append(f"c2-{n}.example,domain-name,{tlp}")
        else:
            lines.append(
                f"203.0.{(n // 256) % 256}.{n % 256},ipv4-addr,{tlp}"
                if n < 65536
                else f"c2x-{n}.test,domain-name,{tlp}"
            )
    path.write_text("\n".join(lines) + "\n")
    return path


def store_rows(agency: Agency, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows a query of the agency's store gives (read-only, a connection of its own)."""
    conn = sqlite3.connect(agency.home / "store.sqlite")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def received_values(agency: Agency) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(agency.home / "store.sqlite")
    try:
        rows = conn.execute(
            "SELECT value FROM objects WHERE type = 'indicator' AND is_current = 1"
        ).fetchall()
    finally:
        conn.close()
    return [row[0] for row in rows]


def one_indicator_bundle(path: Path, object_id: str, address: str, **changes: Any) -> Path:
    """A bundle of one indicator of `address` (first dated 2026-11-20), with `changes` applied
    (a later `modified`, `revoked`...): another version of the same object each time."""
    first = "2026-11-20T10:00:00.000Z"
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": object_id,
        "created": first,
        "modified": first,
        "name": "C2 server",
        "pattern": f"[ipv4-addr:value = '{address}']",
        "pattern_type": "stix",
        "valid_from": first,
        **changes,
    }
    bundle = {"type": "bundle", "id": f"bundle--{object_id.split('--', 1)[1]}", "objects": [indicator]}
    path.write_text(json.dumps(bundle))
    return path


def store_dump(agency: Agency) -> list[str]:
    """The whole store as SQL text: compared before and after, it shows any write at all."""
    conn = sqlite3.connect(agency.home / "store.sqlite")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def run_in_own_process(agency: Agency, *args: str, failpoint: str | None = None) -> int:
    """The CLI in a process of its own (cti_exchange/failpoints.py reads CTI_EXCHANGE_FAILPOINT
    when imported, so a failpoint cannot fire in this process): its exit status, negative for
    the signal that ended it (-SIGKILL at the failpoint)."""
    env = {**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    env.pop("CTI_EXCHANGE_FAILPOINT", None)
    if failpoint:
        env["CTI_EXCHANGE_FAILPOINT"] = failpoint
    done = subprocess.run(
        [sys.executable, "-m", "cti_exchange", "--home", str(agency.home), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"exit {done.returncode}: {done.stderr}")
    return done.returncode
