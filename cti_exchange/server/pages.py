"""One page of a paginated endpoint (TAXII 2.1 "Pagination"): at most `limit` rows, and on the
objects endpoints at most a byte budget of object bodies, with the `next` token that continues
right after the last row returned.

Objects can be as large as a POST (max_content_length, 10 MiB by default), so a page of 1,000
of them could reach gigabytes; a page stops before the row that would take it over the budget,
but always holds at least one row. Where it stopped (limit or budget) does not matter to the
next page, which starts strictly after the position of the last row returned.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medallion.exceptions import ProcessingError

from cti_exchange.server.queries import (
    VERSION_LAST,
    FilterError,
    ObjectFilter,
    PageOrder,
    PagePosition,
    decode_next,
    encode_next,
    select_page,
)

# Every paged query ends with these columns, so the page logic can find its position; then
# the size of the row, counted against the budget.
_POSITION_COLUMNS = "o.date_added, o.version_key, o.seq"
# Bytes of the UTF-8 JSON, as served (app._JSONProvider writes compact UTF-8, as stored):
# length() of a text counts characters, of a blob bytes (SQLite 3.40 has no octet_length).
_BODY_SIZE = "length(CAST(o.body AS BLOB))"


@dataclass
class Page:
    """The rows of one page (the requested columns, then the position columns), whether more
    follow, the `next` token if they do, and the X-TAXII-Date-Added-First/-Last headers."""

    rows: list[Sequence[Any]]
    more: bool
    next_token: str | None
    headers: dict[str, str]


def read_page(
    conn: sqlite3.Connection,
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
    budget: int | None = None,
) -> Page:
    """One page of at most `limit` rows and, with `budget`, of object bodies (`o.body`)
    totalling at most that many bytes, but never empty while a row matches."""
    try:
        flt = ObjectFilter.from_args(filter_args, allowed_filters, default_versions=default_versions)
        fingerprint = flt.fingerprint(f"{scope}|{collection_id}|{object_id or ''}")
        token = filter_args.get("next")
        after = decode_next(token, fingerprint) if token else None
    except FilterError as exc:
        raise ProcessingError(f"The server did not understand the filters: {exc}", 400) from None
    size = _BODY_SIZE if budget is not None else "0"
    sql, params = select_page(
        flt,
        columns=f"{columns}, {_POSITION_COLUMNS}, {size}",
        collection_id=collection_id,
        object_id=object_id,
        order=order,
        after=after,
        limit=limit + 1,  # one more than asked tells whether there is a next page
    )
    rows: list[Sequence[Any]] = []
    used, more = 0, False
    # Row by row: the bodies past the end of the page are never read into memory (but the
    # one row that tells there is more).
    cursor = conn.execute(sql, params)
    try:
        for row in cursor:
            if len(rows) == limit or (budget is not None and rows and used + row[-1] > budget):
                more = True
                break
            rows.append(row[:-1])
            used += row[-1]
    finally:
        cursor.close()
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
    return Page(rows, more, next_token, headers)
