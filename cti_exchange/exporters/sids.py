"""Stable signature ids for Suricata and Snort rules, remembered in the store.

A rule key is "IOC type:value:rule kind" (`domain-name:evil.example:dns`). Its sid is
SID_BASE plus a SHA-256 of the key modulo SID_SPAN, so the same key gets the same sid on every
machine that has not met a collision. On a collision (two keys, one sid: expected after some
thousand keys in a span of 100 million) the later key takes the next free sid. Every sid given
out is kept in `ids_sids`, so a key keeps its sid in every later export, whatever else that
export holds, and a sensor's alert history stays attached to the same indicator.

The range 1,700,000,000-1,799,999,999 stays clear of the Snort/Talos (below 1,000,000), local
(1,000,000-1,999,999) and Emerging Threats (2,000,000-2,999,999) conventions, and below 2**31
for tools that read sids as signed 32-bit integers.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable

SID_BASE = 1_700_000_000
SID_SPAN = 100_000_000


def rule_key(ioc_type: str, value: str, kind: str) -> str:
    return f"{ioc_type}:{value}:{kind}"


def candidate_sid(key: str) -> int:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return SID_BASE + int.from_bytes(digest[:8], "big") % SID_SPAN


class SidRegistry:
    """Gives out sids inside the caller's (write) transaction."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        assigned_at: str,
        candidate: Callable[[str], int] = candidate_sid,
    ) -> None:
        self.conn = conn
        self.candidate = candidate  # a rule key's first choice of sid (a test forces collisions)
        self.assigned_at = assigned_at
        self.assigned = 0  # new sids given out by this registry
        self.collisions = 0

    def sid_for(self, key: str) -> int:
        row = self.conn.execute("SELECT sid FROM ids_sids WHERE rule_key = ?", (key,)).fetchone()
        if row is not None:
            return int(row[0])
        sid = self.candidate(key)
        while self.conn.execute("SELECT 1 FROM ids_sids WHERE sid = ?", (sid,)).fetchone():
            self.collisions += 1
            sid = SID_BASE + (sid - SID_BASE + 1) % SID_SPAN
        self.conn.execute(
            "INSERT INTO ids_sids (rule_key, sid, assigned_at) VALUES (?, ?, ?)",
            (key, sid, self.assigned_at),
        )
        self.assigned += 1
        return sid
