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

A rule's `rev` says which text of the rule an alert came from: rule managers, SIEMs and
sensors' alert records key on (gid, sid, rev), so a rule whose text changes under the same sid
(another partner sends the value, its TLP or sources change, a release changes the detection
options) must change its rev. Each sid's row keeps a digest of the rule's text as last exported
(the whole line but the rev's value) and its rev; `ids_rule_revs` keeps the texts it had before
and their revs. A rule exported again as it was keeps its rev; a text it had before gets its
rev back; a new one the highest rev the sid has had plus one; a new sid rev 1. So the same
store exported again keeps its revs, a changed rule's rev goes up once, and two selections of
the same value exported in turn (a `--partner` filter puts other sources in the msg), or a
domain's DNS rule exported for Suricata and for Snort (one key, one sid, two texts), each keep
their own rev rather than raising it on every run: (sid, rev) always names one text. The rev
of a rule can so go down (a second source's text at rev 2, withdrawn: the first text is back
at rev 1); engines and rule managers take a file's rules as they are, and compare revs only
between copies of one sid loaded together.

Sids given out before migration 17 (releases that wrote every rule `rev:1`, their text not
kept) have rev 1 and no digest: their first text exported now is rev 2. Whether it is the text
written then cannot be told, and earlier releases changed rules under rev 1 (a Snort URL rule
gained `depth` and `urilen`): rev 1 again would let such a change pass as no change, the fault
this fixes; rev 2 costs a rule manager one update of each rule, once.
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


def text_digest(*parts: str) -> bytes:
    """A 128-bit digest of a rule's text without its sid and rev (the sid is the key's for
    good, so the text of a sid's rule is told by the rest)."""
    return hashlib.blake2b("\0".join(parts).encode("utf-8"), digest_size=16).digest()


class SidRegistry:
    """Gives out sids and revs inside the caller's (write) transaction."""

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
        self.revised = 0  # rules of known sids given a new rev: a text they had not had
        self.collisions = 0

    def sid_and_rev(self, key: str, digest: bytes) -> tuple[int, int]:
        """The sid of the rule key and the rev of its text (`digest`, from `text_digest`).

        A rule exported before with this text costs the one look-up the sid alone did."""
        row = self.conn.execute("SELECT sid, digest, rev FROM ids_sids WHERE rule_key = ?", (key,)).fetchone()
        if row is None:
            sid = self.candidate(key)
            while self.conn.execute("SELECT 1 FROM ids_sids WHERE sid = ?", (sid,)).fetchone():
                self.collisions += 1
                sid = SID_BASE + (sid - SID_BASE + 1) % SID_SPAN
            self.conn.execute(
                "INSERT INTO ids_sids (rule_key, sid, assigned_at, digest, rev) VALUES (?, ?, ?, ?, 1)",
                (key, sid, self.assigned_at, digest),
            )
            self.assigned += 1
            return sid, 1
        sid, last, rev = row
        if last == digest:
            return sid, rev
        if last is not None:  # the text it replaces, kept for when it comes back (None: unknown)
            self.conn.execute(
                "INSERT OR IGNORE INTO ids_rule_revs (sid, digest, rev) VALUES (?, ?, ?)", (sid, last, rev)
            )
        # `triage erase` removes a sid's earlier texts with its row: a sid given out again
        # later inherits none.
        seen, highest = self.conn.execute(
            "SELECT (SELECT rev FROM ids_rule_revs WHERE sid = ?1 AND digest = ?2), "
            "(SELECT max(rev) FROM ids_rule_revs WHERE sid = ?1)",
            (sid, digest),
        ).fetchone()
        if seen is not None:
            rev = int(seen)
        else:
            rev = max(rev, int(highest or 0)) + 1
            self.revised += 1
        self.conn.execute("UPDATE ids_sids SET digest = ?, rev = ? WHERE rule_key = ?", (digest, rev, key))
        return sid, rev
