"""Fixtures for the ingest tests: a hand-built context (no profile), helpers to ingest a file or
a text, and the OASIS validator run on every bundle a test produces."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from stix2validator import ValidationOptions, validate_instance

from cti_exchange.ingest import IngestResult, ingest_files
from cti_exchange.ingest_settings import IngestContext, IngestOptions
from cti_exchange.profile.model import DEFAULT_LIFETIME_DAYS
from cti_exchange.stix.bundle import build_bundle, serialise_bundle
from cti_exchange.stix.tlp import Tlp

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
DATA = Path(__file__).resolve().parent.parent / "data" / "ingest"
NOW = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)

IDENTITY: dict[str, Any] = {
    "type": "identity",
    "spec_version": "2.1",
    "id": "identity--6b1c0f5e-1f0a-5c3e-9a51-3f0b7d1c2e44",
    "created": "2025-01-01T00:00:00.000Z",
    "modified": "2025-01-01T00:00:00.000Z",
    "name": "CERT-FR",
    "identity_class": "organization",
}


def make_context(**changes: Any) -> IngestContext:
    values: dict[str, Any] = {
        "identity": IDENTITY,
        "default_tlp": Tlp.AMBER,
        "default_confidence": 50,
        "lifetime_days": dict(DEFAULT_LIFETIME_DAYS),
        "now": NOW,
    }
    values.update(changes)
    return IngestContext(**values)


@pytest.fixture
def context() -> IngestContext:
    return make_context()


IngestText = Callable[..., IngestResult]


@pytest.fixture
def ingest_text(tmp_path: Path) -> IngestText:
    """Write `content` (str or bytes) to a file named `name` and ingest it."""

    def run(
        content: str | bytes,
        name: str = "input.txt",
        context: IngestContext | None = None,
        **options: Any,
    ) -> IngestResult:
        path = tmp_path / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return ingest_files([path], context or make_context(), IngestOptions(**options))

    return run


def oasis_validate(bundle: dict[str, Any]) -> None:
    """Assert the OASIS stix2-validator (STIX 2.1 JSON schemas and MUST checks) accepts the
    serialised bundle; its SHOULD advice is warnings and does not fail the test."""
    document = json.loads(serialise_bundle(bundle))
    results = validate_instance(document, ValidationOptions(version="2.1"))
    errors = [str(error) for error in results.errors]
    assert results.is_valid, errors[:10]


def bundle_of(result: IngestResult) -> dict[str, Any]:
    return build_bundle(result.objects, IDENTITY)


def indicators(result: IngestResult) -> list[dict[str, Any]]:
    return [o for o in result.objects if o["type"] == "indicator"]


def patterns(result: IngestResult) -> set[str]:
    return {o["pattern"] for o in indicators(result)}


# A partner's indicators, one per pattern, TLP:AMBER (tests of the checks partners' patterns get).
PARTNER_OBJECT_IDS = "indicator--0b1c0f5e-1f0a-4c3e-9a51-3f0b7d1c2e{:02d}"


def partner_bundle(*patterns_: str) -> str:
    objects = [
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": PARTNER_OBJECT_IDS.format(index),
            "created": "2025-01-01T00:00:00.000Z",
            "modified": "2025-01-01T00:00:00.000Z",
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": "2025-01-01T00:00:00.000Z",
            "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
        }
        for index, pattern in enumerate(patterns_)
    ]
    return json.dumps(
        {"type": "bundle", "id": "bundle--6b1c0f5e-1f0a-4c3e-9a51-3f0b7d1c2e44", "objects": objects}
    )
