"""What push's check of values learned from partners costs (exchange/learned_values.py,
policy/sharing.py RULE_LEARNED): N indicators of ours, half of whose values the store holds,
against a kept store (`bench_store.py --keep DIR` builds one of 1,000,000 indicators).

Beside it, the naive way: one query per value through the value index, then one per object
found for its sources, exact spellings only (it misses `Evil.Example.` for `evil.example`,
which the check finds by canonical form).

    .venv/bin/python bench/bench_learned_values.py /tmp/bench-store-16k/cert-in --indicators 100000
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from cti_exchange.exchange.learned_values import values_learned_from_partners
from cti_exchange.home.profile_home import ProfileHome


def _indicators(home: ProfileHome, count: int, identity: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(home.store_path())
    try:
        stored = [
            row[0]
            for row in conn.execute(
                "SELECT value FROM objects WHERE is_current = 1 AND ioc_type = 'domain-name' LIMIT ?",
                (count // 2,),
            )
        ]
    finally:
        conn.close()
    values = stored + [f"fresh-{n}.example" for n in range(count - len(stored))]
    return [
        {
            "type": "indicator",
            "id": f"indicator--{uuid.uuid4()}",
            "created_by_ref": identity,
            "pattern": f"[domain-name:value = '{value}']",
            "pattern_type": "stix",
        }
        for value in values
    ]


def _naive(home: ProfileHome, objects: list[dict[str, Any]]) -> int:
    """One value-index query per value, one sources query per holder; exact spellings only."""
    conn = sqlite3.connect(home.store_path())
    found = 0
    try:
        for obj in objects:
            value = obj["pattern"].split("'")[1]
            holders = conn.execute(
                "SELECT object_id, tlp FROM objects INDEXED BY objects_current_by_value "
                "WHERE is_current = 1 AND ioc_type = 'domain-name' AND value = ?",
                (value,),
            ).fetchall()
            for object_id, _ in holders:
                conn.execute(
                    "SELECT partner, min(received_at) FROM object_sources WHERE object_id = ? GROUP BY partner",
                    (object_id,),
                ).fetchall()
            found += bool(holders)
    finally:
        conn.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path, help="a profile home whose store holds partner values")
    parser.add_argument("--indicators", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    home = ProfileHome(args.home)
    identity = home.load_profile().identity_id
    objects = _indicators(home, args.indicators, identity)
    ours, naive = [], []
    learned = held = 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        learned = len(values_learned_from_partners(home, objects, identity, frozenset()))
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        held = _naive(home, objects)
        naive.append(time.perf_counter() - start)
    print(f"{args.indicators:,} indicators, {held:,} of their values in the store, {learned:,} held back")
    print(f"cti-exchange: {', '.join(f'{t:.2f}' for t in ours)} s (median {statistics.median(ours):.2f} s)")
    print(
        f"naive (query per value): {', '.join(f'{t:.2f}' for t in naive)} s (median {statistics.median(naive):.2f} s)"
    )


if __name__ == "__main__":
    main()
