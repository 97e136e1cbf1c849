"""Where TAXII passwords and tokens come from: an environment variable or a 0600 file named in
the partner entry. Never a command-line argument (visible to every local user through `ps`),
never written to a log."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cti_exchange.errors import ConfigError
from cti_exchange.home.key_store import KEYS_DIR_NAME
from cti_exchange.home.passphrase import PASSPHRASE_ENV, PASSPHRASE_FILE_ENV
from cti_exchange.home.safe_files import read_private_file, resolve_in_home
from cti_exchange.profile.model import TaxiiSettings

# Every variable cti-exchange reads itself: the key passphrase, its file, the profile home.
OWN_ENV_PREFIX = "CTI_EXCHANGE_"
assert PASSPHRASE_ENV.startswith(OWN_ENV_PREFIX) and PASSPHRASE_FILE_ENV.startswith(OWN_ENV_PREFIX)


def refuse_our_own_secrets(
    *,
    partner: str,
    base_dir: Path,
    secret_env: str | None,
    secret_file: str | None,
    environ: Mapping[str, str] | None = None,
    in_config: bool = False,
) -> None:
    """A partner entry naming our key passphrase or a key file would send it to the partner's
    server as its bearer token or password. Refused when the entry is set and again when it is
    used, since config.toml can be edited by hand. Names and paths are reported, never values."""
    env = os.environ if environ is None else environ
    env_option, file_option = (
        ("secret_env", "secret_file") if in_config else ("--secret-env", "--secret-file")
    )
    where = f" in {base_dir / 'config.toml'}" if in_config else ""
    if secret_env and secret_env.upper().startswith(OWN_ENV_PREFIX):
        raise ConfigError(
            f"partner {partner}: {env_option} {secret_env}{where} names one of cti-exchange's own "
            f"variables ({OWN_ENV_PREFIX}*), not a TAXII secret",
            hint=f"keep the partner's TAXII password or token in another variable: "
            f"`cti-exchange partners set {partner} --secret-env CTI_TAXII_TOKEN`",
        )
    if not secret_file:
        return
    path = resolve_in_home(secret_file, base_dir)
    hint = (
        "put only the partner's TAXII password or token in a 0600 file outside the profile's keys "
        f"directory: `cti-exchange partners set {partner} --secret-file FILE`"
    )
    keys_dir = base_dir / KEYS_DIR_NAME
    if _inside(path, keys_dir):
        raise ConfigError(
            f"partner {partner}: {file_option} {secret_file}{where} is in our key directory {keys_dir}",
            hint=hint,
        )
    passphrase_file = env.get(PASSPHRASE_FILE_ENV)
    if passphrase_file and _same_file(path, Path(passphrase_file)):
        raise ConfigError(
            f"partner {partner}: {file_option} {secret_file}{where} is our key passphrase file "
            f"(named by {PASSPHRASE_FILE_ENV})",
            hint=hint,
        )


def _inside(path: Path, directory: Path) -> bool:
    # resolve() follows symbolic links; comparing inodes also catches a hard link made elsewhere.
    if path.resolve().is_relative_to(directory.resolve()):
        return True
    try:
        return any(_same_file(path, entry) for entry in directory.iterdir())
    except OSError:
        return False


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet); comparing the resolved names was all there was
        return False


def _usable_in_a_header(value: str, source: str, partner: str) -> str:
    """A password or token travels in the Authorization header: a line end inside it would
    start another header, and HTTP headers carry Latin-1 only. Refused here, naming where it
    came from and never the value (requests would fail deep inside, and be retried as a
    network fault)."""
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or ord(c) > 0xFF for c in value):
        raise ConfigError(
            f"partner {partner}: the TAXII secret in {source} holds a line end, a control "
            "character or a character beyond Latin-1, which an HTTP header cannot carry",
            hint="copy the password or token again, on one line, without anything around it",
        )
    return value


def resolve_secret(
    settings: TaxiiSettings,
    *,
    partner: str,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    if settings.auth == "none":
        return None
    env = os.environ if environ is None else environ
    refuse_our_own_secrets(
        partner=partner,
        base_dir=base_dir,
        secret_env=settings.secret_env,
        secret_file=settings.secret_file,
        environ=env,
        in_config=True,
    )
    if settings.secret_env:
        value = (env.get(settings.secret_env) or "").strip()
        if value:
            return _usable_in_a_header(value, f"environment variable {settings.secret_env}", partner)
        if not settings.secret_file:
            raise ConfigError(
                f"partner {partner}: environment variable {settings.secret_env} is not set",
                hint=f"export {settings.secret_env} (or set secret_file to a 0600 file)",
            )
    if settings.secret_file:
        path = resolve_in_home(settings.secret_file, base_dir)
        data = read_private_file(path, what=f"TAXII secret file of partner {partner}")
        try:
            value = data.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"TAXII secret file {path} is not UTF-8 text (byte {exc.start})",
                hint="write the password or token into it as plain UTF-8 text",
            ) from None
        if not value:
            raise ConfigError(f"TAXII secret file {path} is empty")
        return _usable_in_a_header(value, f"TAXII secret file {path}", partner)
    raise ConfigError(
        f"partner {partner} uses {settings.auth} auth but names no secret",
        hint=f"cti-exchange partners set {partner} --secret-env VAR (or --secret-file FILE)",
    )
