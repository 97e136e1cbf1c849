"""`audit show`: filters by time, partner and action; plain TSV without a terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cti_exchange.cli.audit_cmd import parse_when
from tests.conftest import Agency


def _seqs(agency: Agency, *args: str) -> list[int]:
    result = agency.run("audit", "show", "--json", *args)
    assert result.exit_code == 0, result.stderr
    records: Any = result.json()
    return [r["seq"] for r in records]


def test_show_filters_by_time_partner_and_action(trail: Agency) -> None:
    assert _seqs(trail) == [1, 2, 3, 4, 5, 6]
    # A bare --until date means the end of that day.
    assert _seqs(trail, "--since", "2030-01-03", "--until", "2030-01-04") == [3, 4]
    assert _seqs(trail, "--since", "2030-01-05T00:00:00Z") == [5, 6]
    assert _seqs(trail, "--until", "2030-01-02T12:00:00.000Z", "--since", "2030-01-01") == [2]
    assert _seqs(trail, "--partner", "cert-in") == [3, 5]
    assert _seqs(trail, "--action", "triage") == [2, 4, 6]
    assert _seqs(trail, "--action", "triage", "--partner", "cert-in") == []
    assert _seqs(trail, "--action", "key-change") == [1]
    assert _seqs(trail, "--limit", "2") == [5, 6]


def test_show_without_a_terminal_is_tab_separated(trail: Agency) -> None:
    result = trail.run("audit", "show", "--action", "sighting")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["seq", "at", "actor", "action", "partner", "details"]
    assert [line.split("\t")[0] for line in lines[1:]] == ["3", "5"]
    assert lines[1].split("\t")[5] == '{"day":3}'


def test_show_rejects_a_bad_time(trail: Agency) -> None:
    result = trail.run("audit", "show", "--since", "last tuesday")
    assert result.exit_code == 2
    assert "--since: 'last tuesday' is not a time" in result.stderr


def test_times_on_the_command_line() -> None:
    now = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)
    assert parse_when("7d", "--since", now=now) == datetime(2030, 1, 3, 12, 0, tzinfo=UTC)
    assert parse_when("90m", "--since", now=now) == datetime(2030, 1, 10, 10, 30, tzinfo=UTC)
    assert parse_when("2w", "--since", now=now) == datetime(2029, 12, 27, 12, 0, tzinfo=UTC)
    assert parse_when("2030-01-04", "--since") == datetime(2030, 1, 4, tzinfo=UTC)
    assert parse_when("2030-01-04", "--until", end_of_day=True).isoformat() == (
        "2030-01-04T23:59:59.999999+00:00"
    )
    assert parse_when("2030-01-04T10:00:00+05:30", "--since") == datetime(2030, 1, 4, 4, 30, tzinfo=UTC)


def test_a_name_the_trail_does_not_hold_is_said_not_taken_for_no_match(trail: Agency) -> None:
    # A typo in a report script (`--action dance`, `--partner cert-inn`) read as "nothing
    # happened" (error-hunt walkthrough M9). Still exit 0 with no records: a removed partner's
    # name, or an action that has not happened yet, is a fair question.
    result = trail.run("audit", "show", "--action", "dance", "--partner", "cert-inn")
    assert result.exit_code == 0, result.stderr
    assert "no record has the action 'dance' (in the trail: key-change, sighting, triage)" in result.stderr
    assert "no record names the partner 'cert-inn' (in the trail: cert-de, cert-in)" in result.stderr
    # A name that is there but matches nothing with the other filters says nothing more.
    quiet = trail.run("audit", "show", "--action", "triage", "--partner", "cert-in")
    assert quiet.exit_code == 0 and "in the trail" not in quiet.stderr


def test_an_until_before_the_since_is_refused_as_audit_export_refuses_it(trail: Agency) -> None:
    # It listed nothing with exit 0 (error-hunt walkthrough M10).
    result = trail.run("audit", "show", "--since", "2030-01-05", "--until", "2030-01-02")
    assert result.exit_code == 2
    assert "--until is before --since" in result.stderr and result.stderr.count("\n") == 1
