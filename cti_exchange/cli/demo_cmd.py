"""`cti-exchange demo`: the whole exchange on one machine, with no configuration."""

from __future__ import annotations

import shlex
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from cti_exchange.cli.context import JsonOption
from cti_exchange.cli.exchange_cmd import raise_for_pull
from cti_exchange.cli.output import Output
from cti_exchange.errors import IntegrityError, UsageError
from cti_exchange.exchange.delivery import delivery_failure, describe_failed

if TYPE_CHECKING:
    from cti_exchange.demo import DemoResult

# Ending the demo as Ctrl-C does (exit 130) lets it stop its server and remove its temporary
# directory, which holds private keys and the server's passwords.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _prepare_keep(keep: Path) -> None:
    """--keep DIR: a new or empty directory, never one whose files the demo would overwrite."""
    hint = "give a new or empty directory"
    try:
        if keep.exists() and not keep.is_dir():
            raise UsageError(f"--keep {keep}: not a directory", hint=hint)
        if keep.is_dir() and any(keep.iterdir()):
            raise UsageError(f"--keep {keep}: the directory is not empty", hint=hint)
        keep.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--keep {keep}: {exc.strerror or exc}", hint=hint) from None


def _kept(keep: Path, result: DemoResult) -> list[str]:
    """What `--keep` kept, and the commands that use it."""
    fr, india = keep / "cert-fr", keep / "cert-in"
    passphrase = result.passphrase_files.get("cert-in", keep / "cert-in.passphrase")
    return [
        f"Kept in {keep}: the profiles {fr} and {india}, their key passphrases "
        f"({keep}/<agency>.passphrase, 0600) and the TAXII server's data ({keep / 'taxii-server'}).",
        "What CERT-In received:",
        f"  CTI_EXCHANGE_PASSPHRASE_FILE={shlex.quote(str(passphrase))} "
        f"cti-exchange --home {shlex.quote(str(india))} triage list",
        "To exchange more, start the server again on the port the profiles name, in another terminal:",
        f"  cti-exchange --home {shlex.quote(str(fr))} serve --data "
        f"{shlex.quote(str(keep / 'taxii-server'))} --port {result.server_port}",
    ]


def demo(
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Keep the demo's files in this directory (new or empty).")
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
    if keep is not None:
        _prepare_keep(keep)
    with _stop_signals_interrupt():
        work = keep or Path(tempfile.mkdtemp(prefix="cti-exchange-demo-"))
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
                "failed": result.push.failed if result.push else {},
                "pull_errors": {p.partner: p.error for p in result.pull.partners if p.error}
                if result.pull
                else {},
                "kept": (
                    {
                        "directory": str(keep),
                        "homes": {agency: str(keep / agency) for agency in result.passphrase_files},
                        "passphrase_files": {a: str(f) for a, f in result.passphrase_files.items()},
                        "server_data": str(keep / "taxii-server"),
                        "server_port": result.server_port,
                    }
                    if keep is not None
                    else None
                ),
            }
        )
    else:
        out.table(
            ["type", "value", "TLP", "signed by", "envelope"],
            [[r.ioc_type, r.value, r.tlp, r.signer, r.envelope_id[:8]] for r in result.received],
            title="Received and verified by CERT-In",
        )
        out.line(f"{len(result.received)} of {result.sent} indicators arrived verified.")
        if keep is not None:
            for line in _kept(keep, result):
                out.line(line)
        else:
            out.line(
                "Next: `cti-exchange demo --keep DIR` keeps both profiles to try the other commands "
                "on; README.md 'Getting started as an agency' sets up a real one."
            )
    hint = "run again with --keep DIR and look at DIR/taxii-server/server.log"
    if result.push is not None and result.push.failed:
        # What did not arrive was never delivered: the cause's exit code, as `push` gives it
        # (7 for a server out of reach), not an integrity alert.
        partial = any(d.delivered for d in result.push.deliveries)
        raise delivery_failure(
            result.push.deliveries,
            f"delivery failed for {describe_failed(result.push.failed)}",
            hint=hint,
            partial=partial,
        )
    if result.pull is not None:
        # Everything was posted but the pull failed: its cause's exit code, as `pull` gives it.
        raise_for_pull(result.pull, hint=hint)
    if not result.all_arrived:
        raise IntegrityError(
            f"only {len(result.received)} of {result.sent} indicators arrived verified", hint=hint
        )


def register(app: typer.Typer) -> None:
    app.command("demo", epilog="Example: cti-exchange demo")(demo)
