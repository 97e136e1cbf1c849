"""Which protocol a server speaks on a port, asked once after a connection failure that a
scheme mismatch explains: an http:// API root on a TLS port (the server closes the connection
on a plain request), or an https:// one on a plain-HTTP port (the handshake times out, or TLS
reads an HTTP answer as a record of a wrong version). The answer names the likely cause
instead of "connection closed" or "no answer in time"."""

from __future__ import annotations

import socket
import ssl

PROBE_SECONDS = 3.0


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
    """A plain HTTP request is answered with an HTTP status line."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            raw.sendall(f"HEAD / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode("ascii", "replace"))
            return raw.recv(5) == b"HTTP/"
    except (OSError, UnicodeError):
        return False
