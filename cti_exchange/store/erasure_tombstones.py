"""Erasures that stick: what `triage erase` erased is not stored again when a partner sends it
once more (a new version of the same indicator, its periodic re-share, a sighting of it).

The erasure writes, in its own transaction, one row of the `erased` table (migration 16) per
object it erased and per value it was asked to erase:

- an erased object: its id (a random UUID, no personal data), from every partner (the object
  went whole, with every partner that relayed it); a relationship or sighting erased with it
  also names the object it was about (`about`);
- an erased value (named by value, not by id): its IOC type and a keyed digest, HMAC-SHA256
  under the store's own random key (`erasure_key`, made once by the migration) of the type and
  the value's canonical form (exporters/value_forms.py, as decisions and the erasure compare
  spellings: `Evil.Example.` and `evil.example` are one value; an e-mail address in lower case
  whole, `erasure_form`), with the partner it applies to
  (`--partner P`: only P's objects; otherwise every partner's). Never the value: the store
  keeps this digest so it can refuse the value again, a suppression list; the value cannot be
  read back from it short of guessing it (and guessing needs the key, which is in the store:
  whoever holds the store file can test a guess, as they can test one against a plain hash).

When an opened, verified envelope's objects are stored (store/inbound.py), those hit by a
tombstone are withheld: an object whose id is erased; an indicator (or a vulnerability, or a
cyber-observable with a `value`) whose type and canonical value match an erased value for its
partner or for every partner; a relationship or sighting referring to such an object or to an
erased id. The envelope itself is accepted as any other (its record, its channel position, the
receipt owed): nothing is quarantined and the partner is not bothered; but the store keeps no
signed copy of it, since that copy holds what was withheld. The count and the object ids
(never the values) reach the `accept` audit record and what `pull`, `sync` and `open` say. An
object that only names the value in its text (a report's description) is stored: a tombstone
matches ids and values, not text (as the erasure reports such objects rather than erasing
them).

A store without tombstones pays one `SELECT EXISTS` per envelope. Lifting (`triage unerase`)
deletes the rows a value or an object id matches, so the next envelope carrying it stores it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cti_exchange.stix.pattern_values import indicator_value
from cti_exchange.store.erasure import rows_for_objects
from cti_exchange.store.object_queries import SpellingForms

# Cyber-observables whose `value` is an indicator value of the IOC type of their own name.
_OBSERVABLE_VALUES = frozenset({"ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "mac-addr"})
# What a relationship or sighting is about (as store/erasure.py erases them with their object).
_ABOUT = {"relationship": ("source_ref", "target_ref"), "sighting": ("sighting_of_ref",)}


def has_tombstones(conn: sqlite3.Connection) -> bool:
    """Whether anything erased is withheld: the one query a store without erasures pays per
    envelope."""
    return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM erased)").fetchone()[0])


def store_key(conn: sqlite3.Connection) -> bytes:
    """The store's own key for value digests (migration 16 made it)."""
    return bytes(conn.execute("SELECT key FROM erasure_key WHERE id = 1").fetchone()[0])


def erasure_form(forms: SpellingForms, ioc_type: str, value: str) -> str:
    """The form a value is erased and withheld in: its canonical form (`forms.of`), and an
    e-mail address in lower case whole. The canonical form keeps the local part's case, as
    mail servers may; a suppression list errs towards withholding (`Victim@example.org` is
    the person `victim@example.org` was erased for)."""
    form = forms.of(ioc_type, value)
    return form.lower() if ioc_type == "email-addr" else form


def value_digest(key: bytes, ioc_type: str, form: str) -> bytes:
    """HMAC-SHA256 of an IOC type and a value's canonical form (`forms.of`), under `key`. A
    lone surrogate (JSON allows one) is digested as its code point, not refused."""
    message = f"{ioc_type}\x00{form}".encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).digest()


def object_value(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(IOC type, value) a received object holds, as store/projection.py reads it for an
    indicator or a vulnerability, and a cyber-observable's own `value`; None otherwise."""
    kind = obj.get("type")
    if kind == "indicator":
        pattern = obj.get("pattern")
        if obj.get("pattern_type", "stix") != "stix" or not isinstance(pattern, str):
            return None
        ioc_type, value = indicator_value(pattern)
    elif kind == "vulnerability":
        ioc_type, value = "cve", obj.get("name")
    elif kind in _OBSERVABLE_VALUES:
        ioc_type, value = kind, obj.get("value")
    else:
        return None
    if isinstance(ioc_type, str) and isinstance(value, str):
        return ioc_type, value
    return None


# -- written by the erasure ------------------------------------------------------------------


@dataclass(frozen=True)
class Tombstone:
    """One row of `erased`, before the erasure's audit record gives it its `audit_seq`."""

    object_id: str | None
    ioc_type: str | None
    digest: bytes | None
    about: str | None
    partner: str | None


def plan_tombstones(
    conn: sqlite3.Connection,
    erased_ids: list[str],
    by_value: Iterable[str],
    forms: SpellingForms,
    *,
    partner: str | None,
) -> list[Tombstone]:
    """What an erasure of `erased_ids` (objects_to_erase's list) leaves behind, read before
    the rows go: a tombstone per object, with the value it held (or, for a relationship or
    sighting, the value of the erased object it was about), so lifting a value lifts them too;
    and one per value named (`by_value`: the objects a value named), for `partner` or, None,
    for every partner."""
    key = store_key(conn)
    chosen = set(erased_ids)
    named = list(dict.fromkeys(by_value))
    held: dict[str, tuple[str, bytes]] = {}
    for object_id, ioc_type, value in rows_for_objects(
        conn,
        "SELECT object_id, ioc_type, value FROM objects",
        list(dict.fromkeys([*erased_ids, *named])),
        more="AND ioc_type IS NOT NULL AND value IS NOT NULL ORDER BY is_current DESC",
    ):
        held.setdefault(
            object_id, (ioc_type, value_digest(key, ioc_type, erasure_form(forms, ioc_type, value)))
        )
    about: dict[str, str] = {}
    for object_id, text in rows_for_objects(
        conn,
        "SELECT object_id, json FROM objects",
        erased_ids,
        more="AND type IN ('relationship', 'sighting')",
    ):
        obj = json.loads(text)
        refs = [obj.get(name) for name in _ABOUT.get(obj.get("type"), ())]
        refs = [r for r in refs if isinstance(r, str) and r in chosen]
        if refs and object_id not in about:
            about[object_id] = next((r for r in refs if r in held), refs[0])
    planned = []
    for object_id in dict.fromkeys(erased_ids):
        subject = about.get(object_id)
        ioc_type, digest = held.get(object_id) or held.get(subject or "") or (None, None)
        planned.append(Tombstone(object_id, ioc_type, digest, subject, None))
    values: dict[tuple[str, bytes], None] = {}
    for object_id in named:
        if object_id in held:
            values.setdefault(held[object_id])
    planned += [Tombstone(None, ioc_type, digest, None, partner) for ioc_type, digest in values]
    return planned


def write_tombstones(conn: sqlite3.Connection, planned: list[Tombstone], *, at: str, audit_seq: int) -> None:
    """Inside the erasure's transaction, after its audit record (`audit_seq`)."""
    conn.executemany(
        "INSERT INTO erased (object_id, ioc_type, digest, about, partner, erased_at, audit_seq) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(t.object_id, t.ioc_type, t.digest, t.about, t.partner, at, audit_seq) for t in planned],
    )


# -- at storing ------------------------------------------------------------------------------


def withhold_erased(
    conn: sqlite3.Connection, objects: list[dict[str, Any]], partner: str, forms: SpellingForms, *, at: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """(objects to store, ids withheld): `objects` less those a tombstone hits (the module
    docstring). Call only when `has_tombstones`, inside the accept transaction: an object
    withheld for its value gets a tombstone of its own (its id, with the value's digest and
    erasure), so that a sighting or relationship about it sent in a later envelope is withheld
    too, and lifting the value lifts it."""
    erased_ids = {row[0] for row in conn.execute("SELECT object_id FROM erased WHERE object_id IS NOT NULL")}
    digests: dict[str, dict[bytes, tuple[str | None, int]]] = {}
    for ioc_type, digest, scope, audit_seq in conn.execute(
        "SELECT ioc_type, digest, partner, audit_seq FROM erased WHERE object_id IS NULL "
        "AND (partner IS NULL OR partner = ?)",
        (partner,),
    ):
        digests.setdefault(ioc_type, {})[bytes(digest)] = (scope, audit_seq)
    key = store_key(conn) if digests else b""
    withheld: dict[str, None] = {}
    remembered: list[tuple[str, str, bytes, str | None, int]] = []
    for obj in objects:
        object_id = str(obj.get("id"))
        if object_id in erased_ids:
            withheld.setdefault(object_id)
        elif digests and (held := object_value(obj)) is not None and held[0] in digests:
            ioc_type, value = held
            digest = value_digest(key, ioc_type, erasure_form(forms, ioc_type, value))
            if (erasure := digests[ioc_type].get(digest)) is not None and object_id not in withheld:
                withheld.setdefault(object_id)
                remembered.append((object_id, ioc_type, digest, *erasure))  # once per id
    conn.executemany(
        "INSERT INTO erased (object_id, ioc_type, digest, about, partner, erased_at, audit_seq) "
        "VALUES (?, ?, ?, NULL, ?, ?, ?)",
        [(object_id, t, d, scope, at, seq) for object_id, t, d, scope, seq in remembered],
    )
    gone = erased_ids | withheld.keys()
    for obj in objects:
        refs = _ABOUT.get(str(obj.get("type")), ())
        if any(obj.get(name) in gone for name in refs):
            withheld.setdefault(str(obj.get("id")))
    if not withheld:
        return objects, []
    return [obj for obj in objects if obj.get("id") not in withheld], list(withheld)


def withheld_note(partner: str, object_ids: list[str]) -> str | None:
    """One line on objects not stored because erased, or None: counts and ids, never values."""
    if not object_ids:
        return None
    return (
        f"{partner}: {len(object_ids)} object(s) not stored: erased on request (first: "
        f"{object_ids[0]}); `cti-exchange triage erased` lists the erasures, `triage unerase` lifts one"
    )


# -- lifting and listing ---------------------------------------------------------------------


@dataclass
class Lifted:
    """The tombstones one lifting removed: erased object ids, and erased values by IOC type."""

    object_ids: list[str] = field(default_factory=list)
    value_types: list[str] = field(default_factory=list)
    erasures: list[int] = field(default_factory=list)  # audit seq of the erasures they came from
    partners: list[str | None] = field(default_factory=list)  # the lifted values' scopes
    values_still_erased: list[str] = field(default_factory=list)  # ids lifted whose value is not


def lift_object(conn: sqlite3.Connection, object_id: str, lifted: Lifted) -> bool:
    """Removes the tombstone of an erased object and of the relationships and sightings
    erased with it; False when it has none."""
    rows = conn.execute(
        "SELECT id, object_id, audit_seq, digest FROM erased WHERE object_id = ? OR about = ?",
        (object_id, object_id),
    ).fetchall()
    _remove(conn, rows, lifted)
    for _, _, _, digest in rows:
        if (
            digest is not None
            and conn.execute(
                "SELECT 1 FROM erased WHERE object_id IS NULL AND digest = ?", (digest,)
            ).fetchone()
        ):
            lifted.values_still_erased.append(object_id)
            break
    return bool(rows)


def lift_value(conn: sqlite3.Connection, spellings: list[str], forms: SpellingForms, lifted: Lifted) -> bool:
    """Removes the tombstones of a value (any of `spellings`, of whichever IOC type it was
    erased as), from every partner scope: the value's own, and those of the objects the same
    erasures took or withheld for it (and of the relationships and sightings about them). An
    object erased by id alone stays erased: its erasure named no value (`unerase ID` lifts
    it). False when no erasure of the value matches."""
    key = store_key(conn)
    types = [row[0] for row in conn.execute("SELECT DISTINCT ioc_type FROM erased WHERE digest IS NOT NULL")]
    digests = {value_digest(key, t, erasure_form(forms, t, s)) for t in types for s in spellings}
    rows = []
    for digest in digests:
        rows += conn.execute(
            "SELECT id, object_id, audit_seq, digest, ioc_type, partner FROM erased e WHERE digest = ? "
            "AND (object_id IS NULL OR EXISTS (SELECT 1 FROM erased v WHERE v.object_id IS NULL "
            "AND v.digest = e.digest AND v.audit_seq = e.audit_seq))",
            (digest,),
        ).fetchall()
    for _, object_id, _, _, ioc_type, partner in rows:
        if object_id is None:
            lifted.value_types.append(ioc_type)
            lifted.partners.append(partner)
    _remove(conn, [row[:4] for row in rows], lifted)
    return bool(rows)


def _remove(conn: sqlite3.Connection, rows: list[Any], lifted: Lifted) -> None:
    conn.executemany("DELETE FROM erased WHERE id = ?", [(row[0],) for row in rows])
    for _, object_id, audit_seq, _ in rows:
        if object_id is not None and object_id not in lifted.object_ids:
            lifted.object_ids.append(object_id)
        if audit_seq not in lifted.erasures:
            lifted.erasures.append(audit_seq)


@dataclass(frozen=True)
class ErasureInForce:
    """What one erasure still withholds, as `triage erased` lists it: never a value."""

    erasure: int  # the audit seq of its `erase` record
    erased_at: str
    analyst: str | None
    note: str | None  # the reason, from the audit record
    partner: str | None  # the values withheld from this partner only; None: from every partner
    object_ids: list[str]
    value_types: list[str]  # one per erased value: its IOC type

    def to_dict(self) -> dict[str, object]:
        return {
            "erasure": self.erasure,
            "erased_at": self.erased_at,
            "analyst": self.analyst,
            "note": self.note,
            "partner": self.partner,
            "object_ids": self.object_ids,
            "values": [{"type": t} for t in self.value_types],
        }


def erasures_in_force(conn: sqlite3.Connection) -> list[ErasureInForce]:
    """Every erasure with a tombstone left, oldest first."""
    found: dict[int, tuple[str, list[str], list[str], set[str]]] = {}
    for object_id, ioc_type, partner, at, seq in conn.execute(
        "SELECT object_id, ioc_type, partner, erased_at, audit_seq FROM erased ORDER BY audit_seq, id"
    ):
        _, ids, types, partners = found.setdefault(seq, (at, [], [], set()))
        if object_id is not None:
            ids.append(object_id)
        else:
            types.append(ioc_type)
            partners.add(partner)
    listed = []
    for seq, (at, ids, types, partners) in found.items():
        row = conn.execute("SELECT actor, details FROM audit_log WHERE seq = ?", (seq,)).fetchone()
        details = json.loads(row[1]) if row else {}
        note = details.get("note") if isinstance(details, dict) else None
        scope = next(iter(partners)) if len(partners) == 1 else None
        listed.append(
            ErasureInForce(
                seq, at, row[0] if row else None, note if isinstance(note, str) else None, scope, ids, types
            )
        )
    return listed
