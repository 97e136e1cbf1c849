"""The TAXII servers one run (a pull, a sync, a push) found out of reach, shared by the
clients of every partner in that run.

Several partners' API roots are often on one server. Once a request to it has used up its
partner's retry budget failing at the connection level (refused, the connection timed out, a
name that does not resolve, no route: nothing answered at that address), the other partners on
the same server (scheme, host and port) whose retry budget is no larger fail at once in this
run, with the same error, instead of each waiting out a budget of its own against the same dead
server (a partner given a larger budget still tries its own): with a few partners, a run would
otherwise outlast the cron interval. Their work stays where it is (cursors unmoved, outbox
kept) for the next run, as after any network failure.

A server that accepted the connection (a read timeout, a reset, a connection closed without an
answer) or answered (an HTTP 5xx or 429, a truncated answer) is not marked: the answer may
be one API root's, or one account's (a rate limit), and another partner on the same server
may well get through. Nor is a certificate that does not verify: it fails at once anyway,
and partners may pin different CA bundles.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cti_exchange.taxii.endpoint import shown_url

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Server:
    key: str  # scheme://host:port, the port always given: what decides "the same server"
    shown: str  # scheme://host[:port] as configured, never user info: for messages


def server_of(api_root: str) -> Server:
    """The server an API root URL is on."""
    parts = urlsplit(api_root)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    try:
        port = parts.port
    except ValueError:  # not a number: no server to share with others, the URL itself
        return Server(key=api_root, shown=shown_url(api_root))
    given = f":{port}" if port is not None else ""
    key_port = port if port is not None else _DEFAULT_PORTS.get(scheme)
    return Server(key=f"{scheme}://{host}:{key_port}", shown=f"{scheme}://{host}{given}")


@dataclass(frozen=True)
class Unreachable:
    """How a server was found out of reach in this run."""

    server: Server
    partner: str  # whose request used up its retry budget on it
    seconds: float  # how long it was tried
    problem: str  # the last failure, e.g. "connection refused"
    budget: float  # that partner's retry budget: a partner with a larger one still tries


class ServersThisRun:
    """Which servers this run found out of reach, and what to tell the user while a request
    is being retried (`notify`: a progress line; `recovered`: the retried request went
    through or was given up on, so the progress line may go back to what the run is doing)."""

    def __init__(
        self,
        notify: Callable[[str], None] | None = None,
        recovered: Callable[[], None] | None = None,
    ) -> None:
        self._down: dict[str, Unreachable] = {}
        self._notify = notify
        self._recovered = recovered

    def unreachable(self, server: Server, budget: float) -> Unreachable | None:
        """How `server` was found out of reach in this run, if a partner with a retry budget of
        `budget` or more (more patient than the one asking) already used it up there."""
        found = self._down.get(server.key)
        return found if found is not None and found.budget >= budget else None

    def mark_unreachable(self, found: Unreachable) -> None:
        known = self._down.get(found.server.key)
        if known is None or found.budget > known.budget:
            self._down[found.server.key] = found
        log.info(
            "%s: server %s unreachable after %.0f s of retries (%s): the other partners on it are "
            "not tried again in this run; their work is kept for the next run",
            found.partner,
            found.server.shown,
            found.seconds,
            found.problem,
        )

    def retrying(
        self, partner: str, server: Server, problem: str, *, connection: bool, remaining: float, first: bool
    ) -> None:
        """A request to `server` failed with `problem` and will be tried again for up to
        `remaining` seconds; `first`: its first failure."""
        state = f"unreachable ({problem})" if connection else f"failing ({problem})"
        message = f"{partner}: server {server.shown} {state}; retrying for up to {max(0.0, remaining):.0f} s"
        if first:
            log.info("%s", message)  # in the sync log; nothing on stderr (cron mail, pipes)
        if self._notify is not None:
            self._notify(message)

    def retries_ended(self) -> None:
        """The retried request went through, or was given up on."""
        if self._recovered is not None:
            self._recovered()
