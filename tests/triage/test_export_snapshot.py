"""A plain, CSV or STIX export reads a snapshot of the store and holds no write lock while it
runs: a cron sync or an analyst's decision goes on meanwhile (concurrency walkthrough, stop 27:
three analysts' exports of a store of 500,000 held the write lock for 11 to 37 s each, and a
cron sync queued behind them past its 30 s limit). Its audit record is appended after.

The export is held mid-run deterministically: it writes into a FIFO, which blocks it once the
pipe is full, until the test reads it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import PASSPHRASE, Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put, store_path

_RUN = "from cti_exchange.cli.entry import main; import sys; sys.argv[0] = 'cti-exchange'; main()"


def test_a_plain_export_lets_writers_commit_while_it_runs(cert_in: Agency, tmp_path: Path) -> None:
    values = [indicator(f"host{i:05d}.evil-example.net", tlp="green") for i in range(6000)]
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *values])
    assert cert_in.run("triage", "accept", *(v["id"] for v in values[:5999])).exit_code == 0
    fifo = tmp_path / "blocklist"
    os.mkfifo(fifo)
    export = subprocess.Popen(
        [sys.executable, "-c", _RUN, "export", "--format", "plain", "-o", str(fifo)],
        env={**os.environ, "CTI_EXCHANGE_HOME": str(cert_in.home), "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with open(fifo, "rb") as reader:
            first = reader.read(4096)  # the export is writing now, and blocks once the pipe fills
            # A writer with no patience at all: it fails at once if anyone holds the write lock.
            with sqlite3.connect(store_path(cert_in), timeout=0, isolation_level=None) as conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "UPDATE objects SET status = 'accepted' WHERE object_id = ?", (values[5999]["id"],)
                )
                conn.execute("COMMIT")
            rest = reader.read()
        _, stderr = export.communicate(timeout=120)
    finally:
        export.kill()
    assert export.returncode == 0, stderr
    written = (first + rest).decode().splitlines()
    # The snapshot: 5,999 values, not the one accepted while it ran.
    assert sum(1 for line in written if line and not line.startswith("#")) == 5999
    record = cert_in.run("audit", "show", "--action", "export", "--json").json()
    assert len(record) == 1 and record[0]["details"]["files"][0]["values"] == 5999
