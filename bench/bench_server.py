"""Benchmark of the exchange's TAXII server (issue 5), against medallion's memory backend.

    python bench/bench_server.py            # the full run recorded in docs/BENCHMARKS.md
    python bench/bench_server.py --quick    # a smoke run in well under a minute

Measures, over HTTP on 127.0.0.1 with taxii2-client, each server in its own process under
waitress:
  (a) POSTing N plain STIX indicators (100,000) in requests of 5,000 to our server;
  (b) a full paginated read (as_pages, 1,000 per page) of a collection of 10,000 and one of
      100,000 objects from our server: total time and time per page;
  (c) the same 10,000-object read from plain medallion on its memory backend, loaded from a
      data file (posting 10,000 objects to it one request at a time would take far longer).
      It is stopped after --medallion-cap seconds; a partial figure is reported as such.
Prints a markdown table; --json writes the raw figures too. This is not a test: nothing
asserts on the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from taxii2client.v21 import Collection, as_pages

from cti_exchange.server.provisioning import collection_id_for, plan_exchange, provision
from cti_exchange.server.runner import ServerProcess

TAXII = "application/taxii+json;version=2.1"
IDENTITY = "identity--8ce3f695-d5a4-4dc8-9e93-a65af453469d"
TLP_GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"


def indicator(n: int) -> dict[str, Any]:
    """A realistic indicator of about 600 bytes."""
    ip = f"{10 + n // 65536 % 200}.{n // 256 % 256}.{n % 256}.{7 + n % 200}"
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created_by_ref": IDENTITY,
        "created": "2026-11-02T08:15:30.000Z",
        "modified": "2026-11-02T08:15:30.000Z",
        "name": f"C2 server {ip}",
        "description": "Command-and-control server observed in a phishing campaign against "
        "public administrations; blocks recommended at the perimeter.",
        "indicator_types": ["malicious-activity"],
        "pattern": f"[ipv4-addr:value = '{ip}']",
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": "2026-11-02T08:15:30Z",
        "confidence": 80,
        "labels": ["c2", "phishing"],
        "object_marking_refs": [TLP_GREEN],
    }


@dataclass
class ReadFigures:
    server: str
    objects_in_collection: int
    objects_read: int
    pages: int
    total_s: float
    page_times_s: list[float] = field(default_factory=list)
    complete: bool = True
    note: str = ""

    @property
    def mean_page_s(self) -> float:
        return statistics.fmean(self.page_times_s) if self.page_times_s else float("nan")

    @property
    def median_page_s(self) -> float:
        return statistics.median(self.page_times_s) if self.page_times_s else float("nan")


def timed_read(collection: Collection, expected: int, label: str, per_page: int) -> ReadFigures:
    figures = ReadFigures(label, expected, 0, 0, 0.0)
    seen: set[str] = set()
    start = last = time.perf_counter()
    try:
        for page in as_pages(collection.get_objects, per_request=per_page):
            now = time.perf_counter()
            figures.page_times_s.append(now - last)
            objects = page.get("objects", [])
            figures.objects_read += len(objects)
            seen.update(o["id"] for o in objects)
            figures.pages += 1
            last = time.perf_counter()  # client-side bookkeeping is not server time
    except Exception as exc:  # the watchdog killed the server: report what was measured
        figures.complete = False
        figures.note = f"stopped: {type(exc).__name__}"
    figures.total_s = time.perf_counter() - start
    if figures.complete and (figures.objects_read != expected or len(seen) != expected):
        raise SystemExit(f"{label}: read {figures.objects_read} ({len(seen)} distinct) of {expected}")
    return figures


def post_all(collection: Collection, objects: list[dict[str, Any]], batch: int) -> tuple[float, list[float]]:
    times = []
    start = time.perf_counter()
    for i in range(0, len(objects), batch):
        t = time.perf_counter()
        status = collection.add_objects({"objects": objects[i : i + batch]})
        if status.success_count != len(objects[i : i + batch]):
            raise SystemExit(f"POST {i // batch}: {status.failure_count} failures")
        times.append(time.perf_counter() - t)
    return time.perf_counter() - start, times


def memory_backend_config(work: Path, objects: list[dict[str, Any]], batch: int, password: str) -> Path:
    """A medallion memory-backend data file holding `objects` as if posted `batch` at a time."""
    collection_id = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
    base = time.time()
    manifest = [
        {
            "id": obj["id"],
            "date_added": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + i // batch)) + ".000000Z",
            "version": obj["modified"],
            "media_type": "application/stix+json;version=2.1",
        }
        for i, obj in enumerate(objects)
    ]
    data = {
        "/discovery": {"title": "medallion", "api_roots": ["/api1/"]},
        "api1": {
            "information": {"title": "api1", "versions": [TAXII], "max_content_length": 10485760},
            "status": [],
            "collections": [
                {
                    "id": collection_id,
                    "title": "bench",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": objects,
                    "manifest": manifest,
                }
            ],
        },
    }
    (work / "data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(work / "data.json"),
        },
        "users": {"bench": password},
        "taxii": {"max_page_size": 1000},
    }
    (work / "config.json").write_text(json.dumps(config))
    return work / "config.json"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 / 1,000 objects, 60 s cap")
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--page", type=int, default=1_000)
    parser.add_argument("--medallion-objects", type=int, default=None, help="default: --small")
    parser.add_argument("--medallion-cap", type=float, default=600.0, help="seconds")
    parser.add_argument("--skip-medallion", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--keep", action="store_true", help="keep the servers' data directories")
    args = parser.parse_args()
    if args.quick:
        args.objects, args.small, args.batch, args.medallion_cap = 10_000, 1_000, 1_000, 60.0

    work = Path(tempfile.mkdtemp(prefix="bench-taxii-"))
    passwords = {"cert-fr": secrets.token_urlsafe(16), "cert-in": secrets.token_urlsafe(16)}
    provision(
        work / "ours",
        plan_exchange([("cert-fr", "CERT-FR"), ("cert-in", "CERT-In")]),
        passwords=passwords,
    )
    try:
        run(args, work, passwords)
    finally:
        if args.keep:
            print(f"# data kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path, passwords: dict[str, str]) -> None:
    medallion_objects = args.medallion_objects or args.small
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
        },
        "parameters": {k: v for k, v in vars(args).items() if k != "json"},
    }

    large = [indicator(n) for n in range(args.objects)]
    small = [indicator(n) for n in range(args.small)]
    with ServerProcess(work / "ours") as server:

        def collection(sender: str, recipient: str, user: str) -> Collection:
            url = f"{server.api_root_url}collections/{collection_id_for(sender, recipient)}/"
            return Collection(url, user=user, password=passwords[user])

        print(f"# POST {args.objects} objects in requests of {args.batch}", file=sys.stderr)
        post_total, post_times = post_all(collection("cert-fr", "cert-in", "cert-fr"), large, args.batch)
        small_total, _ = post_all(collection("cert-in", "cert-fr", "cert-in"), small, args.batch)
        results["post"] = {
            "objects": args.objects,
            "batch": args.batch,
            "total_s": post_total,
            "per_request_s": post_times,
            "small_total_s": small_total,
        }
        print("# paginated reads", file=sys.stderr)
        read_small = timed_read(collection("cert-in", "cert-fr", "cert-fr"), args.small, "ours", args.page)
        read_large = timed_read(collection("cert-fr", "cert-in", "cert-in"), args.objects, "ours", args.page)
        db_size = sum(p.stat().st_size for p in (work / "ours").glob("taxii.sqlite3*"))

    read_memory = None
    if not args.skip_medallion:
        cap = args.medallion_cap
        print(
            f"# medallion memory backend, {medallion_objects} objects, cap {cap:.0f} s",
            file=sys.stderr,
        )
        (work / "medallion").mkdir()
        password = secrets.token_urlsafe(16)
        config = memory_backend_config(work / "medallion", small[:medallion_objects], args.batch, password)
        with ServerProcess.plain_medallion(
            config, work / "medallion", api_root="api1", startup_timeout=120
        ) as memory:
            url = f"{memory.api_root_url}collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/"
            watchdog = threading.Timer(args.medallion_cap, memory.kill)
            watchdog.start()
            try:
                read_memory = timed_read(
                    Collection(url, user="bench", password=password),
                    medallion_objects,
                    "medallion-memory",
                    args.page,
                )
            finally:
                watchdog.cancel()

    results["reads"] = [
        asdict(r) | {"mean_page_s": r.mean_page_s, "median_page_s": r.median_page_s}
        for r in (read_small, read_large, read_memory)
        if r is not None
    ]
    results["db_bytes"] = db_size
    print_table(args, post_total, post_times, read_small, read_large, read_memory, db_size)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


def print_table(
    args: argparse.Namespace,
    post_total: float,
    post_times: list[float],
    small: ReadFigures,
    large: ReadFigures,
    memory: ReadFigures | None,
    db_size: int,
) -> None:
    def row(label: str, r: ReadFigures) -> str:
        status = "" if r.complete else f" ({r.note}, partial)"
        return (
            f"| {label} | {r.objects_in_collection:,} | {r.objects_read:,} | {r.pages} | "
            f"{r.total_s:.2f} s{status} | {r.mean_page_s * 1000:.1f} ms | "
            f"{r.median_page_s * 1000:.1f} ms |"
        )

    print(
        f"POST {args.objects:,} objects in {len(post_times)} requests of {args.batch:,}: "
        f"{post_total:.2f} s ({args.objects / post_total:,.0f} objects/s; "
        f"slowest request {max(post_times):.2f} s)"
    )
    print(f"Database on disk after both collections: {db_size / 1e6:.0f} MB\n")
    print(
        f"| Server | Objects in collection | Read | Pages ({args.page:,}/page) | Total | "
        "Mean per page | Median per page |"
    )
    print("|---|---|---|---|---|---|---|")
    print(row("cti-exchange SQLite backend", small))
    print(row("cti-exchange SQLite backend", large))
    if memory is not None:
        print(row("medallion memory backend", memory))
        if not memory.complete and memory.pages:
            # Clearly an estimate: pages not measured are assumed as slow as the measured ones.
            estimate = memory.total_s / memory.pages * -(-memory.objects_in_collection // args.page)
            print(
                f"\nmedallion did not finish within {args.medallion_cap:.0f} s; "
                f"EXTRAPOLATED (not measured) full read: about {estimate:.0f} s"
            )
    ratio = large.mean_page_s / small.mean_page_s
    print(
        f"\nTime per page at {large.objects_in_collection:,} / at {small.objects_in_collection:,} "
        f"objects (mean): {ratio:.2f}x"
    )


if __name__ == "__main__":
    main()
