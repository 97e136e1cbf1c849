"""open_envelope's restart mode (`quarantine accept-restart`): the envelope becomes the new start
of its sender's channel wherever it stands, with every other check; not being chained to what
we accepted, it is not exempt from the maximum age, and replay protection by envelope id is
unchanged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cti_exchange.envelope.open import open_envelope
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason

from .conftest import NOW, Bundle, Outbox, World


def _restored(world: World, bundle: Bundle) -> None:
    """CERT-FR sends 1 and 2, CERT-In accepts them, then CERT-FR's channel goes back to 0."""
    for _ in range(2):
        world.in_.open(world.fr.seal(bundle, [world.in_.party]).artifact)
    world.fr.outbox = Outbox()


def test_a_restarted_channel_is_refused_then_accepted_in_restart_mode(world: World, bundle: Bundle) -> None:
    _restored(world, bundle)
    again = world.fr.seal(bundle, [world.in_.party])  # sequence 1 again
    refused = world.in_.rejects(again.artifact, RejectReason.SEQUENCE_REORDER)
    assert "restored its store from a backup or made its profile again" in refused.detail
    assert "`cti-exchange quarantine accept-restart ID`" in refused.detail
    opened = open_envelope(again.artifact, world.in_.context(), restart=True)
    assert opened.channel is not None and opened.channel.sequence == 1 and opened.gap_skipped == ()
    world.in_.inbox.record(opened)
    world.in_.open(world.fr.seal(bundle, [world.in_.party]).artifact)  # 2 chains to it


def test_chain_mismatch_says_so_too(world: World, bundle: Bundle) -> None:
    _restored(world, bundle)
    world.fr.seal(bundle, [world.in_.party])
    world.fr.seal(bundle, [world.in_.party])
    third = world.fr.seal(bundle, [world.in_.party])  # sequence 3, chained to another 2
    refused = world.in_.rejects(third.artifact, RejectReason.CHAIN_MISMATCH)
    assert "accept-restart ID" in refused.detail


def test_the_age_limit_applies_to_a_restart(world: World, bundle: Bundle) -> None:
    _restored(world, bundle)
    world.fr.seal(bundle, [world.in_.party])
    world.fr.seal(bundle, [world.in_.party])
    old = world.fr.seal(bundle, [world.in_.party])  # 3: where the next would be, but not chained
    later = NOW + timedelta(days=40)
    with pytest.raises(EnvelopeRejected) as caught:
        open_envelope(old.artifact, world.in_.context(now=later), restart=True)
    assert caught.value.reason is RejectReason.TOO_OLD
    assert "accepting a channel restart does not lift the age limit" in caught.value.detail
    # Within the age limit, it is taken.
    assert open_envelope(old.artifact, world.in_.context(), restart=True).channel is not None


def test_an_envelope_id_already_accepted_stays_a_replay(world: World, bundle: Bundle) -> None:
    first = world.fr.seal(bundle, [world.in_.party])
    world.in_.open(first.artifact)
    with pytest.raises(EnvelopeRejected) as caught:
        open_envelope(first.artifact, world.in_.context(), restart=True)
    assert caught.value.reason is RejectReason.REPLAYED
