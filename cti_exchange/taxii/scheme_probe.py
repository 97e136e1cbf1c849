"""Which protocol a server speaks on a port, asked once after a connection failure that a
scheme mismatch explains: an http:// API root on a TLS port (the server closes the connection
on a plain request), or an https:// one on a plain-HTTP port (the TLS handshake times out, or
TLS reads an HTTP answer as a record of a wrong version). The answer names the likely cause
instead of "connection closed" or "no answer in time".

A timeout after the handshake (a slow server) is no mismatch, and is never probed. The probes
open their own connections to the server: they are skipped when a proxy from the environment
(HTTPS_PROXY, not excluded by NO_PROXY) carries the requests (client.py)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

PROBE_SECONDS = 3.0
# What nginx, Apache and Go's servers (Caddy, Traefik) answer a plain HTTP request on their TLS
# port with (a 400): the port speaks TLS, whatever the status line says. Any other 400 proves
# nothing either way, so it is not taken for plain HTTP (`speaks_plain_http`).
_TLS_PORT_ANSWERS = (
    b"sent to https port",
    b"speaking plain http to an ssl-enabled server port",
    b"client sent an http request to an https server",
)


def exception_causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception under it, once each: requests and urllib3 wrap the socket's
    or ssl's error in their arguments, a MaxRetryError's `reason`, `__cause__` or `__context__`."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if id(item) in seen or not isinstance(item, BaseException):
            continue
        seen.add(id(item))
        yield item
        todo += [*item.args, getattr(item, "reason", None), item.__cause__, item.__context__]


def timed_out_in_handshake(exc: BaseException) -> bool:
    """`exc` (a requests/urllib3 timeout) was a wait for the TLS handshake, not for an answer
    to a request sent over TLS: urllib3 reports both as a read timeout, so the socket timeout
    under it is looked at, for a frame of ssl's handshake."""
    for item in exception_causes(exc):
        if isinstance(item, TimeoutError):
            tb = item.__traceback__
            while tb is not None:
                if tb.tb_frame.f_code.co_name == "do_handshake":
                    return True
                tb = tb.tb_next
    return False


def speaks_tls(host: str, port: int, timeout: float = PROBE_SECONDS) -> bool:
    """A TLS handshake completes, or the server answers it with a TLS alert (it wants a client
    certificate, say): it speaks TLS. Nothing is verified or sent after the handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only asking which protocol; nothing is trusted
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                return True
    except ssl.SSLError as exc:
        return "ALERT" in (exc.reason or "")
    except OSError:
        return False


def speaks_plain_http(host: str, port: int, timeout: float = PROBE_SECONDS) -> bool:
    """A plain HTTP request is answered with an HTTP status line other than 400, the status
    TLS ports answer clear text with (nginx: "The plain HTTP request was sent to HTTPS port";
    Go: "Client sent an HTTP request to an HTTPS server")."""
    answer = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            raw.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode("ascii", "replace"))
            while len(answer) < 4096 and (chunk := raw.recv(4096 - len(answer))):
                answer += chunk
                if b"\r\n\r\n" in answer and answer[9:12] != b"400":
                    break  # only a 400's page is read, for the words above
    except (OSError, UnicodeError):
        if not answer:
            return False
    lowered = answer.lower()
    if not answer.startswith(b"HTTP/") or answer[9:12] == b"400":
        return False  # a 400 is what TLS ports answer clear text with, worded or not
    return not any(words in lowered for words in _TLS_PORT_ANSWERS)
