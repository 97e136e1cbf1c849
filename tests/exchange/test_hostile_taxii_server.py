"""A compromised TAXII server, or a man in the middle with a valid certificate, changing what
the real server answers to a pull (tests/fault_proxy.py rewrites the answers): the pull ends
with a one-line error, never loops, hangs or crashes, and never moves its cursor past what a
later pull must still read."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import tomli_w

from tests.conftest import PASSPHRASE, Agency
from tests.exchange.conftest import Exchange, received_values, write_iocs
from tests.fault_proxy import FaultProxy, Headers

Change = Callable[[Headers, bytes], tuple[Headers, bytes]]


def _pull_in_own_process(agency: Agency, *, timeout: float) -> tuple[int | None, str]:
    """The exit status and stderr of `pull` in its own process; (None, "") if it was still
    running after `timeout` seconds (then killed)."""
    env = {**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    env.pop("CTI_EXCHANGE_FAILPOINT", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cti_exchange", "--home", str(agency.home), "pull"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stderr


def _set_operations(agency: Agency, **values: int) -> None:
    """Sets config.toml `[operations]` values of `agency`, as an operator would."""
    config = agency.home / "config.toml"
    data = tomllib.loads(config.read_text())
    data.setdefault("operations", {}).update(values)
    config.write_text(tomli_w.dumps(data))


def _objects_page(method: str, path: str) -> bool:
    return method == "GET" and "/objects/" in path


def _rewrite_pages(proxy: FaultProxy, change: Change) -> None:
    def rewrite(
        method: str, path: str, status: int, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        if _objects_page(method, path) and status == 200:
            headers, body = change(headers, body)
        return status, headers, body

    proxy.script.rewrite = rewrite


def _header(name: str, value: str) -> Change:
    return lambda headers, body: ([(k, value if k.lower() == name.lower() else v) for k, v in headers], body)


def _push(exchange: Exchange, tmp_path: Path, name: str, start: int = 0) -> None:
    pushed = exchange.fr.run("push", str(write_iocs(tmp_path / name, 3, start=start)), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr


def test_a_next_token_that_loops_ends_the_pull(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """The server answers every page with the first one, `more` and the same `next`: before,
    a `next` page never counted as stalled, so the pull looped for ever."""
    _push(exchange, tmp_path, "a.csv")
    first: list[tuple[int, Headers, bytes]] = []

    def loop(
        method: str, path: str, status: int, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        if not _objects_page(method, path):
            return status, headers, body
        if not first:
            page = {**json.loads(body), "more": True, "next": "the-same-token"}
            first.append((200, headers, json.dumps(page).encode()))
        return first[0]

    fault_proxy.script.rewrite = loop
    code, stderr = _pull_in_own_process(exchange.india, timeout=20)
    assert code == 7, "the pull loops for ever" if code is None else stderr
    assert stderr.count("\n") == 1 and "makes no progress" in stderr
    assert len(received_values(exchange.india)) == 3  # what it did read is kept


def test_a_slow_drip_answer_is_given_up(exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path) -> None:
    """One byte every half second never trips a 2 s read timeout: before, the pull waited for
    the whole answer (hours) whatever the timeout and retry budget."""
    _push(exchange, tmp_path, "a.csv")
    exchange.wire(exchange.india, exchange.fr, f"{fault_proxy.url}exchange/", timeout="2", retry_budget="2")
    fault_proxy.script.rule = lambda method, path, number: "drip:0.5" if _objects_page(method, path) else None
    started = time.monotonic()
    code, stderr = _pull_in_own_process(exchange.india, timeout=20)
    assert code == 7, "the pull hangs" if code is None else stderr
    assert time.monotonic() - started < 20
    assert stderr.count("\n") == 1 and "still failing" in stderr


def _gzip_garbage(headers: Headers, body: bytes) -> tuple[Headers, bytes]:
    return [*headers, ("Content-Encoding", "gzip")], b"\x1f\x8b\x08\x00not gzip at all"


MALFORMED: dict[str, Change] = {
    "a date-added header that is not a timestamp": _header("X-TAXII-Date-Added-Last", "yesterday"),
    "no Content-Type": lambda headers, body: (
        [(k, v) for k, v in headers if k.lower() != "content-type"],
        body,
    ),
    "objects that are not a list": lambda headers, body: (headers, json.dumps({"objects": 5}).encode()),
    "more that is not a boolean": lambda headers, body: (
        headers,
        json.dumps({"more": "no", "objects": []}).encode(),
    ),
    "JSON nested too deep": lambda headers, body: (headers, b"[" * 100_000 + b"]" * 100_000),
    "a body that is not the gzip it says": _gzip_garbage,
}


@pytest.mark.parametrize("change", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_answer_is_a_network_error_not_an_internal_error(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path, change: Change
) -> None:
    """Before, each of these ended the whole pull (every partner after this one too) as an
    "internal error" (exit 70): KeyError, TypeError, ValueError, RecursionError,
    ContentDecodingError escaped the client."""
    _push(exchange, tmp_path, "a.csv")
    exchange.wire(exchange.india, exchange.fr, f"{fault_proxy.url}exchange/", retry_budget="1")
    _rewrite_pages(fault_proxy, change)
    pulled = exchange.india.run("pull")
    assert pulled.exit_code == 7, pulled.stderr
    assert pulled.stderr.count("\n") == 1 and "internal error" not in pulled.stderr

    fault_proxy.script.rewrite = None  # the server mended: nothing was lost
    assert exchange.india.run("pull").exit_code == 0
    assert len(received_values(exchange.india)) == 3


def test_a_date_added_far_ahead_does_not_move_the_cursor_past_later_envelopes(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """Before, one answer naming 9999 as its last date_added moved the cursor there: every
    envelope posted afterwards was never read, and nothing said so."""
    _push(exchange, tmp_path, "a.csv")
    _rewrite_pages(fault_proxy, _header("X-TAXII-Date-Added-Last", "9999-12-31T23:59:59.999999Z"))
    assert exchange.india.run("pull").exit_code == 0
    fault_proxy.script.rewrite = None
    _push(exchange, tmp_path, "b.csv", start=3)
    assert exchange.india.run("pull").exit_code == 0
    assert len(received_values(exchange.india)) == 6


def test_an_answer_past_the_size_limit_is_asked_for_in_smaller_pages(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """A page too large is asked for again with fewer objects; a gzip bomb is stopped at the
    limit (the partner's max_response_bytes, lowered here) instead of being inflated in memory
    whole."""
    for n in range(3):
        queued = exchange.fr.run(
            "push", str(write_iocs(tmp_path / f"q{n}.csv", 3, start=3 * n)), "--to", "cert-in", "--queue"
        )
        assert queued.exit_code == 0, queued.stderr
    _push(exchange, tmp_path, "last.csv", start=9)
    pages = [p for m, p, _ in fault_proxy.script.seen]
    one_envelope = 7_000  # an envelope of 3 indicators is ~4.5 KB; two in a page are more
    exchange.wire(
        exchange.india,
        exchange.fr,
        f"{fault_proxy.url}exchange/",
        page_size="16",
        max_response_bytes=str(one_envelope),
    )
    pulled = exchange.india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    assert len(received_values(exchange.india)) == 12
    limits = [
        p.split("limit=")[1].split("&")[0]
        for m, p, _ in fault_proxy.script.seen[len(pages) :]
        if "limit=" in p
    ]
    assert limits[:3] == ["16", "2", "1"]

    bomb = gzip.compress(b" " * 20 * one_envelope)
    _rewrite_pages(fault_proxy, lambda headers, body: ([*headers, ("Content-Encoding", "gzip")], bomb))
    bombed = exchange.india.run("pull")
    # Still too large for a page of one: not a wait-and-see network failure (7), every run
    # would stop there again: exit 2, and who can fix it.
    assert bombed.exit_code == 2, bombed.stderr
    assert "goes past 7,000 bytes, for one object alone" in bombed.stderr
    assert "ask the partner's server operator" in bombed.stderr


def _with_lone_surrogates(headers: Headers, body: bytes) -> tuple[Headers, bytes]:
    """The page as sent, plus an object whose id is a lone surrogate (valid JSON) and a copy of
    the envelope, damaged, whose clear-text envelope id is one: stored, either failed the pull
    at that object, every time."""
    page = json.loads(body)
    if not page.get("objects"):
        return headers, body
    genuine = page["objects"][0]
    jwe = json.loads(base64.b64decode(genuine["payload_bin"]))
    jwe["ciphertext"] = ("B" if jwe["ciphertext"][0] == "A" else "A") + jwe["ciphertext"][1:]
    raw = json.dumps(jwe).encode()
    damaged = copy.deepcopy(genuine)
    damaged.update(
        id="artifact--6f1c8bb0-3a3f-5c1e-9d43-2b8a3c7f0e11",
        payload_bin=base64.b64encode(raw).decode(),
        hashes={"SHA-256": hashlib.sha256(raw).hexdigest()},
    )
    next(iter(damaged["extensions"].values()))["envelope_id"] = "\ud800\u202e\x1b[31m"
    page["objects"] = [{"type": "note", "id": "note--\ud800"}, damaged, genuine]
    return headers, json.dumps(page).encode()  # ensure_ascii: "\ud800" as JSON escapes


def test_lone_surrogates_from_the_server_do_not_block_the_channel(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    _push(exchange, tmp_path, "a.csv")
    _rewrite_pages(fault_proxy, _with_lone_surrogates)
    pulled = exchange.india.run("pull", "--json")
    assert "internal error" not in pulled.stderr and pulled.exit_code in (0, 4), pulled.stderr
    assert len(received_values(exchange.india)) == 3  # the genuine envelope, read past both
    listed = exchange.india.run("quarantine", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert "\\ud800" in listed.stdout and "\x1b" not in listed.stdout and "\u202e" not in listed.stdout
    assert exchange.india.run("pull").exit_code == 0  # nothing left to trip on


def test_a_server_sending_new_objects_for_ever_is_read_in_bounded_runs(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """Every page brings new junk objects, `more` and a new `next`: no stall guard trips (each
    object is new), so the pull ran for ever, storing what it read. Now a run stops after
    config.toml operations.max_objects_per_run new objects (lowered here), having kept what it
    read, and says so."""
    _push(exchange, tmp_path, "a.csv")
    pages = itertools.count()

    def junk(
        method: str, path: str, status: int, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        if not _objects_page(method, path):
            return status, headers, body
        n = next(pages)
        real = json.loads(body).get("objects", []) if n == 0 and status == 200 else []
        notes = [
            {"type": "note", "spec_version": "2.1", "id": f"note--{uuid.uuid4()}", "content": "junk"}
            for _ in range(10)
        ]
        page = {"more": True, "next": f"token-{n}", "objects": real + notes}
        kept = [(k, v) for k, v in headers if k.lower() not in ("content-length", "x-taxii-date-added-last")]
        return 200, kept, json.dumps(page).encode()

    fault_proxy.script.rewrite = junk
    _set_operations(exchange.india, max_objects_per_run=50)
    pulled = exchange.india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    assert "cert-fr: stopped after 50 new objects in this run" in pulled.stderr
    assert len(received_values(exchange.india)) == 3  # the genuine envelope among them is kept
    assert next(pages) < 10  # a few pages, not for ever


def test_a_404_for_a_next_token_falls_back_to_the_cursor(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """Some servers answer an expired or unknown `next` token with 404: the pull ended with
    exit 3, "the collection does not exist", when it should start again from its cursor."""
    _push(exchange, tmp_path, "a.csv")
    _push(exchange, tmp_path, "b.csv", start=3)
    assert exchange.india.run("partners", "set", "cert-fr", "--page-size", "1").exit_code == 0

    def unknown_token(
        method: str, path: str, status: int, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        if _objects_page(method, path) and "next=" in path:
            error = {"title": "Not found", "description": "no such next token", "http_status": "404"}
            return 404, [("Content-Type", "application/taxii+json;version=2.1")], json.dumps(error).encode()
        return status, headers, body

    fault_proxy.script.rewrite = unknown_token
    pulled = exchange.india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    assert len(received_values(exchange.india)) == 6
