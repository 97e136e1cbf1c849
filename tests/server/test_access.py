"""Per-account access: each agency writes only its outbound collection and reads only its
inbound one; passwords are checked against hashes and never stored in plain text."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import requests
from taxii2client.v21 import Collection

from cti_exchange.errors import ConfigError
from cti_exchange.server.provisioning import (
    add_agency,
    collection_id_for,
    hash_password,
    load_accounts,
    load_layout,
    plan_exchange,
    provision,
    verify_password,
)
from cti_exchange.server.runner import ServerProcess, run_server

from .conftest import SANDBOX_ID, TAXII, Exchange, StixFactory

FR_TO_IN = collection_id_for("cert-fr", "cert-in")
IN_TO_FR = collection_id_for("cert-in", "cert-fr")


def taxii_error(response: requests.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == TAXII
    body = response.json()
    assert body["http_status"] == str(status)
    assert body["title"] and body["description"]


@pytest.mark.parametrize(
    ("user", "collection", "method", "allowed"),
    [
        ("cert-fr", FR_TO_IN, "POST", True),  # its outbound collection
        ("cert-fr", FR_TO_IN, "GET", False),
        ("cert-fr", IN_TO_FR, "GET", True),  # its inbound collection
        ("cert-fr", IN_TO_FR, "POST", False),
        ("cert-in", IN_TO_FR, "POST", True),
        ("cert-in", IN_TO_FR, "GET", False),
        ("cert-in", FR_TO_IN, "GET", True),
        ("cert-in", FR_TO_IN, "POST", False),
    ],
)
def test_each_account_writes_outbound_and_reads_inbound_only(
    exchange: Exchange, stix: StixFactory, user: str, collection: str, method: str, allowed: bool
) -> None:
    url = exchange.collection_url(collection) + "objects/"
    if method == "POST":
        response = exchange.post(url, {"objects": [stix.indicator()]}, user=user)
        expected = 202
    else:
        response = exchange.get(url, user=user)
        expected = 200
    if allowed:
        assert response.status_code == expected, response.text
    else:
        taxii_error(response, 403)


@pytest.mark.parametrize(
    "endpoint",
    [
        "manifest/",
        "objects/indicator--00000000-0000-4000-8000-000000000000/",
        "objects/indicator--00000000-0000-4000-8000-000000000000/versions/",
    ],
)
def test_every_read_endpoint_enforces_the_acl(exchange: Exchange, endpoint: str) -> None:
    taxii_error(exchange.get(exchange.collection_url(FR_TO_IN) + endpoint, user="cert-fr"), 403)


def test_delete_needs_read_and_write(exchange: Exchange, stix: StixFactory) -> None:
    obj = stix.indicator()
    exchange.post(exchange.collection_url(FR_TO_IN) + "objects/", {"objects": [obj]}, user="cert-fr")
    for user in ("cert-fr", "cert-in"):
        response = exchange._session(user).delete(
            exchange.collection_url(FR_TO_IN) + f"objects/{obj['id']}/", headers={"Accept": TAXII}
        )
        taxii_error(response, 403)
    assert exchange.collection(FR_TO_IN, user="cert-in").get_object(obj["id"])["objects"] == [obj]


def test_a_collection_without_rights_does_not_exist_for_the_account(exchange: Exchange) -> None:
    taxii_error(exchange.get(exchange.collection_url(SANDBOX_ID), user="cert-in"), 404)
    taxii_error(exchange.get(exchange.collection_url(SANDBOX_ID) + "objects/", user="cert-in"), 404)


def test_status_is_visible_to_the_poster_only(exchange: Exchange, stix: StixFactory) -> None:
    response = exchange.post(
        exchange.collection_url(FR_TO_IN) + "objects/",
        {"objects": [stix.indicator()]},
        user="cert-fr",
    )
    status_url = exchange.server.api_root_url + f"status/{response.json()['id']}/"
    assert exchange.get(status_url, user="cert-fr").status_code == 200
    taxii_error(exchange.get(status_url, user="cert-in"), 404)


@pytest.mark.parametrize(
    "credentials",
    [
        None,
        ("cert-fr", "wrong password, long enough"),
        ("nobody", "whatever-password"),
        ("cert-fr", ""),
    ],
)
def test_bad_or_missing_credentials_are_401(exchange: Exchange, credentials: tuple[str, str] | None) -> None:
    response = requests.get(
        exchange.server.api_root_url, auth=credentials, headers={"Accept": TAXII}, timeout=30
    )
    taxii_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_discovery_needs_credentials_too(exchange: Exchange) -> None:
    response = requests.get(exchange.server.discovery_url, headers={"Accept": TAXII}, timeout=30)
    taxii_error(response, 401)


def test_a_partner_joining_later_gets_its_own_collections_only(
    fresh_exchange: Exchange, stix: StixFactory
) -> None:
    fresh_exchange.collection(FR_TO_IN, user="cert-fr").add_objects({"objects": [stix.indicator()]})
    fresh_exchange.passwords["cert-de"] = secrets.token_urlsafe(16)
    add_agency(
        fresh_exchange.data_dir,
        "cert-de",
        "CERT-Bund",
        password=fresh_exchange.passwords["cert-de"],
    )

    # The running server sees the new account and collections at once.
    seen = {c.id: (c.can_read, c.can_write) for c in fresh_exchange.api_root(user="cert-de").collections}
    assert seen == {
        collection_id_for("cert-de", "cert-fr"): (False, True),
        collection_id_for("cert-de", "cert-in"): (False, True),
        collection_id_for("cert-fr", "cert-de"): (True, False),
        collection_id_for("cert-in", "cert-de"): (True, False),
    }
    taxii_error(fresh_exchange.get(fresh_exchange.collection_url(FR_TO_IN), user="cert-de"), 404)
    # Existing data and passwords are untouched.
    assert len(fresh_exchange.collection(FR_TO_IN, user="cert-in").get_objects()["objects"]) == 1
    assert {c.id for c in fresh_exchange.api_root(user="cert-fr").collections} == {
        FR_TO_IN,
        IN_TO_FR,
        SANDBOX_ID,
        collection_id_for("cert-fr", "cert-de"),
        collection_id_for("cert-de", "cert-fr"),
    }


def test_passwords_are_stored_only_as_scrypt_hashes(fresh_exchange: Exchange) -> None:
    fresh_exchange.server.stop()  # let the server checkpoint its log into the database file
    for path in fresh_exchange.data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for password in fresh_exchange.passwords.values():
                assert password.encode() not in content, path
    accounts = load_accounts(fresh_exchange.data_dir)
    assert {a.username for a in accounts} == {"cert-fr", "cert-in"}
    for account in accounts:
        assert account.password_hash.startswith("scrypt$32768$8$1$")
        assert verify_password(account.password_hash, fresh_exchange.passwords[account.username])
    assert (fresh_exchange.data_dir.stat().st_mode & 0o777) == 0o700
    assert ((fresh_exchange.data_dir / "taxii.sqlite3").stat().st_mode & 0o777) == 0o600


def test_password_hashing() -> None:
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert first != second  # salted
    assert verify_password(first, "correct horse battery")
    assert not verify_password(first, "correct horse batterY")
    assert not verify_password("plaintext", "plaintext")
    assert not verify_password("scrypt$1$2$3$!!$!!", "x")


def test_reprovisioning_keeps_data_and_password_hashes(tmp_path: Path, stix: StixFactory) -> None:
    layout = plan_exchange([("cert-fr", "CERT-FR"), ("cert-in", "CERT-In")])
    passwords = {"cert-fr": secrets.token_urlsafe(16), "cert-in": secrets.token_urlsafe(16)}
    provision(tmp_path, layout, passwords=passwords)
    before = {a.username: a.password_hash for a in load_accounts(tmp_path)}
    with ServerProcess(tmp_path) as server:
        Collection(
            server.api_root_url + f"collections/{FR_TO_IN}/",
            user="cert-fr",
            password=passwords["cert-fr"],
        ).add_objects({"objects": [stix.indicator()]})

    provision(tmp_path, layout, passwords={})
    assert {a.username: a.password_hash for a in load_accounts(tmp_path)} == before
    new_password = secrets.token_urlsafe(16)
    provision(tmp_path, layout, passwords={"cert-in": new_password})
    after = {a.username: a.password_hash for a in load_accounts(tmp_path)}
    assert after["cert-fr"] == before["cert-fr"] and after["cert-in"] != before["cert-in"]
    assert load_layout(tmp_path).collections == layout.collections

    with ServerProcess(tmp_path) as server:
        inbound = Collection(
            server.api_root_url + f"collections/{FR_TO_IN}/",
            user="cert-in",
            password=new_password,
        )
        assert len(inbound.get_objects()["objects"]) == 1


def test_provisioning_refuses_what_it_cannot_do_safely(tmp_path: Path) -> None:
    layout = plan_exchange([("cert-fr", "CERT-FR"), ("cert-in", "CERT-In")])
    with pytest.raises(ConfigError, match="no password"):
        provision(tmp_path, layout, passwords={"cert-fr": "fr-password-0001"})
    with pytest.raises(ConfigError, match="shorter"):
        provision(tmp_path, layout, passwords={"cert-fr": "short", "cert-in": "in-password-0001"})
    with pytest.raises(ConfigError, match="not in the layout"):
        provision(tmp_path, layout, passwords={"cert-xx": "xx-password-0001"})
    with pytest.raises(ConfigError):
        plan_exchange([("CERT FR", "CERT-FR"), ("cert-in", "CERT-In")])
    with pytest.raises(ConfigError):
        plan_exchange([("cert-fr", "CERT-FR")])


def test_the_server_takes_every_agency_id_a_profile_takes() -> None:
    """`init --agency cert-x-` made a profile that `serve` then refused: two patterns."""
    from cti_exchange.keys.model import AGENCY_ID

    assert AGENCY_ID.fullmatch("cert-x-")
    layout = plan_exchange([("cert-x-", "CERT-X"), ("cert-in", "CERT-In")])
    assert [agency.agency_id for agency in layout.agencies] == ["cert-x-", "cert-in"]


def test_the_server_refuses_a_public_address_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plain HTTP"):
        run_server(tmp_path, host="0.0.0.0")


def test_collection_ids_are_stable() -> None:
    first = plan_exchange([("cert-fr", "CERT-FR"), ("cert-in", "CERT-In")])
    again = plan_exchange([("cert-in", "CERT-In"), ("cert-fr", "Another name")])
    assert {c.id for c in first.collections} == {c.id for c in again.collections}
    outbound = first.collection_between("cert-fr", "cert-in")
    assert outbound.alias == "cert-fr-to-cert-in"
    assert outbound.acl.can_write("cert-fr") and not outbound.acl.can_read("cert-fr")
    assert outbound.acl.can_read("cert-in") and not outbound.acl.can_write("cert-in")
