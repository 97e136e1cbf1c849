"""Whether a store holds every table, index and column its migrations made.

`PRAGMA integrity_check` judges the file, not the schema: a store missing a table (dropped by
hand, or a half-restored copy) passes it, and the first command that needs the table failed with
"no such table". The schema the migrations make is built in an in-memory database and compared
with the store's, by name.
"""

from __future__ import annotations

import re
import sqlite3
from functools import cache
from pathlib import Path

from cti_exchange.errors import IntegrityError
from cti_exchange.store.migrations import apply_migrations

RESTORE = "restore the store from backup (or try `sqlite3 FILE .recover`), keeping the damaged copy"


def _schema(conn: sqlite3.Connection) -> dict[tuple[str, str], frozenset[str]]:
    """(type, name) of each table and index, with a table's columns."""
    found: dict[tuple[str, str], frozenset[str]] = {}
    for kind, name in conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%'"
    ):
        columns: frozenset[str] = frozenset()
        if kind == "table":
            columns = frozenset(row[1] for row in conn.execute(f"PRAGMA table_xinfo({_quoted(name)})"))
        found[(kind, name)] = columns
    return found


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@cache
def expected_schema() -> dict[tuple[str, str], frozenset[str]]:
    """What the migrations of this release make, from an empty database."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        apply_migrations(conn)
        return _schema(conn)
    finally:
        conn.close()


def missing_from(conn: sqlite3.Connection) -> list[str]:
    """What the store lacks ("table triage_log", "index x", "column objects.value"); extra
    tables (the text-search index, built outside the migrations) are not damage."""
    have = _schema(conn)
    missing = []
    for (kind, name), columns in sorted(expected_schema().items()):
        if (kind, name) not in have:
            missing.append(f"{kind} {name}")
            continue
        missing.extend(f"column {name}.{column}" for column in sorted(columns - have[(kind, name)]))
    return missing


def damaged_store(path: Path, missing: list[str]) -> IntegrityError:
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return IntegrityError(f"the store {path} is damaged: it lacks {shown}", hint=RESTORE)


_NO_SUCH = re.compile(r"no such (table|index|column): (?:main\.)?([\w.]+)")


def damage_behind(exc: BaseException, path: Path) -> IntegrityError | None:
    """A runtime "no such table" (index, column): the store was damaged when it lacks something
    its migrations make, read from the store itself; otherwise the query was written wrong (a
    bug, not a reason to restore a backup and lose what came since)."""
    if not isinstance(exc, sqlite3.OperationalError) or _NO_SUCH.search(str(exc)) is None:
        return None
    try:
        # As a URI, percent-encoded: a `?`, `#` or `%` in the path is part of the name.
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            missing = missing_from(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return damaged_store(path, missing) if missing else None
