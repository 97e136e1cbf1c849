"""`cti-exchange serve`: the exchange's own TAXII 2.1 server."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from cti_exchange.cli.context import profile_home
from cti_exchange.cli.output import Output
from cti_exchange.errors import ConfigError
from cti_exchange.home.safe_files import create_exclusive, ensure_private_dir
from cti_exchange.server.connection import (
    BUSY_TIMEOUT_SECONDS,
    MAX_BUSY_TIMEOUT_SECONDS,
    check_busy_timeout,
)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0 picks a free one).")] = 9443,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Server data directory (default: <home>/taxii-server)."),
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="Allow a non-loopback --host (put TLS in front!).")
    ] = False,
    trusted_proxy: Annotated[
        str | None,
        typer.Option(
            "--trusted-proxy",
            help="Address of the reverse proxy in front: the client address of its requests is "
            "read from X-Forwarded-For (failed logins are throttled per client address).",
        ),
    ] = None,
    busy_timeout: Annotated[
        float,
        typer.Option(
            "--busy-timeout",
            metavar="SECONDS",
            help="Seconds a POST or DELETE waits for another writer to finish before it is "
            "answered 503 with Retry-After (nothing written; the client retries). Raise it when "
            f"many partners post large bundles at once; at most {MAX_BUSY_TIMEOUT_SECONDS:g}.",
        ),
    ] = BUSY_TIMEOUT_SECONDS,
    max_content_length: Annotated[
        int | None,
        typer.Option(
            "--max-content-length",
            metavar="BYTES",
            min=1024,
            help="The largest request the API root accepts (TAXII max_content_length), kept "
            "for later starts; default: the one set before, 10 MiB on the first start. "
            "Partners cut their envelopes to it.",
        ),
    ] = None,
) -> None:
    """Run the exchange's own TAXII 2.1 server for our agency and its partners.

    One API root `exchange`; one collection per direction between agencies; one account per
    agency that may write only its outbound collections and read only its inbound ones. New
    accounts get a random password written once to <data>/credentials/<agency>.secret (0600).
    It prints each collection's id and, once it listens, the API root URL: what each agency
    gives `partners set`. Provisioned at each start: restart it after `partners add` or
    `partners remove` (an agency no longer a partner loses its access to this server).
    """
    # Imported here: the server brings flask and medallion, which no other command needs.
    from cti_exchange.server.provisioning import (
        DEFAULT_MAX_CONTENT_LENGTH,
        collection_id_for,
        database_path,
        load_accounts,
        load_layout,
        plan_exchange,
        provision,
    )
    from cti_exchange.server.runner import check_listen_address, check_port_free, proxy_settings, run_server

    # Wrong settings fail before anything is provisioned.
    check_busy_timeout(busy_timeout)
    check_listen_address(host, allow_public=public)
    check_port_free(host, port)
    if trusted_proxy:
        proxy_settings(trusted_proxy)
    home = profile_home(ctx)
    profile = home.load_profile()
    data_dir = data or home.root / "taxii-server"
    agencies = [(profile.agency_id, profile.agency_name)] + [
        (p.agency_id, p.display_name) for p in profile.partners.values()
    ]
    known = _known_accounts(data_dir, load_accounts, database_path(data_dir))
    passwords = {agency: secrets.token_urlsafe(24) for agency, _ in agencies if agency not in known}
    if max_content_length is None:
        # A restart keeps the limit set before: partners cut their envelopes to it.
        existing = database_path(data_dir).is_file()
        max_content_length = (
            load_layout(data_dir).max_content_length if existing else DEFAULT_MAX_CONTENT_LENGTH
        )
    layout = plan_exchange(agencies, max_content_length=max_content_length)
    # Serving is for our agency and its partners: an agency we removed (`partners remove`)
    # loses its rights here, not only its entry in our profile.
    withdrawn = provision(data_dir, layout, passwords=passwords, withdraw_others=True)
    out = Output()
    served = {agency for agency, _ in agencies}
    for agency in withdrawn:
        if agency not in served:
            others = sorted(served - {profile.agency_id})
            with_others = f", {', '.join(others)} included" if others else ""
            out.note(
                f"Account {agency}: not a partner of {profile.agency_id} any more; its rights on "
                "this server are withdrawn and the collections to and from it closed, with every "
                f"agency served here{with_others}: tell them (kept with their objects; pin "
                f"{agency} again and restart serve to restore them)"
            )
    if passwords:
        credentials = data_dir / "credentials"
        ensure_private_dir(credentials)
        for agency, password in passwords.items():
            path = credentials / f"{agency}.secret"
            path.unlink(missing_ok=True)
            create_exclusive(path, (password + "\n").encode(), 0o600)
            out.note(f"New account {agency}: password written to {path}; hand it over, then delete it.")

    def ready(url: str) -> None:
        # What each agency gives `partners set`, with the port bound (--port 0 lets it choose).
        for sender, _ in agencies:
            for recipient, _ in agencies:
                if sender != recipient:
                    out.note(
                        f"Collection {sender} -> {recipient}: {collection_id_for(sender, recipient)} "
                        f"({sender}'s --write-collection, {recipient}'s --read-collection)"
                    )
        out.note(f"Serving {len(agencies)} agencies on {url}{layout.api_root}/ (Ctrl-C stops)")

    run_server(
        data_dir,
        host,
        port,
        allow_public=public,
        trusted_proxy=trusted_proxy,
        busy_timeout=busy_timeout,
        on_ready=ready,
    )


def _known_accounts(
    data_dir: Path, load_accounts: Callable[[Path], Iterable[Any]], database: Path
) -> set[str]:
    """The agencies that already have an account. Only a server never provisioned has none: a
    database that cannot be read is an error, never a reason to give every agency a new
    password (which would lock every partner out)."""
    if not database.exists():
        return set()
    try:
        return {account.username for account in load_accounts(data_dir)}
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):  # created, interrupted before its tables
            return set()
        raise ConfigError(
            f"cannot read the accounts of the TAXII server in {database}: {error}",
            hint="stop any other process using it and run the command again; existing passwords are kept",
        ) from None
    except sqlite3.DatabaseError as error:
        raise ConfigError(
            f"cannot read the accounts of the TAXII server in {database}: {error}",
            hint="restore it from a backup; serve never replaces existing accounts",
        ) from None


def register(app: typer.Typer) -> None:
    app.command("serve", epilog="Example: cti-exchange serve --port 9443 --busy-timeout 30")(serve)
