"""Who a sighting goes to, and whose sightings `triage list --sighted` shows.

S3: a value also sent by a partner removed since is sighted to the others (the removed one is
named as skipped). S6: a TLP:RED or TLP:AMBER+STRICT indicator a second partner relayed is
sighted to its creator only. S7: `--sighted` lists a sighting only from a partner we shared the
object with. Sightings are sealed into the outbox only (`--queue`), shares too.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.profile.model import identity_id_for
from cti_exchange.store.triage_detail import sightings_of_shared
from tests.conftest import Agency, make_agency, pin
from tests.triage.conftest import FR_IDENTITY, indicator, put, store_path


def _sightings_sealed(agency: Agency) -> list[str]:
    """What the sightings sealed so far are of (from the audit trail), in order."""
    conn = sqlite3.connect(store_path(agency))
    try:
        return [
            row[0]
            for row in conn.execute(
                "SELECT json_extract(details, '$.sighting_of_ref') FROM audit_log "
                "WHERE action = 'sighting' ORDER BY rowid"
            )
        ]
    finally:
        conn.close()


@pytest.fixture
def three(partnered: tuple[Agency, Agency], tmp_path: Path) -> Iterator[tuple[Agency, Agency, Agency]]:
    """CERT-FR, CERT-In and NCSC-UK, CERT-In having pinned both others."""
    fr, india = partnered
    uk = make_agency(tmp_path, "cert-uk", "NCSC-UK")
    pin(india, uk, tmp_path)
    yield fr, india, uk


# S3: sources that are no longer partners


def test_a_value_also_sent_by_a_removed_partner_is_sighted_to_the_others(
    three: tuple[Agency, Agency, Agency],
) -> None:
    _, india, _ = three
    from_fr = indicator("a.example", tlp="green")
    from_uk = indicator("a.example", tlp="green", created_by=identity_id_for("cert-uk"))
    put(india, [from_fr], partner="cert-fr")
    put(india, [from_uk], partner="cert-uk")
    assert india.run("partners", "remove", "cert-uk", "--yes").exit_code == 0

    sent = india.run("sight", "a.example", "--queue", "--json")
    assert sent.exit_code == 0, sent.stderr
    document = sent.json()
    assert [(s["partner"], s["sighting_of_ref"]) for s in document["sightings"]] == [
        ("cert-fr", from_fr["id"])
    ]
    assert document["skipped"] == ["cert-uk"]
    assert "cert-uk" in sent.stderr and "no longer" in sent.stderr
    assert sent.stderr.count("\n") == 1
    assert _sightings_sealed(india) == [from_fr["id"]]

    # Without --json: the note on stderr, the table on stdout.
    text = india.run("sight", "a.example", "--queue")
    assert text.exit_code == 0, text.stderr
    assert "cert-uk" in text.stderr and "cert-uk" not in text.stdout


def test_a_value_only_removed_partners_sent_is_a_usage_error(partnered: tuple[Agency, Agency]) -> None:
    _, india = partnered
    put(india, [indicator("gone.example", tlp="green")], partner="cert-uk")
    put(india, [indicator("gone.example", tlp="green")], partner="cert-de")
    refused = india.run("sight", "gone.example", "--queue")
    assert refused.exit_code == 2, refused.stderr
    assert "cert-uk" in refused.stderr and "cert-de" in refused.stderr
    assert "internal error" not in refused.stderr and "partners list" in refused.stderr
    assert _sightings_sealed(india) == []


def test_sighting_result_json_has_an_empty_skipped_list(partnered: tuple[Agency, Agency]) -> None:
    _, india = partnered
    put(india, [indicator("b.example", tlp="green")], partner="cert-fr")
    sent = india.run("sight", "b.example", "--queue", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert sent.json()["skipped"] == [] and sent.stderr == ""


# S6: RED and AMBER+STRICT go to the creator only


def _allow(india: Agency, *partners: str, tlp: str) -> None:
    for name in partners:
        options = ["--allow-red"] if tlp == "red" else ["--max-tlp", tlp]
        assert india.run("partners", "set", name, *options).exit_code == 0


def _relayed(india: Agency, value: str, tlp: str, *, created_by: str) -> dict[str, Any]:
    """One indicator, sent by CERT-FR and relayed, unchanged, by NCSC-UK."""
    obj = indicator(value, tlp=tlp, created_by=created_by)
    put(india, [obj], partner="cert-fr")
    put(india, [obj], partner="cert-uk")
    return obj


@pytest.mark.parametrize("tlp", ["red", "amber+strict"])
def test_a_strict_indicator_relayed_by_a_second_partner_is_sighted_to_its_creator_only(
    three: tuple[Agency, Agency, Agency], tlp: str
) -> None:
    _, india, _ = three
    _allow(india, "cert-fr", "cert-uk", tlp=tlp)
    obj = _relayed(india, "strict.example", tlp, created_by=identity_id_for("cert-fr"))
    sent = india.run("sight", "strict.example", "--queue", "--allow-red", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert [(s["partner"], s["tlp"]) for s in sent.json()["sightings"]] == [("cert-fr", tlp)]
    assert sent.json()["skipped"] == []
    assert _sightings_sealed(india) == [obj["id"]]


def test_an_amber_indicator_relayed_is_sighted_to_every_source(three: tuple[Agency, Agency, Agency]) -> None:
    _, india, _ = three
    _relayed(india, "amber.example", "amber", created_by=identity_id_for("cert-fr"))
    sent = india.run("sight", "amber.example", "--queue", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert sorted(s["partner"] for s in sent.json()["sightings"]) == ["cert-fr", "cert-uk"]


def test_a_red_indicator_only_a_relay_sent_goes_to_that_relay(three: tuple[Agency, Agency, Agency]) -> None:
    _, india, _ = three
    _allow(india, "cert-uk", tlp="red")
    put(india, [indicator("relay.example", tlp="red", created_by=FR_IDENTITY)], partner="cert-uk")
    sent = india.run("sight", "relay.example", "--queue", "--allow-red", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert [s["partner"] for s in sent.json()["sightings"]] == ["cert-uk"]


def test_a_red_indicator_several_non_creators_sent_is_refused(three: tuple[Agency, Agency, Agency]) -> None:
    _, india, _ = three
    _allow(india, "cert-fr", "cert-uk", tlp="red")
    _relayed(india, "nobody.example", "red", created_by=FR_IDENTITY)  # no partner's identity
    refused = india.run("sight", "nobody.example", "--queue", "--allow-red")
    assert refused.exit_code == 8, refused.stderr
    assert "cert-fr" in refused.stderr and "cert-uk" in refused.stderr
    assert "nothing was sent" in refused.stderr and "partners show" in refused.stderr
    assert _sightings_sealed(india) == []


def test_a_red_indicator_whose_creator_was_removed_is_not_sent_to_the_relay(
    three: tuple[Agency, Agency, Agency],
) -> None:
    _, india, _ = three
    _allow(india, "cert-fr", tlp="red")
    _relayed(india, "removed.example", "red", created_by=identity_id_for("cert-uk"))
    assert india.run("partners", "remove", "cert-uk", "--yes").exit_code == 0
    refused = india.run("sight", "removed.example", "--queue", "--allow-red")
    assert refused.exit_code == 8, refused.stderr
    assert _sightings_sealed(india) == []


# S7: --sighted shows sightings from partners we shared the object with


def _pushed(agency: Agency, tmp_path: Path, values: list[str], *partners: str) -> dict[str, str]:
    """Queues a push of `values` to `partners`; {value: the id of the indicator we sent}."""
    csv = tmp_path / f"push-{uuid.uuid4().hex[:8]}.csv"
    csv.write_text("value,type,tlp\n" + "".join(f"{v},domain-name,green\n" for v in values))
    args = [a for p in partners for a in ("--to", p)]
    result = agency.run("push", str(csv), *args, "--queue", "--json")
    assert result.exit_code == 0, result.stderr
    conn = sqlite3.connect(store_path(agency))
    try:
        return dict(
            conn.execute("SELECT value, object_id FROM shared_objects WHERE type = 'indicator'").fetchall()
        )
    finally:
        conn.close()


def _sighting(of: str, by: str, count: int = 3) -> dict[str, Any]:
    return {
        "type": "sighting",
        "spec_version": "2.1",
        "id": f"sighting--{uuid.uuid4()}",
        "created": "2026-02-01T10:00:00.000Z",
        "modified": "2026-02-01T10:00:00.000Z",
        "created_by_ref": by,
        "sighting_of_ref": of,
        "count": count,
        "where_sighted_refs": [by],
    }


def _sighted(agency: Agency) -> list[tuple[str, str]]:
    listed = agency.run("triage", "list", "--sighted", "--json")
    assert listed.exit_code == 0, listed.stderr
    return sorted((s["partner"], s["value"]) for s in listed.json()["sightings"])


def test_sighted_lists_only_sightings_from_the_partner_we_shared_with(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    fr, _ = partnered
    ids = _pushed(fr, tmp_path, ["x.example"], "cert-in")
    put(fr, [_sighting(ids["x.example"], identity_id_for("cert-in"))], partner="cert-in")
    # A partner we never sent it to (it learnt the id from a relay, or forges it).
    put(fr, [_sighting(ids["x.example"], identity_id_for("cert-uk"))], partner="cert-uk")
    assert _sighted(fr) == [("cert-in", "x.example")]


def test_sighted_lists_every_partner_an_object_was_shared_with(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    fr, india = partnered
    uk = make_agency(tmp_path, "cert-uk", "NCSC-UK")
    de = make_agency(tmp_path, "cert-de", "CERT-Bund")
    pin(fr, uk, tmp_path)
    pin(fr, de, tmp_path)
    # One push to two partners (one envelope each), then the same value to a third in a
    # push of its own: `shared_objects` names only the last envelope.
    ids = _pushed(fr, tmp_path, ["y.example", "z.example"], "cert-in", "cert-uk")
    assert _pushed(fr, tmp_path, ["y.example"], "cert-de") == ids
    for partner in ("cert-in", "cert-uk", "cert-de"):
        put(fr, [_sighting(ids["y.example"], identity_id_for(partner))], partner=partner)
    put(fr, [_sighting(ids["z.example"], identity_id_for("cert-de"))], partner="cert-de")
    assert india  # CERT-In itself takes no part: the sightings are stored as its pull would
    assert _sighted(fr) == [("cert-de", "y.example"), ("cert-in", "y.example"), ("cert-uk", "y.example")]

    # The query plan reads no table in full: the sighting's partner is one primary-key lookup
    # in `shared_with`, however many envelopes were sent.
    conn = sqlite3.connect(store_path(fr))
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        sightings_of_shared(conn, partners=("cert-in",))
        sql = next(s for s in statements if "sighting_of_ref" in s)
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        conn.close()
    scans = [step for step in plan if step.startswith("SCAN")]
    assert scans == ["SCAN s USING INDEX objects_sighting_of"], plan
    assert "SEARCH w USING PRIMARY KEY (object_id=? AND partner=?)" in plan, plan


# S4, S9: what the analyst is told


def test_a_revoked_or_expired_indicator_is_sighted_with_a_note(partnered: tuple[Agency, Agency]) -> None:
    _, india = partnered
    revoked = indicator("withdrawn.example", tlp="green", revoked=True)
    lapsed = indicator("lapsed.example", tlp="green", valid_until="2026-02-01T00:00:00.000Z")
    put(india, [revoked, lapsed], partner="cert-fr")
    for obj, why in ((revoked, "revoked"), (lapsed, "expired")):
        sent = india.run("sight", obj["id"], "--queue", "--json")
        assert sent.exit_code == 0, sent.stderr
        assert sent.json()["stale"] == {obj["id"]: why}
        assert sent.stderr.count("\n") == 1 and f"is {why} at its source" in sent.stderr
    assert _sightings_sealed(india) == [revoked["id"], lapsed["id"]]
    current = india.run("sight", _put_green(india), "--queue", "--json")
    assert current.exit_code == 0 and current.json()["stale"] == {} and current.stderr == ""


def _put_green(agency: Agency) -> str:
    obj = indicator("current.example", tlp="green")
    put(agency, [obj], partner="cert-fr")
    return str(obj["id"])


def test_a_note_too_long_is_refused_not_cut(partnered: tuple[Agency, Agency]) -> None:
    _, india = partnered
    put(india, [indicator("long.example", tlp="green")], partner="cert-fr")
    refused = india.run("sight", "long.example", "--queue", "--note", "seen " * 401)
    assert refused.exit_code == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "2,004 characters, more than 2,000" in refused.stderr
    assert _sightings_sealed(india) == []
    # Runs of white space count once: 2,000 characters after that are sent whole.
    whole = "x" * 1990 + "   \n\n  " + "y" * 9
    sent = india.run("sight", "long.example", "--queue", "--note", whole, "--json")
    assert sent.exit_code == 0, sent.stderr
    conn = sqlite3.connect(store_path(india))
    try:
        [(note,)] = conn.execute(
            "SELECT json_extract(details, '$.note') FROM audit_log WHERE action = 'sighting'"
        ).fetchall()
    finally:
        conn.close()
    assert note == "x" * 1990 + " " + "y" * 9


def test_a_red_sighting_refused_says_how_to_allow_it(partnered: tuple[Agency, Agency]) -> None:
    _, india = partnered
    put(india, [indicator("red.example", tlp="red")], partner="cert-fr")
    refused = india.run("sight", "red.example", "--queue")
    assert refused.exit_code == 8, refused.stderr
    assert "--allow-red" in refused.stderr and "partners set cert-fr --allow-red" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert _sightings_sealed(india) == []
