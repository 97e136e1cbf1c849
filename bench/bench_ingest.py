"""Benchmark: CSV of mixed indicators -> validated, serialised STIX 2.1 bundle (issue 4).

Compares, in the same run, cti-exchange's path (`ingest_files` + `build_bundle` +
`serialise_bundle`) with the naive one (a `stix2.Indicator` per row, then `stix2.Bundle`), and
measures peak memory at several sizes, each in a fresh process so that sizes do not share a
heap. Not a test: run it by hand and record the figures in docs/BENCHMARKS.md.

    .venv/bin/python bench/bench_ingest.py                      # 100k throughput, 5k naive
    .venv/bin/python bench/bench_ingest.py --memory 100000 300000 1000000   # + peak memory

The CSV has nine indicator types in equal shares (IPv4, IPv6, domain, URL, e-mail, MD5,
SHA-1, SHA-256, IPv4 CIDR), a TLP, a confidence and a description per row, no type column
(types are detected), and about 1% duplicates.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cti_exchange.ingest import ingest_files
from cti_exchange.ingest_settings import IngestContext, IngestOptions
from cti_exchange.profile.model import DEFAULT_LIFETIME_DAYS
from cti_exchange.stix.bundle import build_bundle, serialise_bundle, write_bundle
from cti_exchange.stix.ioc_types import detect_ioc_type
from cti_exchange.stix.patterns import pattern_for
from cti_exchange.stix.tlp import Tlp
from cti_exchange.stix.validate import validate_bundle

IDENTITY = {
    "type": "identity",
    "spec_version": "2.1",
    "id": "identity--6b1c0f5e-1f0a-5c3e-9a51-3f0b7d1c2e44",
    "created": "2025-01-01T00:00:00.000Z",
    "modified": "2025-01-01T00:00:00.000Z",
    "name": "CERT-FR",
    "identity_class": "organization",
}
TLPS = ["amber", "green", "amber+strict", "red", ""]


def generate_csv(path: Path, rows: int, seed: int = 4) -> None:
    """`rows` mixed indicators, reproducible from `seed`."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    with path.open("w", newline="") as stream:
        stream.write("value,tlp,confidence,description\n")
        for i in range(rows):
            r = rng.getrandbits(64)
            if i % 100 == 99:
                r = i  # about 1% duplicates of earlier rows' randomness
            kind = i % 9
            if kind == 0:
                value = f"{(r >> 24) % 200 + 20}.{(r >> 16) & 255}.{(r >> 8) & 255}.{r & 255}"
            elif kind == 1:
                value = f"2a01:{r & 0xFFFF:x}:{(r >> 16) & 0xFFFF:x}::{(r >> 32) & 0xFFFF:x}"
            elif kind == 2:
                value = f"host{r % 1_000_000}.evil{r % 97}.net"
            elif kind == 3:
                value = f"http://bad{r % 100_000}.evil{r % 89}.org/p/{r % 1000}.php?id={i}"
            elif kind == 4:
                value = f"noreply{r % 10_000}@phish{r % 500}.biz"
            elif kind == 5:
                value = f"{r:016x}{r * 3 % 2**64:016x}"
            elif kind == 6:
                value = f"{r:016x}{r * 3 % 2**64:016x}{r % 2**32:08x}"
            elif kind == 7:
                value = f"{r:016x}{r * 3 % 2**64:016x}{r * 5 % 2**64:016x}{r * 7 % 2**64:016x}"
            else:
                value = f"{(r >> 24) % 200 + 20}.{(r >> 16) & 255}.{(r >> 8) & 255}.0/24"
            stream.write(f"{value},{TLPS[i % 5]},{50 + i % 50},row {i}\n")


def _spin(loops: int) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(loops):
        total += i
    return time.perf_counter() - started


def parallel_capacity(loops: int = 10_000_000) -> float:
    """How many CPUs two processes actually get right now (2.0 on two idle cores): other work
    on a shared machine leaves less, and the parallel figures must be read with it."""
    from concurrent.futures import ProcessPoolExecutor

    alone = _spin(loops)
    started = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_spin, [loops, loops]))
    return 2 * alone / (time.perf_counter() - started)


def context() -> IngestContext:
    return IngestContext(
        identity=IDENTITY,
        default_tlp=Tlp.AMBER,
        default_confidence=50,
        lifetime_days=dict(DEFAULT_LIFETIME_DAYS),
        now=datetime.now(UTC),
    )


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_ours(path: Path, workers: int) -> tuple[int, float, float]:
    """(objects, wall seconds, CPU seconds) for ingest_files + build_bundle + serialise_bundle."""
    cpu = _cpu_seconds()
    started = time.perf_counter()
    options = IngestOptions(keep_personal_data=True, workers=workers)
    result = ingest_files([path], context(), options)
    serialise_bundle(build_bundle(result.objects, IDENTITY))  # build_bundle validates
    return len(result.objects), time.perf_counter() - started, _cpu_seconds() - cpu


def run_naive(path: Path, rows: int) -> tuple[int, float]:
    """One stix2.Indicator per row, then a stix2.Bundle serialised: what a script would do."""
    import stix2

    started = time.perf_counter()
    markings = {level.value: level.marking_id for level in Tlp}
    objects = []
    with path.open(newline="") as stream:
        for index, row in enumerate(csv.DictReader(stream)):
            if index >= rows:
                break
            ioc_type = detect_ioc_type(row["value"])
            if ioc_type is None:
                continue
            objects.append(
                stix2.Indicator(
                    pattern=pattern_for(ioc_type, row["value"]),
                    pattern_type="stix",
                    valid_from=datetime.now(UTC),
                    created_by_ref=IDENTITY["id"],
                    confidence=int(row["confidence"]),
                    description=row["description"],
                    object_marking_refs=[markings[row["tlp"] or "amber"]],
                )
            )
    stix2.Bundle(objects=objects).serialize()
    return len(objects), time.perf_counter() - started


def measure_memory(rows: int, workers: int, directory: Path) -> dict[str, float]:
    """Runs in a fresh process: convert `rows` rows to a bundle file, as `convert` does."""
    path = directory / f"mem-{rows}.csv"
    if not path.exists():
        generate_csv(path, rows)
    started = time.perf_counter()
    result = ingest_files([path], context(), IngestOptions(keep_personal_data=True, workers=workers))
    bundle = build_bundle(result.objects, IDENTITY)
    with (directory / f"mem-{rows}.json").open("wb") as stream:
        size = write_bundle(bundle, stream)
    seconds = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "rows": rows,
        "objects": len(result.objects),
        "seconds": seconds,
        "peak_mib": own,
        "worker_peak_mib": children,
        "bundle_mib": size / 2**20,
    }


def print_memory_table(sizes: list[int], workers_list: list[int], folder: str) -> None:
    """Each size in a fresh process. Run before anything grows this process: a child's peak
    RSS (ru_maxrss) counts from the fork, so it would include this process's size."""
    columns = ["rows", "processes", "objects", "seconds", "peak RSS, MiB", "workers' peak, MiB",
               "bundle, MiB"]  # fmt: skip
    print("| " + " | ".join(columns) + " |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for workers in workers_list:
        for rows in sizes:
            command = [sys.executable, __file__, "--child", str(rows), "--dir", folder,
                       "--workers", str(workers)]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            m = json.loads(done.stdout)
            print(
                f"| {m['rows']:,} | {workers} | {m['objects']:,} | {m['seconds']:.1f} | "
                f"{m['peak_mib']:.0f} | {m['worker_peak_mib']:.0f} | {m['bundle_mib']:.0f} |"
            )


def print_throughput_table(path: Path, args: argparse.Namespace) -> None:
    print(f"Best of {args.repeat} runs (wall clock); CPU is all processes' user+system time.\n")
    print("| path | rows | objects | seconds | indicators/s | CPU seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for workers in sorted({1, args.workers}):
        runs = [run_ours(path, workers) for _ in range(args.repeat)]
        objects, seconds, cpu = min(runs, key=lambda run: run[1])
        print(
            f"| cti-exchange, {workers} process(es) | {args.rows:,} | {objects:,} | "
            f"{seconds:.2f} | {objects / seconds:,.0f} | {cpu:.2f} |"
        )
    cpu = _cpu_seconds()
    objects, seconds = run_naive(path, args.naive_rows)
    cpu = _cpu_seconds() - cpu
    print(
        f"| naive stix2.Indicator per row | {args.naive_rows:,} | {objects:,} | "
        f"{seconds:.2f} | {objects / seconds:,.0f} | {cpu:.2f} |"
    )
    bundle = build_bundle(
        ingest_files([path], context(), IngestOptions(keep_personal_data=True)).objects,
        IDENTITY,
        validate=False,
    )
    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        assert validate_bundle(bundle) == []
        timings.append(time.perf_counter() - started)
    print(
        f"\nvalidate_bundle on {len(bundle['objects']):,} objects (this bundle, best of "
        f"{args.repeat}): {min(timings):.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the throughput run")
    parser.add_argument("--naive-rows", type=int, default=5_000, help="rows for the naive run")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of our path; best is shown")
    parser.add_argument("--memory", type=int, nargs="*", default=[], help="sizes for memory")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(measure_memory(args.child, args.workers, args.dir)))
        return

    print(
        f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
        f"two processes get {parallel_capacity():.2f} CPUs\n"
    )
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        if args.memory:
            print_memory_table(args.memory, sorted({1, args.workers}), folder)
            print()
        path = Path(folder) / "mixed.csv"
        generate_csv(path, args.rows)
        print_throughput_table(path, args)


if __name__ == "__main__":
    main()
