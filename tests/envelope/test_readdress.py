"""Re-addressing a queued envelope whose recipient key was revoked (envelope/readdress.py), and
how a receiver names an envelope wrapped only for a key of its own it revoked."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti_exchange.envelope.readdress import readdress_envelope, recipient_kids, wrapped_for
from cti_exchange.envelope.reasons import RejectReason
from cti_exchange.errors import IntegrityError
from cti_exchange.keys.material import generate_key_pair
from cti_exchange.keys.model import Keyring, KeyStatus, KeyUse

from .conftest import (
    NOW,
    Bundle,
    Node,
    Party,
    World,
    artifact_jwe,
    decrypt_jws,
    hints,
    indicator,
    make_bundle,
    make_party,
    with_jwe,
)


def with_new_encryption_key(party: Party) -> Party:
    """`keys revoke` of the current encryption key: revoked now, a new current key at once."""
    private, info = generate_key_pair(KeyUse.ENC, party.agency_id, NOW, 365)
    keys = tuple(
        replace(k, status=KeyStatus.REVOKED, revoked_at=NOW, revocation_reason="compromised")
        if k.kid == party.encryption_kid
        else k
        for k in party.keyring.keys
    )
    return replace(party, encryption_key=private, keyring=party.keyring.replace_keys((*keys, info), NOW))


def revoke_in(world: World) -> Party:
    """CERT-In revokes its encryption key; CERT-FR pins the new ring. Returns the old CERT-In."""
    old = world.in_.party
    world.in_.party = with_new_encryption_key(old)
    world.fr.pin(world.in_.party)
    return old


def rings(world: World) -> dict[str, Keyring]:
    return {**world.fr.pinned, "cert-fr": world.fr.party.keyring}


def own_keys(world: World) -> dict[str, dict[str, Any]]:
    return {world.fr.party.encryption_kid: world.fr.party.encryption_key}


def test_a_queued_envelope_is_wrapped_for_the_new_key_and_keeps_its_signed_content(
    world: World, bundle: Bundle
) -> None:
    sealed = world.fr.seal(bundle, [world.in_.party, world.de.party])
    old = revoke_in(world)
    world.in_.rejects(sealed.artifact, RejectReason.ENCRYPTED_TO_REVOKED_KEY)

    readdressed = readdress_envelope(sealed.artifact, rings(world), lambda: own_keys(world))

    assert readdressed is not None
    assert (readdressed.removed, readdressed.added) == (
        [old.encryption_kid],
        [world.in_.party.encryption_kid],
    )
    artifact = readdressed.artifact
    assert recipient_kids(artifact) == [
        world.in_.party.encryption_kid,
        world.de.party.encryption_kid,
        world.fr.party.encryption_kid,
    ]
    # The same signed JWS (id, sequence, chain digest) in a new key wrap, under a new artifact id.
    assert decrypt_jws(artifact, world.in_.party) == decrypt_jws(sealed.artifact, old)
    assert hints(artifact) == hints(sealed.artifact)
    assert artifact["id"] != sealed.artifact["id"]
    before, after = artifact_jwe(sealed.artifact), artifact_jwe(artifact)
    assert {k: v for k, v in after.items() if k != "recipients"} == {
        k: v for k, v in before.items() if k != "recipients"
    }
    assert after["recipients"][1:] == before["recipients"][1:]  # the others' entries untouched
    opened = world.in_.open(artifact)
    assert opened.digest == sealed.digest and opened.channel is not None and opened.channel.sequence == 1
    assert world.de.open(artifact).digest == sealed.digest


def test_nothing_is_read_or_unlocked_while_no_key_is_revoked(world: World, bundle: Bundle) -> None:
    sealed = world.fr.seal(bundle, [world.in_.party])

    def unlock() -> dict[str, dict[str, Any]]:
        raise AssertionError("no key to re-address: the passphrase is not needed")

    assert readdress_envelope(sealed.artifact, rings(world), unlock) is None


def test_an_envelope_sealed_after_the_new_keys_were_pinned_is_left_as_it_is(
    world: World, bundle: Bundle
) -> None:
    revoke_in(world)
    sealed = world.fr.seal(bundle, [world.in_.party])
    assert readdress_envelope(sealed.artifact, rings(world), lambda: own_keys(world)) is None


def test_a_revoked_key_without_a_successor_loses_its_entry_until_one_is_pinned(
    world: World, bundle: Bundle
) -> None:
    """CERT-In revoked its key and published none in its place: its entry goes (nothing a
    revoked key opens goes on to CERT-DE's server), its own delivery waits, and once its new
    key is pinned an entry for it comes back."""
    sealed = world.fr.seal(bundle, [world.in_.party, world.de.party])
    old = revoke_in(world)
    ring = world.fr.pinned["cert-in"]
    only_revoked = ring.replace_keys(
        tuple(k for k in ring.keys if not (k.use is KeyUse.ENC and k.status is KeyStatus.CURRENT)), NOW
    )
    world.fr.pinned["cert-in"] = only_revoked

    dropped = readdress_envelope(sealed.artifact, rings(world), lambda: own_keys(world))

    assert dropped is not None and (dropped.removed, dropped.added) == ([old.encryption_kid], [])
    assert recipient_kids(dropped.artifact) == [world.de.party.encryption_kid, world.fr.party.encryption_kid]
    assert not wrapped_for(dropped.artifact, only_revoked)
    assert wrapped_for(dropped.artifact, world.fr.pinned["cert-de"])
    assert world.de.open(dropped.artifact).digest == sealed.digest
    assert readdress_envelope(dropped.artifact, rings(world), lambda: own_keys(world)) is None

    world.fr.pin(world.in_.party)  # its new key file arrives
    back = readdress_envelope(dropped.artifact, rings(world), lambda: own_keys(world))
    assert back is not None and (back.removed, back.added) == ([], [world.in_.party.encryption_kid])
    assert wrapped_for(back.artifact, world.fr.pinned["cert-in"])
    assert world.in_.open(back.artifact).digest == sealed.digest


def test_our_own_revoked_entry_is_wrapped_for_our_new_key(world: World, bundle: Bundle) -> None:
    sealed = world.fr.seal(bundle, [world.in_.party])
    old_fr = world.fr.party
    world.fr.party = with_new_encryption_key(old_fr)
    keys = {
        old_fr.encryption_kid: old_fr.encryption_key,
        world.fr.party.encryption_kid: world.fr.party.encryption_key,
    }

    readdressed = readdress_envelope(sealed.artifact, rings(world), lambda: keys)

    assert readdressed is not None
    assert (readdressed.removed, readdressed.added) == (
        [old_fr.encryption_kid],
        [world.fr.party.encryption_kid],
    )
    assert decrypt_jws(readdressed.artifact, world.fr.party) == decrypt_jws(sealed.artifact, old_fr)
    assert world.in_.open(readdressed.artifact).digest == sealed.digest


def test_a_damaged_own_entry_is_never_passed_on(world: World, bundle: Bundle) -> None:
    """The content key is checked against the ciphertext before it is wrapped for anyone."""
    sealed = world.fr.seal(bundle, [world.in_.party])
    revoke_in(world)
    jwe = artifact_jwe(sealed.artifact)
    jwe["tag"] = jwe["tag"][:-2] + ("AA" if jwe["tag"][-2:] != "AA" else "AQ")
    damaged = with_jwe(sealed.artifact, jwe)
    with pytest.raises(IntegrityError, match="cannot be re-addressed"):
        readdress_envelope(damaged, rings(world), lambda: own_keys(world))


def test_a_receiver_names_an_envelope_wrapped_only_for_its_revoked_key(world: World, bundle: Bundle) -> None:
    """Not 'not addressed to us' (skipped quietly): it was for us, and the sender must learn
    our new keys, so it is quarantined under its own reason."""
    sealed = world.fr.seal(bundle, [world.in_.party])
    old = world.in_.party
    world.in_.party = with_new_encryption_key(old)
    rejected = world.in_.rejects(sealed.artifact, RejectReason.ENCRYPTED_TO_REVOKED_KEY)
    assert old.encryption_kid in rejected.detail
    assert rejected.reason.is_integrity_alert
    # An envelope for somebody else altogether is still only not for us.
    other = world.fr.seal(bundle, [world.de.party])
    world.in_.rejects(other.artifact, RejectReason.NOT_ADDRESSED_TO_US)


# -- property: whichever recipient keys were revoked, every recipient still opens the same JWS

_FR, _IN, _DE, _XX = (make_party(a) for a in ("cert-fr", "cert-in", "cert-de", "cert-xx"))
_SUCCESSORS = {p.agency_id: with_new_encryption_key(p) for p in (_FR, _IN, _DE, _XX)}


@settings(max_examples=25, deadline=None, database=None)
@given(
    recipients=st.lists(
        st.sampled_from([_IN, _DE, _XX]), min_size=1, max_size=3, unique_by=lambda p: p.agency_id
    ),
    revoked=st.sets(st.sampled_from(["cert-fr", "cert-in", "cert-de", "cert-xx"])),
    objects=st.integers(1, 5),
)
def test_readdressing_keeps_the_envelope_for_every_recipient(
    recipients: list[Party], revoked: set[str], objects: int
) -> None:
    sender = Node(_FR)
    sealed = sender.seal(
        make_bundle([indicator(f"198.51.100.{i}", seed=i) for i in range(objects)]), recipients
    )
    after = {
        p.agency_id: (_SUCCESSORS[p.agency_id] if p.agency_id in revoked else p) for p in (_FR, *recipients)
    }
    private = {
        _FR.encryption_kid: _FR.encryption_key,
        after["cert-fr"].encryption_kid: after["cert-fr"].encryption_key,
    }

    readdressed = readdress_envelope(
        sealed.artifact, {a: p.keyring for a, p in after.items()}, lambda: private
    )

    if not revoked & set(after):
        assert readdressed is None
        return
    assert readdressed is not None
    assert set(readdressed.removed) == {
        p.encryption_kid for p in (_FR, *recipients) if p.agency_id in revoked
    }
    assert set(readdressed.added) == {after[a].encryption_kid for a in revoked & set(after)}
    assert recipient_kids(readdressed.artifact) == [
        after[p.agency_id].encryption_kid for p in (*recipients, _FR)
    ]
    for party in after.values():
        assert decrypt_jws(readdressed.artifact, party) == decrypt_jws(sealed.artifact, _FR)
    for party in recipients:
        node = Node(after[party.agency_id])
        node.pin(_FR)
        assert node.open(readdressed.artifact).digest == sealed.digest
