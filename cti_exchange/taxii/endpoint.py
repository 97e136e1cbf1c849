"""Checks on a partner's TAXII API root URL, before anything is sent to it."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

from cti_exchange.errors import ConfigError


def shown_url(url: str) -> str:
    """`url` as it may be shown (a table, --json, an error): without user info or a query,
    which may carry a password or a token (a config edited by hand)."""
    if "@" not in url and "?" not in url:
        return url
    parts = urlparse(url)
    host = parts.netloc.rsplit("@", 1)[-1] if "@" in parts.netloc else parts.netloc
    shown = f"{parts.scheme}://{host}{parts.path}" if parts.scheme else host + parts.path
    if "@" in url and not parts.netloc:  # "http:user:pw@host/": no netloc to take apart
        shown = "(a URL holding a user name or password)"
    return shown + ("?..." if parts.query else "")


def refuse_credentials_in_url(url: str, *, partner: str) -> None:
    """A password in the URL would sit in config.toml, in argv and in every message naming the
    URL; so the URL is refused, and not echoed here for the same reason."""
    if "@" in url:  # not only the parsed netloc: "http:user:pw@host/" has none
        raise ConfigError(
            f"partner {partner}: the TAXII API root URL holds a user name or password",
            hint="give the URL without them, and --auth basic --username NAME with --secret-file "
            "or --secret-env for the password",
        )


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1): this machine."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url_is_safe(url: str, *, partner: str) -> None:
    """TLS, or plain HTTP to this machine only; and no credentials in the URL."""
    refuse_credentials_in_url(url, partner=partner)
    parsed = urlparse(url)
    if parsed.scheme == "https":
        return
    if parsed.scheme == "http":
        if is_loopback_host(parsed.hostname or ""):
            return
        raise ConfigError(
            f"partner {partner}: {shown_url(url)} is plain HTTP to a non-loopback host",
            hint="use https:// (TLS verification stays on; give --ca-bundle for a private CA)",
        )
    raise ConfigError(f"partner {partner}: {shown_url(url)} is not an http(s) URL")
