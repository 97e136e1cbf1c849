"""`cti-exchange demo`: the whole exchange on one machine, with no configuration."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from cti_exchange.cli.context import JsonOption
from cti_exchange.cli.output import Output
from cti_exchange.errors import IntegrityError


def demo(
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Keep the demo's files in this directory.")
    ] = None,
    json_mode: JsonOption = False,
) -> None:
    """Show the whole exchange CERT-FR -> CERT-In on this machine, with no configuration.

    Starts the embedded TAXII server on a free loopback port, creates both agencies in a
    temporary directory, exchanges their keys, pushes examples/sample-iocs.csv as CERT-FR,
    pulls and verifies it as CERT-In, then stops the server and cleans up. Exit 0 only when
    every indicator arrived verified.
    """
    from cti_exchange.demo import run_demo  # starts a server: keep flask out of other commands

    out = Output(json_mode=json_mode)
    work = keep or Path(tempfile.mkdtemp(prefix="cti-exchange-demo-"))
    if keep:
        work.mkdir(parents=True, exist_ok=True)
    try:
        result = run_demo(work, say=out.line)
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if json_mode:
        out.data(
            {
                "sent": result.sent,
                "received": len(result.received),
                "all_arrived": result.all_arrived,
                "server": result.server_url,
                "indicators": [r.__dict__ for r in result.received],
            }
        )
    else:
        out.table(
            ["type", "value", "TLP", "signed by", "envelope"],
            [[r.ioc_type, r.value, r.tlp, r.signer, r.envelope_id[:8]] for r in result.received],
            title="Received and verified by CERT-In",
        )
        out.line(f"{len(result.received)} of {result.sent} indicators arrived verified.")
    if not result.all_arrived:
        raise IntegrityError(
            f"only {len(result.received)} of {result.sent} indicators arrived verified",
            hint="run again with --keep DIR and look at DIR/taxii-server/server.log",
        )


def register(app: typer.Typer) -> None:
    app.command("demo", epilog="Example: cti-exchange demo")(demo)
