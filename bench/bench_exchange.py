"""Benchmark of issue 6: 100,000 indicators CERT-FR -> CERT-In through the embedded server.

cti-exchange end to end (ingest, seal, push, pull, open, verify, store), each side as the real
command in its own process, against the plain approach a user would script today: the same
indicators built with stix2, posted unencrypted with taxii2-client, pulled back with
`as_pages` and parsed with `stix2.parse`. Both against the same `serve` instance (our SQLite
backend), in the same run. Never run as a test.

    .venv/bin/python bench/bench_exchange.py            # 100,000 indicators
    .venv/bin/python bench/bench_exchange.py --rows 10000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ingest import generate_csv  # noqa: E402
from cti_exchange.server.provisioning import collection_id_for, plan_exchange, provision  # noqa: E402
from cti_exchange.server.runner import ServerProcess  # noqa: E402

PASSPHRASE = "benchmark passphrase, not a secret"


def cli(home: Path, *args: str) -> tuple[float, int, subprocess.CompletedProcess[str]]:
    """Runs one command in a fresh process; returns (seconds, peak RSS MiB, result)."""
    env = {**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("rss_of.py")),
            sys.executable,
            "-m",
            "cti_exchange",
            "--home",
            str(home),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    rss = int(done.stderr.strip().splitlines()[-1].split()[-1])
    return seconds, rss, done


def set_up(work: Path) -> tuple[ServerProcess, dict[str, str], Path, Path]:
    passwords = {"cert-fr": secrets.token_urlsafe(16), "cert-in": secrets.token_urlsafe(16)}
    provision(
        work / "server",
        plan_exchange([("cert-fr", "CERT-FR"), ("cert-in", "CERT-In")]),
        passwords=passwords,
    )
    server = ServerProcess(work / "server").start()
    fr, india = work / "cert-fr", work / "cert-in"
    for home, agency, name in ((fr, "cert-fr", "CERT-FR"), (india, "cert-in", "CERT-In")):
        cli(home, "init", "--agency", agency, "--name", name)
    for me, other in ((fr, india), (india, fr)):
        doc = work / f"{other.name}.keys.json"
        cli(other, "keys", "export", "-o", str(doc))
        keys = json.loads(cli(other, "keys", "show", "--json")[2].stdout)["keys"]
        thumb = next(k["thumbprint"] for k in keys if k["use"] == "sig")
        cli(me, "partners", "add", other.name, "--jwks", str(doc), "--fingerprint", thumb)
        secret = me / "taxii.secret"
        secret.write_text(passwords[me.name])
        secret.chmod(0o600)
        cli(
            me,
            "partners",
            "set",
            other.name,
            "--api-root",
            server.api_root_url,
            "--read-collection",
            collection_id_for(other.name, me.name),
            "--write-collection",
            collection_id_for(me.name, other.name),
            "--auth",
            "basic",
            "--username",
            me.name,
            "--secret-file",
            str(secret),
        )
    return server, passwords, fr, india


def ours(fr: Path, india: Path, iocs: Path) -> dict[str, float]:
    push_s, push_rss, pushed = cli(fr, "push", str(iocs), "--to", "cert-in", "--json")
    pull_s, pull_rss, pulled = cli(india, "pull", "--json")
    conn = sqlite3.connect(india / "store.sqlite")
    received = conn.execute(
        "SELECT COUNT(*) FROM objects WHERE type = 'indicator' AND is_current = 1"
    ).fetchone()[0]
    conn.close()
    sent = sum(json.loads(pushed.stdout)["accepted_by_type"].values())
    return {
        "push_s": push_s,
        "push_rss": push_rss,
        "pull_s": pull_s,
        "pull_rss": pull_rss,
        "total_s": push_s + pull_s,
        "sent": sent,
        "received": received,
        "envelopes": len(json.loads(pulled.stdout)["partners"][0]["accepted_envelopes"]),
    }


def plain(server: ServerProcess, passwords: dict[str, str], iocs: Path, work: Path) -> dict[str, float]:
    script = work / "plain.py"
    script.write_text(PLAIN_SCRIPT)
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("rss_of.py")),
            sys.executable,
            str(script),
            str(iocs),
            server.api_root_url,
            collection_id_for("cert-fr", "cert-in"),
            passwords["cert-fr"],
            passwords["cert-in"],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"plain approach failed: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout)
    figures["total_s"] = seconds
    figures["rss"] = int(done.stderr.strip().splitlines()[-1].split()[-1])
    return figures


PLAIN_SCRIPT = r"""
import csv, ipaddress, json, sys, time
import stix2
from taxii2client.v21 import Collection, as_pages

path, api_root, collection_id, fr_password, in_password = sys.argv[1:6]
url = f"{api_root}collections/{collection_id}/"

def pattern(value):
    try:
        network = ipaddress.ip_network(value, strict=False)
        kind = "ipv4-addr" if network.version == 4 else "ipv6-addr"
        return f"[{kind}:value = '{value}']"
    except ValueError:
        pass
    if value.startswith("http"):
        return f"[url:value = '{value}']"
    if "@" in value:
        return f"[email-addr:value = '{value}']"
    if all(c in "0123456789abcdef" for c in value):
        name = {32: "MD5", 40: "SHA-1", 64: "SHA-256", 128: "SHA-512"}.get(len(value), "SHA-256")
        return f"[file:hashes.'{name}' = '{value}']"
    return f"[domain-name:value = '{value}']"

t0 = time.perf_counter()
with open(path, newline="") as stream:
    rows = list(csv.DictReader(stream))
objects = [
    stix2.Indicator(pattern=pattern(row["value"]), pattern_type="stix",
                    indicator_types=["malicious-activity"], valid_from="2026-11-23T00:00:00Z",
                    confidence=int(row["confidence"]), object_marking_refs=[stix2.TLP_AMBER])
    for row in rows
]
t1 = time.perf_counter()
writer = Collection(url, user="cert-fr", password=fr_password)
for start in range(0, len(objects), 5000):
    chunk = objects[start:start + 5000]
    envelope = json.loads(stix2.Bundle(objects=chunk, allow_custom=True).serialize())
    writer.add_objects({"objects": envelope["objects"]})
t2 = time.perf_counter()
reader = Collection(url, user="cert-in", password=in_password)
received = []
for page in as_pages(reader.get_objects, per_request=1000):
    received.extend(stix2.parse(obj, allow_custom=True) for obj in page.get("objects", []))
t3 = time.perf_counter()
print(json.dumps({"build_s": t1 - t0, "post_s": t2 - t1, "pull_parse_s": t3 - t2,
                  "sent": len(objects), "received": len(received)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-plain", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs of cti-exchange (median shown)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-exchange-"))
    try:
        iocs = work / "iocs.csv"
        generate_csv(iocs, args.rows)
        # Only TLP levels CERT-FR may send CERT-In by default (up to AMBER).
        rows = list(csv.reader(iocs.open()))
        with iocs.open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(rows[0])
            for row in rows[1:]:
                writer.writerow(
                    [row[0], "amber" if row[1] in ("red", "amber+strict", "") else row[1], *row[2:]]
                )
        runs = []
        theirs = None
        for n in range(args.repeat):
            run_dir = work / f"run-{n}"
            run_dir.mkdir()
            server, passwords, fr, india = set_up(run_dir)
            try:
                runs.append(ours(fr, india, iocs))
                if n == args.repeat - 1 and not args.skip_plain:
                    theirs = plain(server, passwords, iocs, run_dir)
            finally:
                server.stop()
        runs.sort(key=lambda r: r["total_s"])
        mine = runs[len(runs) // 2]
        report(args.rows, mine, theirs)
        totals = ", ".join(f"{r['total_s']:.2f} s" for r in runs)
        print(f"cti-exchange end to end, all runs: {totals}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(rows: int, mine: dict[str, float], theirs: dict[str, float] | None) -> None:
    print(f"# Exchange benchmark: {rows:,} CSV rows CERT-FR -> CERT-In\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print("| approach | step | seconds | peak RSS (MiB) |")
    print("| --- | --- | ---: | ---: |")
    print(
        f"| cti-exchange | `push` (read CSV, STIX 2.1, sign, encrypt, post) | {mine['push_s']:.2f} | {mine['push_rss']} |"
    )
    print(
        f"| cti-exchange | `pull` (fetch, decrypt, verify, validate, store) | {mine['pull_s']:.2f} | {mine['pull_rss']} |"
    )
    print(
        f"| cti-exchange | **end to end** | **{mine['total_s']:.2f}** | {max(mine['push_rss'], mine['pull_rss'])} |"
    )
    if theirs:
        print(f"| plain | build stix2.Indicator per row | {theirs['build_s']:.2f} | |")
        print(f"| plain | post unencrypted (taxii2-client, 5,000/request) | {theirs['post_s']:.2f} | |")
        print(f"| plain | as_pages (1,000/page) + stix2.parse | {theirs['pull_parse_s']:.2f} | |")
        print(f"| plain | **end to end** | **{theirs['total_s']:.2f}** | {theirs['rss']} |")
    print()
    print(
        f"cti-exchange: {mine['sent']:,} indicators sent, {mine['received']:,} received and "
        f"verified in {int(mine['envelopes'])} envelope(s)."
    )
    if theirs:
        print(f"plain: {theirs['sent']:,} sent, {theirs['received']:,} received.")
        print(
            f"Speed-up: {theirs['total_s'] / mine['total_s']:.1f}x (each figure includes "
            "starting the Python process)."
        )


if __name__ == "__main__":
    main()
