"""The profile home: the directory that holds one agency's config, keys, partner pins and store.

Chosen by `--home DIR`, else `CTI_EXCHANGE_HOME`, else the platform's user config directory
(platformdirs), so one machine can hold several agencies side by side.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import platformdirs

from cti_exchange.errors import AuthError, ConfigError, IntegrityError
from cti_exchange.home.key_store import KEYS_DIR_NAME, KeyStore, PrivateKeys
from cti_exchange.home.passphrase import passphrase_source, read_passphrase
from cti_exchange.home.safe_files import (
    atomic_write,
    create_exclusive,
    ensure_private_dir,
    read_trusted_file,
)
from cti_exchange.keys.model import Keyring
from cti_exchange.profile.model import PartnerConfig, Profile
from cti_exchange.resources import load_schema, schemas_dir

HOME_ENV = "CTI_EXCHANGE_HOME"
CONFIG_NAME = "config.toml"
PROFILE_SCHEMA = "profile.schema.json"


def default_home() -> Path:
    return Path(platformdirs.user_config_dir("cti-exchange", appauthor=False))


def validate_profile_data(data: Any, *, source: str) -> None:
    """Raises ConfigError naming the first offending field of a profile document."""
    import jsonschema  # ~0.2 s to import: only when a config is new or changed (see below)

    field = _not_a_number(data)
    if field is not None:
        # TOML has `nan`, and NaN passes every JSON Schema bound (no comparison holds): a
        # `timeout_seconds = nan` would make every request wait for ever.
        raise ConfigError(
            f"{source}: {field}: nan is not a number", hint="give a number (see schemas/profile.schema.json)"
        )
    validator = jsonschema.Draft202012Validator(load_schema(PROFILE_SCHEMA))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        field = ".".join(str(part) for part in first.absolute_path) or "(top level)"
        hint = "fix that field (see schemas/profile.schema.json)"
        if first.validator == "additionalProperties":
            # A field this release does not know may have been written by a later one (an
            # agency going back to an earlier release), not typed by the operator.
            hint += "; a field a later cti-exchange writes is not known to this one: remove it"
        raise ConfigError(f"{source}: {field}: {_rule_broken(first)}", hint=hint)


def _rule_broken(error: Any) -> str:
    """What a field must be, from the schema alone: jsonschema's own message quotes the value,
    which may be a secret pasted in the wrong place (a token as `auth`, a password in a URL)
    and would reach the terminal, cron mail and the journal."""
    rule, expected = error.validator, error.validator_value
    if rule == "enum":
        return "must be one of " + ", ".join(map(str, expected))
    if rule == "const":
        return f"must be {expected}"
    if rule == "type":
        return "must be " + (" or ".join(expected) if isinstance(expected, list) else str(expected))
    if rule in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than"}
        return f"must be {words.get(rule, 'less than')} {expected}"
    if rule in ("minLength", "maxLength", "minItems", "maxItems"):
        word = "at least" if rule.startswith("min") else "at most"
        unit = "characters" if rule.endswith("Length") else "items"
        return f"must have {word} {expected} {unit}"
    if rule == "pattern":
        return f"does not have the expected form ({expected})"
    if rule in ("required", "additionalProperties", "dependentRequired"):
        return str(error.message)  # names properties, not values
    return f"breaks the schema's {rule!r} rule"


def _not_a_number(data: Any, path: str = "") -> str | None:
    """The dotted path of the first NaN in a profile document, if any."""
    if isinstance(data, float) and math.isnan(data):
        return path or "(top level)"
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in children:
        found = _not_a_number(value, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


class ProfileHome:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config_path = root / CONFIG_NAME
        self.keys = KeyStore(root / KEYS_DIR_NAME)
        self.partners_dir = root / "partners"
        self.logs_dir = root / "logs"
        self._profile: Profile | None = None
        self._private_keys: PrivateKeys | None = None
        self._passphrase: str | None = None
        # Told when opening the store has to wait for another process (the CLI, on a terminal).
        self.store_waiting: Callable[[str], None] | None = None

    @classmethod
    def resolve(cls, explicit: Path | None, environ: Mapping[str, str] | None = None) -> ProfileHome:
        env = os.environ if environ is None else environ
        if explicit is not None:
            return cls(explicit.expanduser().absolute())
        if env.get(HOME_ENV):
            return cls(Path(env[HOME_ENV]).expanduser().absolute())
        return cls(default_home())

    # -- config ---------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.config_path.exists()

    def load_profile(self) -> Profile:
        if self._profile is None:
            if not self.config_path.exists():
                raise ConfigError(
                    f"no agency profile in {self.root}",
                    hint="run `cti-exchange init --agency ID --name NAME`, or pass --home / "
                    f"set {HOME_ENV} to the right directory",
                )
            raw = read_trusted_file(
                self.config_path,
                what="config file",
                directory="profile home",
                hint="check its partners' fingerprints and servers before the next run",
            )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(
                    f"config file {self.config_path} is not UTF-8 text (byte {exc.start})",
                    hint="save it as UTF-8",
                ) from None
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{self.config_path}: invalid TOML: {exc}") from None
            stamp = self._validation_stamp(text)
            if not self._stamp_path.exists() or self._stamp_path.read_text() != stamp:
                validate_profile_data(data, source=str(self.config_path))
                self._write_stamp(stamp)
            self._profile = Profile.from_dict(data)
        return self._profile

    # A config that passed schema validation once is not validated again while it is unchanged:
    # most commands (a `triage list` in particular) then start without importing jsonschema.
    # The stamp is the SHA-256 of the config text and of the schema; whoever can rewrite the
    # stamp can rewrite the config too, so it guards nothing that was not already theirs.

    @property
    def _stamp_path(self) -> Path:
        return self.root / ".config.validated"

    def _validation_stamp(self, text: str) -> str:
        digest = hashlib.sha256(text.encode())
        digest.update((schemas_dir() / PROFILE_SCHEMA).read_bytes())
        return digest.hexdigest()

    def _write_stamp(self, stamp: str) -> None:
        try:
            atomic_write(self._stamp_path, stamp.encode(), 0o600)
        except OSError:
            pass  # a read-only home still works, it just validates every time

    def create_profile(self, profile: Profile) -> None:
        ensure_private_dir(self.root, what="profile home")
        content = self._profile_bytes(profile)
        try:
            create_exclusive(self.config_path, content, 0o600)
        except FileExistsError:
            raise ConfigError(
                f"a profile already exists at {self.config_path}; init never overwrites it",
                hint="use another --home for a second agency",
            ) from None
        self._write_stamp(self._validation_stamp(content.decode()))
        self._profile = profile

    def save_profile(self, profile: Profile) -> None:
        content = self._profile_bytes(profile)
        atomic_write(self.config_path, content, 0o600)
        self._write_stamp(self._validation_stamp(content.decode()))
        self._profile = profile

    def _profile_bytes(self, profile: Profile) -> bytes:
        import tomli_w

        data = profile.to_dict()
        validate_profile_data(data, source="the new profile")
        header = "# cti-exchange agency profile; schema: schemas/profile.schema.json\n"
        return (header + tomli_w.dumps(data)).encode()

    def resolve_path(self, relative: str) -> Path:
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.root / path

    def store_path(self) -> Path:
        return self.resolve_path(self.load_profile().store_path)

    # -- our keys -------------------------------------------------------------------------

    def keyring(self) -> Keyring:
        return self.keys.load_keyring()

    def passphrase(self) -> str:
        if self._passphrase is None:
            self._passphrase = read_passphrase(purpose=f"keys in {self.keys.dir}")
        return self._passphrase

    def private_keys(self) -> PrivateKeys:
        """Unlocks our private keys once per process (the KDF is deliberately slow)."""
        if self._private_keys is None:
            passphrase = self.passphrase()
            try:
                self._private_keys = self.keys.unlock(passphrase)
            except AuthError as exc:  # a wrong passphrase: say where it came from
                raise AuthError(exc.message, hint=f"the passphrase came from {passphrase_source()}") from None
        return self._private_keys

    def remember_unlocked(self, passphrase: str, private_keys: PrivateKeys) -> None:
        self._passphrase = passphrase
        self._private_keys = private_keys

    # -- partner pins ---------------------------------------------------------------------

    def partner_keys_path(self, name: str) -> Path:
        return self.partners_dir / f"{name}.keys.json"

    def partner_keyring(self, partner: PartnerConfig) -> Keyring:
        path = self.resolve_path(partner.jwks)
        raw = read_trusted_file(
            path,
            what=f"pinned keys of partner {partner.name}",
            directory="partner key directory",
            hint="then pin them again from the partner's key file "
            f"(`cti-exchange partners update-keys {partner.name}`)",
        )
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc})") from None
        keyring = Keyring.from_document(doc, source=str(path))
        if keyring.by_thumbprint(partner.fingerprint) is None:
            # Pinning writes the file with the key it pins: another ring there was put in its
            # place since (a security event, as an altered signed copy is). Not "update-keys":
            # it reads this file first, and must not take whatever is there as the old ring.
            raise IntegrityError(
                f"{path} no longer holds the key pinned for {partner.name} (fingerprint "
                f"{partner.fingerprint}): the file was replaced or edited since it was pinned",
                hint=f"treat it as a security event: find out who changed it; the keys as "
                f"{partner.name} signed them are in {self.partner_evidence_path(partner.name)}; "
                "restore the file from your backup",
            )
        return keyring

    def partner_evidence_path(self, name: str) -> Path:
        """The signed key document a partner's pinned keys last came in (kept as evidence)."""
        return self.partners_dir / f"{name}.signed.json"

    def save_partner_keys(self, name: str, keyring: Keyring, signed_document: bytes) -> str:
        """Keeps the partner's ring and, as evidence, the signed document it came in."""
        ensure_private_dir(self.partners_dir, what="partner key directory")
        path = self.partner_keys_path(name)
        atomic_write(
            path,
            (json.dumps(keyring.to_document(), indent=2, sort_keys=True) + "\n").encode(),
            0o644,
        )
        atomic_write(self.partner_evidence_path(name), signed_document, 0o644)
        return str(path.relative_to(self.root))

    def remove_partner_keys(self, name: str) -> None:
        for path in (self.partner_keys_path(name), self.partner_evidence_path(name)):
            path.unlink(missing_ok=True)
