"""Resuming and re-running never makes the outbox post out of order or twice.

The outbox posts a partner's envelopes in channel order, whatever their times and ids (a
push's envelopes share one time, ids are random): posted out of order, the partner would see
sequence gaps. On a real SQLite store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cti_exchange.exchange.receipts import receipt_object
from cti_exchange.store.store import Store

from .conftest import NOW, World, indicator, make_bundle


def test_pending_envelopes_come_in_sequence_order(world: World, tmp_path: Path) -> None:
    sealed = [
        world.fr.seal(make_bundle([indicator(f"198.51.100.{i}", seed=i)]), [world.in_.party])
        for i in range(1, 9)
    ]
    assert len({s.header.issued_at for s in sealed}) == 1  # one push: one time for all
    with Store(tmp_path / "store.sqlite") as store:
        for envelope in sealed:
            store.outbound.record_sealed(envelope, partners={"cert-in": "cert-in"}, tlp="amber", objects=[])
        pending = [p.envelope_id for p in store.outbound.pending("cert-in")]
    assert pending == [s.header.envelope_id for s in sealed]
    assert [s.header.channels["cert-in"].sequence for s in sealed] == list(range(1, 9))


def test_a_receipt_is_the_same_object_whenever_it_is_built() -> None:
    """A sync interrupted after sealing a receipt and resumed must find it already sealed (by
    object id), not seal a second receipt under a new sequence number."""
    entries = [
        {"envelope_id": "e1", "digest": "d1", "accepted_at": "2026-11-23T09:00:00.000Z"},
        {"envelope_id": "e2", "digest": "d2", "accepted_at": "2026-11-23T09:30:00.000Z"},
    ]
    first = receipt_object("identity--f7057009-c6c7-5705-914f-068f8d8b4ab1", entries, NOW)
    resumed = receipt_object(
        "identity--f7057009-c6c7-5705-914f-068f8d8b4ab1", entries, NOW + timedelta(hours=1)
    )
    assert first == resumed and first["created"] == "2026-11-23T09:30:00.000Z"
    other = receipt_object("identity--f7057009-c6c7-5705-914f-068f8d8b4ab1", entries[:1], NOW)
    assert other["id"] != first["id"]
