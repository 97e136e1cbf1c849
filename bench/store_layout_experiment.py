"""Storing envelopes of 10,000 new indicators into a store of 1,000,000, three index layouts
side by side, in bare SQLite (no cti-exchange code: the ceiling of each layout, not a product
path). Issue 7, BENCHMARKS "Stop 27".

- ``as-now``: the objects table's layout: primary key (object_id, version) and a value index
  (ioc_type, value), both keyed by random strings, so 10,000 new rows touch most of their pages.
- ``generations``: both indexes led by a generation number (rowid / 262,144). New rows go into
  the newest generation's part of each index only; a lookup probes every generation.
- ``generations+filter``: as ``generations``, with lookups only in the newest generation and a
  1.25 MB blob rewritten each commit, which is what a Bloom filter of every id and value (kept in
  the store) would cost when it answers "absent" for every new one.

Each envelope opens the store, looks up its ids and values, inserts them sorted, commits, runs a
PASSIVE checkpoint and closes, as a cron `sync` does.

    .venv/bin/python bench/store_layout_experiment.py --dir /tmp/layouts --objects 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import time
import uuid
from pathlib import Path

GENERATION_ROWS = 262_144
LOOKUP_CHUNK = 500

_AS_NOW = """
CREATE TABLE objects (object_id TEXT NOT NULL, version TEXT NOT NULL, is_current INTEGER NOT NULL,
    ioc_type TEXT, value TEXT, received_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'new',
    json TEXT NOT NULL, PRIMARY KEY (object_id, version));
CREATE INDEX v ON objects (ioc_type, value) WHERE is_current = 1;
CREATE INDEX r ON objects (received_at) WHERE is_current = 1;
CREATE INDEX s ON objects (status, received_at) WHERE is_current = 1;
"""
_GENERATIONS = """
CREATE TABLE objects (gen INTEGER NOT NULL, object_id TEXT NOT NULL, version TEXT NOT NULL,
    is_current INTEGER NOT NULL, ioc_type TEXT, value TEXT, received_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new', json TEXT NOT NULL);
CREATE UNIQUE INDEX k ON objects (gen, object_id, version);
CREATE INDEX v ON objects (gen, ioc_type, value) WHERE is_current = 1;
CREATE INDEX r ON objects (received_at) WHERE is_current = 1;
CREATE INDEX s ON objects (status, received_at) WHERE is_current = 1;
CREATE TABLE filter (id INTEGER PRIMARY KEY, bits BLOB NOT NULL);
"""
Row = tuple[int, str, str, str, str, str, str]


def rows(rng: random.Random, count: int, gen: int) -> list[Row]:
    out = []
    for _ in range(count):
        oid = f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        value = f"h{rng.getrandbits(64):016x}.example{rng.randrange(97)}.com"
        body = {
            "type": "indicator",
            "id": oid,
            "pattern": f"[domain-name:value = '{value}']",
            "pad": "x" * 600,
        }
        stamp = "2026-10-29T00:00:00.000Z"
        out.append((gen, oid, stamp, "domain-name", value, stamp, json.dumps(body)))
    out.sort(key=lambda r: r[1])
    return out


def insert(conn: sqlite3.Connection, layout: str, batch: list[Row]) -> None:
    if layout == "as-now":
        conn.executemany(
            "INSERT INTO objects (object_id, version, is_current, ioc_type, value, received_at, json) "
            "VALUES (?, ?, 1, ?, ?, ?, ?)",
            [r[1:] for r in batch],
        )
    else:
        conn.executemany(
            "INSERT INTO objects (gen, object_id, version, is_current, ioc_type, value, received_at, "
            "json) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
            batch,
        )


def build(path: Path, layout: str, objects: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA page_size = 16384")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(_AS_NOW if layout == "as-now" else _GENERATIONS)
    rng = random.Random(1)  # noqa: S311 - test data
    for start in range(0, objects, 50_000):
        conn.execute("BEGIN")
        insert(conn, layout, rows(rng, 50_000, start // GENERATION_ROWS))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def look_up(conn: sqlite3.Connection, column: str, keys: list[str], generations: str | None) -> int:
    found = 0
    where = f"gen IN ({generations}) AND " if generations is not None else ""
    if column == "value":
        where += "ioc_type = 'domain-name' AND is_current = 1 AND "
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT 1 FROM objects WHERE {where}{column} IN ({marks})"
        found += len(conn.execute(sql, chunk).fetchall())
    return found


def envelope(path: Path, layout: str, rng: random.Random, size: int) -> float:
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("BEGIN IMMEDIATE")
    newest = int(conn.execute("SELECT coalesce(max(rowid), 0) FROM objects").fetchone()[0]) // GENERATION_ROWS
    batch = rows(rng, size, newest)
    ids, values = [r[1] for r in batch], sorted(r[4] for r in batch)
    if layout == "as-now":
        found = look_up(conn, "object_id", ids, None) + look_up(conn, "value", values, None)
    elif layout == "generations":
        every = ",".join(str(g) for g in range(newest + 1))
        found = look_up(conn, "object_id", ids, every) + look_up(conn, "value", values, every)
    else:
        found = look_up(conn, "object_id", ids, str(newest)) + look_up(conn, "value", values, str(newest))
        blob = conn.execute("SELECT bits FROM filter WHERE id = 1").fetchone()
        bits = bytearray(blob[0] if blob else bytes(1_250_000))
        for key in ids + values:
            h = hash(key) % (len(bits) * 8)
            bits[h // 8] |= 1 << (h % 8)
        conn.execute("INSERT OR REPLACE INTO filter (id, bits) VALUES (1, ?)", (bytes(bits),))
    assert found == 0
    insert(conn, layout, batch)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    conn.close()
    return size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--envelopes", type=int, default=6)
    parser.add_argument("--size", type=int, default=10_000)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    layouts = ("as-now", "generations", "generations+filter")
    # The two generation layouts share one store: they differ only in how they look up.
    paths = {layout: args.dir / f"{layout.split('+')[0]}.sqlite" for layout in layouts}
    for layout in ("as-now", "generations"):
        if not paths[layout].exists():
            build(paths[layout], layout, args.objects)
    rates: dict[str, list[float]] = {layout: [] for layout in layouts}
    rng = random.Random()  # noqa: S311 - fresh ids each run: the stores are kept between runs
    for _ in range(args.envelopes):  # alternated, so load on the machine falls on all three
        for layout in layouts:
            rates[layout].append(envelope(paths[layout], layout, rng, args.size))
    for layout in layouts:
        runs = " / ".join(f"{r:,.0f}" for r in rates[layout])
        print(f"{layout:20} median {statistics.median(rates[layout]):8,.0f}/s   runs {runs}")


if __name__ == "__main__":
    main()
