"""Retrying TAXII requests: exponential backoff with full jitter on connection errors,
timeouts, truncated bodies, 429 (honouring Retry-After) and 5xx, within a bounded total time.

4xx other than 408/429 are not retried: the request itself is wrong and would fail again. Nor
is a redirect: the client never follows one (see client.py), and it would come again. A 401 is
an authentication failure; any other such answer (403 and 404 included) is a `RequestFailed`
with its status, for the caller to say what it means for what it asked (client.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import urljoin

import requests
from taxii2client.exceptions import InvalidJSONError, TAXIIServiceException

from cti_exchange.errors import AuthError, NetworkError
from cti_exchange.taxii.endpoint import shown_url

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    total_seconds: float = 120.0  # stop retrying once this much time has passed
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        # "Full jitter" (AWS architecture blog): spreads retries of many clients apart.
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))  # noqa: S311


class RequestFailed(Exception):
    """A non-retryable HTTP error (e.g. 400, 403, 404) with the server's TAXII error text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` from a server (a misconfigured gateway quoting our Authorization header, or a
    hostile one) without our credentials in any form the caller lists. The text ends up in
    errors, the log and the hash-chained audit trail, which cannot be scrubbed afterwards."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _server_text(response: requests.Response, secrets: Sequence[str] = ()) -> str:
    try:
        body = response.json()
        if isinstance(body, dict):
            text = str(body.get("description") or body.get("title") or "")
        else:
            text = response.text
    except ValueError:
        text = response.text
    # Redacted before it is cut: a secret cut in two would no longer match.
    return redact(text[:2000], secrets)[:200]


def _redirect_target(response: requests.Response | None) -> str:
    """Where a refused redirect pointed: without user info or query (they may carry someone's
    credentials or tokens), nothing unprintable (the text comes from the server), and short."""
    if response is None or not response.headers.get("Location"):
        return "an unnamed location"
    shown = shown_url(urljoin(response.url or "", response.headers["Location"]))
    return "".join(c if c.isprintable() and not c.isspace() else "?" for c in shown)[:200]


def call_with_retries(
    action: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy,
    secrets: Sequence[str] = (),  # our credentials, kept out of the server's text we quote
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    started = clock()
    attempt = 0
    while True:
        retry_after: float | None = None
        try:
            return action()
        except requests.TooManyRedirects as exc:
            response = exc.response
            status = response.status_code if response is not None else 0
            raise NetworkError(
                f"{what}: the server redirected (HTTP {status}) to {_redirect_target(response)}, "
                "and TAXII redirects are not followed",
                hint="confirm the new address with the partner out of band, then set it with "
                "`cti-exchange partners set PARTNER --api-root URL`",
            ) from None
        except requests.HTTPError as exc:
            response = exc.response
            status = response.status_code if response is not None else 0
            if status == 401:
                raise AuthError(
                    f"{what}: the server refused our credentials (HTTP {status})",
                    hint="check the partner's TAXII username and secret (`cti-exchange doctor` checks them)",
                ) from None
            if status not in RETRYABLE_STATUS:
                text = _server_text(response, secrets) if response is not None else ""
                raise RequestFailed(status, f"{what}: HTTP {status} {text}".strip()) from None
            retry_after = _retry_after(response)
            problem = f"HTTP {status}"
        except requests.exceptions.SSLError as exc:
            # A certificate that does not verify will not verify on the next try either.
            reason = str(exc.args[0] if exc.args else exc)
            detail = reason.split("(Caused by ")[-1][:160]
            raise NetworkError(
                f"{what}: TLS failed ({detail.rstrip(')')})",
                hint="check the server certificate; for a private CA set the partner's --ca-bundle",
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            problem = type(exc).__name__
        except (
            InvalidJSONError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
            ValueError,
            RecursionError,  # JSON nested deeper than the parser goes
        ) as exc:
            problem = f"truncated or invalid response ({type(exc).__name__})"
        except TAXIIServiceException as exc:
            problem = f"unexpected response ({str(exc).splitlines()[0][:120]})"
        elapsed = clock() - started
        pause = policy.delay(attempt, retry_after)
        if elapsed + pause > policy.total_seconds:
            raise NetworkError(
                f"{what}: still failing after {attempt + 1} attempts over {elapsed:.0f} s (last: {problem})",
                hint="check the server is up and reachable; the work is kept and resumes next run",
            )
        sleep(pause)
        attempt += 1
