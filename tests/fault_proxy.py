"""A fault-injecting HTTP proxy for tests: sits on 127.0.0.1 in front of the real TAXII server
and, following a script, answers some requests with a fault instead of forwarding them.

Faults: "reset" (close the connection without an answer), "500", "503", "429" (with
Retry-After: 0), "delay:SECONDS" (then forward), "truncate" (forward, but cut the answer body
in half and close), "after-reset" (forward, let the server act, then drop the answer: the
client never learns its POST succeeded), "expire-next" (400 for a request carrying `next=`),
"pending" (the POST's status resource is answered as still pending), "drip:SECONDS" (forward,
then send the answer one byte every SECONDS: a slow-drip server).

`FaultScript.rewrite`, when set, sees every forwarded answer and returns the one to send
instead: a compromised server, or a man in the middle, changing what the real server said.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Rule = Callable[[str, str, int], str | None]  # (method, path, request number) -> fault or None
Headers = list[tuple[str, str]]
# (method, path, status, headers, body) -> (status, headers, body) sent instead
Rewrite = Callable[[str, str, int, Headers, bytes], tuple[int, Headers, bytes]]


@dataclass
class FaultScript:
    """Which request gets which fault. Requests are numbered from 1 in arrival order."""

    by_number: dict[int, str] = field(default_factory=dict)
    rule: Rule | None = None
    rewrite: Rewrite | None = None
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault_for(self, method: str, path: str) -> str | None:
        with self.lock:
            number = len(self.seen) + 1
            fault = self.by_number.get(number)
            if fault is None and self.rule is not None:
                fault = self.rule(method, path, number)
            self.seen.append((method, path, fault))
            return fault


class FaultProxy:
    """With `tls`, the proxy terminates TLS (a TLS front end, as docs/SERVER.md recommends);
    with `bearer`, it requires `Authorization: Bearer <token>` and passes `upstream_basic`
    credentials on, like an API gateway in front of the server."""

    def __init__(
        self,
        upstream: str,
        script: FaultScript | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        bearer: str | None = None,
        upstream_basic: tuple[str, str] | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.script = script or FaultScript()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if bearer is not None:
                    if self.headers.get("Authorization") != f"Bearer {bearer}":
                        payload = b'{"title":"Unauthorized","http_status":"401"}'
                        self.send_response(401)
                        self.send_header("Content-Type", "application/taxii+json;version=2.1")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                    del self.headers["Authorization"]
                    if upstream_basic is not None:
                        token = base64.b64encode(":".join(upstream_basic).encode()).decode()
                        self.headers["Authorization"] = f"Basic {token}"
                fault = proxy.script.fault_for(self.command, self.path)
                if fault == "reset":
                    self._reset()
                    return
                if fault in ("500", "503", "429"):
                    payload = b'{"title":"injected fault","http_status":"%s"}' % fault.encode()
                    self.send_response(int(fault))
                    self.send_header("Content-Type", "application/taxii+json;version=2.1")
                    self.send_header("Content-Length", str(len(payload)))
                    if fault == "429":
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if fault == "expire-next" and "next=" in self.path:
                    payload = b'{"title":"next token expired","http_status":"400"}'
                    self.send_response(400)
                    self.send_header("Content-Type", "application/taxii+json;version=2.1")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if fault and fault.startswith("delay:"):
                    time.sleep(float(fault.split(":", 1)[1]))
                status, headers, answer = proxy._forward(self.command, self.path, self.headers, body)
                if proxy.script.rewrite is not None:
                    status, headers, answer = proxy.script.rewrite(
                        self.command, self.path, status, headers, answer
                    )
                if fault == "after-reset":
                    self._reset()
                    return
                if fault == "pending" and self.command == "POST":
                    # TAXII 2.1 section 5.4: a server may answer "pending" and finish later; the
                    # client must follow the status resource (which the real server has complete).
                    resource = json.loads(answer)
                    resource.update(
                        status="pending",
                        pending_count=resource.get("total_count", 1),
                        success_count=0,
                        successes=[],
                    )
                    answer = json.dumps(resource).encode()
                if fault == "truncate":
                    self.send_response(status)
                    for name, value in headers:
                        if name.lower() not in ("transfer-encoding", "connection"):
                            self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(answer[: len(answer) // 2])
                    self.wfile.flush()
                    self._reset()
                    return
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if fault and fault.startswith("drip:"):
                    interval = float(fault.split(":", 1)[1])
                    try:
                        for n in range(len(answer)):
                            self.wfile.write(answer[n : n + 1])
                            self.wfile.flush()
                            time.sleep(interval)
                    except OSError:  # the client gave up
                        self.close_connection = True
                    return
                self.wfile.write(answer)

            def _reset(self) -> None:
                self.close_connection = True
                try:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            do_GET = _handle
            do_POST = _handle
            do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "https" if tls is not None else "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _forward(
        self, method: str, path: str, headers: object, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}  # type: ignore[attr-defined]
            conn.request(method, path, body=body or None, headers=forwarded)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
