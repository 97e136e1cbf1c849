"""Fixtures for the TAXII server tests: provisioned data directories, real servers on
127.0.0.1 in child processes (always stopped), and clients authenticated per account.

No mocks: every request goes over HTTP to waitress + medallion + the SQLite backend.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from taxii2client.v21 import ApiRoot, Collection

from cti_exchange.server.provisioning import (
    DEFAULT_MAX_CONTENT_LENGTH,
    CollectionAcl,
    ExchangeCollection,
    ExchangeLayout,
    collection_id_for,
    plan_exchange,
    provision,
)
from cti_exchange.server.runner import ServerProcess

TAXII = "application/taxii+json;version=2.1"
AGENCIES = [("cert-fr", "CERT-FR"), ("cert-in", "CERT-In")]
# A collection cert-fr may both read and write, for endpoints no exchange account can reach
# otherwise (DELETE needs both rights) and for filter tests that write then read.
SANDBOX_ID = "0b7f3c1e-5d2a-4c8e-9f61-3a4b5c6d7e8f"


def exchange_layout(**plan: Any) -> ExchangeLayout:
    layout = plan_exchange(AGENCIES, **plan)
    sandbox = ExchangeCollection(
        id=SANDBOX_ID,
        alias="sandbox",
        title="Sandbox",
        description="read and write for cert-fr (tests only)",
        acl=CollectionAcl(readers=frozenset({"cert-fr"}), writers=frozenset({"cert-fr"})),
    )
    return replace(layout, collections=(*layout.collections, sandbox))


@dataclass
class Exchange:
    """A running exchange server and what a test needs to talk to it."""

    server: ServerProcess
    data_dir: Path
    passwords: dict[str, str]
    _sessions: dict[str, requests.Session] = field(default_factory=dict)

    def collection_url(self, collection_id: str) -> str:
        return f"{self.server.api_root_url}collections/{collection_id}/"

    def outbound_url(self, sender: str, recipient: str) -> str:
        return self.collection_url(collection_id_for(sender, recipient))

    def collection(self, collection_id: str, *, user: str) -> Collection:
        return Collection(self.collection_url(collection_id), user=user, password=self.passwords[user])

    def api_root(self, *, user: str) -> ApiRoot:
        return ApiRoot(self.server.api_root_url, user=user, password=self.passwords[user])

    def _session(self, user: str | None) -> requests.Session:
        key = user or ""
        if key not in self._sessions:
            session = requests.Session()
            if user is not None:
                session.auth = (user, self.passwords[user])
            self._sessions[key] = session
        return self._sessions[key]

    def get(
        self,
        url: str,
        *,
        user: str | None,
        params: dict[str, Any] | None = None,
        accept: str = TAXII,
    ) -> requests.Response:
        return self._session(user).get(url, params=params, headers={"Accept": accept}, timeout=60)

    def post(
        self,
        url: str,
        body: bytes | dict[str, Any],
        *,
        user: str | None,
        content_type: str = TAXII,
        accept: str = TAXII,
        **kwargs: Any,
    ) -> requests.Response:
        headers = {"Accept": accept, "Content-Type": content_type, **kwargs.pop("headers", {})}
        data = body if isinstance(body, bytes) else requests.models.complexjson.dumps(body).encode()
        return self._session(user).post(url, data=data, headers=headers, timeout=120, **kwargs)

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()


def start_exchange(
    data_dir: Path,
    *,
    trusted_proxy: str | None = None,
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH,
    **server: Any,
) -> Exchange:
    """A provisioned exchange and its server; `server` goes to ServerProcess (busy_timeout, ...)."""
    passwords = {agency: secrets.token_urlsafe(18) for agency, _ in AGENCIES}
    provision(data_dir, exchange_layout(max_content_length=max_content_length), passwords=passwords)
    process = ServerProcess(data_dir, trusted_proxy=trusted_proxy, **server).start()
    return Exchange(server=process, data_dir=data_dir, passwords=passwords)


@pytest.fixture(scope="session")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """One server for the whole session; tests isolate themselves by object ids or by
    added_after."""
    running = start_exchange(tmp_path_factory.mktemp("exchange"))
    try:
        yield running
    finally:
        running.close()
        running.server.stop()


@pytest.fixture
def fresh_exchange(tmp_path: Path) -> Iterator[Exchange]:
    """A server of its own, for tests that restart or kill it."""
    running = start_exchange(tmp_path / "exchange")
    try:
        yield running
    finally:
        running.close()
        running.server.stop()


class StixFactory:
    """Plain STIX 2.1 objects with fresh ids."""

    def indicator(self, *, modified: str = "2026-01-01T00:00:00.000Z", **extra: Any) -> dict[str, Any]:
        value = f"198.51.100.{secrets.randbelow(255)}"
        obj: dict[str, Any] = {
            "type": "indicator",
            "spec_version": "2.1",
            "id": f"indicator--{uuid.uuid4()}",
            "created": "2026-01-01T00:00:00.000Z",
            "modified": modified,
            "name": f"Malicious IP {value}",
            "indicator_types": ["malicious-activity"],
            "pattern": f"[ipv4-addr:value = '{value}']",
            "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z",
        }
        obj.update(extra)
        return obj

    def malware(self, **extra: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "type": "malware",
            "spec_version": "2.1",
            "id": f"malware--{uuid.uuid4()}",
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "name": "Poison Ivy",
            "is_family": True,
        }
        obj.update(extra)
        return obj

    def ipv4(self) -> dict[str, Any]:
        """An SCO: no created/modified, so its version is its date_added."""
        return {
            "type": "ipv4-addr",
            "spec_version": "2.1",
            "id": f"ipv4-addr--{uuid.uuid4()}",
            "value": f"203.0.113.{secrets.randbelow(255)}",
        }

    def version_of(self, obj: dict[str, Any], modified: str, **changes: Any) -> dict[str, Any]:
        return {**obj, "modified": modified, **changes}


@pytest.fixture(scope="session")
def stix() -> StixFactory:
    return StixFactory()
