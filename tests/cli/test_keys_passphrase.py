"""`keys passphrase` (found missing on a walkthrough: staff change, a passphrase that leaked,
and no way but re-encrypting keys/private.jwe by hand with a JOSE library). The keys stay the
same; only the passphrase that protects them changes, and never through argv."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import PASSPHRASE, Agency

NEW = "a new passphrase for the CERT"


def _new_file(tmp_path: Path, text: str = NEW, mode: int = 0o600) -> Path:
    path = tmp_path / "new.pass"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def test_the_passphrase_changes_and_the_keys_stay(cert_fr: Agency, tmp_path: Path) -> None:
    public_before = (cert_fr.home / "keys" / "public.json").read_bytes()
    fingerprint = cert_fr.signing_fingerprint()
    changed = cert_fr.run(
        "keys", "passphrase", env={"CTI_EXCHANGE_NEW_PASSPHRASE_FILE": str(_new_file(tmp_path))}
    )
    assert changed.exit_code == 0, changed.stderr
    assert f"Passphrase changed for the keys in {cert_fr.home / 'keys' / 'private.jwe'}" in changed.stdout
    assert (cert_fr.home / "keys" / "private.jwe").stat().st_mode & 0o777 == 0o600
    assert (cert_fr.home / "keys" / "public.json").read_bytes() == public_before

    # The old passphrase no longer unlocks the keys (exit 3); the new one does.
    old = cert_fr.run("audit", "verify")  # signs the head: needs the private key
    assert old.exit_code == 0 and "the head was not signed" in old.stderr
    new = cert_fr.run("audit", "verify", env={"CTI_EXCHANGE_PASSPHRASE": NEW})
    assert new.exit_code == 0 and "Signed the head" in new.stdout, new.stderr
    assert cert_fr.run("keys", "show", "--json", env={"CTI_EXCHANGE_PASSPHRASE": NEW}).exit_code == 0
    assert cert_fr.signing_fingerprint() == fingerprint

    with sqlite3.connect(cert_fr.home / "store.sqlite") as conn:
        records = [
            json.loads(r[0])
            for r in conn.execute("SELECT details FROM audit_log WHERE action = 'key-change'")
        ]
    assert {"change": "passphrase"} in records
    assert not any(PASSPHRASE in json.dumps(r) or NEW in json.dumps(r) for r in records)


def test_refusals_change_nothing(cert_fr: Agency, tmp_path: Path) -> None:
    private = cert_fr.home / "keys" / "private.jwe"
    before = private.read_bytes()

    readable = cert_fr.run(
        "keys", "passphrase", env={"CTI_EXCHANGE_NEW_PASSPHRASE_FILE": str(_new_file(tmp_path, mode=0o644))}
    )
    assert readable.exit_code == 2 and "readable by group or others" in readable.stderr

    same = cert_fr.run(
        "keys", "passphrase", env={"CTI_EXCHANGE_NEW_PASSPHRASE_FILE": str(_new_file(tmp_path, PASSPHRASE))}
    )
    assert same.exit_code == 2 and "the new passphrase is the current one" in same.stderr

    short = cert_fr.run(
        "keys", "passphrase", env={"CTI_EXCHANGE_NEW_PASSPHRASE_FILE": str(_new_file(tmp_path, "short"))}
    )
    assert short.exit_code == 2 and "shorter than 12 characters" in short.stderr

    wrong = cert_fr.run(
        "keys",
        "passphrase",
        env={
            "CTI_EXCHANGE_PASSPHRASE": "not the passphrase at all",
            "CTI_EXCHANGE_NEW_PASSPHRASE_FILE": str(_new_file(tmp_path)),
        },
    )
    assert wrong.exit_code == 3

    nothing = cert_fr.run("keys", "passphrase")  # no terminal, no file: never from argv
    assert nothing.exit_code == 2 and "CTI_EXCHANGE_NEW_PASSPHRASE_FILE" in nothing.stderr
    assert private.read_bytes() == before


def test_a_wrong_passphrase_says_where_it_came_from(cert_fr: Agency, tmp_path: Path) -> None:
    """Found on a walkthrough: with both variables set the file wins, and "wrong passphrase"
    did not say which one was read."""
    stale = tmp_path / "stale.pass"
    stale.write_text("an old passphrase, long enough\n")
    stale.chmod(0o600)
    wrong = cert_fr.run("audit", "verify", "--sign-anyway", env={"CTI_EXCHANGE_PASSPHRASE_FILE": str(stale)})
    assert f"the passphrase came from the file {stale} (CTI_EXCHANGE_PASSPHRASE_FILE)" in wrong.stderr
    assert "CTI_EXCHANGE_PASSPHRASE is set too, and the file wins" in wrong.stderr
