"""Our own keys on disk, in `<home>/keys/` (mode 0700):

- `public.json`: our key ring (public JWKs with status), not secret;
- `private.jwe`: every private key we hold, encrypted with the passphrase (mode 0600).

Before the keys are read or written, the profile home (the parent of `keys/`) and `keys/`
must belong to us or root and be writable by nobody else: whoever can write there can swap
our keys. `keys/` is also closed to others; its group may list it (`check_key_dir`, the one
rule that unlocking, writing and `doctor` apply).

See keys/README.md for the layout and the rotation procedure.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from cti_exchange.errors import ConfigError, KeyStoreError
from cti_exchange.home.safe_files import (
    PRIVATE_FILE_MODE,
    atomic_write,
    check_private_dir,
    create_exclusive,
    ensure_private_dir,
    read_private_file,
    read_trusted_file,
)
from cti_exchange.keys.model import Keyring

PrivateKeys = dict[str, dict[str, Any]]  # kid -> private JWK


KEYS_DIR_NAME = "keys"  # the key store's directory in the profile home

# The most `keys/` may allow: 0750. Nobody but us (or root) may write there, or they could
# swap our keys (check_private_dir). Its group may list and enter it, as an admin group's
# backup or monitoring tools might: what it holds is public.json, public anyway, and
# private.jwe, 0600, encrypted, and checked on its own (read_private_file). Others may not.
KEY_DIR_MAX_MODE = 0o750


def check_key_dir(directory: Path) -> None:
    """Refuses a key directory that does not follow the rule above (ConfigError, exit 2)."""
    check_private_dir(directory, what="key directory")  # ours or root's, no group/other write
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o777 & ~KEY_DIR_MAX_MODE:  # setgid, as group-shared trees use, is not access
        raise ConfigError(
            f"key directory {directory} is open to others (mode {mode:04o})",
            hint=f"run `chmod 700 {directory}` (at most {KEY_DIR_MAX_MODE:04o})",
        )


class KeyStore:
    def __init__(self, keys_dir: Path) -> None:
        self.dir = keys_dir
        self.public_path = keys_dir / "public.json"
        self.private_path = keys_dir / "private.jwe"

    def exists(self) -> bool:
        return self.public_path.exists() or self.private_path.exists()

    def load_keyring(self) -> Keyring:
        raw = read_trusted_file(
            self.public_path,
            what="public key ring",
            directory="key directory",
            hint="check that it lists our keys only (`cti-exchange keys show`, against a backup)",
        )
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise KeyStoreError(f"{self.public_path} is not valid JSON ({exc})") from None
        return Keyring.from_document(doc, source=str(self.public_path))

    def unlock(self, passphrase: str) -> PrivateKeys:
        from cti_exchange.keys.protection import unprotect_private_keys  # jwcrypto: only here

        self.check_dirs()
        blob = read_private_file(self.private_path, what="private key file")
        keys = unprotect_private_keys(blob, passphrase, source=str(self.private_path))
        return {str(key["kid"]): key for key in keys}

    def create(self, keyring: Keyring, private_keys: PrivateKeys, passphrase: str) -> None:
        """First write of a key store; refuses to overwrite anything that exists."""
        from cti_exchange.keys.protection import protect_private_keys

        ensure_private_dir(self.dir.parent, what="profile home")
        ensure_private_dir(self.dir, what="key directory")
        try:
            create_exclusive(
                self.private_path,
                protect_private_keys(list(private_keys.values()), passphrase),
                PRIVATE_FILE_MODE,
            )
            create_exclusive(self.public_path, _ring_bytes(keyring), 0o644)
        except FileExistsError:
            raise KeyStoreError(
                f"keys already exist in {self.dir}; init never overwrites a key",
                hint="use another --home, or `keys rotate` to make new keys",
            ) from None

    def save(self, keyring: Keyring, private_keys: PrivateKeys, passphrase: str) -> None:
        """Replaces both files; the private one first, so a crash never leaves a public key
        whose private half is missing."""
        from cti_exchange.keys.protection import protect_private_keys

        self.check_dirs()
        atomic_write(
            self.private_path,
            protect_private_keys(list(private_keys.values()), passphrase),
            PRIVATE_FILE_MODE,
        )
        atomic_write(self.public_path, _ring_bytes(keyring), 0o644)

    def save_keyring(self, keyring: Keyring) -> None:
        """Status-only changes (revocation) need no private key and no passphrase."""
        self.check_dirs()
        atomic_write(self.public_path, _ring_bytes(keyring), 0o644)

    def check_dirs(self) -> None:
        """What unlocking and every write check first: the profile home and `keys/`."""
        check_private_dir(self.dir.parent, what="profile home")
        check_key_dir(self.dir)


def _ring_bytes(keyring: Keyring) -> bytes:
    return (json.dumps(keyring.to_document(), indent=2, sort_keys=True) + "\n").encode()
