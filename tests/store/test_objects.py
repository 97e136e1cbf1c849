"""Storing objects: versions, the current one, sources; on real SQLite files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cti_exchange.store.objects import (
    DIFFERENT_CONTENT,
    NotApplied,
    StoredObjects,
    not_applied_summary,
    write_objects,
)
from cti_exchange.store.store import Store

IDENTITY = "identity--f7057009-c6c7-5705-914f-068f8d8b4ab1"


def indicator(object_id: str, modified: str, value: str = "203.0.113.5", **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": object_id,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": modified,
        "created_by_ref": IDENTITY,
        "name": value,
        "pattern": f"[ipv4-addr:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00.000Z",
        "object_marking_refs": ["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"],
        **extra,
    }


def _store(
    store: Store,
    objects: list[dict[str, Any]],
    envelope: str,
    partner: str = "cert-fr",
    partner_identity: str | None = None,
) -> StoredObjects:
    with store.db.transaction() as conn:
        return write_objects(
            conn,
            objects,
            envelope_id=envelope,
            partner=partner,
            received_at="2026-11-23T10:00:00.000Z",
            partner_identity=partner_identity,
        )


def _write(store: Store, objects: list[dict[str, Any]], envelope: str, partner: str = "cert-fr") -> int:
    return _store(store, objects, envelope, partner).new_versions


def _rows(store: Store, object_id: str) -> list[tuple[Any, ...]]:
    return store.db.conn.execute(
        "SELECT version, is_current, status FROM objects WHERE object_id = ? ORDER BY version",
        (object_id,),
    ).fetchall()


OID = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
V1, V2, V3 = "2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"


def test_two_versions_in_one_batch_leave_one_current(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        assert _write(store, [indicator(OID, V1), indicator(OID, V2)], "e1") == 2
        assert [(v[:10], cur) for v, cur, _ in _rows(store, OID)] == [
            ("2026-01-01", 0),
            ("2026-02-01", 1),
        ]


def test_newer_version_later_becomes_current_and_keeps_the_decision(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, [indicator(OID, V2)], "e1")
        store.db.conn.execute("UPDATE objects SET status = 'accepted' WHERE object_id = ?", (OID,))
        _write(store, [indicator(OID, V3)], "e2")
        _write(store, [indicator(OID, V1)], "e3")  # an older version arriving late stays old
        rows = _rows(store, OID)
        assert [cur for _, cur, _ in rows] == [0, 0, 1]
        assert rows[-1][2] == "accepted"


def test_a_decision_is_not_carried_over_to_a_version_that_detects_something_else(tmp_path: Path) -> None:
    """Accepting c2.example must not accept what a later version (buggy, or signed with a stolen
    key) puts in its place: the decision goes back to new, and the triage log says why."""
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, [indicator(OID, V1, value="203.0.113.5")], "e1")
        store.db.conn.execute("UPDATE objects SET status = 'accepted' WHERE object_id = ?", (OID,))
        _write(store, [indicator(OID, V2, value="203.0.113.5", confidence=90)], "e2")
        assert _rows(store, OID)[-1] == ("2026-02-01T00:00:00.000000Z", 1, "accepted")
        _write(store, [indicator(OID, V3, value="0.0.0.0")], "e3")
        assert _rows(store, OID)[-1] == ("2026-03-01T00:00:00.000000Z", 1, "new")
        ((decision, analyst, note),) = store.db.conn.execute(
            "SELECT decision, analyst, note FROM triage_log WHERE object_id = ?", (OID,)
        ).fetchall()
        assert (decision, analyst) == ("new", "cti-exchange")
        assert "'accepted' not carried over" in note and "0.0.0.0" in note and "203.0.113.5" in note


def test_the_same_version_from_another_source_is_recorded_once(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        assert _write(store, [indicator(OID, V1)], "e1", "cert-fr") == 1
        assert _write(store, [indicator(OID, V1)], "e2", "cert-jp") == 0
        assert len(_rows(store, OID)) == 1
        sources = store.db.conn.execute("SELECT partner FROM object_sources").fetchall()
        assert sources == [("cert-jp",)]


def test_the_same_version_with_other_content_is_not_recorded_as_a_source(tmp_path: Path) -> None:
    """A partner echoing an id and date with content of its own did not send that version:
    it must not become a source (sightings of the object would go to it)."""
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, [indicator(OID, V1)], "e1", "cert-fr")
        echoed = indicator(OID, V1, value="198.51.100.200")
        stored = _store(store, [echoed], "e2", "cert-jp", JP_IDENTITY)
        assert stored.not_applied == [
            NotApplied(OID, "2026-01-01T00:00:00.000000Z", "cert-fr", DIFFERENT_CONTENT)
        ]
        assert store.db.conn.execute("SELECT COUNT(*) FROM object_sources").fetchone() == (0,)
        assert "1 copy(ies) of versions shared by cert-fr with other content" in str(
            not_applied_summary(stored.not_applied)
        )
        # The same content with its keys in another order is the same version.
        reordered = dict(reversed(list(indicator(OID, V1).items())))
        assert _store(store, [reordered], "e3", "cert-jp", JP_IDENTITY).not_applied == []
        assert store.db.conn.execute("SELECT partner FROM object_sources").fetchall() == [("cert-jp",)]


def test_revocation_is_applied(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, [indicator(OID, V1)], "e1")
        _write(store, [indicator(OID, V2, revoked=True)], "e2")
        revoked = store.db.conn.execute(
            "SELECT revoked FROM objects WHERE object_id = ? AND is_current = 1", (OID,)
        ).fetchone()
        assert revoked == (1,)


JP_IDENTITY = "identity--0b7f4d0e-7d1c-5b55-9a61-4c3a5d0f2b10"


def _current(store: Store, object_id: str) -> tuple[Any, ...]:
    return store.db.conn.execute(
        "SELECT version, partner, revoked FROM objects WHERE object_id = ? AND is_current = 1",
        (object_id,),
    ).fetchone()


def test_another_partner_cannot_revoke_or_rewrite_an_object_it_did_not_share(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, [indicator(OID, V1)], "e1", "cert-fr")
        stored = _store(store, [indicator(OID, V2, revoked=True)], "e2", "cert-jp", JP_IDENTITY)
        # Kept as evidence, counted as a version, but cert-fr's version stays current.
        assert stored.new_versions == 1
        assert stored.not_applied == [NotApplied(OID, "2026-02-01T00:00:00.000000Z", "cert-fr")]
        assert _current(store, OID) == ("2026-01-01T00:00:00.000000Z", "cert-fr", 0)
        assert [cur for _, cur, _ in _rows(store, OID)] == [1, 0]
        # The owner's own next version still moves the object on (newer than the held one too).
        assert _store(store, [indicator(OID, V3)], "e3", "cert-fr").not_applied == []
        assert _current(store, OID)[:2] == ("2026-03-01T00:00:00.000000Z", "cert-fr")


def test_the_creator_may_version_an_object_another_partner_relayed_first(tmp_path: Path) -> None:
    relayed = indicator(OID, V1, created_by_ref=JP_IDENTITY)
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, [relayed], "e1", "cert-fr")  # cert-fr relays cert-jp's indicator
        update = indicator(OID, V2, created_by_ref=JP_IDENTITY, revoked=True)
        assert _store(store, [update], "e2", "cert-jp", JP_IDENTITY).not_applied == []
        assert _current(store, OID) == ("2026-02-01T00:00:00.000000Z", "cert-jp", 1)
        # ...but a partner that merely claims to be the creator, without that identity, may not.
        third = indicator(OID, V3, created_by_ref=JP_IDENTITY)
        assert len(_store(store, [third], "e3", "cert-uk", None).not_applied) == 1
        assert _current(store, OID)[:2] == ("2026-02-01T00:00:00.000000Z", "cert-jp")


def test_the_creators_version_outranks_a_later_dated_relayed_copy(tmp_path: Path) -> None:
    """A relay that gets an id in first, dated a little after the creator's version, must not
    keep the creator's own word out of the current view; the creator's later versions then
    move on as usual, and an older one of its own does not go back."""
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, [indicator(OID, V2, created_by_ref=JP_IDENTITY, revoked=True)], "e1", "cert-de")
        assert (
            _store(
                store, [indicator(OID, V1, created_by_ref=JP_IDENTITY)], "e2", "cert-jp", JP_IDENTITY
            ).not_applied
            == []
        )
        assert _current(store, OID) == ("2026-01-01T00:00:00.000000Z", "cert-jp", 0)
        assert [cur for _, cur, _ in _rows(store, OID)] == [1, 0]
        _store(store, [indicator(OID, V3, created_by_ref=JP_IDENTITY)], "e3", "cert-jp", JP_IDENTITY)
        assert _current(store, OID)[:2] == ("2026-03-01T00:00:00.000000Z", "cert-jp")
        older = indicator(OID, "2026-01-15T00:00:00.000Z", created_by_ref=JP_IDENTITY)
        assert _store(store, [older], "e4", "cert-jp", JP_IDENTITY).not_applied == []
        assert _current(store, OID)[:2] == ("2026-03-01T00:00:00.000000Z", "cert-jp")


def test_a_partner_may_update_its_own_identity_object(tmp_path: Path) -> None:
    first = {
        "type": "identity",
        "spec_version": "2.1",
        "id": JP_IDENTITY,
        "created": V1,
        "modified": V1,
        "name": "CERT-JP",
        "identity_class": "organization",
    }
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, [first], "e1", "cert-fr")  # relayed inside cert-fr's bundle
        renamed = {**first, "modified": V2, "name": "JPCERT/CC"}
        assert _store(store, [renamed], "e2", "cert-jp", JP_IDENTITY).not_applied == []
        assert _current(store, JP_IDENTITY)[:2] == ("2026-02-01T00:00:00.000000Z", "cert-jp")
