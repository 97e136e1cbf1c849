"""The `cti-exchange` command line: options, command groups, and the one place errors are shown.

Commands stay thin: they parse options, call the Python API, and render the result. Every
`CtiExchangeError` ends here as one line on stderr and its documented exit code; any other
exception is a bug and says so. `--debug` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cti_exchange import __version__
from cti_exchange.cli.context import AppState
from cti_exchange.errors import CtiExchangeError, ExitCode
from cti_exchange.home.profile_home import ProfileHome

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 partial failure; 2 usage or configuration error; "
    "3 authentication failure; 4 integrity alert; 5 another instance holds the lock; "
    "6 nothing usable in the input; 7 network failure; 8 refused by sharing policy; "
    "70 internal error."
)


def _debug_requested(ctx: Any) -> bool:
    state = ctx.find_root().obj
    if isinstance(state, AppState) and state.debug:
        return True
    return "--debug" in sys.argv or os.environ.get("CTI_EXCHANGE_DEBUG") == "1"


def _print_error(text: str) -> None:
    sys.stderr.write(f"cti-exchange: error: {text}\n")
    sys.stderr.flush()


class CtiGroup(TyperGroup):
    """Top-level group: renders errors once for every sub-command."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CtiExchangeError as exc:
            if _debug_requested(ctx):
                raise
            _print_error(exc.diagnostics())
            raise typer.Exit(int(exc.exit_code)) from None
        except (typer.TyperException, typer.Exit, typer.Abort):
            # Usage errors, --help, Ctrl-C at a prompt: Typer renders those itself. (Typer
            # ships its own copy of click, so these are not `click.exceptions` classes.)
            raise
        except KeyboardInterrupt:
            _print_error("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: say so, without a traceback unless asked
            if _debug_requested(ctx):
                raise
            _print_error(
                f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}; "
                "run again with --debug for the traceback and please report it"
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None


app = typer.Typer(
    cls=CtiGroup,
    name="cti-exchange",
    help=(
        "Signed, encrypted exchange of STIX 2.1 threat intelligence over TAXII 2.1 between "
        "cybersecurity agencies (CERT-FR / CERT-In).\n\n" + EXIT_CODES_HELP
    ),
    epilog="Example: cti-exchange --home ~/cert-fr init --agency cert-fr --name CERT-FR",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"cti-exchange {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Profile directory (default: $CTI_EXCHANGE_HOME, else the user config dir).",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks for errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    ctx.obj = AppState(home=ProfileHome.resolve(home), debug=debug)


def _register() -> None:
    # One line per command module; each module adds its commands or group to `app`.
    from cti_exchange.cli import (
        audit_cmd,
        demo_cmd,
        doctor_cmd,
        envelope_cmd,
        exchange_cmd,
        ingest_cmd,
        init_cmd,
        keys_cmd,
        partners_cmd,
        server_cmd,
        sync_cmd,
    )

    init_cmd.register(app)
    keys_cmd.register(app)
    partners_cmd.register(app)
    envelope_cmd.register(app)
    exchange_cmd.register(app)
    server_cmd.register(app)
    demo_cmd.register(app)
    sync_cmd.register(app)
    ingest_cmd.register(app)
    audit_cmd.register(app)
    doctor_cmd.register(app)
    from cti_exchange.cli import export_cmd, sight_cmd, triage_cmd  # issue 7

    triage_cmd.register(app)
    export_cmd.register(app)
    sight_cmd.register(app)


_register()


def main() -> None:
    app(prog_name="cti-exchange")
