"""The profile home against other local users: no write through a link planted before `init`,
no symlinked or foreign-owned secret file, no key directory another user could write into, log
files 0600 through rotation, and non-UTF-8 secret files reported as such (exit 2, not 70)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cti_exchange.home import logs
from tests.conftest import PASSPHRASE, Agency, CliResult, run_cli

STRANGER = 65534  # nobody


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture
def give_away(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Makes a file or directory belong to another user: chown as root; otherwise we pretend to
    be another user, so that everything we own looks foreign (only the first check then runs)."""

    def give(path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, STRANGER, STRANGER, follow_symlinks=False)
        else:
            uid = os.geteuid()
            monkeypatch.setattr(os, "geteuid", lambda: uid + 1)

    return give


def _init_with_passphrase_file(home: Path, passphrase_file: Path) -> CliResult:
    env = {"CTI_EXCHANGE_PASSPHRASE": "", "CTI_EXCHANGE_PASSPHRASE_FILE": str(passphrase_file)}
    return run_cli("init", "--agency", "cert-fr", "--name", "CERT-FR", home=home, env=env)


def _passphrase_file(path: Path, data: bytes = PASSPHRASE.encode() + b"\n") -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


# -- init never writes through a planted link -----------------------------------------------


def test_init_does_not_write_through_links_planted_at_the_old_temporary_names(tmp_path: Path) -> None:
    home = tmp_path / "fr"
    (home / "keys").mkdir(parents=True, mode=0o777)
    home.chmod(0o777)  # as a careless `mkdir` or a shared directory leaves it
    victims = {}
    for planted in (home / ".config.toml.new", home / "keys" / ".private.jwe.new"):
        victim = tmp_path / f"victim-{planted.name}"
        victim.write_text("precious\n")
        planted.symlink_to(victim)
        victims[victim] = planted
    result = run_cli("init", "--agency", "cert-fr", "--name", "CERT-FR", home=home)
    assert result.exit_code == 0, result.stderr
    for victim, planted in victims.items():
        assert victim.read_text() == "precious\n"
        assert planted.is_symlink()  # left for the user to look at; never followed
    assert _mode(home) == 0o700 and _mode(home / "keys") == 0o700  # tightened: they are ours
    assert not [p for p in home.rglob("*.new") if not p.is_symlink()]  # no temporary file left


# -- secret files: no symlink, no other owner -------------------------------------------------


def test_a_symlinked_private_key_file_is_refused(cert_fr: Agency, tmp_path: Path) -> None:
    private = cert_fr.home / "keys" / "private.jwe"
    elsewhere = tmp_path / "elsewhere.jwe"
    private.rename(elsewhere)
    private.symlink_to(elsewhere)  # its target is 0600 and ours: only the link is wrong
    result = cert_fr.run("keys", "export", "-o", str(tmp_path / "x.json"))
    _one_line_error(result, f"private key file {private} is a symbolic link", "replace the link")


def test_a_symlinked_passphrase_file_is_refused(tmp_path: Path) -> None:
    real = _passphrase_file(tmp_path / "passphrase")
    link = tmp_path / "passphrase-link"
    link.symlink_to(real)
    result = _init_with_passphrase_file(tmp_path / "fr", link)
    _one_line_error(result, f"passphrase file {link} is a symbolic link")
    assert not (tmp_path / "fr" / "keys").exists()
    assert _init_with_passphrase_file(tmp_path / "fr", real).exit_code == 0


def test_a_passphrase_file_of_another_user_is_refused(
    tmp_path: Path, give_away: Callable[[Path], None]
) -> None:
    path = _passphrase_file(tmp_path / "passphrase")  # 0600: the mode alone would pass
    give_away(path)
    result = _init_with_passphrase_file(tmp_path / "fr", path)
    _one_line_error(result, f"passphrase file {path} belongs to user {path.stat().st_uid}")


def test_a_private_key_file_of_another_user_is_refused(cert_fr: Agency, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file away needs root")  # the passphrase-file test covers the rule
    private = cert_fr.home / "keys" / "private.jwe"
    os.chown(private, STRANGER, STRANGER)
    result = cert_fr.run("keys", "export", "-o", str(tmp_path / "x.json"))
    _one_line_error(result, f"private key file {private} belongs to user {STRANGER}")


# -- the home and keys/ directories ------------------------------------------------------------


@pytest.mark.parametrize("where", ["home", "keys"])
@pytest.mark.parametrize(
    "command",
    [("keys", "export", "-o", "{tmp}/x.json"), ("keys", "rotate", "--use", "sig")],
    ids=["unlock", "write"],
)
def test_a_directory_others_can_write_into_is_refused(
    cert_fr: Agency, tmp_path: Path, where: str, command: tuple[str, ...]
) -> None:
    directory = cert_fr.home if where == "home" else cert_fr.home / "keys"
    directory.chmod(0o770)
    before = sorted(p.name for p in (cert_fr.home / "keys").iterdir())
    result = cert_fr.run(*(arg.format(tmp=tmp_path) for arg in command))
    _one_line_error(
        result, f"{directory} is writable by group or others (mode 0770)", f"chmod 700 {directory}"
    )
    assert sorted(p.name for p in (cert_fr.home / "keys").iterdir()) == before
    directory.chmod(0o700)
    again = cert_fr.run(*(arg.format(tmp=tmp_path) for arg in command))
    assert again.exit_code == 0, again.stderr


def test_revoking_needs_a_private_key_directory_too(cert_fr: Agency) -> None:
    kid = cert_fr.run("keys", "show", "--json").json()["keys"][0]["kid"]
    (cert_fr.home / "keys").chmod(0o757)
    result = cert_fr.run("keys", "revoke", kid)
    _one_line_error(result, f"key directory {cert_fr.home / 'keys'} is writable by group or others")


def test_a_home_of_another_user_is_refused(
    cert_fr: Agency, tmp_path: Path, give_away: Callable[[Path], None]
) -> None:
    give_away(cert_fr.home)
    result = cert_fr.run("keys", "export", "-o", str(tmp_path / "x.json"))
    _one_line_error(result, f"profile home {cert_fr.home} belongs to user {cert_fr.home.stat().st_uid}")


def test_a_home_reached_through_symlinks_is_accepted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)  # like /data: the parents are not ours to judge
    (tmp_path / "dotlocal").symlink_to(data)
    home = tmp_path / "dotlocal" / "cert-fr"
    assert run_cli("init", "--agency", "cert-fr", "--name", "CERT-FR", home=home).exit_code == 0
    (tmp_path / "home-link").symlink_to(home)  # the home itself a link: its target is judged
    result = run_cli("keys", "export", "-o", str(tmp_path / "x.json"), home=tmp_path / "home-link")
    assert result.exit_code == 0, result.stderr


def test_a_symlinked_keys_directory_is_judged_by_its_target(cert_fr: Agency, tmp_path: Path) -> None:
    keys = cert_fr.home / "keys"
    target = tmp_path / "vault" / "keys"
    target.parent.mkdir()
    keys.rename(target)
    keys.symlink_to(target)
    export = ("keys", "export", "-o", str(tmp_path / "x.json"))
    assert cert_fr.run(*export).exit_code == 0
    target.chmod(0o777)
    _one_line_error(cert_fr.run(*export), f"key directory {keys} is writable by group or others")


# -- logs --------------------------------------------------------------------------------------


@pytest.fixture
def small_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    monkeypatch.setattr(logs, "_MAX_BYTES", 300)
    logger = logging.getLogger("cti_exchange")
    handlers, level = list(logger.handlers), logger.level
    old_umask = os.umask(0o022)  # the usual one, under which plain open() makes 0644 files
    try:
        yield logger
    finally:
        os.umask(old_umask)
        for handler in logger.handlers[:]:
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        logger.setLevel(level)


def test_log_files_stay_0600_through_rotation(small_logs: logging.Logger, tmp_path: Path) -> None:
    path = logs.enable_file_log(tmp_path / "logs")
    for n in range(40):
        small_logs.info("pulled envelope %d from cert-in", n)
    files = sorted(path.parent.iterdir())
    assert len(files) == 1 + logs._BACKUPS  # rotated, and rotated again
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert _mode(path.parent) == 0o700


def test_a_log_left_0644_is_tightened(small_logs: logging.Logger, tmp_path: Path) -> None:
    old = tmp_path / "logs" / logs.LOG_NAME
    old.parent.mkdir()
    old.write_text("an older version's line\n")
    old.chmod(0o644)
    logs.enable_file_log(old.parent)
    assert _mode(old) == 0o600 and old.read_text().startswith("an older version's line\n")


def _old_rotated_logs(home: Path, *numbers: int) -> list[Path]:
    """Rotated logs as an older version left them: 0644."""
    (home / "logs").mkdir(mode=0o700, exist_ok=True)
    paths = [home / "logs" / f"{logs.LOG_NAME}.{n}" for n in numbers]
    for path in paths:
        path.write_text(f"an older version's line in {path.name}\n")
        path.chmod(0o644)
    return paths


def test_rotated_logs_left_0644_are_tightened_never_through_a_link(
    small_logs: logging.Logger, cert_fr: Agency, tmp_path: Path
) -> None:
    rotated = _old_rotated_logs(cert_fr.home, 1, 2)
    elsewhere = tmp_path / "not-a-log.txt"
    elsewhere.write_text("someone else's file\n")
    elsewhere.chmod(0o644)
    link = cert_fr.home / "logs" / f"{logs.LOG_NAME}.3"
    link.symlink_to(elsewhere)
    result = cert_fr.run("sync")  # the command that logs, from cron
    assert result.exit_code == 0, result.stderr
    assert {p.name: _mode(p) for p in rotated} == {p.name: 0o600 for p in rotated}
    assert rotated[0].read_text() == f"an older version's line in {rotated[0].name}\n"
    assert link.is_symlink() and _mode(elsewhere) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_a_rotated_log_of_another_user_is_left_alone(small_logs: logging.Logger, cert_fr: Agency) -> None:
    ours, theirs = _old_rotated_logs(cert_fr.home, 1, 2)
    os.chown(theirs, STRANGER, STRANGER)
    assert cert_fr.run("sync").exit_code == 0
    assert _mode(ours) == 0o600 and _mode(theirs) == 0o644


# -- non-UTF-8 secret files --------------------------------------------------------------------


def test_a_passphrase_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = _passphrase_file(tmp_path / "passphrase", "correct horse battery stâple\n".encode("latin-1"))
    result = _init_with_passphrase_file(tmp_path / "fr", path)
    _one_line_error(result, f"passphrase file {path} is not UTF-8 text (byte 24)")


def test_a_taxii_secret_file_that_is_not_utf8_is_a_clear_error(partnered: tuple[Agency, Agency]) -> None:
    fr, _ = partnered
    secret = fr.home / "taxii.secret"
    secret.write_bytes(b"p\xe4ssword\n")
    secret.chmod(0o600)
    configured = fr.run(
        "partners",
        "set",
        "cert-in",
        "--api-root",
        "http://127.0.0.1:9/taxii2/api/",  # never contacted: the secret is read first
        "--read-collection",
        "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d01",
        "--write-collection",
        "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d02",
        "--auth",
        "basic",
        "--username",
        "cert-fr",
        "--secret-file",
        "taxii.secret",
    )
    assert configured.exit_code == 0, configured.stderr
    result = fr.run("doctor")
    _one_line_error(result, f"TAXII secret file {secret} is not UTF-8 text (byte 1)")


# -- files that say whom to trust: written by nobody but us -------------------------------


def _bundle(tmp_path: Path) -> Path:
    path = tmp_path / "iocs.csv"
    path.write_text("value,type,tlp\n198.51.100.7,ipv4-addr,green\n")
    return path


@pytest.mark.parametrize(
    ("relative", "what"),
    [
        ("config.toml", "config file"),
        ("partners/cert-in.keys.json", "pinned keys of partner cert-in"),
        ("keys/public.json", "public key ring"),
    ],
)
def test_a_trust_file_others_can_write_is_refused_and_doctor_says_so(
    partnered: tuple[Agency, Agency], tmp_path: Path, relative: str, what: str
) -> None:
    """A config (fingerprints, servers, max TLP) or pinned key file left 0666 was used as is:
    anyone on the machine could pin their own encryption key for a partner, and we sealed to
    it (doctor: all ok)."""
    cert_fr, _ = partnered
    target = cert_fr.home / relative
    target.chmod(0o666)
    result = cert_fr.run("push", str(_bundle(tmp_path)), "--to", "cert-in", "--queue")
    _one_line_error(
        result, f"{what} {target} is writable by group or others (mode 0666)", f"chmod go-w {target}"
    )
    doctor = cert_fr.run("doctor", "--offline", "--json")
    assert doctor.exit_code == 2, doctor.stderr
    failed = [c for c in doctor.json()["checks"] if c["status"] == "fail"]
    assert failed and all(f"{what} {target} is writable" in c["detail"] for c in failed), failed

    target.chmod(0o644)  # readable by all, as public keys are: fine
    result = cert_fr.run("push", str(_bundle(tmp_path)), "--to", "cert-in", "--queue")
    assert result.exit_code == 0, result.stderr


def test_a_partner_key_directory_others_can_write_is_refused(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    cert_fr, _ = partnered
    (cert_fr.home / "partners").chmod(0o777)
    result = cert_fr.run("push", str(_bundle(tmp_path)), "--to", "cert-in", "--queue")
    _one_line_error(
        result, f"partner key directory {cert_fr.home / 'partners'} is writable by group or others"
    )


def test_a_config_linked_from_a_directory_others_can_write_is_refused(
    cert_fr: Agency, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (cert_fr.home / "config.toml").rename(shared / "config.toml")
    (cert_fr.home / "config.toml").symlink_to(shared / "config.toml")
    result = cert_fr.run("status")
    _one_line_error(result, f"the directory config file {cert_fr.home / 'config.toml'} links into", "0777")


def test_a_config_of_another_user_is_refused(cert_fr: Agency, give_away: Callable[[Path], None]) -> None:
    give_away(cert_fr.home / "config.toml")
    result = cert_fr.run("status")
    _one_line_error(result, f"config file {cert_fr.home / 'config.toml'} belongs to user")
