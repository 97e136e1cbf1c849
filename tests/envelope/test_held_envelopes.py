"""Envelopes held for a sequence gap and retried at the end of a pull (exchange/held.py):
the retry applies the same sender check as the first reading, on a real SQLite store."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from cti_exchange.envelope.open import ReceiverContext
from cti_exchange.exchange import pull
from cti_exchange.exchange.held import retry_held_envelopes
from cti_exchange.profile.model import PartnerConfig
from cti_exchange.stix.tlp import Tlp
from cti_exchange.stix.validate import validate_bundle
from cti_exchange.store.store import Store

from .conftest import NOW, Node, indicator, make_bundle, make_world


def _partner(name: str) -> PartnerConfig:
    return PartnerConfig(
        name=name, agency_id=name, display_name=name, fingerprint="x", jwks="x", max_tlp=Tlp.AMBER
    )


def _context(node: Node, store: Store) -> ReceiverContext:
    keyrings = dict(node.pinned)
    keyrings[node.agency_id] = node.party.keyring
    return ReceiverContext(
        agency_id=node.agency_id,
        decryption_keys={node.party.encryption_kid: node.party.encryption_key},
        keyrings=keyrings,
        now=NOW,
        seen_envelope=store.inbound.seen_envelope,
        channel_state=store.inbound.channel_state,
        validate_bundle=validate_bundle,
    )


def test_an_envelope_held_in_the_wrong_partners_collection_is_never_accepted_there(tmp_path: Path) -> None:
    """CERT-FR's second envelope shows up in CERT-DE's collection before its first one arrived:
    held as a gap, it must not later be accepted as CERT-DE's."""
    world = make_world()
    first = world.fr.seal(make_bundle([indicator("198.51.100.1")]), [world.in_.party])
    second = world.fr.seal(make_bundle([indicator("198.51.100.2")]), [world.in_.party])
    fr, de = _partner("cert-fr"), _partner("cert-de")
    with Store(tmp_path / "store.sqlite") as store:
        ctx = _context(world.in_, store)
        held = pull.PartnerPull(partner="cert-de")
        pull._process(store, ctx, de, "from-de", second.artifact, held)
        assert [q.reason for q in held.quarantined] == ["sequence-gap"]
        pull._process(store, ctx, fr, "from-fr", first.artifact, pull.PartnerPull(partner="cert-fr"))

        retried = retry_held_envelopes(store, ctx, de)
        assert retried.envelope_ids == []
        partners = store.db.conn.execute("SELECT DISTINCT partner FROM objects").fetchall()
        assert partners == [("cert-fr",)]
        (reason,) = store.db.conn.execute("SELECT resolution FROM quarantine").fetchone()
        assert "sender-key-mismatch" in reason and "cert-de's collection" in reason


def test_envelopes_held_for_time_are_accepted_once_they_can_be(tmp_path: Path) -> None:
    """A sender whose clock ran ahead, and a receiver offline past the maximum age: held and
    retried, not refused for good (every later envelope would be held as a gap behind them)."""
    world = make_world()
    ahead = NOW + timedelta(minutes=10)
    first = world.fr.seal(make_bundle([indicator("198.51.100.1")]), [world.in_.party], now=ahead)
    # The sender's clock is put right before its next push.
    second = world.fr.seal(make_bundle([indicator("198.51.100.2")]), [world.in_.party], now=NOW)
    fr = _partner("cert-fr")
    with Store(tmp_path / "store.sqlite") as store:
        early = _context(world.in_, store)
        outcome = pull.PartnerPull(partner="cert-fr")
        pull._process(store, early, fr, "from-fr", first.artifact, outcome)
        pull._process(store, early, fr, "from-fr", second.artifact, outcome)
        assert [q.reason for q in outcome.quarantined] == ["issued-in-future", "sequence-gap"]

        # Forty days later: the clocks agree, and both are past the maximum age.
        later = dataclasses.replace(early, now=NOW + timedelta(days=40))
        retried = retry_held_envelopes(store, later, fr)
        assert retried.envelope_ids == [first.header.envelope_id, second.header.envelope_id]
        rows = store.db.conn.execute("SELECT resolution FROM quarantine ORDER BY id").fetchall()
        assert [r[0] for r in rows] == [
            "accepted when retried (held for issued-in-future)",
            "accepted when retried (held for sequence-gap)",
        ]


def test_envelopes_behind_a_gap_are_opened_again_only_once_the_channel_moves(tmp_path: Path) -> None:
    """A gap that lasts (the sender lost an envelope) holds every later envelope: each pull
    used to decrypt and verify all of them again. Now one is opened again only when its
    sender's channel has moved since it was last tried; the outcome is unchanged."""
    world = make_world()
    sealed = [
        world.fr.seal(make_bundle([indicator(f"198.51.100.{n}")]), [world.in_.party]) for n in range(1, 5)
    ]
    number = {s.header.envelope_id: n for n, s in enumerate(sealed, start=1)}
    fr = _partner("cert-fr")
    with Store(tmp_path / "store.sqlite") as store:
        # The core asks the store, through the context, whether it has seen an envelope once
        # the envelope is decrypted and its signature verified (envelope/open.py,
        # check_not_replayed): those asks are the envelopes opened, as far as the costly part.
        opened: list[int] = []

        def seen(sender: str, envelope_id: str) -> bool:
            opened.append(number[envelope_id])
            return store.inbound.seen_envelope(sender, envelope_id)

        ctx = dataclasses.replace(_context(world.in_, store), seen_envelope=seen)

        def read(n: int) -> pull.PartnerPull:
            outcome = pull.PartnerPull(partner="cert-fr")
            pull._process(store, ctx, fr, "from-fr", sealed[n - 1].artifact, outcome)
            return outcome

        def retry() -> tuple[list[int], list[int]]:
            """(sequence numbers opened, sequence numbers accepted) by one retry."""
            opened.clear()
            released = retry_held_envelopes(store, ctx, fr)
            return list(opened), [number[e] for e in released.envelope_ids]

        assert [q.reason for q in read(3).quarantined + read(4).quarantined] == ["sequence-gap"] * 2
        assert opened == [3, 4]  # the first reading of each is seen opened
        assert retry() == ([], [])  # refused at this very channel position: not opened again
        assert read(1).accepted  # the channel moves to 1; 2 is still missing
        assert retry() == ([3, 4], [])  # opened once, the gap is still there
        assert retry() == ([], [])
        assert read(2).accepted
        assert retry() == ([3, 4], [3, 4])
        assert store.inbound.quarantined() == []


def test_a_rejection_closed_in_the_same_pull_is_an_alert_only_when_refused_for_good(tmp_path: Path) -> None:
    """A pull sorts its rejections by what became of their quarantine records by its end: one
    held and then released in the same run is no alert (it is in `accepted_since`); one held
    and then refused for good in the same run still is, and says how its record was closed.
    Before, the pull's error said every such envelope was "in quarantine"."""
    world = make_world()
    first, second, third = (
        world.fr.seal(make_bundle([indicator(f"198.51.100.{n}")]), [world.in_.party]) for n in (1, 2, 3)
    )
    fr, de = _partner("cert-fr"), _partner("cert-de")
    with Store(tmp_path / "store.sqlite") as store:
        ctx = _context(world.in_, store)
        from_de, from_fr = pull.PartnerPull(partner="cert-de"), pull.PartnerPull(partner="cert-fr")
        pull._process(store, ctx, de, "from-de", second.artifact, from_de)  # held: 1 is missing
        pull._process(store, ctx, fr, "from-fr", third.artifact, from_fr)  # held: 1 and 2 missing
        pull._process(store, ctx, fr, "from-fr", first.artifact, from_fr)

        from_de.closed += retry_held_envelopes(store, ctx, de).closed  # CERT-FR's, in CERT-DE's
        pull._note_closed_records(store, from_de)
        (refused,) = from_de.integrity_alerts
        assert refused.resolution is not None and "sender-key-mismatch" in refused.resolution
        assert from_de.accepted_since == []

        pull._process(store, ctx, fr, "from-fr", second.artifact, from_fr)
        assert retry_held_envelopes(store, ctx, fr).envelope_ids == [third.header.envelope_id]
        pull._note_closed_records(store, from_fr)
        assert from_fr.quarantined == [] and from_fr.integrity_alerts == []
        (released,) = from_fr.accepted_since
        assert released.envelope_id == third.header.envelope_id
        assert released.resolution == "accepted when retried (held for sequence-gap)"
