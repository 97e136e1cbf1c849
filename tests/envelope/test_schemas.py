"""What cti-exchange seals matches the JSON Schemas it publishes in schemas/, and the
extension-definition it publishes is valid STIX 2.1."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import jsonschema
from referencing import Registry, Resource
from stix2validator import ValidationOptions, validate_instance

from cti_exchange.envelope.header import ChannelPosition
from cti_exchange.envelope.jose_framing import jwe_decrypt_general, jws_split
from cti_exchange.envelope.seal import RecipientKey, SenderKeys, seal_bundle
from cti_exchange.resources import load_schema, schemas_dir
from tests.data.envelope.rfc_test_keys import (
    RECIPIENT_ENCRYPTION,
    SENDER_ENCRYPTION,
    SENDER_SIGNING,
    public,
)

BUNDLE = json.dumps(
    {
        "type": "bundle",
        "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        "objects": [
            {
                "type": "identity",
                "spec_version": "2.1",
                "id": "identity--f7057009-c6c7-5705-914f-068f8d8b4ab1",
                "created": "2026-11-23T10:00:00.000Z",
                "modified": "2026-11-23T10:00:00.000Z",
                "name": "CERT-FR",
                "identity_class": "organization",
            }
        ],
    }
).encode()


def _validator(name: str) -> jsonschema.Draft202012Validator:
    registry: Registry = Registry()
    for schema_name in ("envelope.schema.json", "envelope-routing-extension.schema.json"):
        schema = load_schema(schema_name)
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
    return jsonschema.Draft202012Validator(load_schema(name), registry=registry)


def test_a_sealed_envelope_matches_the_published_schemas() -> None:
    sealed = seal_bundle(
        BUNDLE,
        bundle_id="bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        object_count=1,
        sender=SenderKeys("cert-fr", SENDER_SIGNING, public(SENDER_ENCRYPTION)),
        recipients=[RecipientKey("cert-in", public(RECIPIENT_ENCRYPTION))],
        channels={"cert-in": ChannelPosition(3, "A" * 43)},
        now=datetime(2026, 11, 23, 10, 5, tzinfo=UTC),
    )
    envelope = _validator("envelope.schema.json")
    envelope.validate(sealed.artifact)

    schema = load_schema("envelope.schema.json")
    jwe = json.loads(base64.b64decode(sealed.artifact["payload_bin"]))
    jsonschema.validate(jwe, schema["$defs"]["jwe"])
    _, jws = jwe_decrypt_general(
        jwe, {RECIPIENT_ENCRYPTION["kid"]: RECIPIENT_ENCRYPTION}, max_plaintext_bytes=1 << 20
    )
    header, _, _ = jws_split(jws)
    jsonschema.validate(header, {**schema["$defs"]["jws_protected_header"], "$defs": schema["$defs"]})


def test_the_schema_rejects_a_wrong_envelope() -> None:
    errors = list(
        _validator("envelope.schema.json").iter_errors(
            {
                "type": "artifact",
                "spec_version": "2.1",
                "id": "artifact--x",
                "mime_type": "text/plain",
            }
        )
    )
    assert errors


def test_the_published_extension_definition_is_valid_stix() -> None:
    bundle = json.loads((schemas_dir() / "envelope-routing-extension-definition.json").read_text())
    result = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]


def test_the_published_extension_definition_is_the_one_the_code_uses() -> None:
    from cti_exchange.envelope.artifact import routing_extension_definition

    bundle = json.loads((schemas_dir() / "envelope-routing-extension-definition.json").read_text())
    assert routing_extension_definition() in bundle["objects"]
