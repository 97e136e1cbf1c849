"""Erasing partner data on request: the API behind `triage erase` (store/erasure.py says what
is removed and what stays).

An erasure names objects as decisions do (ids, id prefixes, values in any spelling), takes every
current object of the same value and the relationships and sightings about them, and removes
them in one transaction with an audit record naming the object ids, the counts, the analyst and
the reason (`--note`, required: the request it answers). The audit trail never holds the values.
Afterwards the write-ahead log is checkpointed and emptied, so the erased pages are gone from
it too; a reader holding the store open at that moment leaves it to the next checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.errors import UsageError
from cti_exchange.store.audit_log import append_audit
from cti_exchange.store.erasure import erase_objects, objects_to_erase, sources_of
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
            ids = objects_to_erase(conn, *_resolved(store, references, partner), forms, partner=partner)
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
            erased = erase_objects(conn, ids, forms)
            append_audit(
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
