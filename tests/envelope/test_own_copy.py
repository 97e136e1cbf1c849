"""Reading back an envelope from our own outbox (envelope/own_copy.py), as re-sealing does: the
content comes out exactly as signed, and only from an envelope our own key signed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cti_exchange.envelope.jose_framing import b64url_decode, jws_sign_compact, jws_split
from cti_exchange.envelope.own_copy import read_own_copy
from cti_exchange.envelope.seal import envelope_digest
from cti_exchange.errors import IntegrityError

from .conftest import World, decrypt_jws, indicator, make_bundle, reencrypt


def _read(world: World, artifact: dict[str, Any]) -> Any:
    fr = world.fr.party
    return read_own_copy(
        artifact, {fr.encryption_kid: fr.encryption_key}, fr.keyring, max_plaintext_bytes=1 << 26
    )


def test_our_copy_gives_back_the_signed_header_and_objects(world: World) -> None:
    bundle = make_bundle([indicator("198.51.100.7"), indicator("evil.example")])
    sealed = world.fr.seal(bundle, [world.in_.party])
    copy = _read(world, sealed.artifact)
    assert copy.header == sealed.header and copy.digest == sealed.digest
    assert copy.objects == orjson.loads(bundle.data)["objects"]
    assert copy.digest == envelope_digest(decrypt_jws(sealed.artifact, world.fr.party))


def test_a_copy_signed_by_another_key_is_refused(world: World) -> None:
    """A store row replaced by an envelope someone else signed (here: Mallory, who knows our
    public encryption key) is not re-sealed under our name."""
    sealed = world.fr.seal(make_bundle([indicator("198.51.100.7")]), [world.in_.party])
    jws = decrypt_jws(sealed.artifact, world.fr.party)
    header, signing_input, _ = jws_split(jws)
    payload = signing_input.split(b".", 1)[1]
    # The same header (our kid), signed with Mallory's key.
    forged = jws_sign_compact(header, b64url_decode(payload, what="payload"), world.mallory.party.signing_key)
    artifact = reencrypt(sealed.artifact, forged, [world.fr.party, world.in_.party])
    with pytest.raises(IntegrityError, match="not signed by our key"):
        _read(world, artifact)


def test_a_copy_we_cannot_decrypt_is_refused(world: World) -> None:
    sealed = world.fr.seal(make_bundle([indicator("198.51.100.7")]), [world.in_.party])
    jws = decrypt_jws(sealed.artifact, world.fr.party)
    artifact = reencrypt(sealed.artifact, jws, [world.in_.party])  # no entry for us
    with pytest.raises(IntegrityError, match="cannot be read back"):
        _read(world, artifact)
