"""Audit regressions for `sight`: timestamps at the calendar's edge, what a note may carry,
our own indicator relayed back. Sightings are sealed into the outbox only (`--queue`)."""

from __future__ import annotations

import sqlite3

import pytest

from cti_exchange.profile.model import identity_id_for
from tests.conftest import Agency
from tests.triage.conftest import indicator, put, store_path


def _sightings_sealed(agency: Agency) -> int:
    conn = sqlite3.connect(store_path(agency))
    try:
        return int(conn.execute("SELECT count(*) FROM shared_objects WHERE type = 'sighting'").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("option", "when"),
    [
        ("--first-seen", "0001-01-01T00:00:00+01:00"),  # OverflowError moving it to UTC
        ("--first-seen", "0001-01-01T00:00:00Z"),  # "1-01-01T..." is not a STIX timestamp
        ("--first-seen", "0999-12-31T00:00:00Z"),
        ("--last-seen", "9999-12-31T23:59:59-01:00"),
    ],
)
def test_a_timestamp_at_the_edge_of_the_calendar_is_a_usage_error(
    partnered: tuple[Agency, Agency], option: str, when: str
) -> None:
    _, india = partnered
    put(india, [indicator("seen.example")], partner="cert-fr")
    result = india.run("sight", "seen.example", "--queue", option, when)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and option in result.stderr
    assert "internal error" not in result.stderr
    assert _sightings_sealed(india) == 0


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        ("proxy \x1b[31mlogs", "U+001B"),
        ("proxy logs\x00", "U+0000"),
        ("proxy \u202elogs", "U+202E"),
        ("seen on the laptop of jdoe@corp.example", "personal data"),
        ("call the user on +33 1 23 45 67 89", "personal data"),
    ],
)
def test_a_note_with_control_characters_or_personal_data_is_refused(
    partnered: tuple[Agency, Agency], note: str, expected: str
) -> None:
    _, india = partnered
    put(india, [indicator("seen.example")], partner="cert-fr")
    result = india.run("sight", "seen.example", "--queue", "--note", note)
    assert result.exit_code == 2, result.stderr
    assert "--note" in result.stderr and expected in result.stderr
    assert _sightings_sealed(india) == 0


def test_a_note_naming_a_role_mailbox_is_sent(partnered: tuple[Agency, Agency]) -> None:
    _, india = partnered
    put(india, [indicator("seen.example")], partner="cert-fr")
    result = india.run("sight", "seen.example", "--queue", "--note", "proxy logs; ask soc@cert-in.example")
    assert result.exit_code == 0, result.stderr
    assert _sightings_sealed(india) == 1


def test_our_own_indicator_relayed_back_is_not_sighted(partnered: tuple[Agency, Agency]) -> None:
    _, india = partnered
    ours = identity_id_for("cert-in")
    own = indicator("own.example", tlp="green", created_by=ours)
    put(india, [own], partner="cert-fr")
    refused = india.run("sight", "own.example", "--queue")
    assert refused.exit_code == 2 and "our own indicator" in refused.stderr
    assert _sightings_sealed(india) == 0
    # The same value from a partner that created it: that partner's indicator only.
    theirs = indicator("own.example", tlp="green")
    put(india, [theirs], partner="cert-fr")
    sent = india.run("sight", "own.example", "--queue", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert [s["sighting_of_ref"] for s in sent.json()["sightings"]] == [theirs["id"]]
