"""`--since` of `triage list` and `export`: an age too large is said to be one, and an empty
value (an unset shell variable in a script) is refused, as `audit show` refuses it, instead of
meaning no filter at all (error-hunt walkthrough M10)."""

from __future__ import annotations

import pytest

from cti_exchange.errors import ExitCode
from tests.conftest import Agency


@pytest.mark.parametrize("command", [["triage", "list"], ["export", "--format", "plain"]])
def test_an_age_too_large_is_named_as_one(cert_fr: Agency, command: list[str]) -> None:
    result = cert_fr.run(*command, "--since", "99999999d")
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert "'99999999d' is a duration too large: it reaches back before year 1" in result.stderr
    assert "neither a duration" not in result.stderr


@pytest.mark.parametrize("empty", ["", "  "])
@pytest.mark.parametrize("command", [["triage", "list"], ["export", "--format", "plain"]])
def test_an_empty_since_is_refused(cert_fr: Agency, command: list[str], empty: str) -> None:
    result = cert_fr.run(*command, "--since", empty)
    assert result.exit_code == ExitCode.USAGE, result.stdout + result.stderr
    assert "--since is empty (an unset shell variable?)" in result.stderr
    assert "leave --since out for no limit" in result.stderr


def test_a_timestamp_and_an_age_still_filter(cert_fr: Agency) -> None:
    for since in ("24h", "2026-11-23T08:00:00Z", "2026-11-23T08:00+05:30"):
        result = cert_fr.run("triage", "list", "--since", since)
        assert result.exit_code == 0, (since, result.stderr)
    wrong = cert_fr.run("triage", "list", "--since", "yesterday")
    assert wrong.exit_code == ExitCode.USAGE
    assert "'yesterday' is neither a duration (24h, 7d) nor a timestamp" in wrong.stderr


def test_sight_says_an_age_too_large_is_one(cert_fr: Agency) -> None:
    # `sight --first-seen 99999999d` said it was not an age (noticed at stop 27).
    result = cert_fr.run("sight", "indicator--0", "--first-seen", "99999999d")
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert "--first-seen: a duration too large: '99999999d' reaches back before year 1" in result.stderr


def test_export_refuses_a_status_with_any_status(cert_fr: Agency) -> None:
    # `export --status new --any-status` took every status silently (error-hunt walkthrough M10).
    result = cert_fr.run("export", "--format", "plain", "--status", "new", "--any-status")
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert "--status and --any-status contradict each other" in result.stderr
