"""The exit code of a run in which nothing due could be posted names the cause: 7 only when
every server was out of reach (a cron operator checks the network on 7)."""

from __future__ import annotations

import pytest

from cti_exchange.errors import ExitCode
from cti_exchange.exchange.delivery import DeliveryOutcome, failure_exit_code


def _failed(partner: str, code: ExitCode | None) -> DeliveryOutcome:
    return DeliveryOutcome(
        partner=partner, failed={f"envelope--{partner}": "why"}, error="why", failure_code=code
    )


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([ExitCode.NETWORK], ExitCode.NETWORK),
        ([ExitCode.NETWORK, ExitCode.NETWORK], ExitCode.NETWORK),
        ([ExitCode.NETWORK, ExitCode.AUTH], ExitCode.AUTH),
        ([None], ExitCode.PARTIAL),  # the server answered: too large, a failed TAXII status
        ([ExitCode.NETWORK, None], ExitCode.PARTIAL),
        ([ExitCode.POLICY], ExitCode.POLICY),  # its entry no longer allows what is queued
        ([ExitCode.USAGE, ExitCode.NETWORK], ExitCode.USAGE),  # settings or keys to fix
        ([None, ExitCode.USAGE], ExitCode.USAGE),
    ],
)
def test_the_cause_sets_the_exit_code(codes: list[ExitCode | None], expected: ExitCode) -> None:
    outcomes = [_failed(f"p{i}", code) for i, code in enumerate(codes)]
    outcomes.append(DeliveryOutcome(partner="idle"))  # nothing was due for it: not counted
    assert failure_exit_code(outcomes) is expected
