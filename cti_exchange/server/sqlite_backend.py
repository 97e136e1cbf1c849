"""A medallion backend on one SQLite file: durable, indexed, restart-safe.

medallion loads it through its documented backend interface:

    "backend": {"module": "cti_exchange.server.sqlite_backend",
                "module_class": "SqliteBackend", "db_path": "/srv/taxii/taxii.sqlite3"}

Every method returns the shapes medallion's views expect (the same as its memory backend:
`medallion.common.create_resource` envelopes plus X-TAXII-Date-Added-First/-Last headers).
Reads are single indexed queries, so a page costs the same in a collection of 10,000 or
10,000,000 objects; each POST is one transaction, committed and fsynced before medallion
answers. The database must have been laid out by `cti_exchange.server.provisioning`.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medallion.backends.base import Backend
from medallion.common import create_resource
from medallion.exceptions import ProcessingError
from medallion.views import MEDIA_TYPE_TAXII_V21

from cti_exchange.errors import ConfigError
from cti_exchange.server.connection import ThreadConnections, write_transaction
from cti_exchange.server.object_writer import ObjectWriter, refresh_version_flags
from cti_exchange.server.queries import (
    VERSION_ALL,
    VERSION_LAST,
    FilterError,
    ObjectFilter,
    PageOrder,
    PagePosition,
    decode_next,
    encode_next,
    select_page,
)
from cti_exchange.server.schema import ensure_schema
from cti_exchange.server.statuses import load_status, save_status, status_resource
from cti_exchange.server.timestamps import format_date_added, next_date_added

# Every paged query ends with these columns, so the page logic can find its position.
_POSITION_COLUMNS = "o.date_added, o.version_key, o.seq"

_COLLECTION_COLUMNS = "id, title, description, alias, can_read, can_write, media_types"


class SqliteBackend(Backend):
    """medallion's Backend interface (medallion/backends/base.py) over the exchange database."""

    def __init__(self, **kwargs: Any) -> None:
        db_path = kwargs.get("db_path")
        if not db_path:
            raise ConfigError("the SqliteBackend configuration has no 'db_path'")
        path = Path(db_path)
        if not path.is_file():
            raise ConfigError(
                f"no TAXII server database at {path}",
                hint="lay out the data directory first (cti_exchange.server.provisioning)",
            )
        self.db_path = path
        self._connections = ThreadConnections(path)
        ensure_schema(self._conn())

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def _fetch_one(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self._conn().execute(sql, params).fetchone()

    def _fetch_all(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        return self._conn().execute(sql, params).fetchall()

    # -- access hooks: the exchange server narrows these per account (see access.py) -------

    def collection_rights(self, collection_id: str, stored: tuple[bool, bool]) -> tuple[bool, bool]:
        """(can_read, can_write) to report and enforce for a collection."""
        return stored

    def status_visible(self, collection_id: str) -> bool:
        """Whether the requester may see a status resource about `collection_id`."""
        return True

    # -- server information (TAXII 2.1 section 4) --------------------------------------------

    def server_discovery(self) -> dict[str, Any] | None:
        conn = self._conn()
        row = conn.execute(
            "SELECT title, description, contact, default_api_root FROM server_info WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        title, description, contact, default = row
        roots = [name for (name,) in conn.execute("SELECT name FROM api_roots ORDER BY name")]
        # Relative API root URLs are allowed (TAXII 2.1 section 4.1.1) and stay right behind
        # any host name, port or TLS-terminating proxy.
        discovery: dict[str, Any] = {"title": title}
        if description:
            discovery["description"] = description
        if contact:
            discovery["contact"] = contact
        if default:
            discovery["default"] = f"/{default}/"
        discovery["api_roots"] = [f"/{name}/" for name in roots]
        return discovery

    def get_api_root_information(self, api_root: str) -> dict[str, Any] | None:
        row = self._fetch_one(
            "SELECT title, description, max_content_length FROM api_roots WHERE name = ?",
            (api_root,),
        )
        if row is None:
            return None
        info: dict[str, Any] = {"title": row[0]}
        if row[1]:
            info["description"] = row[1]
        info["versions"] = [MEDIA_TYPE_TAXII_V21]
        # Clients split their POSTs by this (TAXII 2.1 section 4.2.1); medallion enforces it.
        info["max_content_length"] = row[2]
        return info

    def largest_max_content_length(self) -> int:
        row = self._conn().execute("SELECT MAX(max_content_length) FROM api_roots").fetchone()
        return int(row[0] or 0)

    def get_status(self, api_root: str, status_id: str) -> dict[str, Any] | None:
        stored = load_status(self._conn(), api_root, status_id)
        if stored is None or not self.status_visible(stored.collection_id):
            return None
        return stored.resource

    # -- collections (TAXII 2.1 section 5) ---------------------------------------------------

    def _collection_resource(self, row: Sequence[Any]) -> dict[str, Any] | None:
        collection_id, title, description, alias, can_read, can_write, media_types = row
        can_read, can_write = self.collection_rights(collection_id, (bool(can_read), bool(can_write)))
        if not (can_read or can_write):
            return None  # neither right: the collection does not exist for this requester
        resource: dict[str, Any] = {"id": collection_id, "title": title}
        if description:
            resource["description"] = description
        if alias:
            resource["alias"] = alias
        resource["can_read"] = can_read
        resource["can_write"] = can_write
        resource["media_types"] = json.loads(media_types)
        return resource

    def get_collections(self, api_root: str) -> dict[str, Any]:
        rows = self._fetch_all(
            f"SELECT {_COLLECTION_COLUMNS} FROM collections"  # noqa: S608 - fixed names
            " WHERE api_root = ? ORDER BY title, id",
            (api_root,),
        )
        resources = [r for r in map(self._collection_resource, rows) if r is not None]
        return create_resource("collections", resources)

    def get_collection(self, api_root: str, collection_id: str) -> dict[str, Any] | None:
        row = self._fetch_one(
            f"SELECT {_COLLECTION_COLUMNS} FROM collections WHERE api_root = ? AND id = ?",  # noqa: S608
            (api_root, collection_id),
        )
        return None if row is None else self._collection_resource(row)

    # -- reading objects ---------------------------------------------------------------------

    def _page(
        self,
        scope: str,
        collection_id: str,
        filter_args: Mapping[str, str],
        allowed_filters: Sequence[str],
        limit: int,
        *,
        columns: str,
        object_id: str | None = None,
        order: PageOrder = PageOrder.DATE_ADDED,
        default_versions: tuple[str, ...] = (VERSION_LAST,),
    ) -> tuple[list[Sequence[Any]], bool, str | None, dict[str, str]]:
        """One page: (rows, more, next, X-TAXII-Date-Added headers)."""
        try:
            flt = ObjectFilter.from_args(filter_args, allowed_filters, default_versions=default_versions)
            fingerprint = flt.fingerprint(f"{scope}|{collection_id}|{object_id or ''}")
            token = filter_args.get("next")
            after = decode_next(token, fingerprint) if token else None
        except FilterError as exc:
            raise ProcessingError(f"The server did not understand the filters: {exc}", 400) from None
        sql, params = select_page(
            flt,
            columns=f"{columns}, {_POSITION_COLUMNS}",
            collection_id=collection_id,
            object_id=object_id,
            order=order,
            after=after,
            limit=limit + 1,  # one more than asked tells whether there is a next page
        )
        rows = self._conn().execute(sql, params).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        next_token = None
        if more:
            date_added, key, seq = rows[-1][-3:]
            position_key = date_added if order is PageOrder.DATE_ADDED else key
            next_token = encode_next(PagePosition(position_key, seq), fingerprint)
        headers: dict[str, str] = {}
        if rows:
            # TAXII 2.1 "Pagination": the date_added range of this page, which a client may use
            # as added_after for its next request.
            added = [row[-3] for row in rows]
            headers["X-TAXII-Date-Added-First"] = min(added)
            headers["X-TAXII-Date-Added-Last"] = max(added)
        return rows, more, next_token, headers

    def _require_object(self, collection_id: str, object_id: str) -> None:
        row = self._fetch_one(
            "SELECT 1 FROM objects WHERE collection_id = ? AND object_id = ? LIMIT 1",
            (collection_id, object_id),
        )
        if row is None:
            raise ProcessingError(f"Object '{object_id}' not found", 404)

    def get_objects(
        self,
        api_root: str,
        collection_id: str,
        filter_args: Mapping[str, str],
        allowed_filters: Sequence[str],
        limit: int,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        rows, more, next_token, headers = self._page(
            "objects", collection_id, filter_args, allowed_filters, limit, columns="o.body"
        )
        objects = [json.loads(row[0]) for row in rows]
        return create_resource("objects", objects, more, next_token), headers

    def get_object(
        self,
        api_root: str,
        collection_id: str,
        object_id: str,
        filter_args: Mapping[str, str],
        allowed_filters: Sequence[str],
        limit: int,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        self._require_object(collection_id, object_id)
        rows, more, next_token, headers = self._page(
            "object",
            collection_id,
            filter_args,
            allowed_filters,
            limit,
            columns="o.body",
            object_id=object_id,
        )
        objects = [json.loads(row[0]) for row in rows]
        return create_resource("objects", objects, more, next_token), headers

    def get_object_manifest(
        self,
        api_root: str,
        collection_id: str,
        filter_args: Mapping[str, str],
        allowed_filters: Sequence[str],
        limit: int,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        rows, more, next_token, headers = self._page(
            "manifest",
            collection_id,
            filter_args,
            allowed_filters,
            limit,
            columns="o.object_id, o.version, o.media_type",
        )
        # Manifest records (TAXII 2.1 section 5.3.1).
        records = [
            {"id": row[0], "date_added": row[3], "version": row[1], "media_type": row[2]} for row in rows
        ]
        return create_resource("objects", records, more, next_token), headers

    def get_object_versions(
        self,
        api_root: str,
        collection_id: str,
        object_id: str,
        filter_args: Mapping[str, str],
        allowed_filters: Sequence[str],
        limit: int,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        self._require_object(collection_id, object_id)
        rows, more, next_token, headers = self._page(
            "versions",
            collection_id,
            filter_args,
            allowed_filters,
            limit,
            columns="o.version",
            object_id=object_id,
            order=PageOrder.VERSION,
            default_versions=(VERSION_ALL,),
        )
        versions = [row[0] for row in rows]
        return create_resource("versions", versions, more, next_token), headers

    # -- writing objects ---------------------------------------------------------------------

    def add_objects(
        self, api_root: str, collection_id: str, objs: Any, request_time: datetime
    ) -> dict[str, Any]:
        objects = objs.get("objects") if isinstance(objs, dict) else None
        if not isinstance(objects, list):
            raise ProcessingError("The request body is not a TAXII envelope with an 'objects' list", 422)
        status_id = str(uuid.uuid4())
        request_timestamp = format_date_added(request_time)
        conn = self._conn()
        with write_transaction(conn):
            row = conn.execute(
                "SELECT last_date_added, media_types FROM collections WHERE id = ? AND api_root = ?",
                (collection_id, api_root),
            ).fetchone()
            if row is None:
                raise ProcessingError(f"Collection '{collection_id}' not found", 404)
            # All objects of one POST share one date_added, assigned under the write lock so
            # that date_added order is commit order (see timestamps.next_date_added).
            date_added = next_date_added(datetime.now(UTC), row[0])
            conn.execute(
                "UPDATE collections SET last_date_added = ? WHERE id = ?",
                (date_added, collection_id),
            )
            writer = ObjectWriter(conn, collection_id, date_added)
            details = [writer.add(obj) for obj in objects]
            media_types = json.loads(row[1])
            if not writer.media_types.issubset(media_types):
                conn.execute(
                    "UPDATE collections SET media_types = ? WHERE id = ?",
                    (json.dumps(sorted(set(media_types) | writer.media_types)), collection_id),
                )
            save_status(conn, status_id, api_root, collection_id, request_timestamp, details)
        # Committed and fsynced: only now may medallion answer 202.
        return status_resource(status_id, request_timestamp, details)

    def delete_object(
        self,
        api_root: str,
        collection_id: str,
        object_id: str,
        filter_args: Mapping[str, str],
        allowed_filters: Sequence[str],
    ) -> None:
        # Without filters every version goes: after a successful DELETE the object must not be
        # returned any more (TAXII 2.1 section 5.7); match[version] / match[spec_version]
        # narrow the deletion to some versions.
        try:
            flt = ObjectFilter.from_args(filter_args, allowed_filters, default_versions=(VERSION_ALL,))
        except FilterError as exc:
            raise ProcessingError(f"The server did not understand the filters: {exc}", 400) from None
        conn = self._conn()
        with write_transaction(conn):
            sql, params = select_page(flt, columns="o.seq", collection_id=collection_id, object_id=object_id)
            seqs = [seq for (seq,) in conn.execute(sql, params)]
            if not seqs:
                raise ProcessingError(f"Object '{object_id}' not found", 404)
            conn.executemany("DELETE FROM objects WHERE seq = ?", [(seq,) for seq in seqs])
            refresh_version_flags(conn, collection_id, object_id)
