"""Which failures mark a server out of reach for the rest of a run (taxii/servers.py), and for
which partners (review of 4666731): only nothing answering at the address marks it, and a
partner given a larger retry budget still tries its own."""

from __future__ import annotations

import pytest
import requests

from cti_exchange.errors import NetworkError
from cti_exchange.taxii.retry import RetryPolicy, ServerUnreachable, call_with_retries
from cti_exchange.taxii.servers import ServersThisRun, Unreachable, server_of


def _fail_with(exc: Exception) -> type[NetworkError]:
    """The error type call_with_retries ends with, for an action that always raises `exc`."""
    ticks = iter(range(0, 1000, 5))

    def action() -> None:
        raise exc

    with pytest.raises(NetworkError) as raised:
        call_with_retries(
            action,
            what="x",
            policy=RetryPolicy(total_seconds=10),
            sleep=lambda _: None,
            clock=lambda: next(ticks),
        )
    return type(raised.value)


@pytest.mark.parametrize(
    ("exc", "marks"),
    [
        (requests.ConnectionError("[Errno 111] Connection refused"), True),
        (requests.ConnectTimeout("connect timed out"), True),
        (requests.ConnectionError("NameResolutionError: no such host"), True),
        # The server accepted the connection: a slow API root, or a partner's short --timeout.
        (requests.ReadTimeout("Read timed out"), False),
        (requests.ConnectionError("Connection reset by peer"), False),
        (requests.ConnectionError("RemoteDisconnected('closed without response')"), False),
    ],
)
def test_only_nothing_answering_marks_a_server(exc: Exception, marks: bool) -> None:
    assert (_fail_with(exc) is ServerUnreachable) is marks


def test_a_partner_with_a_larger_budget_still_tries() -> None:
    run = ServersThisRun()
    server = server_of("https://taxii.example/exchange/")
    run.mark_unreachable(Unreachable(server, "cert-fr", 4.0, "connection refused", budget=5.0))
    assert run.unreachable(server, budget=5.0) is not None
    assert run.unreachable(server, budget=1.0) is not None
    assert run.unreachable(server, budget=120.0) is None
    assert run.unreachable(server_of("https://taxii.example:443/other/"), budget=5.0) is not None
    assert run.unreachable(server_of("https://other.example/exchange/"), budget=5.0) is None
