"""Page tokens know the order they were printed for, and times at the calendar's edges are
usage errors (exit 2), not internal errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.conftest import Agency
from tests.triage.conftest import indicator, put


def _token(raw: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


@pytest.fixture
def stored(cert_in: Agency) -> Agency:
    put(cert_in, [indicator(f"p{n}.example", confidence=n) for n in range(6)])
    return cert_in


def _values(agency: Agency, *args: str) -> tuple[list[str], str | None]:
    result = agency.run("triage", "list", "--json", "--limit", "2", *args)
    assert result.exit_code == 0, result.stderr
    document = result.json()
    return [i["value"] for i in document["items"]], document["next"]


def test_a_token_pages_only_the_order_it_was_printed_for(stored: Agency) -> None:
    first, token = _values(stored, "--sort", "value", "--asc")
    assert first == ["p0.example", "p1.example"] and token
    second, _ = _values(stored, "--sort", "value", "--asc", "--after", token)
    assert second == ["p2.example", "p3.example"]
    # Forgetting --sort used to show the first page of received order again, silently.
    for other in ([], ["--sort", "value", "--desc"], ["--sort", "confidence"]):
        refused = stored.run("triage", "list", "--limit", "2", "--after", token, *other)
        assert refused.exit_code == 2, refused.stdout
        assert "--after: this token is for another order (--sort value --asc)" in refused.stderr
        assert refused.stderr.count("\n") == 1
    received, keyset = _values(stored)
    assert len(received) == 2 and keyset
    refused = stored.run("triage", "list", "--sort", "value", "--after", keyset)
    assert refused.exit_code == 2 and "another order" in refused.stderr
    sighted = stored.run("triage", "list", "--sighted", "--after", token)
    assert sighted.exit_code == 2 and "--after" in sighted.stderr


@pytest.mark.parametrize(
    "raw",
    [
        {"order": "value:asc", "offset": 10**20},
        {"order": "value:asc", "offset": -1},
        {"order": "value:asc", "offset": True},
        {"order": "received:desc", "key": ["2026-01-01T00:00:00.000Z", 2**64]},
        {"order": "received:desc", "key": ["x"]},
        10**20,
        ["2026-01-01T00:00:00.000Z", 1],
    ],
)
def test_forged_tokens_are_usage_errors(stored: Agency, raw: object) -> None:
    result = stored.run("triage", "list", "--sort", "value", "--asc", "--after", _token(raw))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("cti-exchange: error: --after:") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "since",
    ["99999999d", "10000000w", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"],
)
def test_times_off_the_calendar_are_usage_errors(stored: Agency, tmp_path: Path, since: str) -> None:
    for command in (
        ("triage", "list", "--since", since),
        ("export", "--format", "plain", "-o", str(tmp_path / "out.txt"), "--since", since),
        ("audit", "show", "--since", since),
    ):
        result = stored.run(*command)
        assert result.exit_code == 2, (command, result.stderr)
        assert "--since" in result.stderr and "internal error" not in result.stderr
        assert result.stderr.count("\n") == 1


def test_a_very_old_since_covers_everything(stored: Agency) -> None:
    values, _ = _values(stored, "--since", "0001-01-01T00:00:00Z", "--limit", "10")
    assert len(values) == 6


def test_the_same_decision_again_keeps_its_note_and_another_replaces_it(stored: Agency) -> None:
    def note() -> str | None:
        shown = stored.run("triage", "show", "p1.example", "--json")
        assert shown.exit_code == 0, shown.stderr
        value = shown.json()["status_note"]
        return value if isinstance(value, str) else None

    assert stored.run("triage", "accept", "p1.example", "--note", "seen in proxy").exit_code == 0
    assert stored.run("triage", "accept", "p1.example").exit_code == 0
    assert note() == "seen in proxy"
    assert stored.run("triage", "accept", "p1.example", "--note", "confirmed by SOC").exit_code == 0
    assert note() == "confirmed by SOC"
    assert stored.run("triage", "reject", "p1.example").exit_code == 0
    assert note() is None


@pytest.mark.parametrize("bad", ["ok\x1b[31m", "bell\x07", "rtl\u202eevil", "zero\u200bwidth"])
def test_a_note_with_control_characters_is_refused(stored: Agency, bad: str) -> None:
    result = stored.run("triage", "accept", "p2.example", "--note", bad)
    assert result.exit_code == 2 and "--note" in result.stderr and result.stderr.count("\n") == 1
    shown = stored.run("triage", "show", "p2.example", "--json").json()
    assert shown["status"] == "new"


def test_accepting_a_revoked_indicator_says_it_will_not_be_exported(cert_in: Agency) -> None:
    put(cert_in, [indicator("gone.example", revoked=True), indicator("live.example")])
    result = cert_in.run("triage", "accept", "gone.example", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(result.json()["revoked"]) == 1
    text = cert_in.run("triage", "accept", "gone.example")
    assert "1 of them revoked by their source" in text.stderr
    assert "revoked" not in cert_in.run("triage", "accept", "live.example").stderr


def test_a_note_too_long_is_refused_not_cut(stored: Agency) -> None:
    result = stored.run("triage", "accept", "p3.example", "--note", "x" * 1001)
    assert result.exit_code == 2 and "--note: 1,001 characters; at most 1,000" in result.stderr
    assert stored.run("triage", "accept", "p3.example", "--note", "x" * 1000).exit_code == 0
