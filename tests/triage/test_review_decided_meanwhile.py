"""`triage review` never overwrites a decision its screen did not show (found on a
walkthrough): another analyst's, made while the prompt was open, or one already on another
spelling of the value. The key pressed leaves it as it is, says so, and counts as skipped."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from cti_exchange.store.store import Store
from cti_exchange.triage import TriageLine, build_filter, iter_queue
from cti_exchange.triage_decisions import ReviewSummary, decide_in_review, review_loop
from tests.conftest import Agency
from tests.triage.conftest import indicator, put, store_path


def _review(
    agency: Agency, keys: list[str], before_key: Callable[[TriageLine], None]
) -> tuple[ReviewSummary, list[str]]:
    """A review by alice (in this process), `before_key` run on each line once it is shown."""
    typed = iter(keys)
    warnings: list[str] = []
    with Store(store_path(agency), actor="alice") as store:
        summary = review_loop(
            iter_queue(store, build_filter(statuses=["new"])),
            read_key=lambda: next(typed),
            present=lambda line, number: before_key(line),
            apply=lambda line, decision: decide_in_review(
                store, line, decision, note=None, warn=warnings.append
            ),
            warn=warnings.append,
        )
    return summary, warnings


def _status(agency: Agency, value: str) -> tuple[str, str]:
    with sqlite3.connect(store_path(agency)) as conn:
        row = conn.execute(
            "SELECT status, status_by FROM objects WHERE value = ? AND is_current = 1", (value,)
        ).fetchone()
    return row[0], row[1]


def test_a_decision_made_while_the_prompt_was_open_is_not_overwritten(cert_in: Agency) -> None:
    put(cert_in, [indicator("raced.example")])

    def bob_decides(line: TriageLine) -> None:
        bob = cert_in.run("triage", "false-positive", "raced.example", env={"CTI_EXCHANGE_ANALYST": "bob"})
        assert bob.exit_code == 0, bob.stderr

    summary, warnings = _review(cert_in, ["a"], bob_decides)
    assert _status(cert_in, "raced.example") == ("false-positive", "bob")
    assert summary.skipped == 1 and summary.decided == {}
    assert len(warnings) == 1 and "raced.example is already false-positive by bob" in warnings[0]


def test_a_new_spelling_of_a_decided_value_does_not_change_the_decision(cert_in: Agency) -> None:
    put(cert_in, [indicator("spelt.example")], partner="cert-fr")
    accepted = cert_in.run("triage", "accept", "spelt.example", "--note", "seen in sandbox")
    assert accepted.exit_code == 0, accepted.stderr
    put(cert_in, [indicator("SPELT.EXAMPLE.")], partner="cert-fr", envelope_id="envelope--later")

    summary, warnings = _review(cert_in, ["f"], lambda line: None)
    assert _status(cert_in, "spelt.example")[0] == "accepted"
    assert _status(cert_in, "SPELT.EXAMPLE.")[0] == "new"
    assert summary.skipped == 1 and len(warnings) == 1 and "is already accepted" in warnings[0]


def test_an_undecided_line_is_decided_as_before(cert_in: Agency) -> None:
    put(cert_in, [indicator("quiet.example")])
    summary, warnings = _review(cert_in, ["r"], lambda line: None)
    assert _status(cert_in, "quiet.example") == ("rejected", "alice")
    assert summary.decided == {"rejected": 1} and warnings == []
