"""`status` after `partners remove`: envelopes the removed partner never acknowledged are listed
apart, not as undelivered, so a monitor alerting on `status --json` `undelivered` is not woken
for ever by an agency we chose to stop talking to; the sent log keeps them (audit)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.exchange.conftest import Exchange, write_iocs


def _age_sent_envelopes(home: Path) -> None:
    """Every sent envelope sealed long ago (past `operations.undelivered_after_hours`)."""
    conn = sqlite3.connect(home / "store.sqlite")
    conn.execute("UPDATE sent_envelopes SET created_at = '2020-01-01T00:00:00.000Z'")
    conn.commit()
    conn.close()


def test_a_removed_partners_unconfirmed_envelopes_are_not_undelivered(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr = exchange.fr
    pushed = fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    (envelope,) = [d["envelope_id"] for d in fr.run("sent", "--json").json()]
    _age_sent_envelopes(fr.home)
    before = fr.run("status", "--json").json()
    assert [d["envelope_id"] for d in before["undelivered"]] == [envelope]  # cert-in never synced
    assert before["unconfirmed_to_removed_partners"] == []

    removed = fr.run("partners", "remove", "cert-in", "--yes", "--json")
    assert removed.exit_code == 0, removed.stderr
    assert removed.json() == {
        "name": "cert-in",
        "agency_id": "cert-in",
        "dropped_envelopes": [],
        "unconfirmed_envelopes": [envelope],
    }

    after = fr.run("status", "--json")
    assert after.exit_code == 0, after.stderr
    assert after.json()["undelivered"] == []
    (apart,) = after.json()["unconfirmed_to_removed_partners"]
    assert apart["envelope_id"] == envelope and apart["partner"] == "cert-in"
    assert after.json()["deliveries_by_partner"]["cert-in"]["posted"] == 1  # the record is kept
    assert [d["status"] for d in fr.run("sent", "--json").json()] == ["posted"]

    text = fr.run("status")
    assert "without a receipt after" not in text.stdout
    # The one envelope waiting is the old one, listed below: none is younger.
    assert "Every envelope to a partner we still have older than 24 h has a receipt.\n" in text.stdout
    assert "1 envelope(s) to removed partner(s) cert-in never got a receipt" in text.stdout
