"""A plain, CSV or STIX export to files reads a snapshot of the store and holds no write lock
while it reads: a cron sync or an analyst's decision goes on meanwhile (concurrency walkthrough,
stop 27: three analysts' exports of a store of 500,000 held the write lock for 11 to 37 s each,
and a cron sync queued behind them past its 30 s limit). Its complete files are put in place
and recorded in one short write transaction after: a lock that cannot be had leaves neither a
file nor a record (found on the stop's review: the files were installed, then the record
failed)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.store.database import Database
from tests.conftest import PASSPHRASE, Agency, set_store_wait
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put, store_path

_RUN = "from cti_exchange.cli.entry import main; import sys; sys.argv[0] = 'cti-exchange'; main()"


def _exporting(
    count: int, cert_in: Agency, tmp_path: Path
) -> tuple[list[dict[str, Any]], Path, subprocess.Popen[str]]:
    """`count` indicators stored, and a plain export of them to out/list.txt running in a
    process of its own."""
    values = [indicator(f"host{i:06d}.evil-example.net", tlp="green") for i in range(count)]
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *values])
    out = tmp_path / "out"
    out.mkdir()
    export = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _RUN,
            "export",
            "--format",
            "plain",
            "--any-status",
            "-o",
            str(out / "list.txt"),
        ],
        env={**os.environ, "CTI_EXCHANGE_HOME": str(cert_in.home), "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return values, out, export


def test_writers_commit_while_a_plain_export_reads(cert_in: Agency, tmp_path: Path) -> None:
    values, out, export = _exporting(60_000, cert_in, tmp_path)
    committed = refused = 0
    try:
        # While the export writes its body beside the target (it reads the store then), a
        # writer with no patience at all tries to commit, again and again.
        deadline = time.monotonic() + 60
        while export.poll() is None and time.monotonic() < deadline:
            if not any(p.name.startswith(".cti-export-body.") for p in out.iterdir()):
                time.sleep(0.005)
                continue
            try:
                with sqlite3.connect(store_path(cert_in), timeout=0, isolation_level=None) as conn:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(
                        "UPDATE objects SET status = 'accepted' WHERE object_id = ?", (values[0]["id"],)
                    )
                    conn.execute("COMMIT")
                committed += 1
            except sqlite3.OperationalError:
                refused += 1
            time.sleep(0.01)
        _, stderr = export.communicate(timeout=120)
    finally:
        export.kill()
    assert export.returncode == 0, stderr
    assert committed > 0, f"every write was refused while the export read ({refused})"
    assert len((out / "list.txt").read_text().splitlines()) > 60_000
    assert len(cert_in.run("audit", "show", "--action", "export", "--json").json()) == 1


def test_an_export_that_cannot_record_itself_installs_nothing(cert_in: Agency, tmp_path: Path) -> None:
    set_store_wait(cert_in, 2)  # the wait, shortened in config.toml
    red = [indicator(f"red{i}.example", tlp="red") for i in range(5)]
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *red])
    target = tmp_path / "red.txt"
    writer = sqlite3.connect(store_path(cert_in), isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # a sync writing for longer than the export waits

    def end_the_write() -> None:
        writer.execute("ROLLBACK")
        writer.close()

    release = threading.Timer(6, end_the_write)
    release.start()
    try:
        result = cert_in.run(
            "export", "--format", "plain", "--any-status", "--i-understand-tlp", "-o", str(target)
        )
    finally:
        release.join()
    assert result.exit_code == 5, result.stderr
    assert not target.exists() and list(tmp_path.glob(".cti-export*")) == []
    assert cert_in.run("audit", "show", "--action", "export", "--json").json() == []


def test_a_write_inside_a_snapshot_fails_rather_than_vanishing(tmp_path: Path) -> None:
    db = Database(tmp_path / "store.sqlite")
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"), db.snapshot() as conn:
            conn.execute("UPDATE objects SET status = 'accepted'")
        with db.transaction() as conn:  # and the connection writes again afterwards
            conn.execute("DELETE FROM objects")
    finally:
        db.close()


def test_an_erasure_while_an_export_reads_leaves_the_export_unwritten(
    cert_in: Agency, tmp_path: Path
) -> None:
    # Found on the stop's second review: the snapshot was read before the erasure committed,
    # and its files then put back what the erasure took out.
    values, out, export = _exporting(100_000, cert_in, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".cti-export-body.") for p in out.iterdir()):
            assert export.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        erased = cert_in.run("triage", "erase", values[0]["id"], "--note", "request 12", "--yes")
        _, stderr = export.communicate(timeout=120)
    finally:
        export.kill()
    assert erased.exit_code == 0, erased.stderr
    assert export.returncode == 5, stderr
    assert "an erasure (`triage erase`) ran while the export read the store" in stderr
    assert not (out / "list.txt").exists() and list(out.iterdir()) == []
    assert cert_in.run("audit", "show", "--action", "export", "--json").json() == []
