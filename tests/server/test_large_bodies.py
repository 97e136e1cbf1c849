"""What parsing large POST bodies may cost the server in memory: a 10 MiB envelope of small
JSON values (`{"objects":[[],[],...]}`) takes over 200 MiB as Python objects, so large
bodies are parsed and handled a few at a time (app.py, LARGE_BODY_SLOTS), not one per thread.
A real server process, its peak resident memory read from /proc."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
import requests

from cti_exchange.server.app import LARGE_BODY_BYTES, LARGE_BODY_SLOTS
from cti_exchange.server.provisioning import DEFAULT_MAX_CONTENT_LENGTH
from cti_exchange.server.runner import DEFAULT_THREADS

from .conftest import SANDBOX_ID, Exchange

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _peak_resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_large_bodies_are_parsed_a_few_at_a_time(fresh_exchange: Exchange) -> None:
    server = fresh_exchange
    assert LARGE_BODY_SLOTS < DEFAULT_THREADS
    pid = server.server.pid
    assert pid is not None
    url = server.collection_url(SANDBOX_ID) + "objects/"
    # Just within max_content_length; over the item cap, so refused once parsed.
    items = (DEFAULT_MAX_CONTENT_LENGTH - 64) // 3
    body = b'{"objects":[' + b",".join([b"[]"] * items) + b"]}"
    assert LARGE_BODY_BYTES < len(body) <= DEFAULT_MAX_CONTENT_LENGTH

    def post() -> int:
        answer = requests.post(
            url,
            data=body,
            auth=("cert-fr", server.passwords["cert-fr"]),
            headers={
                "Content-Type": "application/taxii+json;version=2.1",
                "Accept": "application/taxii+json;version=2.1",
            },
            timeout=300,
        )
        return answer.status_code

    start = _peak_resident_kib(pid)
    assert post() == 413  # one alone: what one parse costs
    one = _peak_resident_kib(pid)
    parse_mib = (one - start) / 1024
    assert parse_mib > 100, f"one parse cost only {parse_mib:.0f} MiB"
    statuses: list[int] = []
    # One for each of the server's threads: the most it could parse at once without the slots
    # (more posts would only queue behind these, each another parse's worth of waiting).
    posts = [threading.Thread(target=lambda: statuses.append(post())) for _ in range(DEFAULT_THREADS)]
    for thread in posts:
        thread.start()
    for thread in posts:
        thread.join()
    assert statuses == [413] * len(posts)
    # DEFAULT_THREADS parses at once would add three more parses to the peak (measured: 775
    # MiB over one parse of about 230), LARGE_BODY_SLOTS of them one more.
    grown = (_peak_resident_kib(pid) - one) / 1024 / parse_mib
    assert grown < LARGE_BODY_SLOTS, f"peak resident memory grew by {grown:.1f} parses of {parse_mib:.0f} MiB"
