"""A profile whose store existed never starts a new, empty one in its place (walkthrough D1):
a deleted store, an unmounted disk or a mistyped `[store] path` would otherwise lose the replay
protection, cursors, channel sequence numbers and audit trail, with exit 0."""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w

from tests.conftest import Agency, make_agency

MARKER = ".store-created"


def _remove_store(agency: Agency) -> Path:
    path = agency.home / "store.sqlite"
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return path


def _refused_as_lost(result_stderr: str, exit_code: int, path: Path) -> None:
    assert exit_code == 4, result_stderr
    assert result_stderr.count("\n") == 1, result_stderr
    assert f"the store {path} is missing, but this profile had one" in result_stderr
    assert "restore it from a backup" in result_stderr


def test_a_deleted_store_is_refused_by_every_command_and_not_made_again(cert_in: Agency) -> None:
    assert (cert_in.home / MARKER).exists()  # init made the store, and recorded it
    path = _remove_store(cert_in)
    for args in (("status",), ("triage", "list"), ("sync",), ("audit", "verify"), ("sent",)):
        result = cert_in.run(*args)
        _refused_as_lost(result.stderr, result.exit_code, path)
        assert not path.exists(), args
    doctor = cert_in.run("doctor", "--offline")
    assert doctor.exit_code == 4, doctor.stderr
    assert f"store: the store {path} is missing, but this profile had one" in doctor.stderr
    # The exact step that starts over knowingly, and it works.
    assert f"`rm {cert_in.home / MARKER}`" in cert_in.run("status").stderr
    (cert_in.home / MARKER).unlink()
    assert cert_in.run("status").exit_code == 0
    assert path.exists() and (cert_in.home / MARKER).exists()


def test_a_mistyped_store_path_creates_no_directory(cert_in: Agency) -> None:
    config = cert_in.home / "config.toml"
    data = tomllib.loads(config.read_text())
    data["store"]["path"] = str(cert_in.home / "typo" / "store.sqlite")
    config.write_text(tomli_w.dumps(data))
    result = cert_in.run("triage", "list")
    _refused_as_lost(result.stderr, result.exit_code, cert_in.home / "typo" / "store.sqlite")
    assert not (cert_in.home / "typo").exists()


def test_a_profile_of_an_earlier_release_records_its_store_at_the_next_opening(cert_in: Agency) -> None:
    (cert_in.home / MARKER).unlink()  # as a release before the marker left it
    assert cert_in.run("status").exit_code == 0
    assert (cert_in.home / MARKER).exists()
    path = _remove_store(cert_in)
    result = cert_in.run("status")
    _refused_as_lost(result.stderr, result.exit_code, path)


def test_a_new_profile_makes_its_store_and_uses_it(tmp_path: Path) -> None:
    agency = make_agency(tmp_path, "cert-de", "CERT-Bund")
    assert (agency.home / "store.sqlite").exists() and (agency.home / MARKER).exists()
    assert agency.run("status").exit_code == 0
    checks = agency.run("doctor", "--offline", "--json").json()["checks"]
    assert [c["status"] for c in checks if c["name"] == "store"] == ["ok"], checks


def test_a_key_change_the_trail_cannot_record_is_not_made(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    # Found on the stop's walkthrough: `keys rotate` saved the new keys, then failed to record
    # them in a store that was refused (missing, newer, read-only): a rotation the trail never saw.
    cert_fr, cert_in = partnered
    assert cert_in.run("status").exit_code == 0
    keys_before = {p.name: p.read_bytes() for p in (cert_in.home / "keys").iterdir()}
    pinned_before = {p.name: p.read_bytes() for p in (cert_in.home / "partners").iterdir()}
    path = _remove_store(cert_in)

    for args in (
        ("keys", "rotate"),
        (
            "keys",
            "revoke",
            cert_in.run("keys", "show", "--json").json()["keys"][0]["kid"],
            "--reason",
            "test",
        ),
        ("partners", "update-keys", "cert-fr", "--jwks", str(cert_fr.export_keys(tmp_path / "fr.json"))),
    ):
        result = cert_in.run(*args)
        _refused_as_lost(result.stderr, result.exit_code, path)
    assert {p.name: p.read_bytes() for p in (cert_in.home / "keys").iterdir()} == keys_before
    assert {p.name: p.read_bytes() for p in (cert_in.home / "partners").iterdir()} == pinned_before
