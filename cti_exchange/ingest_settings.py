"""What an ingest run is given: who we are and the defaults we apply (`IngestContext`), and
how to read the inputs (`IngestOptions`). See ingest.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cti_exchange.errors import UsageError
from cti_exchange.readers.interface import ReadLimits
from cti_exchange.stix.tlp import Tlp

if TYPE_CHECKING:
    from pathlib import Path

    from cti_exchange.profile.model import Profile

DEFAULT_MAX_REPORTED = 10_000
# Below this size a file is read in one process: starting workers costs more than it saves.
PARALLEL_MIN_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class IngestContext:
    """Who we are and the defaults we apply: from the agency profile, or built by hand."""

    identity: dict[str, Any]  # the agency's STIX identity object
    default_tlp: Tlp  # for rows and objects that carry no TLP; never CLEAR
    default_confidence: int
    lifetime_days: dict[str, int]  # ipv4-addr, ipv6-addr, domain-name, url, email-addr, ...
    now: datetime  # injected so that runs (and tests) are reproducible
    default_tlp_given: bool = False  # chosen for this run (--tlp), not the profile's default

    def __post_init__(self) -> None:
        identity_id = self.identity.get("id") if isinstance(self.identity, dict) else None
        if not isinstance(identity_id, str) or not identity_id.startswith("identity--"):
            raise UsageError("the ingest context needs an identity object with an identity id")
        if self.default_tlp is Tlp.CLEAR:
            # Unmarked input must not become publicly shareable by default.
            raise UsageError("the default TLP may not be CLEAR", hint="mark CLEAR rows explicitly")
        if not 0 <= self.default_confidence <= 100:
            raise UsageError("the default confidence must be between 0 and 100")
        if self.now.tzinfo is None:
            raise UsageError("the ingest clock must be timezone-aware")

    @classmethod
    def for_profile(cls, profile: Profile, now: datetime, default_tlp: Tlp | None = None) -> IngestContext:
        """The agency's identity and sharing defaults; `default_tlp` overrides the profile's."""
        sharing = profile.sharing
        return cls(
            identity=profile.identity,
            default_tlp=default_tlp or sharing.default_tlp,
            default_confidence=sharing.default_confidence,
            lifetime_days=dict(sharing.lifetime_days),
            now=now,
            default_tlp_given=default_tlp is not None,
        )


@dataclass(frozen=True)
class IngestOptions:
    format: str | None = None  # csv | text | stix | misp; None: detected per file
    strict: bool = False  # reject likely false positives instead of warning
    keep_personal_data: bool = False  # share values that look like personal data
    include_non_ids: bool = False  # MISP: also read attributes with to_ids false
    max_json_bytes: int = ReadLimits.max_json_bytes
    max_line_bytes: int = ReadLimits.max_line_bytes
    max_reported: int = DEFAULT_MAX_REPORTED
    # Processes for large CSV files (forked, Linux/macOS only); 1 reads everything in this
    # process. The CLI passes the number of CPUs.
    workers: int = 1
    parallel_min_bytes: int = PARALLEL_MIN_BYTES  # smaller CSV files are read in one process
    # What messages call an input, where not its path: `-` (standard input) is spooled to a
    # private file (cli/stdin_input.py) and named "-" in every message and report.
    labels: Mapping[str, str] = field(default_factory=dict)

    def label_of(self, path: Path) -> str:
        return self.labels.get(str(path), str(path))
