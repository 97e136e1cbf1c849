"""The creator's copy of a version another partner relayed with other content takes its place
(store/objects.py): a co-recipient re-sending a version first, same id and `modified`, revoked
or with another pattern, must not keep the creator's own word out of the store. Real SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cti_exchange.store.objects import (
    DIFFERENT_CONTENT,
    RELAY_REPLACED,
    NotApplied,
    StoredObjects,
    not_applied_summary,
    write_objects,
)
from cti_exchange.store.store import Store
from cti_exchange.store.text_index import catch_up

FR_ID = "identity--f7057009-c6c7-5705-914f-068f8d8b4ab1"
DE_ID = "identity--0d0d0d0d-0000-5000-8000-00000000000d"
OID = "indicator--0f0e0d0c-0b0a-4009-8807-060504030201"
V1, V2 = "2026-01-10T10:00:00.000Z", "2026-01-11T10:00:00.000Z"
AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
CLEAR = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"


def indicator(modified: str, value: str, marking: str = AMBER, **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": OID,
        "created": V1,
        "modified": modified,
        "created_by_ref": FR_ID,
        "name": value,
        "pattern": f"[domain-name:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": V1,
        "object_marking_refs": [marking],
        **extra,
    }


GENUINE = indicator(V1, "c2.evil.example")
FORGED = indicator(V1, "harmless.example", CLEAR, revoked=True)  # cert-de's copy of cert-fr's


def _store(store: Store, objects: list[dict[str, Any]], envelope: str, partner: str) -> StoredObjects:
    identity = {"cert-fr": FR_ID, "cert-de": DE_ID}.get(partner)
    with store.db.transaction() as conn:
        return write_objects(
            conn,
            objects,
            envelope_id=envelope,
            partner=partner,
            received_at=f"2026-11-23T10:00:0{envelope[-1]}.000Z",
            partner_identity=identity,
        )


def _versions(store: Store) -> list[tuple[Any, ...]]:
    return store.db.conn.execute(
        "SELECT version, is_current, partner, value, tlp, revoked, status, envelope_id FROM objects "
        "WHERE object_id = ? ORDER BY version",
        (OID,),
    ).fetchall()


def _sources(store: Store) -> list[str]:
    rows = store.db.conn.execute(
        "SELECT partner FROM objects WHERE object_id = ? UNION "
        "SELECT partner FROM object_sources WHERE object_id = ?",
        (OID, OID),
    )
    return sorted(row[0] for row in rows)


def test_the_creators_copy_replaces_a_relays_copy_of_the_same_version(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        _store(store, [FORGED], "e1", "cert-de")
        stored = _store(store, [GENUINE], "e2", "cert-fr")
        assert _versions(store) == [
            ("2026-01-10T10:00:00.000000Z", 1, "cert-fr", "c2.evil.example", "amber", 0, "new", "e2")
        ]
        assert _sources(store) == ["cert-fr"]  # `sight` goes back to the creator, not the relay
        assert stored.not_applied == [
            NotApplied(OID, "2026-01-10T10:00:00.000000Z", "cert-fr", RELAY_REPLACED, "cert-de")
        ]
        summary = not_applied_summary(stored.not_applied)
        assert summary is not None and "cert-de had relayed with other content" in summary
        # The relay's copy stays visible: triage_log names it, its envelope and what it held.
        (note,) = store.db.conn.execute(
            "SELECT note FROM triage_log WHERE object_id = ? AND analyst = 'cti-exchange'", (OID,)
        ).fetchone()
        assert "cert-de relayed it (envelope e1, revoked, detecting" in note
        assert "harmless.example" in note and "creator cert-fr (envelope e2)" in note


def test_the_relays_identical_copy_still_makes_it_a_source(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        _store(store, [GENUINE], "e1", "cert-de")
        stored = _store(store, [GENUINE], "e2", "cert-fr")
        assert stored.not_applied == []
        assert [row[2] for row in _versions(store)] == ["cert-de"]
        assert _sources(store) == ["cert-de", "cert-fr"]


def test_the_relay_cannot_replace_the_creators_copy(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        _store(store, [GENUINE], "e1", "cert-fr")
        stored = _store(store, [FORGED], "e2", "cert-de")
        assert stored.not_applied == [
            NotApplied(OID, "2026-01-10T10:00:00.000000Z", "cert-fr", DIFFERENT_CONTENT)
        ]
        assert [row[2:6] for row in _versions(store)] == [("cert-fr", "c2.evil.example", "amber", 0)]
        assert _sources(store) == ["cert-fr"]


def test_a_decision_on_the_relays_copy_is_not_carried_to_other_content(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        _store(store, [FORGED], "e1", "cert-de")
        store.db.conn.execute("UPDATE objects SET status = 'accepted' WHERE object_id = ?", (OID,))
        _store(store, [GENUINE], "e2", "cert-fr")
        assert [row[6] for row in _versions(store)] == ["new"]
        notes = [
            n for (n,) in store.db.conn.execute("SELECT note FROM triage_log WHERE object_id = ?", (OID,))
        ]
        assert any("'accepted' not carried over" in n for n in notes), notes


def test_a_replaced_non_current_copy_and_a_newer_relayed_version(tmp_path: Path) -> None:
    """cert-de relayed two versions; cert-fr's copy of the first replaces the relay's and,
    the creator's word outranking a relay, becomes current over cert-de's later one."""
    with Store(tmp_path / "s.sqlite") as store:
        _store(store, [FORGED, indicator(V2, "other.example")], "e1", "cert-de")
        _store(store, [GENUINE], "e2", "cert-fr")
        assert [row[:4] for row in _versions(store)] == [
            ("2026-01-10T10:00:00.000000Z", 1, "cert-fr", "c2.evil.example"),
            ("2026-01-11T10:00:00.000000Z", 0, "cert-de", "other.example"),
        ]


def test_the_replacing_row_is_left_for_the_text_index_to_catch_up(tmp_path: Path) -> None:
    """The text index covers rows by rowid: the creator's copy takes a fresh one, so the index
    catches it up rather than keep the relay's text under it."""
    with Store(tmp_path / "s.sqlite") as store:
        _store(store, [FORGED], "e1", "cert-de")
        catch_up(store.db.conn)
        through = store.db.conn.execute("SELECT indexed_through FROM search_text_state").fetchone()[0]
        _store(store, [GENUINE], "e2", "cert-fr")
        (rowid,) = store.db.conn.execute("SELECT rowid FROM objects WHERE object_id = ?", (OID,)).fetchone()
        assert rowid > through
