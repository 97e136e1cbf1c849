"""An envelope that trips an unforeseen failure while being opened is quarantined and marked
processed, so the pull goes on past it (exchange/pull.py); a real SQLite store."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cti_exchange.exchange import pull
from cti_exchange.store.store import Store

from .conftest import World, indicator, make_bundle
from .test_held_envelopes import _context, _partner


def _buggy_validator(bundle: dict[str, Any]) -> list[str]:
    raise KeyError("a check that crashes on some input")


def test_an_envelope_that_crashes_a_check_is_quarantined_and_the_next_one_still_opens(
    world: World, tmp_path: Path
) -> None:
    first = world.fr.seal(make_bundle([indicator("198.51.100.1")]), [world.in_.party])
    fr = _partner("cert-fr")
    with Store(tmp_path / "store.sqlite") as store:
        crashing = dataclasses.replace(_context(world.in_, store), validate_bundle=_buggy_validator)
        outcome = pull.PartnerPull(partner="cert-fr")
        assert pull._process(store, crashing, fr, "from-fr", first.artifact, outcome) == 1
        (quarantined,) = outcome.quarantined
        assert quarantined.reason == "malformed-envelope"
        assert "opening failed unexpectedly (KeyError)" in quarantined.detail
        again = pull.PartnerPull(partner="cert-fr")
        pull._process(store, crashing, fr, "from-fr", first.artifact, again)
        assert again.skipped == 1  # processed once, not retried on every pull
        (record,) = store.inbound.quarantined()
        assert store.inbound.quarantined_artifact(record.id) == first.artifact
        assert store.db.conn.execute("SELECT COUNT(*) FROM objects").fetchone() == (0,)
