"""A medallion backend on one SQLite file: durable, indexed, restart-safe.

medallion loads it through its documented backend interface:

    "backend": {"module": "cti_exchange.server.sqlite_backend",
                "module_class": "SqliteBackend", "db_path": "/srv/taxii/taxii.sqlite3"}

Every method returns the shapes medallion's views expect (the same as its memory backend:
`medallion.common.create_resource` envelopes plus X-TAXII-Date-Added-First/-Last headers).
Reads are single indexed queries, so a page costs the same in a collection of 10,000 or
10,000,000 objects, and a page of objects stops at the API root's max_content_length in
bytes as well as at `limit`; each POST is one transaction, committed and fsynced before
medallion answers. The database must have been laid out by `cti_exchange.server.provisioning`.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medallion.backends.base import Backend
from medallion.common import create_resource
from medallion.exceptions import ProcessingError
from medallion.views import MEDIA_TYPE_TAXII_V21

from cti_exchange.errors import ConfigError
from cti_exchange.failpoints import failpoint
from cti_exchange.server.connection import (
    BUSY_TIMEOUT_SECONDS,
    DatabaseBusy,
    ThreadConnections,
    write_transaction,
)
from cti_exchange.server.intake import EnvelopeRefused, envelope_objects, max_envelope_items, prepare
from cti_exchange.server.object_writer import ObjectWriter, PreparedObject, refresh_version_flags
from cti_exchange.server.pages import Page, read_page
from cti_exchange.server.queries import VERSION_ALL, FilterError, ObjectFilter, PageOrder, select_page
from cti_exchange.server.schema import ensure_schema
from cti_exchange.server.statuses import (
    expire_statuses,
    load_status,
    save_status,
    status_resource,
)
from cti_exchange.server.timestamps import format_date_added, next_date_added

# Seconds a client told 503 (another POST holds the write lock) should wait.
BUSY_RETRY_AFTER = 2

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
        busy_timeout = float(kwargs.get("busy_timeout", BUSY_TIMEOUT_SECONDS))
        self._connections = ThreadConnections(path, busy_timeout=busy_timeout)
        ensure_schema(self._conn())

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def _fetch_one(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self._conn().execute(sql, params).fetchone()

    def _fetch_all(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        return self._conn().execute(sql, params).fetchall()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """write_transaction, with a write lock that did not come in time answered 503."""
        try:
            with write_transaction(self._conn()) as conn:
                yield conn
        except DatabaseBusy:
            # 503 with Retry-After (RFC 9110 section 15.6.4): retry later, which clients,
            # cti-exchange's among them, do. A 500 would read as a server fault.
            error = ProcessingError("The server is busy writing other objects; try again shortly", 503)
            error.headers = {"Retry-After": str(BUSY_RETRY_AFTER)}
            raise error from None

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

    def max_content_length(self, api_root: str) -> int:
        row = self._fetch_one("SELECT max_content_length FROM api_roots WHERE name = ?", (api_root,))
        if row is None:
            raise ProcessingError(f"API root '{api_root}' not found", 404)
        return int(row[0])

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
        failpoint("server-get-objects")  # the server dies as a client reads (the demo's tests)
        # TAXII 2.1 "Pagination" lets the server limit a page by its own limit as well as the
        # client's; the API root's max_content_length, what the server accepts in one request,
        # is also what it sends in one page, so large objects never make one huge reply.
        page = read_page(
            self._conn(),
            "objects",
            collection_id,
            filter_args,
            allowed_filters,
            limit,
            columns="o.body",
            budget=self.max_content_length(api_root),
        )
        return self._objects_page(page)

    @staticmethod
    def _objects_page(page: Page) -> tuple[dict[str, Any], dict[str, str]]:
        objects = [json.loads(row[0]) for row in page.rows]
        return create_resource("objects", objects, page.more, page.next_token), page.headers

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
        page = read_page(
            self._conn(),
            "object",
            collection_id,
            filter_args,
            allowed_filters,
            limit,
            columns="o.body",
            object_id=object_id,
            budget=self.max_content_length(api_root),
        )
        return self._objects_page(page)

    def get_object_manifest(
        self,
        api_root: str,
        collection_id: str,
        filter_args: Mapping[str, str],
        allowed_filters: Sequence[str],
        limit: int,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        page = read_page(
            self._conn(),
            "manifest",
            collection_id,
            filter_args,
            allowed_filters,
            limit,
            columns="o.object_id, o.version, o.media_type",
        )
        # Manifest records (TAXII 2.1 section 5.3.1).
        records = [
            {"id": row[0], "date_added": row[3], "version": row[1], "media_type": row[2]} for row in page.rows
        ]
        return create_resource("objects", records, page.more, page.next_token), page.headers

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
        page = read_page(
            self._conn(),
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
        versions = [row[0] for row in page.rows]
        return create_resource("versions", versions, page.more, page.next_token), page.headers

    # -- writing objects ---------------------------------------------------------------------

    def add_objects(
        self, api_root: str, collection_id: str, objs: Any, request_time: datetime
    ) -> dict[str, Any]:
        failpoint("server-add-objects")  # the server dies as a POST arrives (the demo's tests)
        try:
            items = envelope_objects(objs, max_items=max_envelope_items(self.max_content_length(api_root)))
            prepared = prepare(items)
        except EnvelopeRefused as exc:
            raise ProcessingError(exc.description, exc.status) from None
        status_id = str(uuid.uuid4())
        request_timestamp = format_date_added(request_time)
        # The write lock is held from here to the commit: only lookups and inserts inside.
        with self._writing() as conn:
            row = conn.execute(
                "SELECT last_date_added, media_types FROM collections WHERE id = ? AND api_root = ?",
                (collection_id, api_root),
            ).fetchone()
            if row is None:
                raise ProcessingError(f"Collection '{collection_id}' not found", 404)
            # All objects of one POST share one date_added, assigned under the write lock so
            # that date_added order is commit order (see timestamps.next_date_added).
            now = datetime.now(UTC)
            date_added = next_date_added(now, row[0])
            conn.execute(
                "UPDATE collections SET last_date_added = ? WHERE id = ?",
                (date_added, collection_id),
            )
            writer = ObjectWriter(conn, collection_id, date_added)
            details = [writer.add(item) if isinstance(item, PreparedObject) else item for item in prepared]
            media_types = json.loads(row[1])
            if not writer.media_types.issubset(media_types):
                conn.execute(
                    "UPDATE collections SET media_types = ? WHERE id = ?",
                    (json.dumps(sorted(set(media_types) | writer.media_types)), collection_id),
                )
            save_status(conn, status_id, api_root, collection_id, request_timestamp, details)
            expire_statuses(conn, now)
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
        with self._writing() as conn:
            sql, params = select_page(flt, columns="o.seq", collection_id=collection_id, object_id=object_id)
            seqs = [seq for (seq,) in conn.execute(sql, params)]
            if not seqs:
                raise ProcessingError(f"Object '{object_id}' not found", 404)
            conn.executemany("DELETE FROM objects WHERE seq = ?", [(seq,) for seq in seqs])
            refresh_version_flags(conn, collection_id, object_id)
