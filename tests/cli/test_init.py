"""`init`: profile and keys in a home directory, secrets handled as the issue requires."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import jsonschema

from cti_exchange.resources import load_schema
from tests.conftest import PASSPHRASE, run_cli


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_valid_profile_and_private_keys(tmp_path: Path) -> None:
    home = tmp_path / "fr"
    result = run_cli("init", "--agency", "cert-fr", "--name", "CERT-FR", "--json", home=home)
    assert result.exit_code == 0, result.stderr
    out = result.json()
    assert out["agency"] == "cert-fr"
    assert out["identity"].startswith("identity--")
    assert {k["kid"].split("-")[2] for k in out["keys"]} == {"sig", "enc"}
    assert all(k["kid"].split("-")[3].isdigit() for k in out["keys"])  # dated key ids

    config = tomllib.loads((home / "config.toml").read_text())
    jsonschema.validate(config, load_schema("profile.schema.json"))
    assert config["agency"]["country"] == "FR"
    assert config["agency"]["identity"]["type"] == "identity"

    assert _mode(home / "keys") == 0o700
    private = home / "keys" / "private.jwe"
    assert _mode(private) == 0o600
    assert _mode(home / "store.sqlite") == 0o600  # partner intelligence, TLP:RED included
    blob = private.read_text()
    assert blob.count(".") == 4  # a compact JWE, not a JSON key
    assert '"d"' not in blob and '"kty"' not in blob  # JSON in clear; base64url has no quotes
    public = json.loads((home / "keys" / "public.json").read_text())
    assert all("d" not in key for key in public["keys"])


def test_identity_id_is_stable_for_an_agency(tmp_path: Path) -> None:
    ids = []
    for n in range(2):
        result = run_cli(
            "init", "--agency", "cert-fr", "--name", "CERT-FR", "--json", home=tmp_path / f"h{n}"
        )
        ids.append(result.json()["identity"])
    assert ids[0] == ids[1]


def test_init_never_overwrites(tmp_path: Path) -> None:
    home = tmp_path / "fr"
    assert run_cli("init", "--agency", "cert-fr", "--name", "CERT-FR", home=home).exit_code == 0
    before = (home / "keys" / "private.jwe").read_bytes()
    again = run_cli("init", "--agency", "cert-fr", "--name", "Other", home=home)
    assert again.exit_code == 2
    assert again.stderr.count("\n") == 1 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    assert (home / "keys" / "private.jwe").read_bytes() == before


def test_init_refuses_leftover_keys_without_profile(tmp_path: Path) -> None:
    home = tmp_path / "fr"
    assert run_cli("init", "--agency", "cert-fr", "--name", "CERT-FR", home=home).exit_code == 0
    (home / "config.toml").unlink()
    again = run_cli("init", "--agency", "cert-fr", "--name", "CERT-FR", home=home)
    assert again.exit_code == 2
    assert "interrupted init" in again.stderr


def test_home_from_environment(tmp_path: Path) -> None:
    home = tmp_path / "env-home"
    result = run_cli("init", "--agency", "cert-in", "--name", "CERT-In", env={"CTI_EXCHANGE_HOME": str(home)})
    assert result.exit_code == 0, result.stderr
    assert (home / "config.toml").exists()
    shown = run_cli("keys", "show", "--json", env={"CTI_EXCHANGE_HOME": str(home)})
    assert shown.json()["agency"] == "cert-in"


def test_passphrase_rules(tmp_path: Path) -> None:
    short = run_cli(
        "init",
        "--agency",
        "cert-fr",
        "--name",
        "F",
        home=tmp_path / "a",
        env={"CTI_EXCHANGE_PASSPHRASE": "short"},
    )
    assert short.exit_code == 2 and "shorter than 12" in short.stderr  # a usage error, not authentication

    none = run_cli(
        "init",
        "--agency",
        "cert-fr",
        "--name",
        "F",
        home=tmp_path / "b",
        env={"CTI_EXCHANGE_PASSPHRASE": ""},
    )
    assert none.exit_code == 3
    assert "CTI_EXCHANGE_PASSPHRASE_FILE" in none.stderr

    loose = tmp_path / "pass.txt"
    loose.write_text(PASSPHRASE + "\n")
    loose.chmod(0o644)
    refused = run_cli(
        "init",
        "--agency",
        "cert-fr",
        "--name",
        "F",
        home=tmp_path / "c",
        env={"CTI_EXCHANGE_PASSPHRASE": "", "CTI_EXCHANGE_PASSPHRASE_FILE": str(loose)},
    )
    assert refused.exit_code == 2 and "chmod 600" in refused.stderr

    loose.chmod(0o600)
    ok = run_cli(
        "init",
        "--agency",
        "cert-fr",
        "--name",
        "F",
        home=tmp_path / "c",
        env={"CTI_EXCHANGE_PASSPHRASE": "", "CTI_EXCHANGE_PASSPHRASE_FILE": str(loose)},
    )
    assert ok.exit_code == 0, ok.stderr
    # the file's passphrase (without its newline) unlocks the keys
    shown = run_cli("keys", "export", "-o", str(tmp_path / "x.json"), home=tmp_path / "c")
    assert shown.exit_code == 0, shown.stderr


def test_a_country_that_is_no_iso_code_is_said_as_the_option_typed(tmp_path: Path) -> None:
    # It quoted the profile schema's pattern for agency.country (error-hunt walkthrough C3).
    for typed in ("ZZZ", "F", "F1", "ÉÉ"):
        result = run_cli(
            "init", "--agency", "ncsc", "--name", "NCSC", "--country", typed, home=tmp_path / "x"
        )
        assert result.exit_code == 2, result.stderr
        assert "is not a two-letter ISO 3166 country code" in result.stderr and "^[A-Z]" not in result.stderr
        assert result.stderr.count("\n") == 1
    assert not (tmp_path / "x" / "config.toml").exists()


def test_country_needed_when_not_in_id(tmp_path: Path) -> None:
    result = run_cli("init", "--agency", "ncsc", "--name", "NCSC", home=tmp_path / "x")
    assert result.exit_code == 2 and "--country" in result.stderr
    ok = run_cli("init", "--agency", "ncsc", "--name", "NCSC", "--country", "gb", home=tmp_path / "x")
    assert ok.exit_code == 0


def test_bad_agency_id_names_the_field(tmp_path: Path) -> None:
    result = run_cli("init", "--agency", "CERT FR", "--name", "x", "--country", "FR", home=tmp_path / "x")
    assert result.exit_code == 2
    assert "--agency 'CERT FR'" in result.stderr  # the option given (was the config field agency.id)
    assert not (tmp_path / "x" / "keys").exists()


def test_clear_default_tlp_refused(tmp_path: Path) -> None:
    result = run_cli(
        "init", "--agency", "cert-fr", "--name", "F", "--default-tlp", "clear", home=tmp_path / "x"
    )
    assert result.exit_code == 2 and "CLEAR" in result.stderr


def test_an_invalid_agency_id_is_named_as_the_option_before_anything_else(tmp_path: Path) -> None:
    """`init --agency CERT_FR` said "cannot tell the country of agency 'CERT_FR'" (and, with
    --country, quoted the schema's regular expression for the field agency.id)."""
    for extra in ([], ["--country", "FR"]):
        result = run_cli("init", "--agency", "CERT_FR", "--name", "CERT-FR", *extra, home=tmp_path / "fr")
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith("cti-exchange: error: --agency 'CERT_FR' is not an agency id")
        assert "country" not in result.stderr and "^[a-z0-9]" not in result.stderr
        assert result.stderr.count("\n") == 1
        assert not (tmp_path / "fr").exists()


def test_init_on_an_existing_profile_refuses_before_asking_for_a_passphrase(tmp_path: Path) -> None:
    """It asked for a new passphrase twice, then said the profile exists."""
    home = tmp_path / "fr"
    assert run_cli("init", "--agency", "cert-fr", "--name", "CERT-FR", home=home).exit_code == 0
    # No passphrase anywhere: a prompt would fail without a terminal instead of this message.
    again = run_cli(
        "init", "--agency", "cert-fr", "--name", "Other", home=home, env={"CTI_EXCHANGE_PASSPHRASE": ""}
    )
    assert again.exit_code == 2 and "already exists" in again.stderr, again.stderr
    unknown_country = run_cli(
        "init", "--agency", "xyz", "--name", "X", home=tmp_path / "x", env={"CTI_EXCHANGE_PASSPHRASE": ""}
    )
    assert unknown_country.exit_code == 2 and "--country" in unknown_country.stderr, unknown_country.stderr


def test_init_on_a_home_that_is_a_file_says_so(tmp_path: Path) -> None:
    """Walkthrough T4: it ended in an internal error (FileExistsError)."""
    file = tmp_path / "iocs.csv"
    file.write_text("type,value\nipv4,203.0.113.5\n")
    result = run_cli("init", "--agency", "cert-xx", "--name", "X", "--country", "XX", home=file)
    assert result.exit_code == 2, result.stderr
    assert result.stderr == (
        f"cti-exchange: error: the profile home {file} is a file, not a directory; pass --home "
        "(or set CTI_EXCHANGE_HOME to) a new directory, or an empty one\n"
    )
    assert file.read_text() == "type,value\nipv4,203.0.113.5\n"
