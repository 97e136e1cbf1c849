"""`keys show` warns about a private key file that unlocking would refuse (it is what an
operator runs first, and it needs no passphrase), and `keys export -o` never replaces an
existing file without --force (it may be the partner's key file about to be pinned)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Agency


def test_keys_show_warns_about_a_private_key_file_others_can_read(cert_fr: Agency) -> None:
    private = cert_fr.home / "keys" / "private.jwe"
    quiet = cert_fr.run("keys", "show")
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr, quiet.stderr

    private.chmod(0o644)
    shown = cert_fr.run("keys", "show")
    assert shown.exit_code == 0, shown.stderr
    assert "cert-fr-sig-" in shown.stdout  # the keys are still listed
    assert f"warning: private key file {private}" in shown.stderr
    assert "chmod 600" in shown.stderr and "refuses it" in shown.stderr
    as_json = cert_fr.run("keys", "show", "--json")
    assert as_json.exit_code == 0 and as_json.json()["agency"] == "cert-fr"  # stdout stays JSON
    assert "warning: private key file" in as_json.stderr
    # What the warning foretells: a command that unlocks the keys refuses the file.
    assert cert_fr.run("keys", "rotate").exit_code == 2


def test_keys_export_does_not_replace_another_file(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> None:
    theirs = cert_in.export_keys(tmp_path / "cert-in.keys.json")
    before = theirs.read_bytes()
    refused = cert_fr.run("keys", "export", "-o", str(theirs))
    assert refused.exit_code == 2
    assert f"{theirs} already exists and holds the keys of cert-in, not ours; nothing was written" in (
        refused.stderr
    )
    assert "--force" in refused.stderr
    assert theirs.read_bytes() == before
    notes = tmp_path / "notes.txt"
    notes.write_text("phone numbers")
    assert cert_fr.run("keys", "export", "-o", str(notes)).exit_code == 2
    assert notes.read_text() == "phone numbers"

    # Our own earlier export is replaced (a fresh export after `keys rotate`), and --force
    # replaces anything.
    ours = cert_fr.export_keys(tmp_path / "cert-fr.keys.json")
    assert cert_fr.run("keys", "rotate").exit_code == 0
    again = cert_fr.run("keys", "export", "-o", str(ours))
    assert again.exit_code == 0, again.stderr
    assert cert_fr.signing_fingerprint() in again.stdout
    forced = cert_fr.run("keys", "export", "-o", str(theirs), "--force")
    assert forced.exit_code == 0, forced.stderr
    assert theirs.read_bytes() != before
