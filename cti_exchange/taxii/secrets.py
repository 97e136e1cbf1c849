"""Where TAXII passwords and tokens come from: an environment variable or a 0600 file named in
the partner entry. Never a command-line argument (visible to every local user through `ps`),
never written to a log."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cti_exchange.errors import ConfigError
from cti_exchange.home.safe_files import check_private_file
from cti_exchange.profile.model import TaxiiSettings


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
    if settings.secret_env:
        value = env.get(settings.secret_env)
        if value:
            return value
        if not settings.secret_file:
            raise ConfigError(
                f"partner {partner}: environment variable {settings.secret_env} is not set",
                hint=f"export {settings.secret_env} (or set secret_file to a 0600 file)",
            )
    if settings.secret_file:
        path = Path(settings.secret_file).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        check_private_file(path, what=f"TAXII secret file of partner {partner}")
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"TAXII secret file {path} is empty")
        return value
    raise ConfigError(
        f"partner {partner} uses {settings.auth} auth but names no secret",
        hint=f"cti-exchange partners set {partner} --secret-env VAR (or --secret-file FILE)",
    )
