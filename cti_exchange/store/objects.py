"""Writing received STIX objects: every version kept (one row each), the latest by `modified`
marked current, revocation applied, and every source (partner, envelope) recorded.

One row per object version keeps the hot path to a single insert per object; the triage
indexes are partial (`WHERE is_current = 1`) so old versions cost nothing to search. The first
source of a version is on its row; the same version arriving again (another partner, a re-share)
adds a row to `object_sources`.

Only an object's owner moves it on. STIX 2.1 (section 3.6) lets only the creator of an object
make new versions of it, and with several partners one of them must not be able to revoke or
rewrite another's intelligence in our store by sending a newer version of its object id. A
newer version becomes current when it comes from the partner that sent the current version, or
from the partner whose identity (from its signed key document) created the object. Otherwise it
is kept as a non-current version, visible in `triage show`, and reported as not applied. The
creator's version also replaces a version another partner relayed when it is the older of the
two: the creator's word outranks a relay (envelope opening already refuses objects dated after
their envelope, so a relay cannot date its copy far ahead). And the creator's copy of the very
version a relay holds with other content (same id and `modified`, say revoked or with another
pattern: a co-recipient re-sending it first) takes that version's place: one row per version
leaves no room for both, so the relay's copy leaves the table, noted in `triage_log` (its
partner, envelope, what it detected) and reported (`RELAY_REPLACED`); its envelope stays in the
archive. The replacing row takes a fresh rowid, as a new row would: the text-search index
(store/text_index.py) never holds a row whose text changed under a rowid it already covered.

Custom markings resolve per source: an object's marking-definition counts only as the partner
that sent the object defined it (in the same envelope, or stored from it earlier). Another
partner could otherwise define a marking id first and lower the TLP of whoever uses it; a
marking its own source never defined counts as TLP:RED, as one nobody defined.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson

from cti_exchange.stix.tlp import Tlp, marking_levels, refs_beyond_tlp
from cti_exchange.store.projection import PROJECTED_COLUMNS, project, shown_version

_LOOKUP_CHUNK = 500
_stdlib_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def object_json(obj: dict[str, Any]) -> str:
    """Compact JSON of one object; orjson is ~8x the standard library on this hot path."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:  # integers beyond 64 bits and the like: the standard library copes
        return _stdlib_encode(obj)


# The object id alone: a string compares three times as fast as an (id, version) tuple, and
# the rare versions of one id in one write keep their order (the sort is stable).
_row_key = itemgetter(0)
_INSERT = (
    "INSERT INTO objects (object_id, version, type, ioc_type, value, name, pattern_type, tlp, "
    "confidence, valid_from, valid_until, revoked, created_by_ref, is_current, envelope_id, "
    "partner, received_at, status, status_by, status_at, status_note, json) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Nearly every row is a first version, current, not yet triaged: its constant columns are
# written as literals, which saves binding five parameters a row (~15% of the insert).
_INSERT_NEW = (
    "INSERT INTO objects (object_id, version, type, ioc_type, value, name, pattern_type, tlp, "
    "confidence, valid_from, valid_until, revoked, created_by_ref, is_current, envelope_id, "
    "partner, received_at, status, status_by, status_at, status_note, json) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, 'new', NULL, NULL, NULL, ?)"
)

# The creator's copy of a version a relay sent with other content, written over the relay's
# row: every column but the key, and a fresh rowid (see the module docstring).
_REPLACED_COLUMNS = (
    *PROJECTED_COLUMNS,
    "is_current",
    "envelope_id",
    "partner",
    "received_at",
    "status",
    "status_by",
    "status_at",
    "status_note",
    "json",
)
_REPLACE = (
    "UPDATE objects SET rowid = (SELECT max(rowid) + 1 FROM objects), "  # noqa: S608 - fixed names
    + ", ".join(f"{column} = ?" for column in _REPLACED_COLUMNS)
    + " WHERE object_id = ? AND version = ?"
)


# One stored version: (version, is_current, partner, created_by_ref, status, status_by,
# status_at, status_note, detects, revoked).
_Version = tuple[Any, ...]
_STATUS = slice(4, 8)
_DETECTS = 8
_WAS_REVOKED = 9
_SYSTEM_ANALYST = "cti-exchange"  # triage_log entries the store writes itself
# Where created_by_ref sits in a projected row (object_id, version, *PROJECTED_COLUMNS).
_CREATED_BY = 2 + PROJECTED_COLUMNS.index("created_by_ref")
_TLP = 2 + PROJECTED_COLUMNS.index("tlp")
_REVOKED = 2 + PROJECTED_COLUMNS.index("revoked")


NEWER = "newer"
DIFFERENT_CONTENT = "different-content"
RELAY_REPLACED = "relay-copy-replaced"


@dataclass(frozen=True)
class NotApplied:
    """A newer version from a partner that does not own the object: kept, not made current."""

    object_id: str
    version: str
    owner: str  # the partner whose version stays current
    kind: str = NEWER  # or DIFFERENT_CONTENT: a stored version's id and date, other content;
    # or RELAY_REPLACED: the creator's copy replaced the one `relay` had sent of that version
    relay: str | None = None

    def to_dict(self) -> dict[str, str]:
        """As `--json` lists it: `relay` only where there is one (RELAY_REPLACED); the version as
        a STIX timestamp (shown_version), not as the key the store compares."""
        shown = self.__dict__ | {"version": shown_version(self.version)}
        return {key: value for key, value in shown.items() if value is not None}


def not_applied_summary(not_applied: list[NotApplied]) -> str | None:
    """One line on versions not applied, or None if there were none."""
    if not not_applied:
        return None
    parts = []
    newer = [n for n in not_applied if n.kind == NEWER]
    if newer:
        parts.append(
            f"{len(newer)} newer version(s) of objects shared by {_owners(newer)}: kept, not applied"
        )
    different = [n for n in not_applied if n.kind == DIFFERENT_CONTENT]
    if different:
        parts.append(
            f"{len(different)} copy(ies) of versions shared by {_owners(different)} with other "
            "content: not recorded as a source (the envelope archive keeps them)"
        )
    replaced = [n for n in not_applied if n.kind == RELAY_REPLACED]
    if replaced:
        relays = ", ".join(sorted({n.relay or "?" for n in replaced}))
        parts.append(
            f"{len(replaced)} version(s) of its own objects that {relays} had relayed with other "
            "content: the relayed copies replaced (`triage show` notes what they held)"
        )
    return "; ".join(parts) + " (only the partner that shared an object, or its creator, updates it)"


def revoked_accepted_note(partner: str, object_ids: list[str]) -> str | None:
    """One line on accepted objects `partner` revoked, or None: they leave the exports, so a
    blocklist made tomorrow is shorter than today's."""
    if not object_ids:
        return None
    return (
        f"{partner} revoked {len(object_ids)} object(s) we had accepted (first: {object_ids[0]}): "
        "they leave every export from now on; `cti-exchange triage list --include-revoked "
        "--status accepted` lists them"
    )


def _owners(not_applied: list[NotApplied]) -> str:
    return ", ".join(sorted({n.owner for n in not_applied}))


@dataclass
class StoredObjects:
    new_versions: int = 0
    not_applied: list[NotApplied] = field(default_factory=list)
    # Objects an analyst accepted whose source revoked them in this write: they leave every
    # export (a blocklist shrinks), which a pull says rather than doing silently.
    revoked_accepted: list[str] = field(default_factory=list)
    # Objects not stored because erased on request (store/erasure_tombstones.py), set by the
    # envelope's acceptance (store/inbound.py), not by write_objects.
    withheld_erased: list[str] = field(default_factory=list)


def _rows_of(
    conn: sqlite3.Connection,
    columns: str,
    object_ids: list[str],
    where: str = "",
    params: tuple[Any, ...] = (),
) -> Iterator[Any]:
    """`SELECT columns FROM objects` for the given ids, in chunks SQLite's parameter limit allows
    (`params`: those of `where`)."""
    for start in range(0, len(object_ids), _LOOKUP_CHUNK):
        chunk = object_ids[start : start + _LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(
            f"SELECT {columns} FROM objects WHERE object_id IN ({marks}){where}",  # noqa: S608 - fixed names and placeholders only
            (*chunk, *params),
        )


def _existing_versions(conn: sqlite3.Connection, object_ids: list[str]) -> dict[str, list[_Version]]:
    found: dict[str, list[_Version]] = {}
    columns = (
        "object_id, version, is_current, partner, created_by_ref, status, status_by, status_at, "
        "status_note, CASE WHEN type = 'indicator' THEN json_extract(json, '$.pattern') END, revoked"
    )
    for row in _rows_of(conn, columns, object_ids):
        found.setdefault(row[0], []).append(tuple(row[1:]))
    return found


def _detects(obj: dict[str, Any]) -> Any:
    """What an indicator version detects: its pattern (None for other objects)."""
    return obj.get("pattern") if obj.get("type") == "indicator" else None


def _stored_objects(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The stored content of (object id, version) pairs, parsed."""
    wanted = set(keys)
    object_ids = sorted({object_id for object_id, _ in wanted})
    return {
        (object_id, version): json.loads(text)
        for object_id, version, text in _rows_of(conn, "object_id, version, json", object_ids)
        if (object_id, version) in wanted
    }


def _is_creator(current: _Version, object_id: str, partner_identity: str | None) -> bool:
    """The partner's identity created the object (its created_by_ref), or is the object."""
    return partner_identity is not None and partner_identity in (current[3], object_id)


def may_supersede(current: _Version, object_id: str, partner: str, partner_identity: str | None) -> bool:
    """Whether `partner` may replace the current version: it sent it, or it created the object."""
    return current[2] == partner or _is_creator(current, object_id, partner_identity)


def creator_reclaims(current: _Version, object_id: str, partner: str, partner_identity: str | None) -> bool:
    """The creator's own version outranks one another partner relayed, even a later-dated one:
    otherwise whoever relays an id first, dated a little ahead, would keep the creator's word
    out of the current view."""
    return current[2] != partner and _is_creator(current, object_id, partner_identity)


def _relayed_copies(
    conn: sqlite3.Connection,
    projected: list[tuple[tuple[Any, ...], dict[str, Any]]],
    existing: dict[str, list[_Version]],
    partner: str,
    partner_identity: str,
) -> dict[tuple[str, str], str]:
    """(object id, version) -> the envelope it came in, for each version another partner
    relayed that `partner`, its creator, now sends with other content: the creator's copy
    takes its place (a co-recipient re-sending a version first, revoked or with another
    pattern, must not keep the creator's own word out of the store)."""
    candidates: dict[tuple[str, str], dict[str, Any]] = {}
    for row, obj in projected:
        for stored in existing.get(row[0], ()):
            if stored[0] == row[1] and creator_reclaims(stored, row[0], partner, partner_identity):
                candidates.setdefault((row[0], row[1]), obj)
    if not candidates:
        return {}
    columns = "object_id, version, envelope_id, json"
    return {
        (object_id, version): envelope_id
        for object_id, version, envelope_id, text in _rows_of(
            conn, columns, sorted({o for o, _ in candidates})
        )
        if (sent := candidates.get((object_id, version))) is not None and json.loads(text) != sent
    }


# A version `partner` sent: as its first source (on the row) or again later (object_sources).
_SENT_BY = (
    " AND (partner = ? OR EXISTS (SELECT 1 FROM object_sources AS s WHERE s.object_id = objects.object_id "
    "AND s.version = objects.version AND s.partner = ?)) ORDER BY version"
)


def _stored_marking_levels(
    conn: sqlite3.Connection, marking_ids: list[str], partner: str
) -> dict[str, Tlp | None]:
    """What the marking-definitions among `marking_ids` that `partner` itself sent us state (the
    latest it sent of each), current or not: another partner's definition of the same id, even
    one naming `partner` as its creator, says nothing of what `partner` meant."""
    rows = _rows_of(conn, "json", marking_ids, _SENT_BY, (partner, partner))
    return marking_levels(json.loads(row[0]) for row in rows)


def _with_custom_markings(
    conn: sqlite3.Connection,
    projected: list[tuple[tuple[Any, ...], dict[str, Any]]],
    custom: dict[int, list[str]],
    partner: str,
) -> None:
    """The TLP column of objects that carry custom markings, read from the marking-definitions
    their own source sent (in the same bundle, or stored from an earlier one). A marking it never
    defined counts as TLP:RED, so content marked in a way we cannot read (or only as someone
    else defined it: a partner could define another's marking id first, stating TLP:CLEAR) is
    never exported or re-shared as if it carried no TLP."""
    levels = marking_levels(obj for _, obj in projected)
    wanted = sorted({ref for refs in custom.values() for ref in refs} - levels.keys())
    if wanted:
        levels |= _stored_marking_levels(conn, wanted, partner)
    for index, refs in custom.items():
        row, obj = projected[index]
        found = [level for level in (levels.get(ref, Tlp.RED) for ref in refs) if level is not None]
        if row[_TLP] is not None:
            found.append(Tlp(row[_TLP]))
        if found:
            projected[index] = ((*row[:_TLP], Tlp.strictest(found).value, *row[_TLP + 1 :]), obj)


def write_objects(
    conn: sqlite3.Connection,
    objects: Iterable[dict[str, Any]],
    *,
    envelope_id: str,
    partner: str,
    received_at: str,
    partner_identity: str | None = None,
) -> StoredObjects:
    """Stores objects inside the caller's transaction: how many new versions arrived, and which
    newer versions were not made current because `partner` does not own the object
    (`partner_identity`: the STIX identity its signed key document names, if any)."""
    projected = [(project(obj), obj) for obj in objects]
    custom = {index: refs for index, (_, obj) in enumerate(projected) if (refs := refs_beyond_tlp(obj))}
    if custom:
        _with_custom_markings(conn, projected, custom, partner)
    existing = _existing_versions(conn, list({row[0] for row, _ in projected}))
    relayed = (
        _relayed_copies(conn, projected, existing, partner, partner_identity)
        if existing and partner_identity is not None
        else {}
    )
    result = StoredObjects()
    inserts = []
    fresh = []
    demote = []
    reset = []
    replace = []
    replaced_notes = []
    same_version: list[tuple[str, str, str, dict[str, Any]]] = []
    for row, obj in projected:
        object_id, version = row[0], row[1]
        known = existing.get(object_id)
        status: tuple[Any, ...] = ("new", None, None, None)
        if not known:
            existing[object_id] = [
                (version, 1, partner, row[_CREATED_BY], *status, _detects(obj), row[_REVOKED])
            ]
            fresh.append((*row, envelope_id, partner, received_at, object_json(obj)))
            continue
        elif (same := next((v for v in known if v[0] == version), None)) is not None and (
            (object_id, version) not in relayed
        ):
            same_version.append((object_id, version, same[2], obj))
            continue
        else:
            current = next((v for v in known if v[1] == 1), None)
            if same is not None:  # a relay's copy of this version, which the creator's replaces
                known.remove(same)
            if current is None:
                is_current = 1
            elif (
                current is same
                or (version > current[0] and may_supersede(current, object_id, partner, partner_identity))
                or (version < current[0] and creator_reclaims(current, object_id, partner, partner_identity))
            ):
                is_current = 1
                if current is not same:
                    demote.append((object_id, current[0]))
                # An analyst's decision carries over to the new version, unless it detects
                # something else: accepting c2.example must not accept whatever value a later
                # version (buggy, or signed with a stolen key) puts in its place.
                status = current[_STATUS]
                if status[0] == "accepted" and row[_REVOKED] and not current[_WAS_REVOKED]:
                    result.revoked_accepted.append(object_id)
                if status[0] != "new" and _detects(obj) != current[_DETECTS]:
                    reset.append((object_id, status[0], version, current[_DETECTS], _detects(obj)))
                    status = ("new", None, None, None)
                if current is not same:
                    known.remove(current)
                    known.append((current[0], 0, *current[2:]))
            else:
                is_current = 0
                if version > current[0]:
                    result.not_applied.append(NotApplied(object_id, version, current[2]))
        known.append((version, is_current, partner, row[_CREATED_BY], *status, _detects(obj), row[_REVOKED]))
        if same is None:
            inserts.append((*row, is_current, envelope_id, partner, received_at, *status, object_json(obj)))
            continue
        replace.append(
            (
                *row[2:],
                is_current,
                envelope_id,
                partner,
                received_at,
                *status,
                object_json(obj),
                object_id,
                version,
            )
        )
        replaced_notes.append(
            (
                object_id,
                status[0],
                _SYSTEM_ANALYST,
                received_at,
                f"version {version} as {same[2]} relayed it (envelope {relayed[object_id, version]}"
                f"{', revoked' if same[_WAS_REVOKED] else ''}, detecting {str(same[_DETECTS])[:200]}) "
                f"replaced by the copy of its creator {partner} (envelope {envelope_id}): "
                f"{same[2]} is no longer a source of it",
            )
        )
        result.not_applied.append(NotApplied(object_id, version, partner, RELAY_REPLACED, same[2]))
    # In key order, each page of the primary-key index is visited once per batch instead of
    # once per row (ids are random UUIDs): about a third less insert time. Row order within
    # one write carries no meaning.
    fresh.sort(key=_row_key)
    inserts.sort(key=_row_key)
    conn.executemany(_INSERT_NEW, fresh)
    conn.executemany(_INSERT, inserts)
    if replace:
        # Those who sent the relay's content are no sources of the creator's.
        conn.executemany(
            "DELETE FROM object_sources WHERE object_id = ? AND version = ?", [r[-2:] for r in replace]
        )
        conn.executemany(_REPLACE, replace)
        conn.executemany(
            "INSERT INTO triage_log (object_id, decision, analyst, decided_at, note) VALUES (?, ?, ?, ?, ?)",
            replaced_notes,
        )
    if demote:
        # After the inserts: a version superseded within this same batch is in the table now.
        conn.executemany("UPDATE objects SET is_current = 0 WHERE object_id = ? AND version = ?", demote)
    if reset:
        conn.executemany(
            "INSERT INTO triage_log (object_id, decision, analyst, decided_at, note) "
            "VALUES (?, 'new', ?, ?, ?)",
            [
                (
                    object_id,
                    _SYSTEM_ANALYST,
                    received_at,
                    f"'{decision}' not carried over to version {version}: it detects "
                    f"{str(after)[:200]} instead of {str(before)[:200]}",
                )
                for object_id, decision, version, before, after in reset
            ],
        )
    sources = []
    if same_version:
        # After the inserts: a version first stored by this same batch is in the table now.
        stored = _stored_objects(conn, [(o, v) for o, v, _, _ in same_version])
        for object_id, version, owner, obj in same_version:
            if stored.get((object_id, version)) == obj:
                sources.append((object_id, version, envelope_id, partner, received_at))
            else:
                # Same id and date, other content: not the same version, and a partner echoing
                # an id must not become a source of what it did not send (sightings go to
                # sources). The envelope archive keeps what it sent.
                result.not_applied.append(NotApplied(object_id, version, owner, DIFFERENT_CONTENT))
    if sources:
        conn.executemany(
            "INSERT OR IGNORE INTO object_sources (object_id, version, envelope_id, partner, "
            "received_at) VALUES (?, ?, ?, ?, ?)",
            sources,
        )
    result.new_versions = len(fresh) + len(inserts) + len(replace)
    return result
