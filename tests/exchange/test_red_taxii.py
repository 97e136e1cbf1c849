"""Red-team probes: a compromised TAXII server (or a man in the middle with a valid certificate)
changing what the real server answers to a pull."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import PASSPHRASE, Agency
from tests.exchange.conftest import Exchange, received_values, write_iocs
from tests.fault_proxy import FaultProxy, Headers


def _pull_in_own_process(agency: Agency, timeout: float = 25) -> tuple[int | None, str, float]:
    env = {**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    env.pop("CTI_EXCHANGE_FAILPOINT", None)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cti_exchange", "--home", str(agency.home), "pull"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, "", time.monotonic() - started
    return done.returncode, done.stderr, time.monotonic() - started


def _objects_page(method: str, path: str) -> bool:
    return method == "GET" and "/objects/" in path


def test_probe_next_loop(exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path) -> None:
    pushed = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr

    first: dict[str, object] = {}

    def loop(method: str, path: str, status: int, headers: Headers, body: bytes):
        if _objects_page(method, path):
            if "answer" not in first:
                page = json.loads(body)
                page.update(more=True, next="same-token")
                first["answer"] = (200, headers, json.dumps(page).encode())
            return first["answer"]
        return status, headers, body

    fault_proxy.script.rewrite = loop
    code, err, took = _pull_in_own_process(exchange.india)
    print("next loop:", code, err, took, len(fault_proxy.script.seen))
    assert code is not None


def test_probe_headers(exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path) -> None:
    pushed = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr
    cases = {
        "garbage-date": lambda h, b: (
            [(k, "yesterday" if k.lower() == "x-taxii-date-added-last" else v) for k, v in h],
            b,
        ),
        "no-content-type": lambda h, b: ([(k, v) for k, v in h if k.lower() != "content-type"], b),
        "objects-int": lambda h, b: (h, json.dumps({**json.loads(b), "objects": 5}).encode()),
        "nested": lambda h, b: (h, b"[" * 100000 + b"]" * 100000),
        "nested-obj": lambda h, b: (h, b'{"objects":' + b"[" * 100000 + b"]" * 100000 + b"}"),
        "bigint": lambda h, b: (h, b'{"more": ' + b"9" * 5000 + b"}"),
        "future-date": lambda h, b: (
            [
                (k, "9999-12-31T23:59:59.999999Z" if k.lower() == "x-taxii-date-added-last" else v)
                for k, v in h
            ],
            b,
        ),
        "nan": lambda h, b: (h, b'{"more": NaN, "objects": []}'),
        "next-obj": lambda h, b: (h, json.dumps({**json.loads(b), "more": True, "next": {"a": 1}}).encode()),
    }
    for name, change in cases.items():

        def rw(method: str, path: str, status: int, headers: Headers, body: bytes, change=change):
            if _objects_page(method, path) and status == 200:
                headers, body = change(headers, body)
            return status, headers, body

        fault_proxy.script.rewrite = rw
        exchange.wire(exchange.india, exchange.fr, f"{fault_proxy.url}exchange/", retry_budget="2")
        result = exchange.india.run("pull", "--json")
        print(name, result.exit_code, result.stderr.strip()[:300], result.stdout[:200].replace("\n", " "))
        cur = exchange.india.run("status", "--json")
        print("   status", cur.stdout[:0])
    import sqlite3

    conn = sqlite3.connect(exchange.india.home / "store.sqlite")
    print(conn.execute("select * from sqlite_master where name like '%cursor%'").fetchall())
    print(received_values(exchange.india))


def test_probe_drip(exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path) -> None:
    pushed = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr
    exchange.wire(exchange.india, exchange.fr, f"{fault_proxy.url}exchange/", timeout="2", retry_budget="2")
    fault_proxy.script.rule = lambda m, p, n: "drip:0.5" if _objects_page(m, p) else None
    code, err, took = _pull_in_own_process(exchange.india, timeout=20)
    print("drip:", code, err, took)
