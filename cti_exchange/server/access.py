"""Per-account access for the exchange server: hashed-password authentication and collection
ACLs, enforced through medallion's own permission checks.

medallion gives each collection one can_read / can_write pair for everybody, and its views
refuse a read (403) when the collection says can_read is false and a write when can_write is
false (medallion/views/objects.py: permission_to_read, permission_to_write,
permission_to_read_and_write). `AccountScopedBackend` makes those flags per account: it
answers get_collection / get_collections with the authenticated account's rights from the
`collection_acl` table, so every endpoint medallion routes (objects, object, versions,
manifest, POST, DELETE) enforces the ACL, the collections list shows only what the account
may use, and a collection the account has no right on answers 404 as if it did not exist.
Status resources are shown only to accounts that may write their collection (the poster).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading

from flask import has_request_context, request
from medallion import auth
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from cti_exchange.keys.model import AGENCY_ID
from cti_exchange.server.login_throttle import (
    ChecksBusy,
    CheckSlots,
    LoginThrottle,
    Throttled,
    address_bucket,
)
from cti_exchange.server.passwords import hash_password, verify_password
from cti_exchange.server.sqlite_backend import SqliteBackend


def current_account() -> str | None:
    """The username medallion's HTTPBasicAuth accepted for this request, if any."""
    if not has_request_context():
        return None
    user = auth.current_user()
    return user if isinstance(user, str) else None


class AccountScopedBackend(SqliteBackend):
    """SqliteBackend as the authenticated account may see it. Loaded by medallion as
    {"module": "cti_exchange.server.access", "module_class": "AccountScopedBackend", ...}."""

    def collection_rights(self, collection_id: str, stored: tuple[bool, bool]) -> tuple[bool, bool]:
        username = current_account()
        if username is None:
            return (False, False)
        row = self._fetch_one(
            "SELECT can_read, can_write FROM collection_acl WHERE collection_id = ? AND username = ?",
            (collection_id, username),
        )
        return (False, False) if row is None else (bool(row[0]), bool(row[1]))

    def status_visible(self, collection_id: str) -> bool:
        return self.collection_rights(collection_id, (False, False))[1]

    def account_password_hash(self, username: str) -> str | None:
        row = self._fetch_one("SELECT password_hash FROM accounts WHERE username = ?", (username,))
        return None if row is None else str(row[0])


# Agency ids (keys.model.AGENCY_ID) are at most 63 characters; checked before the pattern.
MAX_USERNAME_CHARS = 64


class CredentialVerifier:
    """Checks HTTP Basic credentials against the stored scrypt hashes.

    scrypt costs about 0.1 s by design, too much for every page of a paginated read, so a
    successful check is remembered for the life of the process as an HMAC of the password
    under a random per-process key (never the password itself). A changed stored hash
    invalidates it. Failed checks are never cached: every wrong guess pays the full scrypt cost,
    and too many of them for one username, or for any usernames, from one address are refused
    (login_throttle.py); at most a few checks run at once (CheckSlots), and at most a budget
    of them per minute on the whole server. A request never waits for a check: when none may
    run it is answered 503 at once, so that the worker threads stay free for requests whose
    credentials were already checked, which cost no scrypt and are always served.

    A user name no account can have (not an agency id) is refused before any of this: no
    scrypt, no pair remembered, one failure counted against the address.
    """

    def __init__(
        self,
        backend: AccountScopedBackend,
        throttle: LoginThrottle | None = None,
        slots: CheckSlots | None = None,
    ) -> None:
        self._backend = backend
        self._throttle = throttle or LoginThrottle()
        self._slots = slots or CheckSlots()
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, tuple[str, bytes]] = {}
        self._lock = threading.Lock()
        # Compared against for unknown usernames, so they cost as much as a wrong password.
        self._decoy_hash = hash_password(secrets.token_urlsafe(16))

    def authenticate(self, username: str, password: str) -> str | None:
        """The username if the credentials are right, else None (medallion then answers 401)."""
        if not username or not password:
            return None  # no credentials: nothing guessed, nothing counted
        address = address_bucket(request.remote_addr or "")
        if len(username) > MAX_USERNAME_CHARS or not AGENCY_ID.fullmatch(username):
            # No account has this name (accounts are agency ids): not worth a check, nor a
            # pair in the throttle's memory (a name can be as long as the request headers).
            refusal = self._throttle.refusal((address, ""))
            if refusal is not None:
                raise _too_many(refusal)
            self._throttle.address_failed(address)
            return None
        key = (address, username)
        # Refused while throttled even if the password is right and cached: otherwise the
        # answer would tell a guesser when a guess is right.
        refusal = self._throttle.refusal(key)
        if refusal is not None:
            raise _too_many(refusal)
        stored = self._backend.account_password_hash(username)
        if stored is not None and self._cached(username, password, stored):
            self._throttle.succeeded(key)
            return username
        try:
            # Counted before the check, so that concurrent guesses cannot all be checked
            # before the first failure is recorded; given back below if it was right. Counted
            # too when no check may run now (503): otherwise a guesser would learn, for free,
            # which guess is the cached right password (200) and which is not (503).
            reserved_at = self._throttle.reserve(key)
            with self._slots.check():
                check_at = self._throttle.reserve_check()
                right = self._verify(username, password, stored)
        except Throttled as exc:
            raise _too_many(exc) from None
        except ChecksBusy:
            raise ServiceUnavailable(
                "Too many logins are being checked at once; try again shortly", retry_after=1
            ) from None
        if not right:
            return None
        self._throttle.check_succeeded(check_at)
        self._throttle.succeeded(key, reserved_at)
        return username

    def _tag(self, username: str, password: str) -> bytes:
        return hmac.new(self._key, f"{username}\0{password}".encode(), hashlib.sha256).digest()

    def _cached(self, username: str, password: str, stored: str) -> bool:
        with self._lock:
            cached = self._verified.get(username)
        return (
            cached is not None
            and cached[0] == stored
            and hmac.compare_digest(cached[1], self._tag(username, password))
        )

    def _verify(self, username: str, password: str, stored: str | None) -> bool:
        if stored is None:
            verify_password(self._decoy_hash, password)
            return False
        if not verify_password(stored, password):
            return False
        with self._lock:
            self._verified[username] = (stored, self._tag(username, password))
        return True


def _too_many(throttled: Throttled) -> TooManyRequests | ServiceUnavailable:
    if throttled.server_wide:
        # Not the client's doing: the server's budget of password checks is spent for now.
        return ServiceUnavailable(
            "Too many failed logins on this server; credentials not checked recently must try again later",
            retry_after=math.ceil(throttled.wait),
        )
    whom = "from this address" if throttled.per_address else "for this account from this address"
    return TooManyRequests(
        f"Too many failed logins {whom}; try again later", retry_after=math.ceil(throttled.wait)
    )
