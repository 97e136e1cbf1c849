"""The plain export of 1,000,000 indicators read through a covering index instead of the table,
side by side with how it reads now, in bare SQLite on a copy of the benchmark's kept store
(issue 7, BENCHMARKS "Stop 29"). An experiment, not a product path: nothing here is used by
cti-exchange.

Now (export_queries.py) an export scans the table in storage order (each row carries its
object's JSON: 1.6 GB for 1,000,000 indicators) and SQLite sorts the matching rows by (type,
plain, value). A covering index in (type, value) order holding every column an export reads
would be walked in order with no table read and no sort. The catch is the spelling blocks: the
export needs, per type, the values it cannot vouch for as canonical before the others, which is
not (type, value) order. Measured here:

- ``now``: the query the export runs (table scan, sort, spelling blocks);
- ``covering``: the covering index walked once in (type, value) order (no spelling blocks: the
  ceiling);
- ``covering-two-walks``: per type, the unvouched values then the vouched ones, two walks;
- ``covering+unvouched-index``: the unvouched values from a small partial index of their own
  (its WHERE the export's test), then one walk of the covering index, skipping them by rowid;

and what the bigger index costs each stored indicator: 100,000 rows of the kept store inserted
into a fresh store of the product's schema in batches of 10,000, sorted by id, a commit each,
with the value index as now and with the covering one (plus the partial index) in its place.

    .venv/bin/python bench/bench_store.py --objects 1000000 --repeat 1 --keep /tmp/bench-store
    .venv/bin/python bench/export_index_experiment.py --store /tmp/bench-store/cert-in/store.sqlite \\
        --dir /tmp/export-index --repeat 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cti_exchange.store.export_queries import _plain_spelling_case
from cti_exchange.store.migrations import apply_migrations
from cti_exchange.store.triage_queries import TriageFilter, filter_sql

COLUMNS = "o.ioc_type, o.value, o.tlp, o.confidence, o.valid_until, o.partner, o.object_id, o.received_at"
COVERING = (
    "CREATE INDEX covering ON objects (ioc_type, value, type, status, revoked, valid_until, tlp, "
    "confidence, partner, received_at, object_id, version, is_current) WHERE is_current = 1"
)
NOW = "2026-12-07T00:00:00.000Z"
FILTERS = {
    "all (any status, expired too)": TriageFilter(statuses=(), include_revoked=True, expired=None, now=NOW),
    "default (accepted, not expired)": TriageFilter(statuses=("accepted",), expired=False, now=NOW),
}


def unvouched_index() -> str:
    plain = _plain_spelling_case("value").replace("o.ioc_type", "ioc_type")
    return f"CREATE INDEX unvouched ON objects (ioc_type) WHERE is_current = 1 AND ({plain}) = 0"


def drain(cursor: sqlite3.Cursor) -> int:
    count = 0
    while rows := cursor.fetchmany(5000):
        count += len(rows)
    return count


def timed(run: Callable[[], int], repeat: int) -> dict[str, Any]:
    walls, cpus, rows = [], [], 0
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        rows = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {
        "rows": rows,
        "wall_s": round(statistics.median(walls), 2),
        "cpu_s": round(statistics.median(cpus), 2),
    }


def export_variants(conn: sqlite3.Connection, f: TriageFilter) -> dict[str, Callable[[], int]]:
    where, params = filter_sql(f)
    base = f"WHERE {where} AND o.ioc_type IS NOT NULL AND o.value IS NOT NULL"
    plain = _plain_spelling_case("o.value")
    types = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT ioc_type FROM objects INDEXED BY covering WHERE is_current = 1 AND ioc_type IS NOT NULL"
        )
    ]

    def now() -> int:
        sql = f"SELECT {COLUMNS}, {plain} FROM objects o NOT INDEXED {base} ORDER BY o.ioc_type, {plain}, o.value, o.rowid"
        return drain(conn.execute(sql, params))

    def covering() -> int:
        sql = f"SELECT {COLUMNS} FROM objects o INDEXED BY covering {base} ORDER BY o.ioc_type, o.value"
        return drain(conn.execute(sql, params))

    def two_walks() -> int:
        count = 0
        for ioc_type in types:
            for vouched in (0, 1):
                sql = (
                    f"SELECT {COLUMNS} FROM objects o INDEXED BY covering {base} AND o.ioc_type = ? "
                    f"AND ({plain}) = ? ORDER BY o.ioc_type, o.value"
                )
                count += drain(conn.execute(sql, [*params, ioc_type, vouched]))
        return count

    def unvouched_first() -> int:
        held = conn.execute(
            f"SELECT o.rowid, {COLUMNS} FROM objects o INDEXED BY unvouched {base} AND ({plain}) = 0", params
        ).fetchall()
        skip = {row[0] for row in held}
        count = len(held)
        cursor = conn.execute(
            f"SELECT o.rowid, {COLUMNS} FROM objects o INDEXED BY covering {base} ORDER BY o.ioc_type, o.value",
            params,
        )
        while rows := cursor.fetchmany(5000):
            count += sum(1 for row in rows if row[0] not in skip)
        return count

    return {
        "now": now,
        "covering": covering,
        "covering-two-walks": two_walks,
        "covering+unvouched-index": unvouched_first,
    }


def storing_cost(big: Path, directory: Path, repeat: int) -> dict[str, Any]:
    """100,000 rows of the big store into a fresh store of the product's schema, batches of
    10,000 sorted by id, a commit each: the value index as now, and the covering one instead."""
    results: dict[str, list[float]] = {"value index as now": [], "covering + unvouched instead": []}
    source = sqlite3.connect(f"file:{big}?mode=ro", uri=True)
    sample = source.execute(
        "SELECT * FROM objects WHERE is_current = 1 AND ioc_type IS NOT NULL LIMIT 100000"
    ).fetchall()
    marks = ", ".join("?" * len(sample[0]))
    batches = [sorted(sample[i : i + 10_000], key=lambda r: r[0]) for i in range(0, len(sample), 10_000)]
    for _ in range(repeat):
        for label in results:
            path = directory / "fresh.sqlite"
            for leftover in directory.glob("fresh.sqlite*"):
                leftover.unlink()
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA page_size = 16384")
            conn.execute("PRAGMA journal_mode = WAL")
            apply_migrations(conn)
            if label != "value index as now":
                conn.execute("DROP INDEX objects_current_by_value")
                conn.execute(COVERING)
                conn.execute(unvouched_index())
            start = time.perf_counter()
            for batch in batches:
                conn.execute("BEGIN")
                conn.executemany(f"INSERT INTO objects VALUES ({marks})", batch)
                conn.execute("COMMIT")
            results[label].append(len(sample) / (time.perf_counter() - start))
            conn.close()
    return {
        label: {"median_per_s": round(statistics.median(r)), "runs": [round(x) for x in r]}
        for label, r in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--store", type=Path, required=True, help="the kept 1,000,000 store (bench_store.py --keep)"
    )
    parser.add_argument("--dir", type=Path, help="where the copy goes (default: a temporary directory)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="export-index-"))
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / "store.sqlite"
    shutil.copyfile(args.store, copy)
    wal = args.store.with_name(args.store.name + "-wal")
    if wal.exists():  # what the store's last writer has not checkpointed yet
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
    conn = sqlite3.connect(copy, isolation_level=None)
    conn.execute("PRAGMA cache_size = -65536")  # as the product's connections (database.py)
    start = time.perf_counter()
    conn.execute(COVERING)
    conn.execute(unvouched_index())
    report: dict[str, Any] = {
        "indexes_built_s": round(time.perf_counter() - start, 1),
        "store_bytes_with_them": copy.stat().st_size,
        "unvouched_rows": conn.execute(
            "SELECT count(*) FROM objects INDEXED BY unvouched WHERE is_current = 1 AND ("
            + _plain_spelling_case("value").replace("o.ioc_type", "ioc_type")
            + ") = 0"
        ).fetchone()[0],
        "export": {},
    }
    for label, f in FILTERS.items():
        variants = export_variants(conn, f)
        # Alternated, so that a slower moment of a shared machine falls on every variant.
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, run in variants.items():
                runs[name].append(timed(run, 1))
        report["export"][label] = {
            name: {
                "rows": r[0]["rows"],
                "wall_s": statistics.median(x["wall_s"] for x in r),
                "cpu_s": statistics.median(x["cpu_s"] for x in r),
            }
            for name, r in runs.items()
        }
        print(json.dumps({label: report["export"][label]}), flush=True)
    conn.close()
    report["storing_100000_rows"] = storing_cost(args.store, directory, args.repeat)
    print(json.dumps(report, indent=1))
    if args.dir is None:  # the copy is as large as the store
        shutil.rmtree(directory)


if __name__ == "__main__":
    main()
