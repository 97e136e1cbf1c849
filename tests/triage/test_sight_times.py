"""`sight` times: a date and time without a zone is refused (an analyst's local time taken for
UTC would tell the partner a time hours off); a bare date, Z or an offset is taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cti_exchange.clock import parse_timestamp
from tests.conftest import Agency
from tests.triage.conftest import indicator, put


@pytest.mark.parametrize("when", ["2026-11-20T08:00", "2026-11-20 08:00:00", "2026-11-20t08:00:00.250"])
def test_a_time_without_a_zone_is_refused(partnered: tuple[Agency, Agency], when: str) -> None:
    _, india = partnered
    put(india, [indicator("seen.example")], partner="cert-fr")
    result = india.run("sight", "seen.example", "--queue", "--first-seen", when)
    assert result.exit_code == 2, result.stderr
    assert f"--first-seen: {when!r} has no time zone" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("when", "stored"),
    [
        ("2026-11-20", "2026-11-20T00:00:00.000Z"),
        ("2026-11-20T08:00:00+05:30", "2026-11-20T02:30:00.000Z"),
        ("2026-11-20T08:00:00Z", "2026-11-20T08:00:00.000Z"),
    ],
)
def test_a_date_or_a_zoned_time_is_taken(partnered: tuple[Agency, Agency], when: str, stored: str) -> None:
    _, india = partnered
    put(india, [indicator("seen.example")], partner="cert-fr")
    result = india.run("sight", "seen.example", "--queue", "--first-seen", when, "--json")
    assert result.exit_code == 0, result.stderr
    audit = india.run("audit", "show", "--action", "sighting", "--json")
    assert audit.exit_code == 0, audit.stderr
    assert stored in audit.stdout


def test_an_age_is_taken_as_for_since(partnered: tuple[Agency, Agency]) -> None:
    """`--first-seen 24h` was refused, though the same WHEN as `--since` takes it."""
    _, india = partnered
    put(india, [indicator("seen.example")], partner="cert-fr")
    before = datetime.now(UTC)
    result = india.run(
        "sight", "seen.example", "--queue", "--first-seen", "24h", "--last-seen", "30m", "--json"
    )
    assert result.exit_code == 0, result.stderr
    audit = india.run("audit", "show", "--action", "sighting", "--json").json()
    details = audit[-1]["details"]
    first, last = parse_timestamp(details["first_seen"]), parse_timestamp(details["last_seen"])
    assert timedelta(hours=23, minutes=59) < before - first < timedelta(hours=24, minutes=1)
    assert timedelta(minutes=29) < before - last < timedelta(minutes=31)
