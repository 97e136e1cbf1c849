"""Analysts' decisions on what partners sent: accepted (exported to defensive tools), rejected,
or false positive. The API behind `triage accept|reject|false-positive` and `triage review`.

A decision applies to every current object holding the same indicator value (one indicator,
several sources), in any spelling of it (`evil.example`, `Evil.Example.`: the same canonical
form, exporters/value_forms.py), is recorded with the analyst and the time in the object's row and in
`triage_log`, and is appended to the audit trail in the same transaction. The same decision
again, without a note or with the same one, leaves the object as it is (who decided it and when
stay) and records nothing; with another note it replaces the note; another decision replaces
both. `review_loop` steps through a queue with single-key decisions; it takes its input and
output as functions, so the terminal stays in the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.errors import UsageError
from cti_exchange.store.object_queries import (
    AlreadyDecided,
    KeptDecision,
    current_object,
    record_decision,
)
from cti_exchange.store.store import Store
from cti_exchange.store.triage_queries import NOT_TRIAGED
from cti_exchange.triage import TriageLine, resolve_reference
from cti_exchange.untrusted_text import UNPRINTABLE, escape_controls

# Command word -> stored status.
DECISIONS = {"accept": "accepted", "reject": "rejected", "false-positive": "false-positive"}
# Plumbing `triage list` leaves out (NOT_TRIAGED), so a decision on one would be a slip;
# relationships and sightings, listed when asked for by type, may be decided on.
_NOT_DECIDED_ON = frozenset(NOT_TRIAGED) - {"relationship", "sighting"}
MAX_NOTE = 1000  # characters, once runs of whitespace are folded
REVIEW_KEYS = {"a": "accept", "r": "reject", "f": "false-positive", "s": "skip", "q": "quit"}


@dataclass(frozen=True)
class DecisionResult:
    decision: str  # stored status: accepted, rejected, false-positive
    analyst: str
    decided_at: str | None  # None: nothing was decided now (every object already held it)
    object_ids: list[str]  # every object changed, same-value objects included
    revoked: list[str] = field(default_factory=list)  # of those and `kept`, revoked by their creator
    # Objects that already held this decision (and note): left as they were, not recorded again.
    kept: list[KeptDecision] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "decision": self.decision,
            "analyst": self.analyst,
            "decided_at": self.decided_at,
            "object_ids": self.object_ids,
            "revoked": self.revoked,
            "already": [{"object_id": k.object_id, "by": k.by, "at": k.at} for k in self.kept],
        }


def checked_note(note: str | None) -> str | None:
    """An analyst's --note as recorded: runs of whitespace folded, None when empty. UsageError
    when too long or holding a control or invisible character."""
    note = " ".join(note.split()) if note else None
    if note is not None and len(note) > MAX_NOTE:
        raise UsageError(f"--note: {len(note):,} characters; at most {MAX_NOTE:,}", hint="shorten it")
    bad = UNPRINTABLE.search(note) if note else None
    if bad is not None:
        # The note is shown by `triage show`, `audit show` and whatever reads the audit export.
        raise UsageError(
            f"--note: holds the control or invisible character U+{ord(bad.group()):04X}",
            hint="write the note as plain text",
        )
    return note


def decide(
    store: Store,
    references: list[str],
    decision: str,
    *,
    note: str | None = None,
    now: datetime | None = None,
    only_undecided: bool = False,
) -> DecisionResult:
    """Records one decision on objects (all or none), with the analyst (`store.actor`).
    `only_undecided`: see record_decision (raises AlreadyDecided)."""
    from cti_exchange.store.audit_log import append_audit

    if decision not in DECISIONS:
        raise UsageError(f"unknown decision {decision!r}; use {', '.join(DECISIONS)}")
    if not references:
        raise UsageError("name at least one object", hint="see `cti-exchange triage list`")
    status = DECISIONS[decision]
    at = stix_timestamp(now or utc_now())
    note = checked_note(note)
    from cti_exchange.exporters.value_forms import bundled_value_forms

    object_ids = [resolve_reference(store, ref) for ref in references]
    for object_id in object_ids:
        found = current_object(store.db.conn, object_id)
        if found is not None and found.type in _NOT_DECIDED_ON:
            # What travels along with shared objects, never listed nor exported as such.
            raise UsageError(
                f"{escape_controls(object_id)} is {'an' if found.type[0] in 'aeiou' else 'a'} "
                f"{found.type}: decisions are on what partners "
                "share (indicators, malware, ...), not on the definitions that go along with it",
                hint="see `cti-exchange triage list`",
            )
    forms = bundled_value_forms()
    with store.db.transaction() as conn:
        changed, kept = record_decision(
            conn,
            object_ids,
            decision=status,
            analyst=store.actor,
            at=at,
            note=note,
            forms=forms,
            only_undecided=only_undecided,
        )
        # One query for every object decided on, kept ones included: their revocation and who
        # sent them (the audit record names the partners of the changed ones).
        decided = [*changed, *(k.object_id for k in kept)]
        current = {
            oid: (partner, was_revoked)
            for oid, partner, was_revoked in conn.execute(
                "SELECT object_id, partner, revoked FROM objects WHERE is_current = 1 "
                "AND object_id IN (SELECT value FROM json_each(?))",
                (json.dumps(decided),),
            )
        }
        revoked = [oid for oid in decided if oid in current and current[oid][1]]
        partners = sorted({current[oid][0] for oid in changed if oid in current})
        if changed:  # the same decision again changed nothing: nothing to record
            append_audit(
                conn,
                at=at,
                actor=store.actor,
                action="triage",
                partner=",".join(partners) or None,
                details={"decision": status, "objects": changed, "note": note},
            )
    return DecisionResult(status, store.actor, at if changed else None, changed, revoked, kept)


# -- review ------------------------------------------------------------------------------


def decide_in_review(
    store: Store, line: TriageLine, decision: str, *, note: str | None, warn: Callable[[str], None]
) -> DecisionResult | None:
    """A review's decision on the line it showed as new: None, with a warning and nothing
    changed, when the value was decided meanwhile (another analyst) or already is in another
    spelling: a key pressed on what the screen showed must not overwrite what it did not."""
    try:
        return decide(store, [line.object.object_id], decision, note=note, only_undecided=True)
    except AlreadyDecided as found:
        what = escape_controls(found.value or found.object_id)
        by = f" by {escape_controls(found.by)}" if found.by else ""
        warn(
            f"not changed: {what} is already {found.status}{by} at {found.at}; "
            f"to change that, use `triage {decision} {line.object.object_id}`"
        )
        return None


@dataclass
class ReviewSummary:
    decided: dict[str, int] = field(default_factory=dict)  # status -> lines decided
    object_ids: list[str] = field(default_factory=list)  # every object changed
    skipped: int = 0
    quit: bool = False

    @property
    def reviewed(self) -> int:
        return sum(self.decided.values()) + self.skipped


def review_loop(
    queue: Iterable[TriageLine],
    *,
    read_key: Callable[[], str],
    present: Callable[[TriageLine, int], None],
    apply: Callable[[TriageLine, str], DecisionResult | None],
    warn: Callable[[str], None] = lambda text: None,
    skipped: Callable[[TriageLine], None] = lambda line: None,
) -> ReviewSummary:
    """Shows each line, reads single keys until one means something, applies the decision.

    a accept, r reject, f false positive, s skip, q quit. Objects already decided while the
    review ran (a same-value object decided with an earlier line) are passed over; `apply`
    returns None for a line it left as it was (decided elsewhere meanwhile), counted skipped.
    `skipped` is told of a line the analyst skipped (s), as `apply` is of a decision.
    """
    summary = ReviewSummary()
    done: set[str] = set()
    for number, line in enumerate(queue, start=1):
        if line.object.object_id in done:
            continue
        present(line, number)
        while True:
            key = read_key().lower()
            if key in REVIEW_KEYS:
                break
            warn(f"unknown key {key!r}: " + ", ".join(f"{k} {v}" for k, v in REVIEW_KEYS.items()))
        action = REVIEW_KEYS[key]
        if action == "quit":
            summary.quit = True
            break
        if action == "skip":
            summary.skipped += 1
            skipped(line)
            continue
        result = apply(line, action)
        if result is None:
            summary.skipped += 1
            continue
        done.update(result.object_ids)
        summary.decided[result.decision] = summary.decided.get(result.decision, 0) + 1
        summary.object_ids += result.object_ids
    return summary
