"""Typed model of an agency profile (config.toml), built from and turned back into plain data.

The model does no I/O: `cti_exchange.home` reads and writes the file. Validation against
`schemas/profile.schema.json` happens before a `Profile` is built, so the constructors here can
trust the shape of their input.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from cti_exchange.stix.tlp import Tlp

# Namespace for identifiers cti-exchange derives itself (identity ids, channel ids, ...).
CTI_EXCHANGE_NAMESPACE = uuid.UUID("4b5e6f0a-3c1d-5e2f-8a9b-0c1d2e3f4a5b")

# Default lifetimes (days) per IOC type, used for valid_until when the input gives none.
# Short for infrastructure that changes hands quickly, long for file hashes.
DEFAULT_LIFETIME_DAYS: dict[str, int] = {
    "ipv4-addr": 30,
    "ipv6-addr": 30,
    "domain-name": 90,
    "url": 60,
    "email-addr": 180,
    "file": 365,
    "rule": 365,
    "other": 90,
}


# TAXII 2.1 (OASIS Standard), section 5.2.1: a Collection's `id` is an `identifier`, which the
# Data Types table defines as "an RFC 4122-compliant Version 4 UUID". The form is checked, not
# the version: `cti-exchange serve` derives version 5 ids (server/provisioning.py), and other
# servers mint theirs as they like. Either case is accepted, and stored as given: the id goes
# into the collection's URL as the server wrote it.
_COLLECTION_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
EXAMPLE_COLLECTION_ID = "0389298c-1d84-56a2-b7a8-48e1f2722470"


def collection_id_problem(value: str) -> str | None:
    """Why `value` cannot be a TAXII 2.1 collection id (said after the option's name), or None.

    A value starting with `-` is an option the shell moved into its place: in
    `--read-collection $ID --write-collection X`, an empty `$ID` leaves `--write-collection`."""
    if not value.strip():
        return "is empty (an unset variable?)"
    if value.startswith("-"):
        return f"took the option {value!r} as its value: the id before it is missing (an empty variable?)"
    if not _COLLECTION_ID.fullmatch(value):
        return f"{value!r} is not a TAXII collection id: TAXII 2.1 collection ids are UUIDs"
    if not value.strip("0-"):
        return "is the nil UUID, a placeholder: no server gives a collection that id"
    return None


# The largest answer read from a partner's TAXII server, unless its `max_response_bytes` says
# less. One answer may hold a page of envelopes, each up to envelope.max_envelope_bytes
# (256 MiB) as base64: past this, a page is asked for again with fewer objects (pull.py), and
# an answer this large holding one object is refused. Counted after Content-Encoding: a gzip
# bomb stops here too. Also the most a partner's `max_response_bytes` may be.
MAX_RESPONSE_BYTES = 512 * 1024 * 1024


def identity_id_for(agency_id: str) -> str:
    """The stable STIX id of an agency's identity object."""
    return f"identity--{uuid.uuid5(CTI_EXCHANGE_NAMESPACE, 'agency:' + agency_id)}"


@dataclass(frozen=True)
class TaxiiSettings:
    """How we reach a partner over TAXII 2.1. Secrets are never stored here, only where they are."""

    api_root: str
    read_collection: str | None = None
    write_collection: str | None = None
    auth: str = "none"  # none | basic | bearer
    username: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    timeout_seconds: float = 30.0
    retry_budget_seconds: float = 120.0
    page_size: int = 1000
    # The largest answer read from this server (1 KiB to MAX_RESPONSE_BYTES): lower on a host
    # short of memory, or for a partner whose envelopes are known to be small.
    max_response_bytes: int = MAX_RESPONSE_BYTES

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaxiiSettings:
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        defaults = TaxiiSettings(api_root=self.api_root)
        out: dict[str, Any] = {"api_root": self.api_root}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name != "api_root" and value is not None and value != getattr(defaults, name):
                out[name] = value
        return out


@dataclass(frozen=True)
class PartnerConfig:
    """A partner agency: its pinned keys and what we may send it."""

    name: str  # our local handle, e.g. "cert-in"
    agency_id: str  # the agency id the partner signs with
    display_name: str
    fingerprint: str  # RFC 7638 thumbprint of the signing key pinned out of band
    jwks: str  # pinned public JWKS file, relative to the profile home
    max_tlp: Tlp
    allow_red: bool = False
    country: str | None = None
    identity_id: str | None = None
    added: str | None = None
    taxii: TaxiiSettings | None = None

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> PartnerConfig:
        return cls(
            name=name,
            agency_id=data["agency_id"],
            display_name=data["name"],
            fingerprint=data["fingerprint"],
            jwks=data["jwks"],
            max_tlp=Tlp.parse(data["max_tlp"]),
            allow_red=bool(data.get("allow_red", False)),
            country=data.get("country"),
            identity_id=data.get("identity_id"),
            added=data.get("added"),
            taxii=TaxiiSettings.from_dict(data["taxii"]) if "taxii" in data else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "agency_id": self.agency_id,
            "name": self.display_name,
            "fingerprint": self.fingerprint,
            "jwks": self.jwks,
            "max_tlp": self.max_tlp.value,
            "allow_red": self.allow_red,
        }
        for key in ("country", "identity_id", "added"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.taxii is not None:
            out["taxii"] = self.taxii.to_dict()
        return out


@dataclass(frozen=True)
class SharingDefaults:
    default_tlp: Tlp = Tlp.AMBER
    default_confidence: int = 50
    lifetime_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIFETIME_DAYS))


@dataclass(frozen=True)
class EnvelopeLimits:
    max_clock_skew_seconds: int = 300
    max_age_days: int = 30
    # A bomb is stopped here; inflating costs about twice this in memory (docs/BENCHMARKS.md).
    max_plaintext_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class Operations:
    undelivered_after_hours: int = 24
    key_lifetime_days: int = 365
    # How long a command waits for another process holding the store (an export, a sync, an
    # sqlite3 shell) before it ends with exit 5.
    store_wait_seconds: int = 30
    # New objects a pull processes from one partner's collection in one run. A server
    # (compromised, or broken) could send new objects for ever. Stopping here loses nothing:
    # every object read is stored and recorded as processed, the cursor moves with each page
    # that names its date_added, and the next run reads again from the cursor, skipping what
    # was processed (only new objects count). Far above a real backlog: an object is a whole
    # envelope.
    max_objects_per_run: int = 200_000

    def to_dict(self) -> dict[str, int]:
        """The settings every release knows, and the later ones only where set: a setting
        written at its default would make the release before it refuse config.toml (its
        schema allows no unknown field), so an agency could not go back to it without editing
        the file (upgrade walkthrough, stop 28)."""
        out = {
            "undelivered_after_hours": self.undelivered_after_hours,
            "key_lifetime_days": self.key_lifetime_days,
        }
        defaults = Operations()
        for name in ("store_wait_seconds", "max_objects_per_run"):
            if getattr(self, name) != getattr(defaults, name):
                out[name] = getattr(self, name)
        return out


@dataclass(frozen=True)
class Profile:
    """Everything config.toml says about our agency."""

    agency_id: str
    agency_name: str
    country: str
    identity: dict[str, Any]
    store_path: str
    sharing: SharingDefaults = field(default_factory=SharingDefaults)
    envelope: EnvelopeLimits = field(default_factory=EnvelopeLimits)
    operations: Operations = field(default_factory=Operations)
    partners: dict[str, PartnerConfig] = field(default_factory=dict)

    @property
    def identity_id(self) -> str:
        return str(self.identity["id"])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        sharing = data.get("sharing", {})
        lifetimes = dict(DEFAULT_LIFETIME_DAYS)
        lifetimes.update(sharing.get("lifetime_days", {}))
        return cls(
            agency_id=data["agency"]["id"],
            agency_name=data["agency"]["name"],
            country=data["agency"]["country"],
            identity=dict(data["agency"]["identity"]),
            store_path=data["store"]["path"],
            sharing=SharingDefaults(
                default_tlp=Tlp.parse(sharing.get("default_tlp", "amber")),
                default_confidence=int(sharing.get("default_confidence", 50)),
                lifetime_days=lifetimes,
            ),
            envelope=EnvelopeLimits(**data.get("envelope", {})),
            operations=Operations(**data.get("operations", {})),
            partners={
                name: PartnerConfig.from_dict(name, entry) for name, entry in data.get("partners", {}).items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "agency": {
                "id": self.agency_id,
                "name": self.agency_name,
                "country": self.country,
                "identity": self.identity,
            },
            "store": {"path": self.store_path},
            "sharing": {
                "default_tlp": self.sharing.default_tlp.value,
                "default_confidence": self.sharing.default_confidence,
                "lifetime_days": dict(self.sharing.lifetime_days),
            },
            "envelope": {
                "max_clock_skew_seconds": self.envelope.max_clock_skew_seconds,
                "max_age_days": self.envelope.max_age_days,
                "max_plaintext_bytes": self.envelope.max_plaintext_bytes,
            },
            "operations": self.operations.to_dict(),
            "partners": {name: p.to_dict() for name, p in sorted(self.partners.items())},
        }

    def with_partner(self, partner: PartnerConfig) -> Profile:
        partners = dict(self.partners)
        partners[partner.name] = partner
        return replace(self, partners=partners)

    def without_partner(self, name: str) -> Profile:
        partners = {k: v for k, v in self.partners.items() if k != name}
        return replace(self, partners=partners)

    def partner_by_agency(self, agency_id: str) -> PartnerConfig | None:
        for partner in self.partners.values():
            if partner.agency_id == agency_id:
                return partner
        return None


def new_identity(agency_id: str, name: str, created: str) -> dict[str, Any]:
    """The STIX 2.1 identity object that marks everything this agency produces."""
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id_for(agency_id),
        "created": created,
        "modified": created,
        "name": name,
        "identity_class": "organization",
        "sectors": ["government-national"],
    }
