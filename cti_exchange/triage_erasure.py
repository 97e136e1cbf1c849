"""Erasing partner data on request: the API behind `triage erase` (store/erasure.py says what
is removed and what stays).

An erasure names objects as decisions do (ids, id prefixes, values in any spelling), takes every
current object of the same value and the relationships and sightings about them, and removes
them in one transaction with an audit record naming the object ids, the counts, the analyst and
the reason (`--note`, required: the request it answers). The audit trail never holds the values.
Afterwards the write-ahead log is checkpointed and emptied, so the erased pages are gone from
it too; a reader holding the store open at that moment leaves it to the next checkpoint.

The erasure leaves tombstones, written in its transaction and naming its audit record
(store/erasure_tombstones.py), so that what partners send of it again is not stored: `erasures`
lists those in force (`triage erased`), `unerase` lifts them (`triage unerase`), with an
`unerase` audit record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.errors import UsageError
from cti_exchange.store.audit_log import append_audit
from cti_exchange.store.erasure import erase_objects, objects_to_erase, sources_of
from cti_exchange.store.erasure_tombstones import (
    ErasureInForce,
    Lifted,
    erasures_in_force,
    lift_object,
    lift_value,
    plan_tombstones,
    write_tombstones,
)
from cti_exchange.store.store import Store
from cti_exchange.triage import resolve_reference
from cti_exchange.triage_decisions import checked_note
from cti_exchange.untrusted_text import escape_controls


@dataclass(frozen=True)
class ErasureResult:
    analyst: str
    erased_at: str
    object_ids: list[str]
    versions: int
    values: list[tuple[str, str]]
    partners: list[str]
    envelopes: int  # signed envelope copies erased
    quarantined: int  # copies in resolved quarantine records erased
    mentioned_in: list[str]  # objects left whose text still names a value
    log_emptied: bool  # False: a reader held the store, the log keeps old pages until later
    withheld_values: int = 0  # erased values a partner sending them again will not store
    withheld_from: str | None = None  # those values: from this partner only (None: every one)

    def to_dict(self) -> dict[str, object]:
        return {
            "analyst": self.analyst,
            "erased_at": self.erased_at,
            "object_ids": self.object_ids,
            "versions": self.versions,
            "values": [{"type": t, "value": v} for t, v in self.values],
            "partners": self.partners,
            "signed_envelopes_erased": self.envelopes,
            "quarantined_copies_erased": self.quarantined,
            "still_named_in": self.mentioned_in,
            "log_emptied": self.log_emptied,
            # Not stored again when a partner sends them (store/erasure_tombstones.py).
            "withheld_from_now_on": {
                "object_ids": len(self.object_ids),
                "values": self.withheld_values,
                "partner": self.withheld_from,
            },
        }


def erasure_reason(note: str | None) -> str:
    """The --note an erasure records; UsageError when missing or unfit (checked_note)."""
    reason = checked_note(note)
    if reason is None:
        raise UsageError(
            "say why with --note: the erasure's record keeps the reason, never the values",
            hint="for example --note 'DPDP erasure request 2026-114'",
        )
    return reason


@dataclass(frozen=True)
class ErasurePreview:
    object_ids: list[str]
    partners: list[str]  # who sent them


def erasure_preview(store: Store, references: list[str], *, partner: str | None = None) -> ErasurePreview:
    """What an erasure of `references` would remove now (read only), for the question asked
    before it; `erase(expected=...)` refuses if that changed meanwhile."""
    from cti_exchange.exporters.value_forms import bundled_value_forms

    conn = store.db.conn
    ids = objects_to_erase(
        conn, *_resolved(store, references, partner), bundled_value_forms(), partner=partner
    )
    return ErasurePreview(ids, sources_of(conn, ids))


def erase(
    store: Store,
    references: list[str],
    *,
    note: str | None,
    partner: str | None = None,
    expected: list[str] | None = None,
    now: datetime | None = None,
) -> ErasureResult:
    """Removes the objects `references` name (see the module docstring), all or nothing. With
    `expected` (the preview an analyst confirmed), nothing when the objects are others now (a
    pull stored more of the value since the question)."""
    from cti_exchange.exporters.value_forms import bundled_value_forms

    reason = erasure_reason(note)
    forms = bundled_value_forms()
    at = stix_timestamp(now or utc_now())
    conn = store.db.conn
    conn.execute("PRAGMA secure_delete = ON")  # freed pages overwritten, not left in the file
    try:
        with store.db.transaction() as conn:
            named, by_value = _resolved(store, references, partner)
            ids = objects_to_erase(conn, named, by_value, forms, partner=partner)
            if not ids:  # a value only others sent, with --partner (a typo in its name)
                raise UsageError(
                    f"nothing to erase: {escape_controls(partner or '')} sent none of it",
                    hint=f"see who did: `cti-exchange triage show {escape_controls(references[0].strip())}`",
                )
            if expected is not None and set(ids) != set(expected):
                raise UsageError(
                    f"the objects to erase changed since the question ({len(expected)} then, "
                    f"{len(ids)} now: a pull stored more of it meanwhile); nothing was erased",
                    hint="run the command again",
                )
            tombstones = plan_tombstones(conn, ids, by_value, forms, partner=partner)
            erased = erase_objects(conn, ids, forms)
            record = append_audit(
                conn,
                at=at,
                actor=store.actor,
                action="erase",
                partner=",".join(erased.partners) or None,
                details={
                    "objects": erased.object_ids,
                    "versions": erased.versions,
                    "signed_envelopes_erased": erased.envelopes,
                    "quarantined_copies_erased": erased.quarantined,
                    "note": reason,
                },
            )
            # So that a partner sending it again does not store it again (its record's seq
            # names the erasure; `triage erased` lists them, `triage unerase` lifts them).
            write_tombstones(conn, tombstones, at=at, audit_seq=record.seq)
        # The erasure's commit asked the checkpoint thread for one: its PASSIVE checkpoint, if
        # still running, would make this one busy, and the log would keep the erased pages.
        store.db.checkpointer.settle()
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.execute("PRAGMA secure_delete = OFF")  # later writes on this store pay nothing for it
    return ErasureResult(
        store.actor,
        at,
        erased.object_ids,
        erased.versions,
        erased.values,
        erased.partners,
        erased.envelopes,
        erased.quarantined,
        erased.mentioned_in,
        log_emptied=busy == 0,
        withheld_values=sum(1 for t in tombstones if t.object_id is None),
        withheld_from=partner,
    )


def _resolved(store: Store, references: list[str], partner: str | None) -> tuple[list[str], list[str]]:
    """(objects named by id or id prefix, objects named by value): a value erases every object
    holding it, an id that object alone."""
    if not references:
        raise UsageError("name at least one object", hint="see `cti-exchange triage list`")
    if partner is not None and not partner.strip():
        raise UsageError("--partner: give the partner's name", hint="see `cti-exchange partners list`")
    named: list[str] = []
    by_value: list[str] = []
    for reference in references:
        text = reference.strip()
        object_id = resolve_reference(store, text)
        is_id = "--" in text and object_id.startswith(text)
        (named if is_id else by_value).append(object_id)
        if is_id and partner is not None and partner not in sources_of(store.db.conn, [object_id]):
            raise UsageError(
                f"{escape_controls(object_id)} was not sent by {escape_controls(partner)}",
                hint="leave out --partner, or name that partner's object",
            )
    return named, by_value


@dataclass(frozen=True)
class LiftResult:
    analyst: str
    lifted_at: str
    object_ids: list[str]  # erased objects a partner may send again
    value_types: list[str]  # IOC types of the erased values a partner may send again
    erasures: list[int]  # the erase records (audit seq) they came from
    values_still_erased: list[str]  # ids lifted whose value another tombstone still withholds

    def to_dict(self) -> dict[str, object]:
        return {
            "analyst": self.analyst,
            "lifted_at": self.lifted_at,
            "object_ids": self.object_ids,
            "values": [{"type": t} for t in self.value_types],
            "erasures": self.erasures,
            "value_still_erased_for": self.values_still_erased,
        }


def unerase(
    store: Store, references: list[str], *, note: str | None, now: datetime | None = None
) -> LiftResult:
    """Lets partners' objects of an erased value (or an erased object id) be stored again:
    removes the tombstones each reference matches, all or nothing, with an `unerase` audit
    record (object ids, IOC types, the erasures lifted, the reason; never the values).
    Nothing erased comes back: only what partners send from now on is stored. A UsageError
    (exit 2) when a reference matches no tombstone."""
    from cti_exchange.exporters.value_forms import bundled_value_forms
    from cti_exchange.triage import value_spellings

    reason = checked_note(note)
    if reason is None:
        raise UsageError(
            "say why with --note: lifting an erasure is recorded with its reason",
            hint="for example --note 'cert-fr: the address is the attacker's, not a victim's'",
        )
    if not references:
        raise UsageError(
            "name at least one erased value or object id", hint="see `cti-exchange triage erased`"
        )
    forms = bundled_value_forms()
    at = stix_timestamp(now or utc_now())
    lifted = Lifted()
    with store.db.transaction() as conn:
        for reference in references:
            text = reference.strip()
            found = lift_object(conn, text, lifted) if "--" in text else False
            if not found:
                found = lift_value(conn, [text, *value_spellings(text)], forms, lifted)
            if not found:
                raise UsageError(
                    f"no erasure withholds {escape_controls(text)!r}; nothing was lifted",
                    hint="see `cti-exchange triage erased` (give an object id it lists, or the value erased)",
                )
        partners = sorted({p for p in lifted.partners if p is not None})
        append_audit(
            conn,
            at=at,
            actor=store.actor,
            action="unerase",
            partner=",".join(partners) or None,
            details={
                "objects": lifted.object_ids,
                "values": [{"type": t} for t in lifted.value_types],
                "erasures": lifted.erasures,
                "note": reason,
            },
        )
    return LiftResult(
        store.actor, at, lifted.object_ids, lifted.value_types, lifted.erasures, lifted.values_still_erased
    )


def erasures(store: Store) -> list[ErasureInForce]:
    """The erasures that still withhold something from partners, oldest first."""
    return erasures_in_force(store.db.conn)
