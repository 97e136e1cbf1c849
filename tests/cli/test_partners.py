"""`partners add|list|show|remove|update-keys|set`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from cti_exchange.resources import load_schema
from tests.conftest import PASSPHRASE, Agency, make_agency, pin


def test_two_agencies_exchange_and_pin_keys(partnered: tuple[Agency, Agency]) -> None:
    cert_fr, cert_in = partnered
    listed = cert_fr.run("partners", "list", "--json").json()
    assert [p["agency_id"] for p in listed] == ["cert-in"]
    assert listed[0]["fingerprint"] == cert_in.signing_fingerprint()
    shown = cert_in.run("partners", "show", "cert-fr", "--json").json()
    assert shown["country"] == "FR" and len(shown["keys"]) == 2
    text = cert_in.run("partners", "list")
    assert "cert-fr" in text.stdout


def test_wrong_fingerprint_refused_in_one_line(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> None:
    doc = cert_fr.export_keys(tmp_path / "fr.json")
    wrong = cert_in.signing_fingerprint()  # a real thumbprint, of the wrong agency
    result = cert_in.run("partners", "add", "cert-fr", "--jwks", str(doc), "--fingerprint", wrong)
    assert result.exit_code == 4
    assert result.stderr.count("\n") == 1 and "does not match" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert cert_in.run("partners", "list", "--json").json() == []


def test_encryption_key_fingerprint_is_not_enough(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> None:
    doc = cert_fr.export_keys(tmp_path / "fr.json")
    keys = cert_fr.run("keys", "show", "--json").json()["keys"]
    enc = next(k["thumbprint"] for k in keys if k["use"] == "enc")
    result = cert_in.run("partners", "add", "cert-fr", "--jwks", str(doc), "--fingerprint", enc)
    assert result.exit_code == 4 and "did not sign" in result.stderr


def test_private_member_refused(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> None:
    doc = json.loads(cert_fr.export_keys(tmp_path / "fr.json").read_text())
    import base64

    payload = json.loads(base64.urlsafe_b64decode(doc["payload"] + "=="))
    payload["keys"][0]["d"] = "AAAA"
    doc["payload"] = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = cert_in.run(
        "partners",
        "add",
        "cert-fr",
        "--jwks",
        str(bad),
        "--fingerprint",
        cert_fr.signing_fingerprint(),
    )
    assert result.exit_code == 2
    assert "private key material" in result.stderr


def test_unsigned_or_tampered_files_refused(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text((cert_fr.home / "keys" / "public.json").read_text())
    fp = cert_fr.signing_fingerprint()
    r1 = cert_in.run("partners", "add", "cert-fr", "--jwks", str(plain), "--fingerprint", fp)
    assert r1.exit_code == 2 and "unsigned" in r1.stderr

    doc = json.loads(cert_fr.export_keys(tmp_path / "fr.json").read_text())
    sig = doc["signatures"][0]["signature"]
    doc["signatures"][0]["signature"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    r2 = cert_in.run("partners", "add", "cert-fr", "--jwks", str(tampered), "--fingerprint", fp)
    assert r2.exit_code == 4 and "no signature verifies" in r2.stderr

    missing = cert_in.run(
        "partners", "add", "cert-fr", "--jwks", str(tmp_path / "nope.json"), "--fingerprint", fp
    )
    assert missing.exit_code == 2 and "does not exist" in missing.stderr

    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x00\xff{not json")
    r3 = cert_in.run("partners", "add", "cert-fr", "--jwks", str(garbage), "--fingerprint", fp)
    assert r3.exit_code == 2 and r3.stderr.count("\n") == 1


def test_own_keys_and_duplicates_refused(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> None:
    own = cert_fr.export_keys(tmp_path / "own.json")
    r = cert_fr.run(
        "partners", "add", "me", "--jwks", str(own), "--fingerprint", cert_fr.signing_fingerprint()
    )
    assert r.exit_code == 2 and "our own" in r.stderr
    pin(cert_in, cert_fr, tmp_path)
    doc = tmp_path / "cert-fr.keys.json"
    again = cert_in.run(
        "partners",
        "add",
        "cert-fr",
        "--jwks",
        str(doc),
        "--fingerprint",
        cert_fr.signing_fingerprint(),
    )
    assert again.exit_code == 2 and "already pinned" in again.stderr
    alias = cert_in.run(
        "partners",
        "add",
        "france",
        "--jwks",
        str(doc),
        "--fingerprint",
        cert_fr.signing_fingerprint(),
    )
    assert alias.exit_code == 2 and "already pinned as partner" in alias.stderr


def test_update_keys_from_another_agency_refused(tmp_path: Path, partnered: tuple[Agency, Agency]) -> None:
    cert_fr, cert_in = partnered
    impostor = make_agency(tmp_path, "cert-xx", "Impostor")
    doc = impostor.export_keys(tmp_path / "xx.json")
    r = cert_in.run(
        "partners",
        "update-keys",
        "cert-fr",
        "--jwks",
        str(doc),
        "--fingerprint",
        impostor.signing_fingerprint(),
    )
    assert r.exit_code == 2 and "not of cert-fr" in r.stderr  # a mix-up, not a forgery


def test_set_taxii_settings_validates_against_schema(partnered: tuple[Agency, Agency]) -> None:
    cert_fr, _ = partnered
    r = cert_fr.run(
        "partners",
        "set",
        "cert-in",
        "--api-root",
        "https://taxii.example.in/exchange/",
        "--read-collection",
        "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d01",
        "--write-collection",
        "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d02",
        "--auth",
        "basic",
        "--username",
        "cert-fr",
        "--secret-env",
        "CTI_TAXII_SECRET",
        "--max-tlp",
        "green",
    )
    assert r.exit_code == 0, r.stderr
    config = tomllib.loads((cert_fr.home / "config.toml").read_text())
    jsonschema.validate(config, load_schema("profile.schema.json"))
    taxii = config["partners"]["cert-in"]["taxii"]
    assert taxii["auth"] == "basic" and taxii["secret_env"] == "CTI_TAXII_SECRET"
    assert config["partners"]["cert-in"]["max_tlp"] == "green"
    bad = cert_fr.run("partners", "set", "cert-in", "--secret-env", "lower-case")
    assert bad.exit_code == 2 and "--secret-env takes the NAME of an environment variable" in bad.stderr
    unknown = cert_fr.run("partners", "set", "nobody", "--max-tlp", "red")
    assert unknown.exit_code == 2 and "no partner named" in unknown.stderr
    bad_tlp = cert_fr.run("partners", "set", "cert-in", "--max-tlp", "purple")
    assert bad_tlp.exit_code == 2 and "unknown TLP" in bad_tlp.stderr


def test_set_with_nothing_to_set_says_so(partnered: tuple[Agency, Agency]) -> None:
    """`partners set cert-in` alone printed "Updated partner cert-in" and exited 0."""
    cert_fr, _ = partnered
    before = (cert_fr.home / "config.toml").read_text()
    result = cert_fr.run("partners", "set", "cert-in")
    assert result.exit_code == 2
    assert result.stderr.startswith("cti-exchange: error: nothing to set for partner cert-in")
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert (cert_fr.home / "config.toml").read_text() == before


def test_set_warns_when_a_named_file_is_not_there(partnered: tuple[Agency, Agency], tmp_path: Path) -> None:
    """A mistyped --secret-file was saved in silence ("Updated partner cert-in"); the next pull
    failed. It is still saved (the file may come later) but the command says so now, and where
    a relative name is looked for."""
    cert_fr, _ = partnered
    api = ["--api-root", "https://taxii.example.in/exchange/", "--auth", "basic", "--username", "cert-fr"]
    missing = tmp_path / "no-such.secret"
    result = cert_fr.run("partners", "set", "cert-in", *api, "--secret-file", str(missing))
    assert result.exit_code == 0, result.stderr
    assert f"warning: --secret-file {missing} does not exist (yet)" in result.stderr
    relative = cert_fr.run("partners", "set", "cert-in", "--secret-file", "taxii.secret")
    assert f"--secret-file {cert_fr.home / 'taxii.secret'} does not exist" in relative.stderr
    assert "a relative path is read from the profile home" in relative.stderr
    (cert_fr.home / "taxii.secret").write_text("s3cret-password\n")
    (cert_fr.home / "taxii.secret").chmod(0o600)
    there = cert_fr.run("partners", "set", "cert-in", "--secret-file", "taxii.secret")
    assert there.exit_code == 0 and there.stderr == ""


@pytest.mark.parametrize("option", ["--secret-file", "--client-key"])
def test_set_warns_when_a_secret_file_is_readable_by_others(
    partnered: tuple[Agency, Agency], tmp_path: Path, option: str
) -> None:
    """A 0644 secret file was saved with "Updated partner cert-in" alone; the next pull (a cron
    run) refused it. The command says so now, with the fix, and never shows the secret."""
    cert_fr, _ = partnered
    loose = tmp_path / "loose.secret"
    loose.write_text("s3cret-password\n")
    loose.chmod(0o644)
    api = ["--api-root", "https://taxii.example.in/exchange/", "--auth", "basic", "--username", "cert-fr"]
    assert cert_fr.run("partners", "set", "cert-in", *api).exit_code == 0
    result = cert_fr.run("partners", "set", "cert-in", option, str(loose))
    assert result.exit_code == 0, result.stderr
    (warning,) = result.stderr.splitlines()
    assert f"{loose} is readable by group or others (mode 0644)" in warning
    assert "push and pull with cert-in fail until then" in warning and f"chmod 600 {loose}" in warning
    assert "s3cret" not in result.stdout + result.stderr
    loose.chmod(0o600)
    assert cert_fr.run("partners", "set", "cert-in", option, str(loose)).stderr == ""


def test_a_password_in_the_api_root_url_is_refused_and_never_echoed(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    cert_fr, _ = partnered
    before = (cert_fr.home / "config.toml").read_text()
    url = "https://cert-fr:hunter2-secret@taxii.example.in/exchange/"
    refused = cert_fr.run("partners", "set", "cert-in", "--api-root", url)
    assert refused.exit_code == 2
    assert "holds a user name or password" in refused.stderr and "--secret-file" in refused.stderr
    assert "hunter2" not in refused.stderr + refused.stdout
    assert (cert_fr.home / "config.toml").read_text() == before  # nothing saved
    odd = cert_fr.run("partners", "set", "cert-in", "--api-root", "http:cert-fr:S3cretPW@taxii.example/")
    assert odd.exit_code == 2 and "S3cretPW" not in odd.stderr + odd.stdout
    # The same URL written into config.toml by hand is refused before any request, unechoed.
    ok = cert_fr.run("partners", "set", "cert-in", "--api-root", "https://taxii.example.in/exchange/")
    assert ok.exit_code == 0, ok.stderr
    config = cert_fr.home / "config.toml"
    config.write_text(config.read_text().replace("https://taxii.example.in/exchange/", url))
    iocs = tmp_path / "iocs.txt"
    iocs.write_text("203.0.113.5\n")
    pushed = cert_fr.run("push", str(iocs), "--to", "cert-in")
    assert pushed.exit_code == 2 and "holds a user name or password" in pushed.stderr
    assert "hunter2" not in pushed.stderr + pushed.stdout


def test_a_secret_given_to_secret_env_is_named_as_such_and_never_echoed(
    partnered: tuple[Agency, Agency],
) -> None:
    """`--secret-env 'S3cr3t!pa ss'`: the secret itself, typed where its variable's name goes.
    The answer was the schema's regular expression for the field of config.toml."""
    cert_fr, _ = partnered
    before = (cert_fr.home / "config.toml").read_text()
    audit_before = cert_fr.run("audit", "show", "--json").stdout
    for secret in ("S3cr3t!pa ss", "hunter2-topsecret", "cti_taxii_secret"):
        refused = cert_fr.run(
            "partners", "set", "cert-in", "--api-root", "https://taxii.example.in/x/", "--secret-env", secret
        )
        assert refused.exit_code == 2, refused.stderr
        assert (
            "--secret-env takes the NAME of an environment variable (e.g. CTI_TAXII_SECRET), "
            "not the secret" in refused.stderr
        )
        assert "shell history" in refused.stderr
        assert secret not in refused.stderr + refused.stdout
        assert "expected form" not in refused.stderr and "schema" not in refused.stderr
    assert (cert_fr.home / "config.toml").read_text() == before  # nothing saved
    assert cert_fr.run("audit", "show", "--json").stdout == audit_before  # nor recorded


def test_remove(partnered: tuple[Agency, Agency]) -> None:
    cert_fr, _ = partnered
    refused = cert_fr.run("partners", "remove", "cert-in")
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert cert_fr.run("partners", "remove", "cert-in", "--yes").exit_code == 0
    assert cert_fr.run("partners", "list", "--json").json() == []
    assert not (cert_fr.home / "partners" / "cert-in.keys.json").exists()


def test_our_passphrase_and_key_files_cannot_be_a_partner_secret(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """Named as a partner's secret, they would go to its server as the password or token."""
    cert_fr, _ = partnered
    base = ["partners", "set", "cert-in", "--api-root", "https://taxii.example.in/exchange/"]
    base += ["--auth", "bearer"]
    config = cert_fr.home / "config.toml"
    before = config.read_text()
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    passphrase_file.chmod(0o600)
    keys = cert_fr.home / "keys"
    linked = tmp_path / "innocent-looking.secret"
    linked.symlink_to(keys / "private.jwe")
    refused = {
        "--secret-env CTI_EXCHANGE_PASSPHRASE": ["--secret-env", "CTI_EXCHANGE_PASSPHRASE"],
        "--secret-env CTI_EXCHANGE_PASSPHRASE_FILE": ["--secret-env", "CTI_EXCHANGE_PASSPHRASE_FILE"],
        "--secret-env CTI_EXCHANGE_HOME": ["--secret-env", "CTI_EXCHANGE_HOME"],
        "--secret-file keys/private.jwe": ["--secret-file", "keys/private.jwe"],
        f"--secret-file {keys}": ["--secret-file", str(keys / "sub" / ".." / "private.jwe")],
        f"--secret-file {linked}": ["--secret-file", str(linked)],
        f"--secret-file {passphrase_file}": ["--secret-file", str(passphrase_file)],
    }
    for label, option in refused.items():
        result = cert_fr.run(*base, *option, env={"CTI_EXCHANGE_PASSPHRASE_FILE": str(passphrase_file)})
        assert result.exit_code == 2, label
        assert result.stderr.count("\n") == 1, label
        assert "partner cert-in" in result.stderr and option[0] in result.stderr, label
        assert "; " in result.stderr, label  # followed by how to fix it
        assert PASSPHRASE not in result.stdout + result.stderr, label
        assert config.read_text() == before, label  # nothing saved
    # A file next to the passphrase file, and a CTI_ variable outside our namespace, are fine.
    other = tmp_path / "taxii.secret"
    other.write_text("token")
    other.chmod(0o600)
    ok = cert_fr.run(*base, "--secret-file", str(other), "--secret-env", "CTI_TAXII_TOKEN")
    assert ok.exit_code == 0, ok.stderr


def test_max_tlp_red_says_red_still_needs_allow_red(partnered: tuple[Agency, Agency]) -> None:
    """`partners set X --max-tlp red` said "Updated" and nothing more, while `partners show`
    then read "Max TLP we send: TLP:RED; RED allowed: False" and a RED push was refused."""
    cert_fr, _ = partnered
    red = cert_fr.run("partners", "set", "cert-in", "--max-tlp", "red")
    assert red.exit_code == 0, red.stderr
    assert "TLP:RED is still not sent to cert-in" in red.stderr
    assert "partners set cert-in --allow-red" in red.stderr
    allowed = cert_fr.run("partners", "set", "cert-in", "--allow-red", "--max-tlp", "red")
    assert allowed.exit_code == 0 and "still not sent" not in allowed.stderr
    amber = cert_fr.run("partners", "set", "cert-in", "--max-tlp", "amber")
    assert amber.exit_code == 0 and "still not sent" not in amber.stderr
    shown = cert_fr.run("partners", "show", "cert-in")
    assert "Max TLP we send: TLP:AMBER; RED allowed: yes" in shown.stdout  # not Python's True


def test_secrets_pasted_into_config_toml_are_never_echoed(partnered: tuple[Agency, Agency]) -> None:
    """A hand-edited config.toml with a password in the API root, a token in its query, or a
    bearer token pasted as `auth`: no listing, --json or schema error repeats them (they
    would reach the terminal, cron mail and the journal)."""
    _, india = partnered
    wired = india.run(
        "partners",
        "set",
        "cert-fr",
        "--api-root",
        "https://taxii.example/api/",
        "--read-collection",
        "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d01",
        "--write-collection",
        "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d02",
    )
    assert wired.exit_code == 0, wired.stderr
    config = india.home / "config.toml"
    original = config.read_text()
    config.write_text(
        original.replace(
            'api_root = "https://taxii.example/api/"',
            'api_root = "https://user:hunter2-pass@taxii.example/api/?api_key=tok-abc-123"',
        )
    )
    for args in (
        ("partners", "list"),
        ("partners", "list", "--json"),
        ("partners", "show", "cert-fr"),
        ("partners", "show", "cert-fr", "--json"),
    ):
        shown = india.run(*args)
        assert shown.exit_code == 0, shown.stderr
        assert "hunter2-pass" not in shown.stdout + shown.stderr and "tok-abc-123" not in shown.stdout
        assert "taxii.example" in shown.stdout
    config.write_text(original.replace("taxii.example/api/", "taxii.example/api/?api_key=tok-abc-123"))
    checked = india.run("doctor", "--offline")  # the output most often pasted into a ticket
    assert "taxii.example/api/?..." in checked.stdout and "tok-abc-123" not in checked.stdout + checked.stderr
    config.write_text(
        original.replace(
            'api_root = "https://taxii.example/api/"',
            'api_root = "https://taxii.example/api/"\nauth = "Bearer tok-xyz-987"',
        )
    )
    refused = india.run("partners", "list")
    assert refused.exit_code == 2
    assert "auth: must be one of none, basic, bearer" in refused.stderr
    assert "tok-xyz-987" not in refused.stderr


def test_a_partner_name_in_another_case_or_mistyped_is_suggested(partnered: tuple[Agency, Agency]) -> None:
    fr, _ = partnered
    upper = fr.run("partners", "set", "CERT-IN", "--max-tlp", "green")
    assert upper.exit_code == 2
    assert "no partner named 'CERT-IN'; did you mean 'cert-in'?" in upper.stderr
    typo = fr.run("partners", "show", "cert-inn")
    assert "did you mean 'cert-in'?" in typo.stderr
    far = fr.run("partners", "show", "nobody")
    assert "did you mean" not in far.stderr and "known partners: cert-in" in far.stderr


def test_a_key_file_pinned_under_another_agencys_name_is_warned_of(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path
) -> None:
    """CERT-FR's file pinned as `cert-in` (the files mixed up): the fingerprint matches the file,
    so it is pinned, but the analyst is told at once whose file it is."""
    doc = cert_fr.export_keys(tmp_path / "fr.json")
    fingerprint = cert_fr.signing_fingerprint()
    result = cert_in.run("partners", "add", "cert-xx", "--jwks", str(doc), "--fingerprint", fingerprint)
    assert result.exit_code == 0, result.stderr
    assert (
        "the key file is CERT-FR's (agency id cert-fr), pinned under the local name cert-xx" in result.stderr
    )
    same = cert_in.run("partners", "remove", "cert-xx", "--yes")
    assert same.exit_code == 0, same.stderr
    named = cert_in.run("partners", "add", "cert-fr", "--jwks", str(doc), "--fingerprint", fingerprint)
    assert named.exit_code == 0 and "the key file is" not in named.stderr
