"""Benchmark: the local store at analyst scale (issue 7). Not a test: run it by hand and record
the figures in docs/BENCHMARKS.md.

    .venv/bin/python bench/bench_store.py                    # 1,000,000 indicators
    .venv/bin/python bench/bench_store.py --objects 100000   # quicker
    .venv/bin/python bench/bench_store.py --keep /tmp/bench-store   # reuse the big store
    .venv/bin/python bench/bench_store.py --only-storing             # part 1 only
    .venv/bin/python bench/bench_store.py --keep /tmp/bench-store --only-search  # text search
    .venv/bin/python bench/bench_store.py --keep /tmp/bench-store --only-into-big  # adds to it

Measures, on real files:
1. storing pulled indicators: `write_objects` inside one transaction, batches of 10,000,
   50,000 and 100,000 into a fresh store, with the settings before stop 20 beside them, and
   more into the big store at the end; beside the naive way (stix2.parse and stix2's
   FileSystemSink, batches of 2,000);
2. a store of N indicators built through the same `write_objects` path (three partners, one
   envelope of 10,000 per write, 5% of values sent by two partners, 2% updated to a second
   version, 0.5% revoked, 10% expired, five TLP levels), then 70% of it accepted;
3. `triage list` first page with filters, through the API and through the CLI process (which
   adds Python start-up and imports), beside a naive list (every row's JSON parsed, filtered
   and sorted in Python); first text search (`--search`), which builds the text-search index
   (store/text_index.py), and then rare to common text with the index and with a scan (the
   plan before the index) side by side (`--only-search --keep DIR` runs this part alone);
4. `export --format plain` of all of it (any status, expired included) and of the default
   export (accepted, not expired), through the API and the CLI (time, size, peak memory),
   beside a naive export (every row's JSON parsed, values de-duplicated in a Python set).
Times are medians of --repeat runs (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from cti_exchange.collector import collector_paused
from cti_exchange.export import ExportRequest, export_indicators
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.stix.pattern_values import indicator_value
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.objects import write_objects
from cti_exchange.store.store import Store
from cti_exchange.store.triage_queries import STATUSES, PageRequest, list_page
from cti_exchange.triage import build_filter, list_objects

PASSPHRASE = "bench passphrase, not a secret"
CLI = Path(sys.executable).with_name("cti-exchange")
ENVELOPE = 10_000
PARTNERS = [("cert-fr", 0.60), ("cert-uk", 0.35), ("cert-jp", 0.05)]
MARKINGS = [level.marking_id for level in (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)]
TLP_WEIGHTS = [10, 30, 50, 7, 3]
IDENTITY = "identity--6b1c0f5e-1f0a-5c3e-9a51-3f0b7d1c2e44"


def _value(i: int, r: int) -> tuple[str, str]:
    """(pattern, value) of the i-th indicator; six types in equal shares."""
    kind = i % 6
    if kind == 0:
        v = f"{(r >> 24) % 200 + 20}.{(r >> 16) & 255}.{(r >> 8) & 255}.{r & 255}"
        return f"[ipv4-addr:value = '{v}']", v
    if kind == 1:
        v = f"host{i}.evil{r % 97}.net"
        return f"[domain-name:value = '{v}']", v
    if kind == 2:
        v = f"http://bad{r % 100_000}.evil{r % 89}.org/p/{r % 1000}.php?id={i}"
        return f"[url:value = '{v}']", v
    if kind == 3:
        v = f"{r:016x}{r * 3 % 2**64:016x}{r * 5 % 2**64:016x}{r * 7 % 2**64:016x}"
        return f"[file:hashes.'SHA-256' = '{v}']", v
    if kind == 4:
        v = f"noreply{i}@phish{r % 500}.biz"
        return f"[email-addr:value = '{v}']", v
    v = f"{r:016x}{r * 3 % 2**64:016x}"
    return f"[file:hashes.MD5 = '{v}']", v


def indicators(start: int, count: int, rng: random.Random, *, day: int = 0) -> list[dict[str, Any]]:
    """Indicators as a partner's cti-exchange writes them (about 560 bytes of JSON each)."""
    out = []
    stamp = f"2026-10-{1 + day % 28:02d}T10:00:00.000Z"
    for i in range(start, start + count):
        r = rng.getrandbits(64)
        pattern, value = _value(i, r)
        expired = i % 10 == 9
        out.append(
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                "created": stamp,
                "modified": stamp,
                "created_by_ref": IDENTITY,
                "name": value,
                "indicator_types": ["malicious-activity"],
                "pattern": pattern,
                "pattern_type": "stix",
                "valid_from": stamp,
                "valid_until": "2026-10-20T00:00:00.000Z" if expired else "2027-10-01T00:00:00.000Z",
                "confidence": 30 + r % 71,
                "object_marking_refs": [rng.choices(MARKINGS, TLP_WEIGHTS)[0]],
            }
        )
    return out


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def _timed(action: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        samples.append(time.perf_counter() - started)
    return _median(samples), result


# -- 1. storing ---------------------------------------------------------------------------


class _CheckpointsInTheCommit:
    """Stands in for the store's checkpoint thread: what storing did before stop 20."""

    failure = None

    def before_write(self) -> None:
        pass

    def after_commit(self) -> None:
        pass

    def close(self) -> None:
        pass


def _open_store(path: Path, *, as_before: bool) -> Store:
    """A fresh store; `as_before`: 4 KiB pages and SQLite's checkpoints inside the commit, the
    settings before stop 20, for a side-by-side figure."""
    if not as_before:
        return Store(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
    return _checkpoints_in_the_commit(Store(path))


def _checkpoints_in_the_commit(store: Store) -> Store:
    """The store as it checkpointed before stop 20: SQLite's own checkpoints, in the commit."""
    store.db.conn.execute("PRAGMA wal_autocheckpoint=1000")
    store.db.conn.execute("PRAGMA journal_size_limit=-1")
    store.db.checkpointer.close()
    store.db.checkpointer = _CheckpointsInTheCommit()  # type: ignore[assignment]
    return store


def _store_envelope(store: Store, objects: list[dict[str, Any]], received_at: str) -> None:
    """One envelope's objects in one transaction, as `pull` stores them (with the cyclic
    collector paused, cti_exchange/collector.py)."""
    with collector_paused(), store.db.transaction() as conn:
        write_objects(
            conn,
            objects,
            envelope_id=f"envelope--{uuid.uuid4()}",
            partner="cert-fr",
            received_at=received_at,
        )


def bench_storing(directory: Path, repeat: int, *, as_before: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    # 10,000: an envelope sealed for 1 MiB (a queued push); 50,000: about what one holds sealed
    # for a 10 MiB server (88,883 indicators went in 2); 100,000: a larger server limit.
    for batch in (10_000, 50_000, 100_000):
        rates, cpu_rates, busy = [], [], 0.0
        path = directory / f"storing-{batch}.sqlite"
        store = _open_store(path, as_before=as_before)
        try:
            for n in range(max(repeat, 3)):
                objects = indicators(n * batch, batch, rng)
                cpu, started = time.process_time(), time.perf_counter()
                _store_envelope(store, objects, "2026-10-01T12:00:00.000Z")
                elapsed = time.perf_counter() - started
                busy += elapsed
                rates.append(batch / elapsed)
                cpu_rates.append(batch / (time.process_time() - cpu))
        finally:
            # Closing runs the checkpoints the last commits asked for (store/
            # wal_checkpointer.py) and copies what is left of the log: part of the cost.
            started = time.perf_counter()
            store.close()
            busy += time.perf_counter() - started
        results[f"batch_{batch}"] = {
            "objects_per_s": _median(rates),
            "cpu_objects_per_s": _median(cpu_rates),
            "runs": [round(r) for r in rates],
            "all_batches_and_close_objects_per_s": batch * len(rates) / busy,
        }
        for leftover in directory.glob(f"storing-{batch}.sqlite*"):
            leftover.unlink()
    return results


NAIVE_STORING = 2_000  # objects per run: the naive way takes milliseconds each


def naive_storing(directory: Path, repeat: int) -> dict[str, Any]:
    """What a user would script with the STIX library alone: stix2.parse each object, then
    stix2's own FileSystemSink (one JSON file per object version; not fsynced, no provenance,
    no current-version marking, no triage columns)."""
    import stix2

    rates = []
    rng = random.Random(11)  # noqa: S311 - test data, not secrets
    for n in range(max(repeat, 3)):
        objects = indicators(n * NAIVE_STORING, NAIVE_STORING, rng)
        target = directory / f"naive-storing-{n}"
        target.mkdir()
        started = time.perf_counter()
        stix2.FileSystemSink(str(target), allow_custom=True).add(
            [stix2.parse(obj, allow_custom=True) for obj in objects]
        )
        rates.append(NAIVE_STORING / (time.perf_counter() - started))
        shutil.rmtree(target)
    return {
        "objects_per_s": _median(rates),
        "objects_per_run": NAIVE_STORING,
        "runs": [round(r) for r in rates],
    }


# -- 2. the big store ---------------------------------------------------------------------


def make_home(directory: Path) -> Path:
    home = directory / "cert-in"
    if not (home / "config.toml").exists():
        subprocess.run(
            [str(CLI), "--home", str(home), "init", "--agency", "cert-in", "--name", "CERT-In"],
            check=True,
            capture_output=True,
            env=_env(),
        )
    return home


def _env() -> dict[str, str]:
    return dict(os.environ, CTI_EXCHANGE_PASSPHRASE=PASSPHRASE, CTI_EXCHANGE_ANALYST="bench")


def build_store(path: Path, total: int) -> dict[str, Any]:
    rng = random.Random(42)  # noqa: S311 - test data, not secrets
    envelopes = total // ENVELOPE
    started = time.perf_counter()
    rates = []
    earlier: list[tuple[str, str]] = []  # (pattern, value) samples of envelopes already stored
    with Store(path) as store:
        for e in range(envelopes):
            partner = rng.choices([p for p, _ in PARTNERS], [w for _, w in PARTNERS])[0]
            objects = indicators(e * ENVELOPE, ENVELOPE, rng, day=e * 28 // envelopes)
            if earlier:  # 5% of values were sent before, by this or another partner
                for obj in objects[: ENVELOPE // 20]:
                    obj["pattern"], obj["name"] = rng.choice(earlier)
            earlier += [(o["pattern"], o["name"]) for o in rng.sample(objects, 500)]
            envelope_id = f"envelope--{uuid.uuid4()}"
            received = f"2026-10-{1 + e * 28 // envelopes:02d}T{e % 24:02d}:00:00.000Z"
            t = time.perf_counter()
            with store.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO envelopes_in (envelope_id, partner, sender, sequence, digest, "
                    "issued_at, received_at, signer_kid, signer_thumbprint, bundle_id, "
                    "object_count, artifact_id, jws_deflated) "
                    "VALUES (?, ?, ?, ?, 'sha256:0', ?, ?, ?, ?, ?, ?, NULL, x'')",
                    (
                        envelope_id,
                        partner,
                        partner,
                        e + 1,
                        received,
                        received,
                        f"{partner}-sig-1",
                        f"thumb-{partner}",
                        f"bundle--{uuid.uuid4()}",
                        ENVELOPE,
                    ),
                )
                write_objects(conn, objects, envelope_id=envelope_id, partner=partner, received_at=received)
            rates.append(ENVELOPE / (time.perf_counter() - t))
            if e % 10 == 9:
                # 2% of what came before gets a newer version, 0.5% a revocation.
                with store.db.transaction() as conn:
                    top = conn.execute("SELECT max(rowid) FROM objects").fetchone()[0]
                    picks = rng.sample(range(1, top + 1), ENVELOPE // 4)
                    rows = conn.execute(
                        f"SELECT json, partner FROM objects WHERE is_current = 1 AND rowid IN "
                        f"({','.join(map(str, picks))})"
                    ).fetchall()
                    # Each update comes from the partner that shared the object: only the owner
                    # moves an object on (store/objects.py).
                    updates: dict[str, list[dict[str, Any]]] = {}
                    for k, (text, owner) in enumerate(rows):
                        obj = json.loads(text)
                        obj["modified"] = f"2026-10-{1 + e * 28 // envelopes:02d}T11:00:00.000Z"
                        obj["confidence"] = 90
                        if k % 5 == 0:
                            obj["revoked"] = True
                        updates.setdefault(owner, []).append(obj)
                    for owner, objects in updates.items():
                        write_objects(
                            conn,
                            objects,
                            envelope_id=f"{envelope_id}-u-{owner}",
                            partner=owner,
                            received_at=received,
                        )
        with store.db.transaction() as conn:  # setup, not measured: analysts accepted 70%
            conn.execute(
                "UPDATE objects SET status = 'accepted', status_by = 'bench', "
                "status_at = received_at WHERE is_current = 1 AND abs(random()) % 10 < 7"
            )
        current = store.db.conn.execute("SELECT count(*) FROM objects WHERE is_current = 1").fetchone()[0]
    return {
        "seconds": time.perf_counter() - started,
        "objects_per_s_median": _median(rates),
        "current_objects": current,
        "file_mb": path.stat().st_size / 1e6,
    }


# -- 3. triage list -----------------------------------------------------------------------

LIST_CASES = [
    ("--type domain-name --status new", {"types": ["domain-name"], "statuses": ["new"]}),
    ("--partner cert-jp --min-confidence 70", {"partners": ["cert-jp"], "min_confidence": 70}),
    ("--partner cert-fr --min-confidence 70", {"partners": ["cert-fr"], "min_confidence": 70}),
    ("--search evil42.", {"text": "evil42."}),
    ("--search host12345.", {"text": "host12345."}),
    ("--tlp red --since 7d", {"tlps": ["red"], "since": "2026-10-20T00:00:00Z"}),
    ("(no filter)", {}),
]


# Run through a small launcher: a child forked from this (large) benchmark process would count
# our pages in its peak RSS until it execs, so the launcher reports its own child's peak.
_LAUNCHER = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], check=False)\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "sys.stderr.write(f'\\npeak-rss-kib {peak}')\n"
    "sys.exit(done.returncode)\n"
)


def _cli(home: Path, *args: str) -> tuple[float, int, bytes]:
    """Wall seconds (launcher included, about 20 ms), peak RSS (KiB) and stdout of one CLI run."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(CLI), "--home", str(home), *args],
        capture_output=True,
        env=_env(),
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{args}: {done.stderr.decode()}")
    peak = int(done.stderr.rsplit(b"peak-rss-kib ", 1)[1])
    return elapsed, peak, done.stdout


def naive_list(path: Path, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """What a script would do: every current row's JSON, filtered and sorted in Python."""
    with Store(path) as store:
        rows = store.db.conn.execute(
            "SELECT json, partner, received_at, status FROM objects WHERE is_current = 1"
        )
        matches = []
        for text, partner, received, status in rows:
            obj = json.loads(text)
            obj["_partner"], obj["_received"], obj["_status"] = partner, received, status
            if predicate(obj):
                matches.append(obj)
    matches.sort(key=lambda o: o["_received"], reverse=True)
    return matches[:50]


def bench_list(path: Path, home: Path, repeat: int) -> list[dict[str, Any]]:
    results = []
    with Store(path) as store:
        for label, filters in LIST_CASES:
            f = build_filter(**filters)  # type: ignore[arg-type]
            api, page = _timed(partial(list_objects, store, f), repeat)
            cli_times = (
                [_cli(home, "triage", "list", "--json", *label.split())[0] for _ in range(repeat)]
                if label != "(no filter)"
                else [_cli(home, "triage", "list", "--json")[0] for _ in range(repeat)]
            )
            results.append(
                {
                    "filter": label,
                    "api_ms": api * 1000,
                    "cli_ms": _median(cli_times) * 1000,
                    "lines": len(page.lines),
                }
            )
    started = time.perf_counter()
    naive_list(
        path,
        lambda o: indicator_value(o.get("pattern"))[0] == "domain-name" and o["_status"] == "new",
    )
    results.append(
        {
            "filter": "naive: --type domain-name --status new",
            "api_ms": (time.perf_counter() - started) * 1000,
            "cli_ms": None,
            "lines": 50,
        }
    )
    return results


# -- 3b. text search ----------------------------------------------------------------------

# Rare to common text in the benchmark's values (matches on 1,000,000 stored: 0, 4, about
# 1,600, 3,500 and 20,000).
SEARCH_CASES = ["host12345.", "bad66618", "42.e", "evil42.", "host1"]


def _scan_page(store: Store, text: str) -> list[Any]:
    """The first page as the search ran before the index: every value of the types that can
    hold the text read from the value index (PageRequest.text_index=False)."""
    conn = store.db.conn
    conn.execute("BEGIN")
    try:
        return list_page(conn, build_filter(text=text), PageRequest(text_index=False))[0]
    finally:
        conn.execute("COMMIT")


def bench_search(path: Path, home: Path, repeat: int) -> dict[str, Any]:
    """`triage list --search`: the index built from nothing by the first search (through the
    CLI), then each text through the API with the index and without it (a scan), through the
    CLI, and the naive way (every row's JSON parsed in Python)."""
    with Store(path) as store:
        store.db.conn.execute("DROP TABLE IF EXISTS search_text")
        store.db.conn.execute("DROP TABLE IF EXISTS search_text_state")
        rows = store.db.conn.execute("SELECT max(rowid) FROM objects").fetchone()[0]
    first, _, _ = _cli(home, "triage", "list", "--json", "--search", SEARCH_CASES[0])
    report: dict[str, Any] = {"first_search_builds_index_s": first, "rows": rows, "cases": []}
    with Store(path) as store:
        for text in SEARCH_CASES:
            f = build_filter(text=text)
            indexed, page = _timed(partial(list_objects, store, f), repeat)
            scan, scanned = _timed(partial(_scan_page, store, text), repeat)
            assert [line.object.rowid for line in page.lines] == [r.rowid for r in scanned], text
            cli = [_cli(home, "triage", "list", "--json", "--search", text)[0] for _ in range(repeat)]
            report["cases"].append(
                {
                    "text": text,
                    "lines": len(page.lines),
                    "api_index_ms": indexed * 1000,
                    "api_scan_ms": scan * 1000,
                    "cli_ms": _median(cli) * 1000,
                    "cli_min_ms": min(cli) * 1000,
                    "cli_max_ms": max(cli) * 1000,
                }
            )
    needle = SEARCH_CASES[0]
    started = time.perf_counter()
    naive_list(
        path,
        lambda o: (
            needle in (indicator_value(o.get("pattern"))[1] or "").lower()
            or needle in (o.get("name") or "").lower()
        ),
    )
    report["naive_ms"] = (time.perf_counter() - started) * 1000
    return report


# -- 4. export ----------------------------------------------------------------------------


def naive_export(path: Path, target: Path) -> int:
    seen: set[tuple[str, str]] = set()
    with Store(path) as store, target.open("w") as out:
        for (text,) in store.db.conn.execute("SELECT json FROM objects WHERE is_current = 1"):
            obj = json.loads(text)
            if obj.get("revoked"):
                continue
            kind, value = indicator_value(obj.get("pattern"))
            if kind and value is not None and (kind, value) not in seen:
                seen.add((kind, value))
                out.write(value + "\n")
    return len(seen)


def bench_export(path: Path, home: Path, directory: Path, repeat: int) -> list[dict[str, Any]]:
    results = []
    target = directory / "export.txt"
    everything = build_filter(statuses=STATUSES)
    default = build_filter(statuses=["accepted"], expired=False)
    with Store(path) as store:
        for label, f in (
            ("all (any status, expired too)", everything),
            ("default (accepted, not expired)", default),
        ):
            request = ExportRequest("plain", f, target, i_understand_tlp=True)
            api, result = _timed(
                partial(export_indicators, store, request, producer="cert-in", identity={"id": IDENTITY}),
                repeat,
            )
            args = ["export", "-o", str(target), "--i-understand-tlp"]
            args += ["--any-status", "--include-expired"] if f is everything else []
            cli = [_cli(home, *args) for _ in range(repeat)]
            results.append(
                {
                    "export": label,
                    "values": result.values,
                    "api_s": api,
                    "cli_s": _median([c[0] for c in cli]),
                    "bytes": target.stat().st_size,
                    "cli_peak_rss_mb": max(c[1] for c in cli) / 1024,
                }
            )
    # The naive export runs in its own process (through the launcher) for its peak memory.
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _LAUNCHER,
            sys.executable,
            __file__,
            "--naive-export",
            str(path),
            str(target),
        ],
        capture_output=True,
        check=True,
    )
    results.append(
        {
            "export": "naive (all, JSON parsed per row, set)",
            "values": int(done.stdout),
            "api_s": time.perf_counter() - started,
            "cli_s": None,
            "bytes": target.stat().st_size,
            "cli_peak_rss_mb": int(done.stderr.rsplit(b"peak-rss-kib ", 1)[1]) / 1024,
        }
    )
    return results


def bench_into_big(path: Path, repeat: int) -> dict[str, Any]:
    """Storing into the big store: `repeat` envelopes of 10,000, then one of 100,000, each
    timed with the close that follows it (which runs the checkpoint); with the store's
    settings, then with checkpoints inside the commit as before stop 20 (the page size of an
    existing store cannot change). Every run adds its indicators to the store for good."""
    results: dict[str, Any] = {}
    rng = random.Random(99)  # noqa: S311 - test data, not secrets
    start = 50_000_000 + _stored(path)
    for label, as_before in (("now", False), ("checkpoints_in_the_commit", True)):
        for batch, runs in ((10_000, repeat), (100_000, 1)):
            rates = []
            for _ in range(runs):
                objects = indicators(start, batch, rng)
                start += batch
                store = _checkpoints_in_the_commit(Store(path)) if as_before else Store(path)
                started = time.perf_counter()
                _store_envelope(store, objects, "2026-10-29T00:00:00.000Z")
                store.close()
                rates.append(batch / (time.perf_counter() - started))
            results[f"{label}_batch_{batch}"] = {
                "objects_per_s": _median(rates),
                "runs": [round(r) for r in rates],
            }
    return results


def _stored(path: Path) -> int:
    with Store(path) as store:
        return int(store.db.conn.execute("SELECT count(*) FROM objects").fetchone()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="directory to keep (and reuse) the big store in")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--only-storing", action="store_true", help="measure storing only (part 1)")
    parser.add_argument(
        "--only-search", action="store_true", help="measure text search only (part 3b; use with --keep)"
    )
    parser.add_argument(
        "--only-into-big",
        action="store_true",
        help="measure storing into the big store only (use with --keep; adds to it for good)",
    )
    parser.add_argument(
        "--only-list-export",
        action="store_true",
        help="measure triage list and export only (parts 3 and 4; use with --keep)",
    )
    parser.add_argument("--naive-export", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_export:  # the child process of bench_export
        print(naive_export(*args.naive_export))
        return 0
    directory = args.keep or Path(tempfile.mkdtemp(prefix="bench-store-"))
    directory.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"objects": args.objects, "repeat": args.repeat}
    try:
        if not args.only_search and not args.only_into_big and not args.only_list_export:
            print("storing ...", flush=True)
            report["storing"] = bench_storing(directory, args.repeat)
            report["storing"]["as_before_stop_20"] = bench_storing(directory, args.repeat, as_before=True)
            report["storing"]["naive_stix2_filesystem"] = naive_storing(directory, args.repeat)
            print(json.dumps(report["storing"], indent=1), flush=True)
            if args.only_storing:
                return _write_report(args.json, report)
        home = make_home(directory)
        path = ProfileHome(home).store_path()
        with Store(path) as store:
            stored = store.db.conn.execute("SELECT count(*) FROM objects").fetchone()[0]
        if not stored:
            print(f"building a store of {args.objects:,} ...", flush=True)
            report["build"] = build_store(path, args.objects)
            print(json.dumps(report["build"], indent=1), flush=True)
        if args.only_into_big:
            report["into_big_store"] = bench_into_big(path, args.repeat)
            print(json.dumps(report["into_big_store"], indent=1), flush=True)
            return _write_report(args.json, report)
        if not args.only_list_export:
            print("text search ...", flush=True)
            report["search"] = bench_search(path, home, args.repeat)
            print(json.dumps(report["search"], indent=1), flush=True)
            if args.only_search:
                return _write_report(args.json, report)
        print("triage list ...", flush=True)
        report["list"] = bench_list(path, home, args.repeat)
        for row in report["list"]:
            print(row, flush=True)
        print("export ...", flush=True)
        report["export"] = bench_export(path, home, directory, max(1, args.repeat // 2))
        for row in report["export"]:
            print(row, flush=True)
        if args.keep is None and "storing" in report:
            report["storing"]["into_big_store"] = bench_into_big(path, args.repeat)
            print(json.dumps(report["storing"]["into_big_store"], indent=1), flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    return _write_report(args.json, report)


def _write_report(path: Path | None, report: dict[str, Any]) -> int:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
