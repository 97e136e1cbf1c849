"""Retrying TAXII requests: exponential backoff with full jitter on connection errors,
timeouts, truncated bodies, 429 (honouring Retry-After) and 5xx, within a bounded total time.

4xx other than 408/429 are not retried: the request itself is wrong and would fail again. Nor
is a redirect: the client never follows one (see client.py), and it would come again. A 401 is
an authentication failure; any other such answer (403 and 404 included) is a `RequestFailed`
with its status, for the caller to say what it means for what it asked (client.py).

A budget used up failing to reach the server at all (refused, timed out, a name that does not
resolve) is a `ServerUnreachable`, naming the server: the client tells the run, so that other
partners on the same server are not retried for a budget of their own (servers.py).
"""

from __future__ import annotations

import html
import random
import re
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import urljoin

import requests
from taxii2client.exceptions import InvalidJSONError, TAXIIServiceException

from cti_exchange.errors import AuthError, CtiExchangeError, NetworkError
from cti_exchange.taxii.endpoint import shown_url
from cti_exchange.taxii.scheme_probe import exception_causes
from cti_exchange.untrusted_text import escape_controls

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


class ServerUnreachable(NetworkError):
    """The retry budget ran out with the server not answering at all (its last attempt)."""

    def __init__(self, message: str, *, hint: str, seconds: float, problem: str) -> None:
        super().__init__(message, hint=hint)
        self.seconds = seconds
        self.problem = problem


class DiagnosedNetworkError(NetworkError):
    """A failure whose cause was recognised (a TLS certificate, an invalid answer): not
    retried, and its hint is the fix, which `doctor` shows instead of its generic advice."""


# What becomes of the work of a request given up on: pull keeps its cursor, the outbox its
# envelopes.
KEPT = "the work is kept and resumes next run"
UNREACHABLE_HINT = f"{KEPT}; check the server is up and reachable (`cti-exchange doctor`)"


@dataclass(frozen=True)
class RetryNote:
    """A failed attempt about to be retried (for a progress line)."""

    problem: str
    connection: bool  # nothing answered: refused, timed out, name not resolved
    attempt: int  # 0 for the first failure
    remaining: float  # seconds left in the budget


def connection_problem(exc: requests.RequestException) -> str:
    """A connection-level failure in a few words (requests says it in a paragraph)."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    text = str(exc)
    for needle, said in (
        ("Connection refused", "connection refused"),
        ("NameResolutionError", "host name not resolved"),
        ("Name or service not known", "host name not resolved"),
        ("Temporary failure in name resolution", "host name not resolved"),
        ("nodename nor servname", "host name not resolved"),
        ("Read timed out", "no answer in time"),
        ("timed out", "connection timed out"),
        ("Network is unreachable", "network unreachable"),
        ("No route to host", "no route to host"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed without an answer"),
        ("Connection aborted", "connection closed without an answer"),
    ):
        if needle in text:
            return said
    return f"connection failed ({type(exc).__name__})"


# Failures where nothing answered at the address (servers.py): the server is not there. A read
# timeout, a reset or a connection closed without an answer came from a server that accepted the
# connection: it may answer another partner (a slow API root, a partner's short --timeout).
NOTHING_ANSWERED = frozenset(
    {
        "connection refused",
        "host name not resolved",
        "connection timed out",
        "network unreachable",
        "no route to host",
    }
)


class AnswerStalled(requests.ConnectionError):
    """The server answered, then its body stopped coming or came too slowly (client.py): it is
    up, so this is not "unreachable", and other partners on it are tried as usual."""


class RequestFailed(Exception):
    """A non-retryable HTTP error (e.g. 400, 403, 404) with the server's TAXII error text."""

    def __init__(self, status: int, message: str, *, content_type: str = "", text: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.content_type = content_type
        self.text = text  # the server's words, short and escaped (what `message` ends with)


class NotTaxiiAnswer(Exception):
    """A success answered in a media type other than TAXII 2.1's (an HTML page, plain JSON): a
    web server, not a TAXII API root, is at the URL. Not retried: it answers the same until
    someone changes the URL (client.py says so)."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        super().__init__(f"HTTP {status}, {content_type or 'no Content-Type'}")
        self.status = status
        self.content_type = content_type
        self.body = body  # its start, as sent: quoted only through body_excerpt, with secrets


TAXII_MEDIA_TYPE = "application/taxii+json"
EXCERPT_CHARACTERS = 60
_HTML_SKIPPED = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")


def media_type(content_type: str) -> str:
    """`application/taxii+json` of `application/taxii+json; version=2.1` (RFC 9110 8.3.1)."""
    return content_type.split(";", 1)[0].strip().lower()


def is_taxii(content_type: str) -> bool:
    return media_type(content_type) == TAXII_MEDIA_TYPE


def body_excerpt(content_type: str, body: bytes, secrets: Sequence[str] = ()) -> str:
    """The start of a body that is not TAXII, as a short quoted line: an HTML page's text
    without its markup, never the page itself; control characters escaped."""
    text = body[:4096].decode("utf-8", "replace")
    if "html" in media_type(content_type) or text.lstrip()[:1] == "<":
        text = html.unescape(_HTML_TAG.sub(" ", _HTML_SKIPPED.sub(" ", text)))
    text = " ".join(redact(text, secrets).split())
    if not text:
        return ""
    cut = text[:EXCERPT_CHARACTERS] + ("..." if len(text) > EXCERPT_CHARACTERS else "")
    return '"' + escape_controls(cut).replace('"', "'") + '"'


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
    content_type = response.headers.get("Content-Type", "")
    if "json" not in media_type(content_type):
        # A web server's error page (HTML) or a proxy's text: its first words, not the page.
        excerpt = body_excerpt(content_type, response.content or b"", secrets)
        return f"({content_type or 'no Content-Type'}{': ' + excerpt if excerpt else ''})"
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


def ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The `ssl.SSLError` under a requests/urllib3 SSLError (urllib3 wraps it in a
    MaxRetryError's `reason`, requests in its first argument)."""
    return next((item for item in exception_causes(exc) if isinstance(item, ssl.SSLError)), None)


# OpenSSL's reasons when what came back is not TLS: most often a plain-HTTP answer.
NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "UNKNOWN_PROTOCOL",
        "HTTP_REQUEST",
    }
)


def ca_bundle_hint(partner: str = "PARTNER") -> str:
    return (
        f"for a private CA set the partner's --ca-bundle (`cti-exchange partners set {partner} "
        "--ca-bundle FILE`); otherwise check the server's certificate with its operator"
    )


CREDENTIALS_HINT = "check the partner's TAXII username and secret (`cti-exchange doctor` checks them)"


def tls_failure(what: str, exc: BaseException, *, partner: str = "PARTNER") -> DiagnosedNetworkError:
    """A TLS failure in words: certificate verify failed (and why), or a handshake that failed
    (and the likely cause); never Python's repr of the exception chain."""
    cause = ssl_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = cause.verify_message or cause.reason or "unknown reason"
        return DiagnosedNetworkError(
            f"{what}: certificate verify failed: {why}", hint=ca_bundle_hint(partner)
        )
    reason = (cause.reason if cause is not None else None) or ""
    if reason in NOT_TLS_REASONS:
        return DiagnosedNetworkError(
            f"{what}: TLS handshake failed: the server may speak plain HTTP "
            f"({reason.lower().replace('_', ' ')})",
            hint="check the api_root's scheme and port with the server's operator",
        )
    shown = reason.lower().replace("_", " ") if reason else type(cause or exc).__name__
    return DiagnosedNetworkError(
        f"{what}: TLS handshake failed ({shown})",
        hint="check the server's certificate and, if it asks for one, our --client-cert with its operator",
    )


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
    server: str = "the server",  # as shown in messages (servers.py)
    on_retry: Callable[[RetryNote], None] | None = None,
    # Names the cause of a first connection or TLS failure, if it can (a scheme mismatch):
    # then it is raised at once, not retried.
    diagnose: Callable[[requests.RequestException], CtiExchangeError | None] | None = None,
    # The partner as hints name it (`partners set cert-in ...`), and what to check when the
    # server refuses our credentials (401): they depend on its `auth` (client.py).
    partner: str = "PARTNER",
    credentials_hint: str = CREDENTIALS_HINT,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    started = clock()
    attempt = 0
    while True:
        retry_after: float | None = None
        connection = False
        try:
            return action()
        except requests.TooManyRedirects as exc:
            response = exc.response
            status = response.status_code if response is not None else 0
            raise NetworkError(
                f"{what}: the server redirected (HTTP {status}) to {_redirect_target(response)}, "
                "and TAXII redirects are not followed",
                hint="confirm the new address with the partner out of band, then set it with "
                f"`cti-exchange partners set {partner} --api-root URL`",
            ) from None
        except requests.HTTPError as exc:
            response = exc.response
            status = response.status_code if response is not None else 0
            if status == 401:
                raise AuthError(
                    f"{what}: the server refused our credentials (HTTP {status})",
                    hint=credentials_hint,
                ) from None
            if status not in RETRYABLE_STATUS:
                text = _server_text(response, secrets) if response is not None else ""
                content_type = response.headers.get("Content-Type", "") if response is not None else ""
                raise RequestFailed(
                    status, f"{what}: HTTP {status} {text}".strip(), content_type=content_type, text=text
                ) from None
            retry_after = _retry_after(response)
            problem = f"HTTP {status}"
        except requests.exceptions.SSLError as exc:
            # A certificate that does not verify will not verify on the next try either.
            if diagnose is not None and (known := diagnose(exc)) is not None:
                raise known from None
            raise tls_failure(what, exc, partner=partner) from None
        except AnswerStalled as exc:
            problem = f"the answer stalled: {(str(exc).splitlines() or [''])[0][:120]}"
        except (requests.ConnectionError, requests.Timeout) as exc:
            problem = connection_problem(exc)
            connection = problem in NOTHING_ANSWERED
            if attempt == 0 and diagnose is not None and (known := diagnose(exc)) is not None:
                raise known from None
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
            if connection:
                raise ServerUnreachable(
                    f"{what}: server {server} unreachable ({problem}), tried {attempt + 1} time(s) "
                    f"over {elapsed:.0f} s",
                    hint=UNREACHABLE_HINT,
                    seconds=elapsed,
                    problem=problem,
                )
            raise NetworkError(
                f"{what}: still failing after {attempt + 1} attempts over {elapsed:.0f} s (last: {problem})",
                hint="check the server is up and reachable; the work is kept and resumes next run",
            )
        if on_retry is not None:
            on_retry(RetryNote(problem, connection, attempt, policy.total_seconds - elapsed))
        sleep(pause)
        attempt += 1
