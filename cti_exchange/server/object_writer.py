"""Writing STIX objects into a collection: one row per object version, inside the caller's
transaction (TAXII 2.1 section 5.5, Add Objects).

Choices the specification leaves to the server, made here:

* Exact duplicates (same id and version, same content) are accepted again and reported as
  successes without storing a second row, so a client that retries a POST whose answer it
  lost gets the same outcome. The same id and version with different content is a failure:
  a version is immutable (STIX 2.1, "Versioning").
* Objects with neither `modified` nor `created` (most SCOs) are immutable: their version is
  the date_added of their first POST and posting the same id again is a duplicate.
* A malformed object (no STIX id, type not matching the id, bad timestamp, not encodable
  as UTF-8 JSON) is a failure of that object; the rest of the envelope is stored. Those
  checks run before the write lock is taken (intake.py).
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from cti_exchange.server.statuses import StatusDetail
from cti_exchange.server.timestamps import version_key

MEDIA_TYPE_STIX = "application/stix+json;version={}"

# type--UUID (STIX 2.1 section 2.9): a type of 1 to 250 lowercase ASCII letters, digits and
# hyphens, and an RFC 4122 UUID (8-4-4-4-12 hex digits), matched whole (fullmatch: "$" would
# also match before a final newline).
_STIX_ID = re.compile(
    r"(?:[a-z0-9][a-z0-9-]{0,248}[a-z0-9]|[a-z0-9])"
    r"--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_SPEC_VERSION = re.compile(r"[0-9]\.[0-9]")


@dataclass(frozen=True)
class ObjectVersion:
    """The index columns of one STIX object version, read from the object itself.

    version and version_key are None for an immutable object (no `modified`, no `created`):
    its version is the date_added of its POST, which is only known under the write lock.
    """

    object_id: str
    object_type: str
    spec_version: str
    version: str | None
    version_key: str | None
    media_type: str

    @property
    def immutable(self) -> bool:
        return self.version is None


def describe_object(obj: Any) -> ObjectVersion:
    """ValueError (with a message for the status resource) if `obj` is not a STIX object."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    object_id, object_type = obj.get("id"), obj.get("type")
    if not isinstance(object_id, str) or not _STIX_ID.fullmatch(object_id):
        raise ValueError("no valid STIX id (type--UUID)")
    if object_type != object_id.split("--", 1)[0]:
        raise ValueError("'type' does not match the type in 'id'")
    immutable = "modified" not in obj and "created" not in obj
    # As medallion.common.determine_spec_version: SCOs without spec_version are 2.1, other
    # objects without it predate the property (STIX 2.0).
    spec_version = obj.get("spec_version", "2.1" if immutable else "2.0")
    if not isinstance(spec_version, str) or not _SPEC_VERSION.fullmatch(spec_version):
        raise ValueError("'spec_version' is not like 2.1")
    version, key = None, None
    if not immutable:
        version = obj.get("modified", obj.get("created"))
        try:
            if not isinstance(version, str):
                raise ValueError(version)
            key = version_key(version)
        except ValueError:
            raise ValueError("'modified' or 'created' is not a STIX timestamp") from None
    return ObjectVersion(
        object_id=object_id,
        object_type=object_type,
        spec_version=spec_version,
        version=version,
        version_key=key,
        media_type=MEDIA_TYPE_STIX.format(spec_version),
    )


@dataclass(frozen=True)
class PreparedObject:
    """An object of a POST, checked and serialised before the write lock (see intake.py)."""

    obj: dict[str, Any]
    described: ObjectVersion
    # Compact, key order as received: what a reader gets back is what was sent.
    body: str


class ObjectWriter:
    """Adds the objects of one POST to one collection; all of them share `date_added`.

    Runs under the write lock, so it only reads what it must compare against and inserts:
    every check that does not depend on the stored objects was done before (intake.py).
    """

    def __init__(self, conn: sqlite3.Connection, collection_id: str, date_added: str) -> None:
        self._conn = conn
        self._collection_id = collection_id
        self._date_added = date_added
        self._date_added_key = version_key(date_added)
        self.media_types: set[str] = set()

    def add(self, item: PreparedObject) -> StatusDetail:
        described = item.described
        existing = self._conn.execute(
            "SELECT seq, version, version_key FROM objects WHERE collection_id = ? AND object_id = ?",
            (self._collection_id, described.object_id),
        ).fetchall()
        same_version = [row for row in existing if described.immutable or row[2] == described.version_key]
        if same_version:
            return self._duplicate(item, seq=same_version[0][0], version=same_version[0][1])

        is_new_object = not existing
        self._conn.execute(
            "INSERT INTO objects (collection_id, object_id, object_type, spec_version, version,"
            " version_key, date_added, media_type, is_last, is_first, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self._collection_id,
                described.object_id,
                described.object_type,
                described.spec_version,
                described.version or self._date_added,
                described.version_key or self._date_added_key,
                self._date_added,
                described.media_type,
                int(is_new_object),
                int(is_new_object),
                item.body,
            ),
        )
        if not is_new_object:
            refresh_version_flags(self._conn, self._collection_id, described.object_id)
        self.media_types.add(described.media_type)
        return StatusDetail("success", described.object_id, described.version or self._date_added)

    def _duplicate(self, item: PreparedObject, *, seq: int, version: str) -> StatusDetail:
        (stored,) = self._conn.execute("SELECT body FROM objects WHERE seq = ?", (seq,)).fetchone()
        object_id = item.described.object_id
        if stored == item.body or _same_json(stored, item.obj):
            return StatusDetail("success", object_id, version, "already in the collection")
        message = "a different object with this id and version is already in the collection"
        return StatusDetail("failure", object_id, version, message)


def _same_json(stored: str, obj: dict[str, Any]) -> bool:
    """Whether a stored body holds `obj`, whatever the key order."""
    try:
        return bool(json.loads(stored) == obj)
    except RecursionError:
        return False


def refresh_version_flags(conn: sqlite3.Connection, collection_id: str, object_id: str) -> None:
    """Recompute is_last / is_first for every stored version of one object.

    is_last marks the latest version under the latest spec version, is_first the earliest
    version under the latest spec version: what match[version]=last / first return when no
    match[spec_version] is given (TAXII 2.1, "Filtering").
    """
    rows = conn.execute(
        "SELECT seq, spec_version, version_key, is_last, is_first FROM objects"
        " WHERE collection_id = ? AND object_id = ?",
        (collection_id, object_id),
    ).fetchall()
    if not rows:
        return
    last = max(rows, key=lambda row: (row[1], row[2], row[0]))
    first = min((row for row in rows if row[1] == last[1]), key=lambda row: (row[2], row[0]))
    for seq, _, _, is_last, is_first in rows:
        wanted = (int(seq == last[0]), int(seq == first[0]))
        if wanted != (is_last, is_first):
            conn.execute("UPDATE objects SET is_last = ?, is_first = ? WHERE seq = ?", (*wanted, seq))
