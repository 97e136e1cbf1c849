"""The exchange server's WSGI app: medallion's Flask app on the SQLite backend, with hashed
passwords, per-account collection ACLs and TAXII-format errors everywhere.

medallion keeps its Flask app (`medallion.application_instance`) and its HTTP Basic auth
(`medallion.auth`) as module globals, so a process serves one app for one data directory.
That is fine: the server always runs in a process of its own (see runner.py).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask.json.provider import DefaultJSONProvider
from medallion import application_instance, auth, handle_processing_error, register_blueprints, set_config
from medallion.exceptions import ProcessingError
from medallion.views import MEDIA_TYPE_TAXII_ANY, MEDIA_TYPE_TAXII_V21
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from werkzeug.http import parse_accept_header, parse_options_header
from werkzeug.routing import RequestRedirect

from cti_exchange.errors import ConfigError
from cti_exchange.server.access import AccountScopedBackend, CredentialVerifier
from cti_exchange.server.connection import BUSY_TIMEOUT_SECONDS
from cti_exchange.server.provisioning import database_path

DEFAULT_MAX_PAGE_SIZE = 1000

# Request bodies over LARGE_BODY_BYTES are parsed and handled at most LARGE_BODY_SLOTS at a
# time, the others waiting up to LARGE_BODY_WAIT_SECONDS (then 503 with Retry-After, which
# clients retry). Parsed, a 10 MiB body of small JSON values (`{"objects":[[],[],...]}`)
# takes over 200 MiB of Python objects until its request ends: one per waitress thread was
# about 1 GiB. The wait comes after authentication and the collection's permissions
# (medallion parses the body last), so only a partner's account can make others wait; the
# write lock serialises the inserts of large POSTs anyway.
LARGE_BODY_BYTES = 1024 * 1024
LARGE_BODY_SLOTS = 2
LARGE_BODY_WAIT_SECONDS = 60.0
_large_bodies = threading.BoundedSemaphore(LARGE_BODY_SLOTS)

log = logging.getLogger(__name__)

_served_dir: Path | None = None


def taxii_error(status: int, title: str, description: str) -> Response:
    """An error message resource (TAXII 2.1, "Error Message"), as medallion's own handlers
    write it."""
    body = {"title": title, "http_status": str(status), "description": description}
    return Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE_TAXII_V21)


class _JSONProvider(DefaultJSONProvider):
    """Flask's JSON, keeping each object's keys in the order it was posted (which also skips
    the cost of sorting), and with a request body nested too deeply to parse answered 400.

    Written as UTF-8, compact, as objects are stored (intake.py): with Flask's default
    ensure_ascii, a character outside ASCII is served as a \\uXXXX escape, 12 bytes for an
    emoji (a surrogate pair) that takes 4 in UTF-8, so a page cut at max_content_length bytes
    of stored objects (pages.py) was served up to 3 times larger, 12 times counted in
    characters."""

    sort_keys = False
    ensure_ascii = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("separators", (",", ":"))
        text = super().dumps(obj, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (from a request body, echoed in an error) has no UTF-8 form:
            # escaped as Flask would, rather than failing the response.
            return super().dumps(obj, **{**kwargs, "ensure_ascii": True})
        return text

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if len(s) > LARGE_BODY_BYTES and has_request_context() and not g.get("large_body_slot"):
            if not _large_bodies.acquire(timeout=LARGE_BODY_WAIT_SECONDS):
                raise ServiceUnavailable("The server is busy with other large requests; retry", retry_after=5)
            g.large_body_slot = True
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            # Raised past Flask's handling of bad JSON (it catches ValueError only), so it
            # would be a 500; as a ValueError it is the 400 of any other unreadable body.
            raise ValueError("JSON nested too deeply") from None


def build_app(
    data_dir: Path,
    *,
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE,
    busy_timeout: float = BUSY_TIMEOUT_SECONDS,
) -> Flask:
    """The WSGI app serving the exchange laid out in `data_dir` (see provisioning.provision).

    max_page_size caps `limit` (medallion's `taxii.max_page_size`); the API root's
    max_content_length, set when provisioning, caps request bodies and the bytes of a page.
    busy_timeout: seconds a POST waits for another to release the write lock before 503.
    """
    global _served_dir
    data_dir = data_dir.resolve()
    if _served_dir is not None:
        if _served_dir == data_dir:
            return application_instance
        raise ConfigError(f"this process already serves {_served_dir}; start another process")
    if max_page_size < 1:
        raise ConfigError("max_page_size must be at least 1")
    db_path = database_path(data_dir)
    if not db_path.is_file():
        raise ConfigError(
            f"no TAXII server database in {data_dir}",
            hint="provision the data directory first (cti-exchange serve sets it up)",
        )

    app = application_instance
    # Before the backend and the views: medallion's views encode and decode with app.json.
    app.json = _JSONProvider(app)
    set_config(app, "taxii", {"taxii": {"max_page_size": max_page_size}})
    set_config(
        app,
        "backend",
        {
            "backend": {
                "module": "cti_exchange.server.access",
                "module_class": "AccountScopedBackend",
                "db_path": str(db_path),
                "busy_timeout": busy_timeout,
            }
        },
    )
    backend = app.medallion_backend
    assert isinstance(backend, AccountScopedBackend)

    # medallion's own `get_password` callback compares plaintext passwords from its config;
    # flask-httpauth never calls it once a `verify_password` callback is registered, which is
    # its documented hook for hashed passwords. No users in medallion's table either.
    app.users_backend = {}
    auth.verify_password(CredentialVerifier(backend).authenticate)
    auth.error_handler(_unauthorized)

    # Bodies larger than the API root's max_content_length are refused with 413 by medallion
    # from the Content-Length header; this also covers bodies sent without one.
    app.config["MAX_CONTENT_LENGTH"] = backend.largest_max_content_length()
    app.register_error_handler(HTTPException, _http_error)
    # Replaces medallion's 500 handler, which reads error.args[0] and fails on a bare
    # InternalServerError; the traceback goes to the log, not to the client.
    app.register_error_handler(500, _internal_error)
    app.register_error_handler(ProcessingError, _processing_error)
    app.before_request(_no_redirects)
    app.before_request(_negotiate_media_types)
    app.before_request(_head_as_get)
    app.teardown_request(_release_large_body_slot)
    register_blueprints(app)
    _served_dir = data_dir
    return app


def _release_large_body_slot(error: BaseException | None) -> None:
    if g.pop("large_body_slot", False):
        _large_bodies.release()


def _unauthorized(status: int) -> Response:
    # flask-httpauth adds the WWW-Authenticate header.
    return taxii_error(status, "Unauthorized", "Missing or wrong username or password")


def _http_error(error: HTTPException) -> Response:
    """Flask's own errors (unknown URL, wrong method, unreadable JSON, body too large) in the
    TAXII format instead of HTML."""
    status = error.code or 500
    response = taxii_error(status, error.name, error.description or error.name)
    for header, value in error.get_headers():
        if header.lower() != "content-type":
            response.headers[header] = value
    return response


def _internal_error(error: Exception) -> Response:
    return taxii_error(500, "InternalError", "The server failed to process the request")


def _processing_error(error: ProcessingError) -> Response:
    """medallion's handler, except that an empty POST body is 400, like any other body that is
    not JSON: medallion answers it 413, which tells a client its POST is too large to take."""
    if error.status == 413 and request.content_length == 0:
        error = ProcessingError("The request body is empty; it must be a TAXII envelope", 400)
    return handle_processing_error(error)


def _taxii_21_params(media_type: str) -> dict[str, str] | None:
    """The parameters of a TAXII 2.1 media type (names lowercased); None for any other type.
    TAXII 2.1 section 1.6.8: without a version, the latest the server supports, 2.1 here."""
    kind, params = parse_options_header(media_type)
    lowered = {name.lower(): value for name, value in params.items()}
    if kind.lower() != MEDIA_TYPE_TAXII_ANY or lowered.get("version", "2.1") != "2.1":
        return None
    return lowered


def _accepts_taxii_21(accept: str) -> bool:
    # werkzeug drops a range whose q is not a number; q=0 means "not acceptable".
    return any(
        quality > 0 and _taxii_21_params(value) is not None for value, quality in parse_accept_header(accept)
    )


def _is_taxii_21_content(content_type: str) -> bool:
    params = _taxii_21_params(content_type) if "," not in content_type else None
    return (
        params is not None
        and set(params) <= {"version", "charset"}
        and params.get("charset", "utf-8").lower() == "utf-8"
    )


def _no_redirects() -> Response | None:
    """A URL without its trailing slash (or with a doubled slash) is 404 in the TAXII format.

    werkzeug answered it with a 308 redirect: before authentication, with an HTML body, to an
    http:// URL built from the client's Host header (a TLS proxy's clients were sent to plain
    HTTP, on whatever host they named). TAXII 2.1 URLs end with a slash; clients use them."""
    if isinstance(request.routing_exception, RequestRedirect):
        return taxii_error(
            404,
            "Not Found",
            "No such URL; TAXII 2.1 URLs end with '/' and have no empty segments "
            "(e.g. /taxii2/, /exchange/collections/)",
        )
    return None


def _negotiate_media_types() -> None:
    """HTTP content negotiation (RFC 9110 sections 8.3 and 12.5.1) before medallion's checks,
    which take only the exact strings "application/taxii+json;version=2.1" (first in the
    Accept list) and refuse a bare "application/taxii+json", though TAXII 2.1 section 3.1 says
    the media types it defines MUST NOT get 406 or 415. A header naming TAXII 2.1 in any form
    is rewritten to the exact string; any other is left for medallion to refuse."""
    environ = request.environ
    if _accepts_taxii_21(environ.get("HTTP_ACCEPT", "")):
        environ["HTTP_ACCEPT"] = MEDIA_TYPE_TAXII_V21
    if _is_taxii_21_content(environ.get("CONTENT_TYPE", "")):
        environ["CONTENT_TYPE"] = MEDIA_TYPE_TAXII_V21


def _head_as_get() -> None:
    """Flask routes HEAD to every view that takes GET, but medallion's objects and object
    views only handle GET and POST / DELETE, so a HEAD there returned nothing: a 500. Served as
    GET; werkzeug leaves the body out of the response to a HEAD request."""
    if request.method == "HEAD":
        request.method = "GET"
