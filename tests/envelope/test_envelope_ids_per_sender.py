"""Envelope ids are the sender's to choose and travel in clear-text routing hints. One partner
must not be able to use up another partner's id (or TAXII artifact id) so that the real
envelope is refused as a replay or skipped as a duplicate (store migration 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_exchange.envelope.reasons import RejectReason
from cti_exchange.exchange import pull
from cti_exchange.store.store import Store

from .conftest import World, hints, indicator, make_bundle
from .test_held_envelopes import _context, _partner


def test_another_senders_envelope_under_the_same_id_does_not_make_ours_a_replay(world: World) -> None:
    real = world.fr.seal(make_bundle([indicator("198.51.100.1")]), [world.in_.party])
    squatted = world.de.seal(
        make_bundle([indicator("198.51.100.66")]),
        [world.in_.party],
        envelope_id=hints(real.artifact)["envelope_id"],
    )
    world.in_.open(squatted.artifact)
    assert world.in_.open(real.artifact).header.sender == "cert-fr"
    # The same sender reusing an id is still a replay.
    world.in_.rejects(real.artifact, RejectReason.REPLAYED)


def test_a_partner_cannot_squat_an_envelope_id_or_artifact_id_in_the_store(
    world: World, tmp_path: Path
) -> None:
    real = world.fr.seal(make_bundle([indicator("198.51.100.1")]), [world.in_.party])
    squatted = world.de.seal(
        make_bundle([indicator("198.51.100.66")]),
        [world.in_.party],
        envelope_id=real.header.envelope_id,
    )
    squatted.artifact["id"] = real.artifact["id"]  # the TAXII object id, also the sender's choice
    fr, de = _partner("cert-fr"), _partner("cert-de")
    with Store(tmp_path / "store.sqlite") as store:
        ctx = _context(world.in_, store)
        from_de = pull.PartnerPull(partner="cert-de")
        pull._process(store, ctx, de, "from-de", squatted.artifact, from_de)
        assert from_de.accepted == [real.header.envelope_id]

        from_fr = pull.PartnerPull(partner="cert-fr")
        pull._process(store, ctx, fr, "from-fr", real.artifact, from_fr)
        assert (from_fr.accepted, from_fr.quarantined, from_fr.skipped) == ([real.header.envelope_id], [], 0)
        rows = store.db.conn.execute("SELECT partner, sender FROM envelopes_in ORDER BY partner").fetchall()
        assert rows == [("cert-de", "cert-de"), ("cert-fr", "cert-fr")]
        # Each source is shown with the key that signed its own envelope.
        values = dict(
            store.db.conn.execute("SELECT value, partner FROM objects WHERE type = 'indicator'").fetchall()
        )
        assert values == {"198.51.100.1": "cert-fr", "198.51.100.66": "cert-de"}


@pytest.mark.parametrize("again_from", ["from-fr", "from-fr-mirror"])
def test_the_same_envelope_read_twice_from_its_sender_is_still_processed_once(
    world: World, tmp_path: Path, again_from: str
) -> None:
    real = world.fr.seal(make_bundle([indicator("198.51.100.1")]), [world.in_.party])
    fr = _partner("cert-fr")
    with Store(tmp_path / "store.sqlite") as store:
        ctx = _context(world.in_, store)
        pull._process(store, ctx, fr, "from-fr", real.artifact, pull.PartnerPull(partner="cert-fr"))
        again = pull.PartnerPull(partner="cert-fr")
        pull._process(store, ctx, fr, again_from, real.artifact, again)
        assert again.accepted == [] and again.quarantined == []
        assert store.db.conn.execute("SELECT COUNT(*) FROM envelopes_in").fetchone() == (1,)
