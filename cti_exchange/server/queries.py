"""TAXII 2.1 filters translated into SQL, and the position-based `next` token.

Every page is one indexed range scan: rows are ordered by (date_added, seq) (by
(version_key, seq) on the versions endpoint) and a page starts strictly after the position
the previous page ended on. The `next` token carries that position and a fingerprint of the
filters, never a server-side cursor, so it survives a restart and costs the server nothing
to keep; objects that share one date_added are told apart by `seq` and are neither skipped
nor repeated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum

from cti_exchange.server.timestamps import normalise_added_after, version_key

VERSION_LAST = "last"
VERSION_FIRST = "first"
VERSION_ALL = "all"
_VERSION_KEYWORDS = (VERSION_LAST, VERSION_FIRST, VERSION_ALL)

# A query string can name many ids or types; bound it well below SQLite's variable limit.
MAX_FILTER_VALUES = 1000

# ASCII digits only, matched whole (fullmatch): see timestamps._STIX_TIMESTAMP.
_SPEC_VERSION = re.compile(r"[0-9]\.[0-9]")
_POSITION_KEY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,20}Z")
# seq is a SQLite INTEGER (signed 64 bits): a larger one in a `next` value the client made up
# would fail the query with OverflowError (a 500) instead of a 400.
_MAX_SEQ = 2**63 - 1


class FilterError(ValueError):
    """A filter or `next` value the server cannot understand (answered with HTTP 400)."""


class PageOrder(Enum):
    """What a paginated endpoint sorts by: TAXII 2.1 ("Sorting") sorts objects and manifests
    by date_added; the versions endpoint lists versions in ascending order."""

    DATE_ADDED = "o.date_added"
    VERSION = "o.version_key"


@dataclass(frozen=True)
class PagePosition:
    """Where a page ended: the sort key (date_added or version_key) and seq of its last row."""

    key: str
    seq: int


def _values(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    # medallion and taxii2-client both send comma-separated lists (TAXII 2.1, "Filtering").
    values = tuple(dict.fromkeys(v for v in raw.replace(" ", "").split(",") if v))
    if len(values) > MAX_FILTER_VALUES:
        raise FilterError(f"too many values in one filter (at most {MAX_FILTER_VALUES})")
    return values


@dataclass(frozen=True)
class ObjectFilter:
    """The TAXII filters of one request, validated and normalised."""

    added_after: str | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    # "last", "first", "all" and/or version keys (see timestamps.version_key).
    versions: tuple[str, ...] = (VERSION_LAST,)
    # Empty: the latest spec version of each object (TAXII 2.1 "Filtering", match[spec_version]).
    spec_versions: tuple[str, ...] = ()

    @classmethod
    def from_args(
        cls,
        args: Mapping[str, str],
        allowed: Collection[str],
        *,
        default_versions: tuple[str, ...] = (VERSION_LAST,),
    ) -> ObjectFilter:
        """Parse the query string medallion hands the backend.

        Filters the endpoint does not support (not in `allowed`) are ignored, as medallion's
        own backends do.
        """
        added_after = None
        if args.get("added_after"):
            try:
                added_after = normalise_added_after(args["added_after"])
            except ValueError as exc:
                raise FilterError(f"added_after: {exc}") from None

        versions = default_versions
        if "version" in allowed and _values(args.get("match[version]")):
            versions = tuple(_version_value(v) for v in _values(args.get("match[version]")))

        spec_versions: tuple[str, ...] = ()
        if "spec_version" in allowed:
            spec_versions = _values(args.get("match[spec_version]"))
            for value in spec_versions:
                if not _SPEC_VERSION.fullmatch(value):
                    raise FilterError(f"match[spec_version]: {value!r} is not like 2.1")

        return cls(
            added_after=added_after,
            ids=_values(args.get("match[id]")) if "id" in allowed else (),
            types=_values(args.get("match[type]")) if "type" in allowed else (),
            versions=versions,
            spec_versions=spec_versions,
        )

    def fingerprint(self, scope: str) -> str:
        """Identifies this filter on one endpoint, so a `next` token cannot be replayed against
        another query (TAXII 2.1 "Pagination": continue "with the same original query")."""
        canonical = json.dumps(
            [
                scope,
                self.added_after,
                sorted(self.ids),
                sorted(self.types),
                sorted(self.versions),
                sorted(self.spec_versions),
            ]
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _version_value(value: str) -> str:
    if value in _VERSION_KEYWORDS:
        return value
    try:
        return version_key(value)
    except ValueError:
        raise FilterError(f"match[version]: {value!r} is neither last, first, all nor a timestamp") from None


def _placeholders(values: Collection[object]) -> str:
    return ", ".join("?" for _ in values)


# The object has a version under a later spec version, so this row is not what the default
# match[spec_version] (the latest per object) shows.
_LATER_SPEC_EXISTS = (
    "EXISTS (SELECT 1 FROM objects n WHERE n.collection_id = o.collection_id"
    " AND n.object_id = o.object_id AND n.spec_version > o.spec_version)"
)


def _version_condition(flt: ObjectFilter) -> tuple[str, list[object]]:
    """SQL for match[version] combined with match[spec_version]: one condition."""
    versions = set(flt.versions)
    keys = sorted(versions - set(_VERSION_KEYWORDS))
    if not flt.spec_versions:
        if VERSION_ALL in versions:
            return f"NOT {_LATER_SPEC_EXISTS}", []
        # is_last / is_first already account for the latest spec version (see schema.py).
        parts: list[str] = []
        params: list[object] = []
        if VERSION_LAST in versions:
            parts.append("o.is_last = 1")
        if VERSION_FIRST in versions:
            parts.append("o.is_first = 1")
        if keys:
            parts.append(f"(o.version_key IN ({_placeholders(keys)}) AND NOT {_LATER_SPEC_EXISTS})")
            params.extend(keys)
        return "(" + " OR ".join(parts) + ")", params

    specs: list[object] = list(flt.spec_versions)
    in_specs = f"o.spec_version IN ({_placeholders(specs)})"
    if VERSION_ALL in versions:
        return in_specs, specs
    parts, params = [], []
    for keyword, comparison in ((VERSION_LAST, ">"), (VERSION_FIRST, "<")):
        if keyword in versions:
            # Only "?" placeholders and a fixed operator are formatted in.
            parts.append(
                "NOT EXISTS (SELECT 1 FROM objects n WHERE n.collection_id = o.collection_id"  # noqa: S608
                f" AND n.object_id = o.object_id AND n.spec_version IN ({_placeholders(specs)})"
                f" AND n.version_key {comparison} o.version_key)"
            )
            params.extend(specs)
    if keys:
        parts.append(f"o.version_key IN ({_placeholders(keys)})")
        params.extend(keys)
    return f"{in_specs} AND (" + " OR ".join(parts) + ")", [*specs, *params]


def select_page(
    flt: ObjectFilter,
    *,
    columns: str,
    collection_id: str,
    object_id: str | None = None,
    order: PageOrder = PageOrder.DATE_ADDED,
    after: PagePosition | None = None,
    limit: int | None = None,
) -> tuple[str, list[object]]:
    """A parameterised SELECT of `columns` from `objects o` for one page of `flt`."""
    conditions: list[str] = []
    params: list[object] = []
    if flt.ids:
        # Rows picked by seq from the (collection_id, object_id) index. Written as
        # "collection_id = ? AND object_id IN (...)", a planner without statistics prefers to
        # walk the whole collection in date_added order to save sorting the few rows selected.
        conditions.append(
            "o.seq IN (SELECT i.seq FROM objects i WHERE i.collection_id = ?"  # noqa: S608
            f" AND i.object_id IN ({_placeholders(flt.ids)}))"
        )
        params.extend([collection_id, *flt.ids])
    else:
        conditions.append("o.collection_id = ?")
        params.append(collection_id)
    if object_id is not None:
        conditions.append("o.object_id = ?")
        params.append(object_id)
    if flt.types:
        conditions.append(f"o.object_type IN ({_placeholders(flt.types)})")
        params.extend(flt.types)
    if flt.added_after is not None:
        # TAXII 2.1 "Filtering": added_after selects objects added strictly later.
        conditions.append("o.date_added > ?")
        params.append(flt.added_after)
    version_sql, version_params = _version_condition(flt)
    conditions.append(version_sql)
    params.extend(version_params)
    key = order.value
    if after is not None:
        # "(key, seq) > (after.key, after.seq)", written so that the first term bounds an
        # index range scan on every database; the second only sorts out rows of equal key.
        conditions.append(f"{key} >= ? AND ({key} > ? OR o.seq > ?)")
        params.extend([after.key, after.key, after.seq])
    # Only fixed column names and "?" placeholders are formatted in; values are parameters.
    sql = f"SELECT {columns} FROM objects o WHERE {' AND '.join(conditions)} ORDER BY {key}, o.seq"  # noqa: S608
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def encode_next(position: PagePosition, fingerprint: str) -> str:
    """The opaque `next` value for the page after `position`."""
    raw = f"{position.key}|{position.seq}|{fingerprint}"
    return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii").rstrip("=")


def decode_next(token: str, fingerprint: str) -> PagePosition:
    """The position a `next` value continues from; FilterError if it is not one of ours or
    was issued for a different query."""
    if not token or len(token) > 200:
        raise FilterError("'next' is not a value this server issued")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        key, seq_text, token_fingerprint = raw.split("|")
        if not (seq_text.isascii() and seq_text.isdigit()):
            raise ValueError(seq_text)
        seq = int(seq_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise FilterError("'next' is not a value this server issued") from None
    if not _POSITION_KEY.fullmatch(key) or not 0 <= seq <= _MAX_SEQ:
        raise FilterError("'next' is not a value this server issued")
    if token_fingerprint != fingerprint:
        raise FilterError(
            "'next' was issued for a different query: repeat the filters of the request that returned it"
        )
    return PagePosition(key=key, seq=seq)
