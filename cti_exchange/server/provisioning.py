"""Laying out an exchange server: one API root, one collection per direction, one account per
agency, and who may read or write what.

Everything is kept in the server's database under the data directory (`taxii.sqlite3`), so
the data directory alone describes the server. Passwords are stored as scrypt hashes only.

    layout = plan_exchange([("cert-fr", "CERT-FR"), ("cert-in", "CERT-In")])
    provision(Path("/srv/taxii"), layout, passwords={"cert-fr": ..., "cert-in": ...})
    add_agency(Path("/srv/taxii"), "cert-de", "CERT-Bund", password=...)  # later
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from cti_exchange.errors import ConfigError
from cti_exchange.keys.model import AGENCY_ID
from cti_exchange.server.connection import DB_FILENAME, open_database, write_transaction
from cti_exchange.server.passwords import hash_password, verify_password
from cti_exchange.server.schema import ensure_schema

API_ROOT_NAME = "exchange"
DEFAULT_MAX_CONTENT_LENGTH = 10 * 1024 * 1024
MEDIA_TYPE_STIX_V21 = "application/stix+json;version=2.1"
MIN_PASSWORD_LENGTH = 12

# Collection ids are uuid5(namespace, "sender/recipient"): the same pair always gets the same
# id, on every server and after every re-provisioning. Never change this value.
_COLLECTION_NAMESPACE = uuid.UUID("6f0c7a5e-3f5b-5b8e-9d3c-2a41c4e0b7d1")

# The provisioning API, including password hashing (kept in passwords.py).
__all__ = [
    "API_ROOT_NAME",
    "DEFAULT_MAX_CONTENT_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "Agency",
    "CollectionAcl",
    "ExchangeAccount",
    "ExchangeCollection",
    "ExchangeLayout",
    "add_agency",
    "collection_id_for",
    "database_path",
    "hash_password",
    "load_accounts",
    "load_layout",
    "plan_exchange",
    "provision",
    "verify_password",
]


# -- the layout ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agency:
    """A participant: its account name (= agency id, e.g. "cert-fr") and display name."""

    agency_id: str
    display_name: str


@dataclass(frozen=True)
class ExchangeAccount:
    username: str  # = agency id
    password_hash: str


@dataclass(frozen=True)
class CollectionAcl:
    """Which accounts may read and which may write one collection."""

    readers: frozenset[str]
    writers: frozenset[str]

    def can_read(self, username: str) -> bool:
        return username in self.readers

    def can_write(self, username: str) -> bool:
        return username in self.writers


@dataclass(frozen=True)
class ExchangeCollection:
    id: str
    alias: str
    title: str
    description: str
    acl: CollectionAcl


@dataclass(frozen=True)
class ExchangeLayout:
    """What an exchange server serves; see `plan_exchange`."""

    agencies: tuple[Agency, ...]
    collections: tuple[ExchangeCollection, ...]
    api_root: str = API_ROOT_NAME
    title: str = "cti-exchange"
    description: str = "Signed, encrypted STIX 2.1 exchanged between national CERTs"
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH

    def collection_between(self, sender: str, recipient: str) -> ExchangeCollection:
        wanted = collection_id_for(sender, recipient)
        for collection in self.collections:
            if collection.id == wanted:
                return collection
        raise ConfigError(f"this exchange has no collection from {sender} to {recipient}")


def collection_id_for(sender: str, recipient: str) -> str:
    """The stable id of the collection carrying `sender`'s envelopes to `recipient`."""
    return str(uuid.uuid5(_COLLECTION_NAMESPACE, f"{sender}/{recipient}"))


def plan_exchange(
    agencies: Iterable[tuple[str, str]], *, max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
) -> ExchangeLayout:
    """One collection per ordered pair of agencies (sender -> recipient).

    The sender's account may write the collection and not read it; the recipient's may read it
    and not write it. So each account writes only its outbound collections and reads only its
    inbound ones: an agency cannot read what others sent to a third party, nor what it sent
    itself (delivery is confirmed by the status resource of its POST).
    """
    parsed = tuple(Agency(agency_id, name) for agency_id, name in agencies)
    ids = [agency.agency_id for agency in parsed]
    for agency in parsed:
        if not AGENCY_ID.fullmatch(agency.agency_id):  # the profile's own rule: one definition
            raise ConfigError(
                f"agency id {agency.agency_id!r} is not usable as an account name",
                hint="use lower-case letters, digits and hyphens, e.g. cert-fr",
            )
        if not agency.display_name.strip():
            raise ConfigError(f"agency {agency.agency_id} has an empty display name")
    if len(set(ids)) != len(ids):
        raise ConfigError("the same agency id is listed twice")
    if len(parsed) < 2:
        raise ConfigError("an exchange needs at least two agencies")
    if max_content_length < 1024:
        raise ConfigError("max_content_length must be at least 1024 bytes")
    collections = tuple(
        ExchangeCollection(
            id=collection_id_for(sender.agency_id, recipient.agency_id),
            alias=f"{sender.agency_id}-to-{recipient.agency_id}",
            title=f"{sender.display_name} to {recipient.display_name}",
            description=(
                f"Envelopes from {sender.display_name} for {recipient.display_name}: "
                f"written by {sender.agency_id}, read by {recipient.agency_id}"
            ),
            acl=CollectionAcl(
                readers=frozenset({recipient.agency_id}), writers=frozenset({sender.agency_id})
            ),
        )
        for sender in parsed
        for recipient in parsed
        if sender != recipient
    )
    return ExchangeLayout(agencies=parsed, collections=collections, max_content_length=max_content_length)


# -- the database ------------------------------------------------------------------------


def database_path(data_dir: Path) -> Path:
    return data_dir / DB_FILENAME


def provision(
    data_dir: Path,
    layout: ExchangeLayout,
    *,
    passwords: Mapping[str, str],
    withdraw_others: bool = False,
) -> list[str]:
    """Create or update the server in `data_dir` to serve `layout`. Idempotent.

    Stored objects and statuses are kept. An account keeps its password hash unless
    `passwords` gives it a new password; a new account must be given one. Collections and
    accounts that are no longer in the layout are left as they are (their data stays), with
    their rights unless `withdraw_others`: then every right on a collection that is not in the
    layout is withdrawn (an agency dropped from the layout can no longer read or write
    anything, and nobody can write to it or read from it). Its account, collections and
    objects are kept: provisioned again with it in the layout, it gets its rights back, with
    its password. Returns the accounts that lost rights, sorted.
    """
    for username in passwords:
        if username not in {agency.agency_id for agency in layout.agencies}:
            raise ConfigError(f"a password was given for {username!r}, which is not in the layout")
    for username, secret in passwords.items():
        if len(secret) < MIN_PASSWORD_LENGTH:
            raise ConfigError(f"the password for {username} is shorter than {MIN_PASSWORD_LENGTH} characters")
    _create_private_dir(data_dir)
    db_path = database_path(data_dir)
    conn = open_database(db_path)
    try:
        os.chmod(db_path, 0o600)
        ensure_schema(conn)
        known = {name for (name,) in conn.execute("SELECT username FROM accounts")}
        missing = [
            agency.agency_id
            for agency in layout.agencies
            if agency.agency_id not in known and agency.agency_id not in passwords
        ]
        if missing:
            raise ConfigError(
                f"no password given for the new account(s) {', '.join(missing)}",
                hint="every agency account needs a password the first time it is provisioned",
            )
        # Hash outside the transaction: scrypt is deliberately slow.
        hashes = {username: hash_password(secret) for username, secret in passwords.items()}
        with write_transaction(conn):
            _write_layout(conn, layout, hashes)
            return _withdraw_others(conn, layout) if withdraw_others else []
    finally:
        conn.close()


def _withdraw_others(conn: sqlite3.Connection, layout: ExchangeLayout) -> list[str]:
    """Removes every right on the collections of the API root that are not in `layout`."""
    kept = {collection.id for collection in layout.collections}
    outside = [
        collection_id
        for (collection_id,) in conn.execute(
            "SELECT id FROM collections WHERE api_root = ?", (layout.api_root,)
        )
        if collection_id not in kept
    ]
    withdrawn: set[str] = set()
    for collection_id in outside:
        withdrawn.update(
            username
            for (username,) in conn.execute(
                "SELECT username FROM collection_acl WHERE collection_id = ?", (collection_id,)
            )
        )
        conn.execute("DELETE FROM collection_acl WHERE collection_id = ?", (collection_id,))
    return sorted(withdrawn)


def _create_private_dir(data_dir: Path) -> None:
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create the TAXII server data directory {data_dir}: {exc}") from exc


def _write_layout(conn: sqlite3.Connection, layout: ExchangeLayout, hashes: Mapping[str, str]) -> None:
    conn.execute(
        "INSERT INTO server_info (id, title, description, default_api_root) VALUES (1, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET title = excluded.title,"
        " description = excluded.description, default_api_root = excluded.default_api_root",
        (f"{layout.title} TAXII server", layout.description, layout.api_root),
    )
    conn.execute(
        "INSERT INTO api_roots (name, title, description, max_content_length) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET title = excluded.title,"
        " description = excluded.description, max_content_length = excluded.max_content_length",
        (layout.api_root, layout.title, layout.description, layout.max_content_length),
    )
    for agency in layout.agencies:
        if agency.agency_id in hashes:
            conn.execute(
                "INSERT INTO accounts (username, display_name, password_hash) VALUES (?, ?, ?)"
                " ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name,"
                " password_hash = excluded.password_hash",
                (agency.agency_id, agency.display_name, hashes[agency.agency_id]),
            )
        else:
            conn.execute(
                "UPDATE accounts SET display_name = ? WHERE username = ?",
                (agency.display_name, agency.agency_id),
            )
    for collection in layout.collections:
        # can_read / can_write false: without an account ACL nobody reads or writes
        # (they only matter if the database is served by plain medallion).
        conn.execute(
            "INSERT INTO collections (id, api_root, alias, title, description, can_read,"
            " can_write, media_types) VALUES (?, ?, ?, ?, ?, 0, 0, ?)"
            " ON CONFLICT (id) DO UPDATE SET alias = excluded.alias, title = excluded.title,"
            " description = excluded.description",
            (
                collection.id,
                layout.api_root,
                collection.alias,
                collection.title,
                collection.description,
                json.dumps([MEDIA_TYPE_STIX_V21]),
            ),
        )
        conn.execute("DELETE FROM collection_acl WHERE collection_id = ?", (collection.id,))
        conn.executemany(
            "INSERT INTO collection_acl (collection_id, username, can_read, can_write) VALUES (?, ?, ?, ?)",
            [
                (
                    collection.id,
                    username,
                    int(collection.acl.can_read(username)),
                    int(collection.acl.can_write(username)),
                )
                for username in sorted(collection.acl.readers | collection.acl.writers)
            ],
        )


def load_layout(data_dir: Path) -> ExchangeLayout:
    """The layout a data directory currently serves."""
    db_path = database_path(data_dir)
    if not db_path.is_file():
        raise ConfigError(f"no TAXII server database in {data_dir}", hint="provision it first")
    conn = open_database(db_path)
    try:
        root = conn.execute(
            "SELECT name, title, description, max_content_length FROM api_roots"
            " WHERE name = (SELECT default_api_root FROM server_info WHERE id = 1)"
        ).fetchone()
        if root is None:
            raise ConfigError(f"the TAXII server database in {data_dir} has no API root")
        agencies = tuple(
            Agency(username, name)
            for username, name in conn.execute(
                "SELECT username, display_name FROM accounts ORDER BY username"
            )
        )
        acls: dict[str, tuple[set[str], set[str]]] = {}
        for collection_id, username, can_read, can_write in conn.execute(
            "SELECT collection_id, username, can_read, can_write FROM collection_acl"
        ):
            readers, writers = acls.setdefault(collection_id, (set(), set()))
            if can_read:
                readers.add(username)
            if can_write:
                writers.add(username)
        collections = tuple(
            ExchangeCollection(
                id=collection_id,
                alias=alias or "",
                title=title,
                description=description or "",
                acl=CollectionAcl(
                    frozenset(acls.get(collection_id, (set(), set()))[0]),
                    frozenset(acls.get(collection_id, (set(), set()))[1]),
                ),
            )
            for collection_id, alias, title, description in conn.execute(
                "SELECT id, alias, title, description FROM collections WHERE api_root = ? ORDER BY alias, id",
                (root[0],),
            )
        )
    finally:
        conn.close()
    return ExchangeLayout(
        agencies=agencies,
        collections=collections,
        api_root=root[0],
        title=root[1],
        description=root[2] or "",
        max_content_length=root[3],
    )


def load_accounts(data_dir: Path) -> list[ExchangeAccount]:
    conn = open_database(database_path(data_dir))
    try:
        rows = conn.execute("SELECT username, password_hash FROM accounts ORDER BY username")
        return [ExchangeAccount(username, password_hash) for username, password_hash in rows]
    finally:
        conn.close()


def add_agency(data_dir: Path, agency_id: str, display_name: str, *, password: str) -> ExchangeLayout:
    """Let a new partner join: its account and a collection to and from every existing agency.
    Existing collections, objects and passwords are untouched."""
    current = load_layout(data_dir)
    if agency_id in {agency.agency_id for agency in current.agencies}:
        raise ConfigError(f"{agency_id} is already part of this exchange")
    planned = plan_exchange(
        [(a.agency_id, a.display_name) for a in current.agencies] + [(agency_id, display_name)],
        max_content_length=current.max_content_length,
    )
    layout = replace(planned, title=current.title, description=current.description)
    provision(data_dir, layout, passwords={agency_id: password})
    return layout
