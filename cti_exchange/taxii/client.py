"""A TAXII 2.1 client for one partner server: taxii2-client underneath, with request timeouts
(taxii2-client has none), retries, TLS verification, mutual TLS, basic or bearer auth.

Plain HTTP is refused except to a loopback address (the embedded server of `demo` and tests).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies
from taxii2client.common import _HTTPConnection
from taxii2client.v21 import ApiRoot, Collection, Status
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

from cti_exchange.clock import parse_timestamp
from cti_exchange.errors import (
    AuthError,
    CollectionAccessError,
    ConfigError,
    CtiExchangeError,
    NetworkError,
)
from cti_exchange.failpoints import failpoint
from cti_exchange.home.safe_files import check_private_file, resolve_in_home
from cti_exchange.profile.model import MAX_RESPONSE_BYTES, TaxiiSettings
from cti_exchange.taxii.endpoint import check_url_is_safe, is_loopback_host, shown_url
from cti_exchange.taxii.retry import (
    KEPT,
    NOT_TLS_REASONS,
    AnswerStalled,
    DiagnosedNetworkError,
    NotTaxiiAnswer,
    RequestFailed,
    RetryNote,
    RetryPolicy,
    ServerUnreachable,
    body_excerpt,
    call_with_retries,
    connection_problem,
    is_taxii,
    media_type,
    ssl_cause,
)
from cti_exchange.taxii.scheme_probe import speaks_plain_http, speaks_tls, timed_out_in_handshake
from cti_exchange.taxii.servers import ServersThisRun, Unreachable, server_of
from cti_exchange.untrusted_text import escape_controls

MEDIA_TYPE_TAXII = "application/taxii+json;version=2.1"
# The read timeout bounds each wait for bytes, not a whole answer: a server sending a byte
# now and then would hold us for ever. An answer must arrive within the timeout plus the
# time its size takes at this rate.
MIN_BYTES_PER_SECOND = 16 * 1024


def too_large_hint(partner: str, max_bytes: int, *, operator: str = "tell the server's operator") -> str:
    """What to do about an answer past `max_bytes`: the server's operator's to mend, unless the
    partner's `max_response_bytes` was lowered below the default, which may be the cause."""
    if max_bytes >= MAX_RESPONSE_BYTES:
        return f"no envelope is that large: {operator}"
    return (
        f"the limit is partner {partner}'s max_response_bytes: raise it (`cti-exchange partners set "
        f"{partner} --max-response-bytes N`, at most {MAX_RESPONSE_BYTES:,}), or {operator}"
    )


class ResponseTooLarge(NetworkError):
    """A server's answer went past the partner's `max_response_bytes` (at most
    MAX_RESPONSE_BYTES, profile/model.py); not retried: it would come again."""


class InvalidServerAnswer(DiagnosedNetworkError):
    """The server answered, but what it said is invalid TAXII (not retried: it would say it
    again). A network failure (exit 7), not settings to fix: the URL is a TAXII API root, the
    server is failing, and what waits for it stays in the outbox until it is mended."""


@dataclass(frozen=True)
class Page:
    objects: list[dict[str, Any]]
    more: bool
    next: str | None
    date_added_first: str | None
    date_added_last: str | None


@dataclass(frozen=True)
class AddStatus:
    id: str
    status: str
    success_count: int
    failure_count: int
    pending_count: int
    failures: list[dict[str, Any]] = field(default_factory=list)


class _TimeoutAdapter(HTTPAdapter):
    """Every request gets a timeout, and the partner's CA bundle when one is configured:
    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's `verify`
    (psf/requests#3829), which must not silently replace a pinned private CA."""

    def __init__(self, timeout: float, ca_bundle: str | None, max_bytes: int, *, partner: str) -> None:
        super().__init__()
        self._timeout = timeout
        self._ca_bundle = ca_bundle
        self._max_bytes = max_bytes
        self._partner = partner  # named in the hint of an answer too large

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        if self._ca_bundle is not None:
            kwargs["verify"] = self._ca_bundle
        failpoint("http-before")
        streamed = bool(kwargs.get("stream"))
        kwargs["stream"] = True  # the body is read here, within a deadline and a size
        response = super().send(request, **kwargs)
        if not streamed:
            _read_body(
                response, timeout=float(self._timeout), max_bytes=self._max_bytes, partner=self._partner
            )
        content_type = response.headers.get("Content-Type", "")
        if 200 <= response.status_code < 300 and content_type and not is_taxii(content_type):
            # A web page or plain JSON where TAXII 2.1 was asked for: not a TAXII API root
            # there. An error answer keeps its status, and a redirect its target (an HTML
            # page from nginx or Apache), both read by retry.py. The body's start is quoted by
            # the client, which knows the credentials to keep out of it.
            response.close()
            raise NotTaxiiAnswer(response.status_code, content_type, (response.content or b"")[:4096])
        # taxii2client reads the Content-Type of a success with headers["Content-Type"]: a
        # server leaving it out would raise KeyError. Empty, it is an unexpected media type.
        response.headers.setdefault("Content-Type", "")
        failpoint("http-after")
        return response


def _read_body(response: requests.Response, *, timeout: float, max_bytes: int, partner: str) -> None:
    """Reads the whole body as requests would (Content-Encoding decoded), but stops past
    `max_bytes` or once it takes longer than `timeout` plus its size at MIN_BYTES_PER_SECOND."""
    started = time.monotonic()
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := response.raw.read1(64 * 1024, decode_content=True):
            size += len(chunk)
            if size > max_bytes:
                response.close()
                where = shown_url(response.url or "")[:200]
                raise ResponseTooLarge(
                    f"the server's answer to {where} goes past {max_bytes:,} bytes",
                    hint=too_large_hint(partner, max_bytes),
                )
            if time.monotonic() - started > timeout + size / MIN_BYTES_PER_SECOND:
                response.close()
                raise AnswerStalled(f"the answer came too slowly ({size:,} bytes in {timeout:.0f}+ s)")
            chunks.append(chunk)
    except ReadTimeoutError:
        raise AnswerStalled(f"no more of the answer within {timeout:.0f} s ({size:,} bytes read)") from None
    except ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from None
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from None
    response._content = b"".join(chunks)
    response._content_consumed = True


class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:  # never show the token, even in a debugger or a traceback
        return "_BearerAuth(<hidden>)"


class TaxiiClient:
    def __init__(
        self,
        settings: TaxiiSettings,
        *,
        partner: str,
        secret: str | None,
        base_dir: Path,
        max_response_bytes: int | None = None,  # the partner's `max_response_bytes` when None
        servers: ServersThisRun | None = None,  # shared by the run's clients (servers.py)
    ) -> None:
        check_url_is_safe(settings.api_root, partner=partner)
        self.partner = partner
        self.server = server_of(settings.api_root)
        self.servers = servers
        self.settings = settings
        self.api_root_url = settings.api_root if settings.api_root.endswith("/") else settings.api_root + "/"
        self.policy = RetryPolicy(total_seconds=settings.retry_budget_seconds)
        verify: bool | str = True
        if settings.ca_bundle:
            verify = str(_tls_file(settings.ca_bundle, base_dir, partner=partner, option="--ca-bundle"))
        cert = _client_certificate(settings, base_dir, partner=partner)
        user = password = None
        auth: requests.auth.AuthBase | None = None
        if settings.auth == "basic":
            user, password = settings.username, secret
            if not user:
                raise ConfigError(f"partner {partner}: basic auth needs a username")
        elif settings.auth == "bearer":
            auth = _BearerAuth(secret or "")
        self.conn = _HTTPConnection(
            user=user, password=password, verify=verify, version="2.1", auth=auth, cert=cert
        )
        self._secrets = _sent_forms(user, secret)  # kept out of server text we quote (retry.py)
        if urlsplit(self.api_root_url).scheme == "http":
            # Plain HTTP is allowed to a loopback address only (check_url_is_safe): a proxy
            # from the environment (http_proxy) would receive our credentials in clear text.
            self.conn.session.trust_env = False
        # TAXII 2.1 servers have no use for redirects, and following one could take our
        # credentials or envelopes to another host, or to plain HTTP: requests raises
        # TooManyRedirects at the first one instead, which retry.py reports without retrying.
        self.conn.session.max_redirects = 0
        adapter = _TimeoutAdapter(
            settings.timeout_seconds,
            verify if isinstance(verify, str) else None,
            settings.max_response_bytes if max_response_bytes is None else max_response_bytes,
            partner=partner,
        )
        self.conn.session.mount("http://", adapter)
        self.conn.session.mount("https://", adapter)
        self._last_headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        self._scheme_probed = False
        self.conn.session.hooks["response"].append(self._remember_headers)

    def _remember_headers(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_headers = CaseInsensitiveDict(response.headers)

    def last_response_date(self) -> str | None:
        """The Date header of the last response (RFC 9110 section 6.6.1), for `doctor`'s
        clock-skew check; error answers carry one too."""
        return self._last_headers.get("Date")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> TaxiiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, action: Any, *, right: str | None = None) -> Any:
        """`action` with retries. `right`: the request uses a configured collection, to "read"
        (its read collection) or to "write" (its write collection).

        A 404 or 403 on a collection is a `CollectionAccessError` (exit 3), a 403 elsewhere an
        authentication failure: the server answered, and will answer the same until someone
        acts. Any other refusal (a 400: the request is wrong) stays a `NetworkError`, which
        pull.py relies on to start again from its cursor when a `next` token has expired."""
        try:
            return self._retried(what, action)
        except RequestFailed as exc:
            if right is not None and exc.status == 404:
                # A 404 under a wrong API root URL names the collection too: the API root is
                # read once, so a wrong --api-root is not reported as a wrong collection id.
                self._api_root_answers()
            if right is not None and exc.status in (403, 404):
                raise _collection_refused(self.partner, exc, right) from None
            if right is None and exc.status == 404 and what == _API_ROOT:
                raise self._nothing_at(what, exc) from None
            if exc.status == 403:
                raise AuthError(
                    f"{_said(exc)}: the server refused us access",
                    hint=f"check the partner's TAXII {self._credentials}, and our account's rights "
                    "with the server's operator (`cti-exchange doctor` checks them)",
                ) from None
            raise NetworkError(str(exc), hint="check the partner's TAXII settings") from None

    def _not_an_api_root(self, what: str, answered: str) -> ConfigError:
        """What pull, push, sync and doctor all say when the URL holds no TAXII 2.1 API root."""
        return ConfigError(
            f"{self.partner}: {what}: {shown_url(self.api_root_url)} is not a TAXII 2.1 API root "
            f"(it answered {answered})",
            hint=f"check the partner's api_root with the server's operator (`cti-exchange partners "
            f"set {self.partner} --api-root URL` changes it; `cti-exchange doctor` checks it)",
        )

    def _retried(self, what: str, action: Any) -> Any:
        """`action` with the client's retry policy; a refusal stays a `RequestFailed`, whose
        server text has our credentials redacted. On a server this run already found out of
        reach, a `NetworkError` at once, without a try (servers.py). An answer that is not
        TAXII is a `ConfigError` at once: no wait makes a web page an API root."""
        try:
            return self._retried_as_is(what, action)
        except NotTaxiiAnswer as exc:
            raise self._not_taxii(what, exc) from None

    def _not_taxii(self, what: str, exc: NotTaxiiAnswer) -> ConfigError:
        answered = f"HTTP {exc.status}, {exc.content_type}"
        if media_type(exc.content_type) == "application/vnd.oasis.taxii+json":
            answered += ", the media type of TAXII 2.0"
        # A gateway's page may echo our request, its Authorization header included.
        excerpt = body_excerpt(exc.content_type, exc.body, self._secrets)
        return self._not_an_api_root(what, f"{answered}: {excerpt}" if excerpt else answered)

    def _nothing_at(self, what: str, exc: RequestFailed) -> ConfigError:
        """A 404 on the API root itself: a wrong --api-root, which no wait fixes."""
        said = exc.text[1:-1] if exc.text.startswith("(") and exc.text.endswith(")") else exc.text
        return self._not_an_api_root(what, f"HTTP 404, {said}" if said else "HTTP 404")

    @property
    def _credentials(self) -> str:
        """What we send the server, as hints name it: a token with `auth = bearer`."""
        if self.settings.auth == "bearer":
            return "token"
        return "username and secret" if self.settings.auth == "basic" else "credentials"

    def _credentials_hint(self) -> str:
        """What to do when the server refuses our credentials (401)."""
        if self.settings.auth in ("basic", "bearer"):
            them = "it" if self.settings.auth == "bearer" else "them"
            return f"check the partner's TAXII {self._credentials} (`cti-exchange doctor` checks {them})"
        return (
            f"the server asks for credentials, and {self.partner} has none set: "
            f"`cti-exchange partners set {self.partner} --auth basic --username NAME --secret-file "
            "FILE` (or --auth bearer --secret-file FILE)"
        )

    def _retried_as_is(self, what: str, action: Any) -> Any:
        servers = self.servers
        if servers is None:
            return call_with_retries(
                action,
                what=f"{self.partner}: {what}",
                policy=self.policy,
                secrets=self._secrets,
                server=self.server.shown,
                partner=self.partner,
                credentials_hint=self._credentials_hint(),
                diagnose=lambda exc: self._scheme_mismatch(what, exc),
            )
        if (down := servers.unreachable(self.server, self.policy.total_seconds)) is not None:
            raise NetworkError(
                f"{self.partner}: {what}: server {self.server.shown} unreachable, already tried for "
                f"{down.seconds:.0f} s this run (for {down.partner}: {down.problem}), so not tried "
                f"again; {KEPT}",  # no hint: the error of the partner that tried it has it
            )
        retried = False

        def on_retry(note: RetryNote) -> None:
            nonlocal retried
            retried = True
            servers.retrying(
                self.partner,
                self.server,
                note.problem,
                connection=note.connection,
                remaining=note.remaining,
                first=note.attempt == 0,
            )

        try:
            result = call_with_retries(
                action,
                what=f"{self.partner}: {what}",
                policy=self.policy,
                secrets=self._secrets,
                server=self.server.shown,
                partner=self.partner,
                credentials_hint=self._credentials_hint(),
                on_retry=on_retry,
                diagnose=lambda exc: self._scheme_mismatch(what, exc),
            )
        except ServerUnreachable as exc:
            servers.mark_unreachable(
                Unreachable(self.server, self.partner, exc.seconds, exc.problem, self.policy.total_seconds)
            )
            raise
        finally:
            if retried:
                servers.retries_ended()
        return result

    def _scheme_mismatch(self, what: str, exc: requests.RequestException) -> CtiExchangeError | None:
        """http:// to a port that speaks TLS, or https:// to one that speaks plain HTTP, asked
        of the server once (scheme_probe.py) after a failure that such a mismatch explains."""
        if self._scheme_probed:
            return None
        if self.conn.session.trust_env and get_environ_proxies(self.api_root_url):
            # The requests go through a proxy (HTTPS_PROXY, not excluded by NO_PROXY): a probe
            # of our own, direct, may be forbidden there, and would not ask the same server.
            return None
        parts = urlsplit(self.api_root_url)
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return None
        where = f"{self.partner}: {what}: the server at {self.server.shown}"
        fix = f"`cti-exchange partners set {self.partner} --api-root URL` changes it"
        tls = isinstance(exc, requests.exceptions.SSLError)
        if parts.scheme == "http" and not tls:
            if connection_problem(exc) not in ("connection closed without an answer", "connection reset"):
                return None
            self._scheme_probed = True
            if speaks_tls(host, port):
                return ConfigError(
                    f"{where} speaks TLS: use https://", hint=f"give the api_root as https://...; {fix}"
                )
            return None
        if parts.scheme != "https":
            return None
        # Only a handshake that failed: a request sent over TLS that times out is a slow
        # server (nginx or Apache in front of it answer a plain request too, with a 400).
        not_tls = tls and (cause := ssl_cause(exc)) is not None and cause.reason in NOT_TLS_REASONS
        handshake_timed_out = isinstance(exc, requests.Timeout) and timed_out_in_handshake(exc)
        if not (not_tls or handshake_timed_out):
            return None
        self._scheme_probed = True
        # A handshake of our own again only where it failed fast: one that timed out would time
        # out again (a plain HTTP server waits for a request line), PROBE_SECONDS for nothing.
        if not speaks_plain_http(host, port) or (not handshake_timed_out and speaks_tls(host, port)):
            return None
        return ConfigError(
            f"{where}: TLS handshake failed: the server speaks plain HTTP",
            hint=f"use http:// for this loopback server; {fix}"
            if is_loopback_host(host)
            else "ask its operator for its TLS (https://) address: plain HTTP is refused except to "
            f"this machine; {fix}",
        )

    def _collection(self, collection_id: str) -> Collection:
        url = urljoin(self.api_root_url, f"collections/{collection_id}/")
        # Known rights: the per-account ACL on the server is what is enforced.
        info = {"id": collection_id, "title": collection_id, "can_read": True, "can_write": True}
        return Collection(url, conn=self.conn, collection_info=info)

    def _api_root_answers(self) -> None:
        """After a 404 on a collection: a `ConfigError` if the URL holds no API root, asked
        once, outside the retry budget (the request before it may have spent it). Any other
        failure says nothing about the URL, and the collection's 404 is what is reported."""

        def fetch() -> None:
            ApiRoot(self.api_root_url, conn=self.conn).refresh_information()

        try:
            call_with_retries(
                fetch,
                what=f"{self.partner}: {_API_ROOT}",
                policy=RetryPolicy(total_seconds=0),
                secrets=self._secrets,
                server=self.server.shown,
                partner=self.partner,
                credentials_hint=self._credentials_hint(),
            )
        except NotTaxiiAnswer as exc:
            raise self._not_taxii(_API_ROOT, exc) from None
        except RequestFailed as exc:
            if exc.status == 404:
                raise self._nothing_at(_API_ROOT, exc) from None
        except NetworkError:
            pass

    def max_content_length(self) -> int:
        def fetch() -> Any:
            root = ApiRoot(self.api_root_url, conn=self.conn)
            root.refresh_information()
            return root.max_content_length

        limit = self._call(_API_ROOT, fetch)
        # TAXII 2.1 section 4.2.1: "the maximum size of the request body in octets", an
        # integer. A server announcing -1, 0, "lots" or more than JSON counts exactly (RFC 7493
        # section 2.2) is broken, and every push sized to it would fail: said as what it is.
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 2**53:
            shown = escape_controls(repr(limit)[:40])
            raise InvalidServerAnswer(
                f"{self.partner}: {_API_ROOT}: the server's API root is invalid (max_content_length "
                f"{shown}, not a positive number of bytes)",
                hint=f"tell the server's operator; {KEPT} once it is mended",
            )
        return limit

    def get_page(
        self, collection_id: str, *, added_after: str | None, next_token: str | None, limit: int
    ) -> Page:
        collection = self._collection(collection_id)
        params: dict[str, Any] = {"limit": limit}
        if added_after:
            params["added_after"] = added_after
        if next_token:
            params["next"] = next_token

        def fetch() -> tuple[dict[str, Any], CaseInsensitiveDict[str]]:
            body = collection.get_objects(**params)
            if not isinstance(body, dict):
                raise ValueError("the envelope is not a JSON object")
            # HTTP header names are case-insensitive (RFC 9110 section 5.1).
            return body, CaseInsensitiveDict(self._last_headers)

        what = f"reading collection {collection_id}"
        # With a `next` token, a 404 may be the token's (expired, unknown: some servers answer
        # so), not the collection's: a NetworkError, on which pull.py starts again from its
        # cursor, and a 404 then is the collection's.
        body, headers = self._call(what, fetch, right="read" if next_token is None else None)
        objects = body.get("objects") or []
        more = body.get("more", False)
        next_token = body.get("next")
        if (
            not isinstance(objects, list)
            or not isinstance(more, bool)
            or not isinstance(next_token, (str, type(None)))
        ):
            raise NetworkError(
                f"{self.partner}: {what}: the server's answer is not a TAXII envelope "
                "(objects must be a list, more a boolean, next a string)",
                hint="the TAXII server is broken or not the partner's; tell its operator",
            )
        return Page(
            objects=[o for o in objects if isinstance(o, dict)],
            more=more,
            next=next_token,
            date_added_first=_date_added(headers, "X-TAXII-Date-Added-First", self.partner, what),
            date_added_last=_date_added(headers, "X-TAXII-Date-Added-Last", self.partner, what),
        )

    def collection_description(self, collection_id: str) -> dict[str, Any]:
        """A collection's description (`can_read`, `can_write`, ...), with retries. A refusal
        stays a `RequestFailed` with its status, for `doctor` to say what it means."""
        url = urljoin(self.api_root_url, f"collections/{collection_id}/")
        info = self._retried(
            f"reading collection {collection_id}'s description",
            lambda: self.conn.get(url, headers={"Accept": MEDIA_TYPE_TAXII}),
        )
        return info if isinstance(info, dict) else {}

    def post_objects(self, collection_id: str, objects: list[dict[str, Any]]) -> AddStatus:
        body = json.dumps({"objects": objects}, separators=(",", ":")).encode()
        collection = self._collection(collection_id)

        def post() -> Status:
            return collection.add_objects(body, wait_for_completion=False)

        status = self._call(f"posting to collection {collection_id}", post, right="write")
        return _summary(status)

    def refresh_status(self, status_id: str) -> AddStatus:
        url = urljoin(self.api_root_url, f"status/{status_id}/")

        def fetch() -> Status:
            return Status(url, conn=self.conn)

        return _summary(self._call(f"reading status {status_id}", fetch))


_API_ROOT = "reading the API root"


def _date_added(headers: CaseInsensitiveDict[str], name: str, partner: str, what: str) -> str | None:
    """A date_added header (TAXII 2.1 section 3.3.1): a timestamp, or absent."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        parse_timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise NetworkError(
            f"{partner}: {what}: the server's {name} is not a timestamp",
            hint="the TAXII server is broken or not the partner's; tell its operator",
        ) from None
    return value


def _sent_forms(user: str | None, secret: str | None) -> tuple[str, ...]:
    """Our secret in each form a request carries it, for retry.redact: as is (a bearer token),
    in the Basic header (base64 of `user:secret`) and URL-encoded."""
    if not secret:
        return ()
    forms = [secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()]
    if user:
        pair = f"{user}:{secret}"
        forms.append(base64.b64encode(pair.encode()).decode())
        try:  # requests encodes Basic credentials as Latin-1 when it can
            forms.append(base64.b64encode(pair.encode("latin-1")).decode())
        except UnicodeEncodeError:
            pass
    return tuple(dict.fromkeys(forms))


def _said(exc: RequestFailed) -> str:
    """What was asked, the status and the server's text, without the text's final full stop."""
    return str(exc).rstrip(". ")


def _collection_refused(partner: str, exc: RequestFailed, right: str) -> CollectionAccessError:
    """A 404 (no such collection, or one the server hides from our account) or a 403 (our
    account may not use it so): what was asked, what the server said, and who can fix it."""
    option = f"--{right}-collection"
    why = (
        "the collection does not exist, or our account has no access to it"
        if exc.status == 404
        else f"our account has no right to {right} it"
    )
    return CollectionAccessError(
        f"{_said(exc)}: {why}",
        hint=f"check {option} with the server's operator: the collection id, and our account's "
        f"rights on it (`cti-exchange doctor` checks them; `cti-exchange partners set {partner} "
        f"{option} ID` changes the id)",
    )


def _summary(status: Status) -> AddStatus:
    return AddStatus(
        id=str(status.id),
        status=str(status.status),
        success_count=int(status.success_count or 0),
        failure_count=int(status.failure_count or 0),
        pending_count=int(status.pending_count or 0),
        failures=list(status.failures or []),
    )


def _tls_file(name: str, base_dir: Path, *, partner: str, option: str) -> Path:
    """requests reports a missing CA bundle or certificate as a bare OSError on the first request,
    which would look like a bug; checked here, it is a configuration error naming the file."""
    path = resolve_in_home(name, base_dir)
    hint = f"fix the path with `cti-exchange partners set {partner} {option} FILE`"
    if not path.exists():
        raise ConfigError(f"partner {partner}: {option} {path} does not exist", hint=hint)
    if path.is_file():  # a CA bundle may also be a directory of hashed certificates
        try:
            path.open("rb").close()
        except OSError as exc:
            raise ConfigError(f"partner {partner}: cannot read {option} {path}: {exc.strerror}") from None
    return path


def _client_certificate(
    settings: TaxiiSettings, base_dir: Path, *, partner: str
) -> tuple[str, str] | str | None:
    """The mutual-TLS certificate and its private key, which must be as private as our own keys."""
    if not settings.client_cert:
        if settings.client_key:
            raise ConfigError(
                f"partner {partner}: --client-key is set without --client-cert",
                hint=f"give both: `cti-exchange partners set {partner} --client-cert FILE --client-key FILE`",
            )
        return None
    cert_path = _tls_file(settings.client_cert, base_dir, partner=partner, option="--client-cert")
    if not settings.client_key:
        # Without a key file, ssl reads the private key from the certificate file itself.
        check_private_file(
            cert_path, what=f"partner {partner}: the TLS client certificate and key (--client-cert)"
        )
        return str(cert_path)
    key_path = resolve_in_home(settings.client_key, base_dir)
    check_private_file(key_path, what=f"partner {partner}: the TLS client key (--client-key)")
    return str(cert_path), str(key_path)
