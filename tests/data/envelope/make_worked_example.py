"""Writes worked-example.json: the envelope shown in docs/ENVELOPE.md, made with the RFC test
keys. Run once; the committed file is what the docs show and what tests open.

    .venv/bin/python -m tests.data.envelope.make_worked_example
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from cti_exchange.envelope.header import ChannelPosition
from cti_exchange.envelope.seal import RecipientKey, SenderKeys, seal_bundle
from tests.data.envelope.rfc_test_keys import (
    RECIPIENT_ENCRYPTION,
    SENDER_ENCRYPTION,
    SENDER_SIGNING,
    public,
)

BUNDLE = (
    '{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":['
    '{"type":"indicator","spec_version":"2.1",'
    '"id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",'
    '"created_by_ref":"identity--f7057009-c6c7-5705-914f-068f8d8b4ab1",'
    '"created":"2026-11-23T10:00:00.000Z","modified":"2026-11-23T10:00:00.000Z",'
    '"name":"C2 server 198.51.100.7","indicator_types":["malicious-activity"],'
    '"pattern":"[ipv4-addr:value = \'198.51.100.7\']","pattern_type":"stix",'
    '"valid_from":"2026-11-23T10:00:00.000Z","valid_until":"2026-12-23T10:00:00.000Z",'
    '"confidence":80,'
    '"object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}]}'
)
ISSUED_AT = datetime(2026, 11, 23, 10, 5, 0, tzinfo=UTC)
ENVELOPE_ID = "0b6f0d4e-6c1a-4a59-9a8e-2f1d3c4b5a69"


def main() -> None:
    sealed = seal_bundle(
        BUNDLE.encode(),
        bundle_id="bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        object_count=1,
        sender=SenderKeys("cert-fr", SENDER_SIGNING, public(SENDER_ENCRYPTION)),
        recipients=[RecipientKey("cert-in", public(RECIPIENT_ENCRYPTION))],
        channels={"cert-in": ChannelPosition(sequence=1, previous=None)},
        now=ISSUED_AT,
        envelope_id=ENVELOPE_ID,
    )
    out = {
        "issued_at": "2026-11-23T10:05:00.000Z",
        "bundle": BUNDLE,
        "digest": sealed.digest,
        "artifact": sealed.artifact,
    }
    path = Path(__file__).with_name("worked-example.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
