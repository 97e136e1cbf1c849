"""`audit export`: a compact JWS that an independent JOSE library (joserfc) verifies with our
exported public key, and whose records re-chain by the recipe in docs/AUDIT.md alone."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws as rfc_jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import OKPKey

from cti_exchange.audit.chain import GENESIS, sign_extract, sign_head
from cti_exchange.audit.extract import embedded_keyring, verify_extract
from cti_exchange.clock import utc_now
from cti_exchange.envelope.jose_framing import jws_sign_compact
from cti_exchange.errors import ExitCode, IntegrityError
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import AgencyRef, KeyUse
from tests.conftest import PASSPHRASE, Agency


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _export(agency: Agency, out: Path, since: str = "2030-01-03", until: str = "2030-01-04") -> dict:
    result = agency.run("audit", "export", "--since", since, "--until", until, "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()


def _exported_public_keys(agency: Agency, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Our public keys as a partner receives them (`keys export`), by kid."""
    signed = json.loads(agency.export_keys(tmp_path / "cert-fr.keys.json").read_text())
    ring = json.loads(_b64url_decode(signed["payload"]))
    return {key["kid"]: key for key in ring["keys"]}


def _rehash(record: dict[str, Any]) -> str:
    """docs/AUDIT.md: SHA-256 over the canonical JSON of the record without its hash."""
    body = {k: record[k] for k in ("seq", "at", "actor", "action", "partner", "details", "prev")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def test_joserfc_verifies_the_extract_and_its_records_rechain(trail: Agency, tmp_path: Path) -> None:
    out = tmp_path / "extract.jws"
    summary = _export(trail, out)
    assert (summary["first_seq"], summary["last_seq"], summary["records"]) == (3, 4, 2)
    text = out.read_text().strip()
    assert hashlib.sha256(text.encode()).hexdigest() == summary["sha256"]

    keys = _exported_public_keys(trail, tmp_path)
    header = json.loads(_b64url_decode(text.split(".")[0]))
    assert header["typ"] == "cti-audit-extract+jws" and header["alg"] == "EdDSA"
    signed = rfc_jws.deserialize_compact(text, OKPKey.import_key(keys[header["kid"]]), algorithms=["EdDSA"])
    document = json.loads(signed.payload)

    assert document["format"] == "cti-exchange-audit-extract/1"
    assert document["agency"]["id"] == "cert-fr"
    assert [r["seq"] for r in document["records"]] == [3, 4]
    assert all("2030-01-03" <= r["at"][:10] <= "2030-01-04" for r in document["records"])
    # No head was signed yet, so the export signed one over the current head (6); the records
    # after the period up to it are carried so the link to the head can be checked.
    assert [r["seq"] for r in document["continuation"]] == [5, 6]

    prev = document["prev"]
    for record in document["records"] + document["continuation"]:
        assert record["prev"] == prev and _rehash(record) == record["hash"]
        prev = record["hash"]

    head = document["signed_head"]
    head_signed = rfc_jws.deserialize_compact(
        head["jws"], OKPKey.import_key(keys[head["kid"]]), algorithms=["EdDSA"]
    )
    head_payload = json.loads(head_signed.payload)
    assert head_payload == {
        "agency": "cert-fr",
        "seq": 6,
        "hash": prev,
        "signed_at": head["signed_at"],
    }
    assert document["signing_key_thumbprint"] == trail.signing_fingerprint()

    # A changed payload no longer verifies.
    parts = text.split(".")
    tampered = json.dumps(document | {"first_seq": 2}).encode()
    forged = ".".join([parts[0], base64.urlsafe_b64encode(tampered).rstrip(b"=").decode(), parts[2]])
    with pytest.raises(BadSignatureError):
        rfc_jws.deserialize_compact(forged, OKPKey.import_key(keys[header["kid"]]), algorithms=["EdDSA"])


def test_verify_extract_checks_signature_chain_head_and_agency(trail: Agency, tmp_path: Path) -> None:
    out = tmp_path / "extract.jws"
    _export(trail, out, since="2030-01-01", until="2030-01-06")
    text = out.read_text()
    home = ProfileHome(trail.home)
    ring = home.keyring()

    verified = verify_extract(text, ring)
    assert [r.seq for r in verified.records] == [2, 3, 4, 5, 6]
    assert verified.signed_head.seq == 6 and verified.agency_id == "cert-fr"
    # The ring inside the extract is what a court expert starts from, after comparing the
    # thumbprint with the one obtained out of band.
    assert embedded_keyring(text).current(KeyUse.SIG).thumbprint == trail.signing_fingerprint()

    with pytest.raises(IntegrityError, match="the keys are cert-in's"):
        verify_extract(text, replace(ring, agency=AgencyRef(id="cert-in", name="CERT-In")))

    # Even signed with our own key, an extract whose records do not chain is refused.
    document = json.loads(_b64url_decode(text.split(".")[1]))
    document["records"][1]["details"] = {"day": 33}
    signing_key = home.keys.unlock(PASSPHRASE)[ring.current(KeyUse.SIG).kid]
    with pytest.raises(IntegrityError, match=r"record 3: .*edited"):
        verify_extract(sign_extract(document, signing_key), ring)

    with pytest.raises(IntegrityError, match="not a signed audit extract"):
        verify_extract("not a jws", ring)


def test_export_refuses_a_tampered_trail(
    trail: Agency, store_sql: sqlite3.Connection, tmp_path: Path
) -> None:
    store_sql.execute("""UPDATE audit_log SET details = '{"day":0}' WHERE seq = 2""")
    out = tmp_path / "extract.jws"
    result = trail.run("audit", "export", "--since", "2030-01-01", "--until", "2030-01-09", "-o", str(out))
    assert result.exit_code == 4
    assert "record 2: its content no longer matches its hash" in result.stderr
    assert not out.exists()


def test_export_of_an_empty_period_and_the_export_record(trail: Agency, tmp_path: Path) -> None:
    out = tmp_path / "extract.jws"
    empty = trail.run("audit", "export", "--since", "2031-01-01", "--until", "2031-12-31", "-o", str(out))
    assert empty.exit_code == 6 and "no audit record between" in empty.stderr
    assert not out.exists()

    summary = _export(trail, out)
    exports = trail.run("audit", "show", "--action", "audit-export", "--json").json()
    assert len(exports) == 1
    details = exports[0]["details"]
    assert details["sha256"] == summary["sha256"] and details["first_seq"] == 3
    # The export record is covered by a signed head at once: cutting it off would show.
    verified = trail.run("audit", "verify", "--no-sign", "--json")
    assert verified.exit_code == 0 and verified.json()["unsigned_tail"] == 0


def test_the_recipe_in_docs_audit_md_checks_a_real_extract(trail: Agency, tmp_path: Path) -> None:
    out = tmp_path / "extract.jws"
    _export(trail, out)
    keys = _exported_public_keys(trail, tmp_path)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "AUDIT.md").read_text()
    recipe = docs.split("In Python with joserfc", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    # The recipe's placeholders: the extract's file and the keys checked out of band.
    recipe = recipe.replace('"cert-fr-audit-2026-03.jws"', repr(str(out)))
    recipe = recipe.replace(
        "trusted_key = {...}", "trusted_key = KEYS[json.loads(_b64(text.split('.')[0]))['kid']]"
    )
    recipe = recipe.replace("head_key = {...}", 'head_key = KEYS[head["kid"]]')
    assert "{...}" not in recipe
    namespace: dict[str, Any] = {"KEYS": keys, "_b64": _b64url_decode}
    exec(compile(recipe, "docs/AUDIT.md", "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["seq"] - 1 == namespace["signed"]["seq"] == 6


# -- forged extracts: re-signed with one of our real keys, as its thief (or an insider) could --


def _document(text: str) -> dict[str, Any]:
    return json.loads(_b64url_decode(text.split(".")[1]))


def _signed(document: dict[str, Any], private_key: dict[str, Any], payload: bytes | None = None) -> str:
    """The extract's JWS over `document` (or over `payload` as given), as sign_extract makes it."""
    header = {
        "alg": "EdDSA",
        "kid": private_key["kid"],
        "typ": "cti-audit-extract+jws",
        "cty": "application/json",
    }
    body = payload if payload is not None else json.dumps(document, sort_keys=True).encode()
    return jws_sign_compact(header, body, private_key).decode()


def _rechain(document: dict[str, Any], private_key: dict[str, Any]) -> None:
    """Every hash recomputed from `prev`, and a new head signed over the last record: the chain
    and the head hold, whatever was changed."""
    prev = document["prev"]
    for record in document["records"] + document["continuation"]:
        record["prev"] = prev
        record["hash"] = prev = _rehash(record)
    last = (document["records"] + document["continuation"])[-1]
    head = sign_head("cert-fr", last["seq"], last["hash"], private_key, utc_now())
    document["signed_head"] = {
        "seq": head.seq,
        "hash": head.hash,
        "signed_at": head.signed_at,
        "kid": head.kid,
        "jws": head.jws,
    }


def _rotated(agency: Agency) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our private signing keys (old, current) after the head at 6 was signed with the old one
    and `keys rotate` retired it."""
    assert agency.run("audit", "verify").exit_code == 0  # head 6, signed with the first key
    home = ProfileHome(agency.home)
    old_kid = home.keyring().current(KeyUse.SIG).kid
    assert agency.run("keys", "rotate").exit_code == 0
    keys = home.keys.unlock(PASSPHRASE)
    return keys[old_kid], keys[home.keyring().current(KeyUse.SIG).kid]


def _refused(text: str, agency: Agency, reason: str) -> None:
    with pytest.raises(IntegrityError, match=reason) as refused:
        verify_extract(text, ProfileHome(agency.home).keyring())
    assert refused.value.exit_code == ExitCode.INTEGRITY
    assert "\n" not in refused.value.diagnostics()


def test_verify_extract_refuses_a_signer_other_than_the_one_it_names(trail: Agency, tmp_path: Path) -> None:
    old, current = _rotated(trail)
    out = tmp_path / "extract.jws"
    _export(trail, out)
    document = _document(out.read_text())
    assert document["signing_kid"] == current["kid"] and document["signed_head"]["kid"] == old["kid"]
    assert verify_extract(out.read_text(), ProfileHome(trail.home).keyring()).signer_kid == current["kid"]

    # The retired key still verifies what it signed; its thief signs a new extract with it that
    # still names the current key and thumbprint, which the reader checks out of band.
    _refused(
        _signed(document, old),
        trail,
        f"signing_kid names key {current['kid']}, but the extract is signed with key {old['kid']}",
    )
    _refused(
        _signed(document | {"signing_kid": old["kid"]}, old),
        trail,
        f"signing_key_thumbprint {document['signing_key_thumbprint']} is not the thumbprint of key {old['kid']}",
    )


def test_verify_extract_refuses_a_signed_head_naming_another_key(trail: Agency, tmp_path: Path) -> None:
    # The signed head says which key vouched for the records: a head signed by the old key
    # cannot be passed off as signed by the current one.
    old, current = _rotated(trail)
    out = tmp_path / "extract.jws"
    _export(trail, out)
    document = _document(out.read_text())
    relabelled = document | {"signed_head": document["signed_head"] | {"kid": current["kid"]}}
    _refused(
        _signed(relabelled, current),
        trail,
        f"signed head 6: it names key {current['kid']}, but key {old['kid']} signed it",
    )


@pytest.mark.parametrize(
    ("period", "change", "reason"),
    [
        (
            ("2000-01-01", "2030-01-02"),
            "prev",
            r"record 1: prev must be GENESIS \(the start of the trail\), not AAAA",
        ),
        (("2000-01-01", "2030-01-02"), "renumber", "record 0: the trail's records are numbered from 1"),
        (("2030-01-03", "2030-01-04"), "genesis", "record 3: prev is GENESIS, which only record 1 links to"),
    ],
)
def test_verify_extract_refuses_a_chain_that_does_not_start_where_the_trail_does(
    trail: Agency, tmp_path: Path, period: tuple[str, str], change: str, reason: str
) -> None:
    out = tmp_path / "extract.jws"
    _export(trail, out, *period)
    document = _document(out.read_text())
    home = ProfileHome(trail.home)
    key = home.keys.unlock(PASSPHRASE)[home.keyring().current(KeyUse.SIG).kid]
    if change == "prev":  # record 1 made to follow records nobody can see
        document["prev"] = "A" * 43
    elif change == "renumber":  # numbered from 0, so no record 1 has to link to GENESIS
        for record in document["records"] + document["continuation"]:
            record["seq"] -= 1
        document["first_seq"] -= 1
        document["last_seq"] -= 1
        document["prev"] = "A" * 43
    else:  # record 3 presented as the start of the trail
        document["prev"] = GENESIS
    _rechain(document, key)
    _refused(_signed(document, key), trail, reason)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"period": {"since": "2030-01-05T00:00:00.000Z", "until": "2030-01-06T23:59:59.999Z"}},
            r"record 3: its time 2030-01-03T12:00:00.000Z lies outside the extract's period "
            r"\(2030-01-05T00:00:00.000Z to 2030-01-06T23:59:59.999Z\)",
        ),
        (
            {"period": {"since": "2030-01-03T00:00:00.000Z", "until": "2030-01-03T23:59:59.999Z"}},
            "record 4: its time 2030-01-04T12:00:00.000Z lies outside",
        ),
        (
            {"period": {"since": "2030-01-05T00:00:00.000Z", "until": "2030-01-01T00:00:00.000Z"}},
            "its period ends at 2030-01-01T00:00:00.000Z, before it starts at 2030-01-05",
        ),
        ({"period": {"since": "soon"}}, r"the extract has no readable period \(since, until\)"),
        ({"at": "yesterday"}, "record 4: its time 'yesterday' is not a time"),
    ],
)
def test_verify_extract_refuses_records_outside_the_period_it_claims(
    trail: Agency, tmp_path: Path, change: dict[str, Any], reason: str
) -> None:
    out = tmp_path / "extract.jws"
    _export(trail, out)  # records 3 and 4: 2030-01-03 and 2030-01-04
    document = _document(out.read_text())
    home = ProfileHome(trail.home)
    key = home.keys.unlock(PASSPHRASE)[home.keyring().current(KeyUse.SIG).kid]
    if "at" in change:
        document["records"][1]["at"] = change["at"]
        _rechain(document, key)
    else:
        document |= change
    _refused(_signed(document, key), trail, reason)


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        (float("nan"), "NaN is not JSON"),  # Python's json writes NaN unless told not to
        ([[[[]]]], "maximum recursion depth exceeded"),  # nested deeper than any parser goes
    ],
)
def test_verify_extract_refuses_a_payload_that_is_not_json(
    trail: Agency, tmp_path: Path, note: Any, reason: str
) -> None:
    out = tmp_path / "extract.jws"
    _export(trail, out)
    document = _document(out.read_text())
    home = ProfileHome(trail.home)
    key = home.keys.unlock(PASSPHRASE)[home.keyring().current(KeyUse.SIG).kid]
    payload = json.dumps(document | {"note": note}).encode()
    if isinstance(note, list):
        payload = payload.replace(b"[[[[]]]]", b"[" * 100_000 + b"]" * 100_000)
    _refused(
        _signed(document, key, payload),
        trail,
        rf"the extract's payload is not JSON \(RFC 8259\): {reason}",
    )


def test_until_defaults_to_now(trail: Agency, tmp_path: Path) -> None:
    """`--since 24h` alone: the last day up to now (before, a usage error: --until missing)."""
    out = tmp_path / "last-day.jws"
    before = utc_now()
    result = trail.run("audit", "export", "--since", "24h", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["first_seq"] == report["last_seq"] == 1  # the key's creation; the rest is in 2030
    assert before.isoformat()[:16] <= report["until"].replace("Z", "+00:00")[:16]
