"""Regression tests from an audit of `keys` and `partners`: hostile key files, partner names,
`keys revoke` with a wrong passphrase, `keys export -o` targets, `partners remove` with an
outbox. Everything goes through the CLI."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.clock import utc_now
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.key_document import sign_key_document
from cti_exchange.keys.model import Keyring, KeyStatus, KeyUse
from tests.conftest import PASSPHRASE, Agency, pin
from tests.exchange.conftest import running_exchange, write_iocs
from tests.fault_proxy import FaultProxy, FaultScript


def _tampered(source: Agency, path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """The agency's exported key file with its payload changed. The signature no longer
    verifies, but the payload is read (and must be refused cleanly) before it is checked."""
    exported = json.loads(source.export_keys(path).read_text())
    payload = json.loads(base64.urlsafe_b64decode(exported["payload"] + "=="))
    change(payload)
    exported["payload"] = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    path.write_text(json.dumps(exported))
    return path


def _first_kid(payload: dict[str, Any]) -> str:
    return str(payload["keys"][0]["kid"])


def _set_created(value: object) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        payload["key_status"][_first_kid(payload)]["created"] = value

    return change


def _set_agency(field: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        payload["agency"][field] = value

    return change


def _set_top(field: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        payload[field] = value

    return change


def _control_kid(payload: dict[str, Any]) -> None:
    old = _first_kid(payload)
    new = old + "\n\x1b[31mforged row"
    payload["keys"][0]["kid"] = new
    payload["key_status"][new] = payload["key_status"].pop(old)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set_top("key_status", [1]), "'key_status' is not a JSON object"),
        (_set_created(5), "key_status for"),
        (_set_top("issued", "garbage"), "'issued' garbage is not an RFC 3339 timestamp"),
        (_set_agency("id", 123), "agency.id 123 is not an agency id"),
        (_set_agency("id", "../../x"), "is not an agency id"),
        (_set_agency("name", ["a"]), "agency.name"),
        (_set_agency("country", {"a": 1}), "agency.country"),
        (_set_agency("identity_id", 5), "agency.identity_id"),
        (_control_kid, "holds control characters"),
    ],
    ids=[
        "key-status-list",
        "created-int",
        "issued-garbage",
        "agency-id-int",
        "agency-id-path",
        "agency-name-list",
        "agency-country-object",
        "identity-id-int",
        "kid-control-chars",
    ],
)
def test_a_key_file_with_wrong_types_is_a_one_line_usage_error(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    broken = _tampered(cert_fr, tmp_path / "fr.json", change)
    result = cert_in.run(
        "partners", "add", "cert-fr", "--jwks", str(broken), "--fingerprint", cert_fr.signing_fingerprint()
    )
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and str(broken) in result.stderr and expected in result.stderr
    assert "\x1b" not in result.stderr
    assert cert_in.run("partners", "list", "--json").json() == []
    partners_dir = cert_in.home / "partners"
    assert not partners_dir.exists() or not list(partners_dir.iterdir())


@pytest.mark.parametrize("where", ["file", "payload"])
def test_a_deeply_nested_key_file_is_refused_not_a_crash(cert_in: Agency, tmp_path: Path, where: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    path = tmp_path / "deep.json"
    if where == "file":
        path.write_bytes(deep)
    else:
        payload = base64.urlsafe_b64encode(deep).decode().rstrip("=")
        path.write_text(
            json.dumps({"payload": payload, "signatures": [{"protected": "e30", "signature": "AA"}]})
        )
    result = cert_in.run("partners", "add", "cert-fr", "--jwks", str(path), "--fingerprint", "x")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and str(path) in result.stderr


def test_a_partner_name_that_is_a_path_writes_nothing_outside_partners(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path
) -> None:
    doc = cert_fr.export_keys(tmp_path / "fr.json")
    for name in ("../evil", "a/b", "UPPER", "-x"):
        result = cert_in.run(
            "partners", "add", "--jwks", str(doc), "--fingerprint", cert_fr.signing_fingerprint(), "--", name
        )
        assert result.exit_code == 2, (name, result.stderr)
        assert result.stderr.count("\n") == 1 and "partner name" in result.stderr
    assert not (cert_in.home / "evil.keys.json").exists()
    partners_dir = cert_in.home / "partners"
    assert not partners_dir.exists() or not list(partners_dir.iterdir())


def test_a_partner_display_name_cannot_drive_the_terminal(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path
) -> None:
    home = ProfileHome(cert_fr.home)
    ring, private = home.keyring(), home.keys.unlock(PASSPHRASE)
    hostile = replace(ring, agency=replace(ring.agency, name="Evil\nforged line\x1b[2J"))
    doc = tmp_path / "fr.json"
    doc.write_bytes(sign_key_document(hostile, dict(private)))
    added = cert_in.run(
        "partners", "add", "cert-fr", "--jwks", str(doc), "--fingerprint", cert_fr.signing_fingerprint()
    )
    assert added.exit_code == 0, added.stderr
    shown = cert_in.run("partners", "show", "cert-fr")
    for text in (added.stdout, shown.stdout):
        assert "\x1b" not in text and "Evil\\x0aforged line\\x1b[2J" in text


def test_a_key_file_cannot_bring_back_a_revoked_signing_key(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path
) -> None:
    pin(cert_in, cert_fr, tmp_path)
    old = ProfileHome(cert_fr.home).keyring().current(KeyUse.SIG)
    assert cert_fr.run("keys", "rotate", "--use", "sig").exit_code == 0
    rotated = cert_fr.export_keys(tmp_path / "rotated.json")
    assert cert_in.run("partners", "update-keys", "cert-fr", "--jwks", str(rotated)).exit_code == 0
    assert cert_fr.run("keys", "revoke", old.kid, "--reason", "compromised").exit_code == 0
    revoked = cert_fr.export_keys(tmp_path / "revoked.json")
    assert cert_in.run("partners", "update-keys", "cert-fr", "--jwks", str(revoked)).exit_code == 0

    # Someone holding both private keys writes a file naming the revoked key current again.
    home = ProfileHome(cert_fr.home)
    ring, private = home.keyring(), home.keys.unlock(PASSPHRASE)
    new_kid = ring.current(KeyUse.SIG).kid

    def status(kid: str, key_status: KeyStatus) -> Any:
        key = ring.find(kid)
        assert key is not None
        return replace(key, status=key_status, revoked_at=None, revocation_reason=None)

    keys = tuple(
        status(k.kid, KeyStatus.CURRENT)
        if k.kid == old.kid
        else status(k.kid, KeyStatus.RETIRED)
        if k.kid == new_kid
        else k
        for k in ring.keys
    )
    forged = tmp_path / "forged.json"
    forged.write_bytes(sign_key_document(Keyring(ring.agency, keys, issued=utc_now()), dict(private)))
    result = cert_in.run("partners", "update-keys", "cert-fr", "--jwks", str(forged))
    assert result.exit_code == 4, result.stderr
    assert result.stderr.count("\n") == 1 and f"{old.kid} as the current signing key" in result.stderr
    assert "keys rotate" not in result.stderr  # not a fix for our own keys


def test_a_key_created_in_year_one_is_not_an_internal_error(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path
) -> None:
    home = ProfileHome(cert_fr.home)
    ring, private = home.keyring(), home.keys.unlock(PASSPHRASE)
    early = datetime(1, 1, 1, tzinfo=UTC)  # minus the clock skew, before the calendar starts
    keys = tuple(replace(k, created=early) if k.use is KeyUse.SIG else k for k in ring.keys)
    doc = tmp_path / "fr.json"
    doc.write_bytes(sign_key_document(replace(ring, keys=keys), dict(private), now=utc_now()))
    result = cert_in.run(
        "partners", "add", "cert-fr", "--jwks", str(doc), "--fingerprint", cert_fr.signing_fingerprint()
    )
    assert result.exit_code == 0, result.stderr


def test_revoking_the_current_key_with_a_wrong_passphrase_changes_nothing(cert_fr: Agency) -> None:
    current = ProfileHome(cert_fr.home).keyring().current(KeyUse.SIG)
    before = (cert_fr.home / "keys" / "public.json").read_bytes()
    result = cert_fr.run(
        "keys", "revoke", current.kid, env={"CTI_EXCHANGE_PASSPHRASE": "not the passphrase at all"}
    )
    assert result.exit_code == 3 and result.stderr.count("\n") == 1
    assert (cert_fr.home / "keys" / "public.json").read_bytes() == before
    assert cert_fr.run("keys", "revoke", current.kid, "--json").json()["replacement"] is not None


def test_revoking_a_retired_key_still_needs_no_passphrase(cert_fr: Agency) -> None:
    old = ProfileHome(cert_fr.home).keyring().current(KeyUse.ENC)
    assert cert_fr.run("keys", "rotate", "--use", "enc").exit_code == 0
    result = cert_fr.run("keys", "revoke", old.kid, env={"CTI_EXCHANGE_PASSPHRASE": "wrong wrong wrong"})
    assert result.exit_code == 0, result.stderr


def test_keys_export_to_a_directory_or_a_missing_one_is_a_usage_error(
    cert_fr: Agency, tmp_path: Path
) -> None:
    for target, expected in (
        (tmp_path, "is a directory"),
        (tmp_path / "missing" / "fr.json", "does not exist"),
    ):
        result = cert_fr.run("keys", "export", "-o", str(target))
        assert result.exit_code == 2, result.stderr
        assert result.stderr.count("\n") == 1 and str(target) in result.stderr and expected in result.stderr


def test_keys_export_never_replaces_a_fifo_or_a_device(cert_fr: Agency, tmp_path: Path) -> None:
    # A FIFO stands for any non-regular file: the old code renamed its temporary file over the
    # target, which replaced `/dev/null` itself when run as root (never try that in a test).
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = cert_fr.run("keys", "export", "-o", str(fifo))
    assert result.exit_code == 2 and "not a regular file" in result.stderr and "-o -" in result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_removing_a_partner_with_envelopes_in_its_outbox_is_refused(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    fr, india = partnered
    with running_exchange(tmp_path, fr, india) as exchange:
        refuse_posts = FaultScript(rule=lambda method, path, number: "503" if method == "POST" else None)
        proxy = FaultProxy(exchange.server.url, refuse_posts).start()
        try:
            exchange.wire(fr, india, f"{proxy.url}exchange/", retry_budget="1")
            assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in").exit_code == 7
        finally:
            proxy.stop()
    refused = fr.run("partners", "remove", "cert-in", "--yes")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "1 envelope(s) in the outbox" in refused.stderr and "--drop-outbox" in refused.stderr
    assert [p["name"] for p in fr.run("partners", "list", "--json").json()] == ["cert-in"]

    dropped = fr.run("partners", "remove", "cert-in", "--yes", "--drop-outbox")
    assert dropped.exit_code == 0, dropped.stderr
    assert "Dropped 1 envelope(s)" in dropped.stderr
    assert fr.run("partners", "list", "--json").json() == []
    # Dropped for good: the sent log says so, the audit trail lists it, and the partner pinned
    # again under the same name has nothing queued (nothing sealed to the old entry is posted).
    [envelope] = fr.run("sent", "--json").json()
    assert envelope["status"] == "dropped" and envelope["partner"] == "cert-in"
    drops = fr.run("audit", "show", "--action", "drop", "--json").json()
    assert [r["details"]["envelope_ids"] for r in drops] == [[envelope["envelope_id"]]]
    pin(fr, india, tmp_path)
    again = fr.run("partners", "remove", "cert-in", "--yes")
    assert again.exit_code == 0 and "Dropped" not in again.stderr


def test_partners_set_refuses_nan_and_out_of_range_numbers_naming_the_option(
    partnered: tuple[Agency, Agency],
) -> None:
    fr, _ = partnered
    base = ("partners", "set", "cert-in", "--api-root", "https://taxii.example/api/")
    assert fr.run(*base).exit_code == 0
    config = (fr.home / "config.toml").read_text()
    for option, value in (
        ("--timeout", "nan"),  # a NaN timeout made `sync` hang
        ("--retry-budget", "nan"),
        ("--timeout", "inf"),
        ("--retry-budget", "1e308"),
        ("--page-size", "99999999999999999999"),
        ("--max-response-bytes", "100"),  # under 1 KiB: no answer would ever be read
        ("--max-response-bytes", str(2**29 + 1)),  # past the 512 MiB every answer is held to
    ):
        result = fr.run("partners", "set", "cert-in", option, value)
        assert result.exit_code == 2, (option, value, result.stderr)
        assert (
            option in result.stderr and "config.toml" not in result.stderr and "schema" not in result.stderr
        )
    assert (fr.home / "config.toml").read_text() == config


def test_partners_show_escapes_taxii_settings(partnered: tuple[Agency, Agency]) -> None:
    fr, _ = partnered
    collection = "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d01"
    set_ = fr.run(
        "partners",
        "set",
        "cert-in",
        "--api-root",
        "https://taxii.example/api/",
        "--read-collection",
        collection,
    )
    assert set_.exit_code == 0, set_.stderr
    # `partners set` takes only a UUID (tests/cli/test_collection_ids.py): the hostile value
    # comes from a hand-edited config.toml.
    config = fr.home / "config.toml"
    config.write_text(config.read_text().replace(f'"{collection}"', '"a\\n\\u001b[2J"'))
    shown = fr.run("partners", "show", "cert-in")
    assert "\x1b" not in shown.stdout and "read=a\\x0a\\x1b[2J" in shown.stdout


def test_a_key_file_that_never_ends_is_refused_at_the_limit(cert_in: Agency) -> None:
    # /dev/zero has size 0 to stat: the limit holds on what is read, not on what stat says.
    result = cert_in.run("partners", "add", "cert-fr", "--jwks", "/dev/zero", "--fingerprint", "x" * 43)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "/dev/zero is more than the 1048576-byte limit" in result.stderr
