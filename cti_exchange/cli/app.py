"""The `cti-exchange` command line: options, command groups, and the one place errors are shown.

Commands stay thin: they parse options, call the Python API, and render the result. Every
`CtiExchangeError` ends here as one line on stderr and its documented exit code; any other
exception is a bug and says so. `--debug` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, ClassVar

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from cti_exchange import __version__
from cti_exchange.cli.context import AppState
from cti_exchange.cli.help_examples import format_epilogs, format_examples
from cti_exchange.errors import CtiExchangeError, ExitCode, is_storage_failure
from cti_exchange.home.profile_home import ProfileHome

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 partial failure; 2 usage or configuration error; "
    "3 authentication failure (passphrase, TAXII credentials, a collection refused); "
    "4 integrity alert; 5 another instance holds the lock; 6 nothing usable in the input; "
    "7 network failure; 8 refused by sharing policy; "
    "70 internal error; 130 interrupted (Ctrl-C); 141 output pipe closed early (export | head); "
    "143 terminated (SIGTERM: systemctl stop, timeout)."
)


def _debug_requested(ctx: Any) -> bool:
    state = ctx.find_root().obj if ctx is not None else None
    if isinstance(state, AppState) and state.debug:
        return True
    return _debug_in_argv(sys.argv[1:]) or os.environ.get("CTI_EXCHANGE_DEBUG") == "1"


def _debug_in_argv(args: list[str]) -> bool:
    """`--debug` among the options before the command name (where the root callback reads it,
    for errors met before it ran): not an option's value further on (`--note --debug`)."""
    values = iter(args)
    for arg in values:
        if arg == "--debug":
            return True
        if arg == "--home":
            next(values, None)  # its value, whatever it looks like
        elif arg == "--" or not arg.startswith("-"):
            return False  # the command name: the root's options end there
    return False


def _print_traceback() -> None:
    """--debug: the traceback of the error being handled, then the usual one-line error and
    the same exit code as without --debug (a cron line run with --debug to diagnose it must
    not turn every failure into exit 1)."""
    sys.stderr.write(traceback.format_exc())
    sys.stderr.flush()


def _print_error(text: str) -> None:
    try:
        sys.stderr.write(f"cti-exchange: error: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr full or gone (`2>/dev/full`): the exit code still says what happened


class Terminated(KeyboardInterrupt):
    """SIGTERM during a command (`systemctl stop`, `timeout`, systemd's TimeoutStartSec).

    Raised in the main thread by the handler `sigterm_unwinds` installs, so the command unwinds
    exactly as after Ctrl-C: finally blocks run, store transactions roll back, the profile lock
    is released. A KeyboardInterrupt, so that whatever already handles Ctrl-C handles it alike;
    code that catches `Exception` (retries, error reports) lets it through. Only the ending
    differs: `CtiGroup` says "terminated" and exits 143 (128 + SIGTERM, what a shell or systemd
    reports for a process the signal ended).
    """

    signal_name = "SIGTERM"
    exit_code = 128 + int(signal.SIGTERM)


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """For the duration of a command, SIGTERM raises `Terminated` in the main thread.

    Not installed outside the main thread (signal handlers cannot be), nor where SIGTERM is
    ignored (left so by the parent, on purpose) or has a handler Python did not install. The
    previous handler is restored when the command ends: tests run many commands in one
    process. A command that installs its own handler inside (`serve`, `demo`) overrides this
    one while it runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None or previous == signal.SIG_IGN:
        yield
        return
    owner = os.getpid()
    raised = False

    def terminate(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if os.getpid() != owner:
            # A worker forked during the command (ingest's process pool): it ends by the
            # signal, as it always did, instead of raising in code that is not a command.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if raised:
            # Once is enough: `timeout` signals the process and then its process group, and a
            # second exception would cut short the rollbacks the first one set off.
            return
        raised = True
        raise Terminated

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is terminate:  # not once the process ignores it
            signal.signal(signal.SIGTERM, previous)


# Set by cli/entry.py, where the command is the process's only one: once the command's ending
# is written (its output flushed, its error line and exit code decided), SIGINT and SIGTERM
# are ignored until the process exits with that code. Python's own shutdown (about 150 ms
# for a command that loaded the exchange modules) puts the default handlers back, and a
# signal then ended a finished command by the signal, without a word; one in an atexit
# callback printed a traceback. Tests that run many commands in one process leave it unset.
ONE_COMMAND_PER_PROCESS = False


def _signals_ignored_from_now() -> None:
    """SIG_IGN, which Python's shutdown leaves as it is (it restores only handlers it runs);
    what is left to do is closing, which nothing should cut short."""
    if ONE_COMMAND_PER_PROCESS and threading.current_thread() is threading.main_thread():
        from cti_exchange.cli.entry import ignore_signals  # loaded: it set ONE_COMMAND_PER_PROCESS

        ignore_signals()


def _ended_by_signal(said: str, exit_code: int) -> typer.Exit:
    """One line on stderr (if it is still there to write to), and the signal's exit code."""
    try:
        sys.stderr.write(f"cti-exchange: {said}; what was committed stays, run the command again to resume\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed (its reader, the journal, went away first): the exit code says it
    return typer.Exit(exit_code)


def _terminated(exc: Terminated) -> typer.Exit:
    """SIGTERM: exit 143."""
    return _ended_by_signal(f"terminated ({exc.signal_name})", exc.exit_code)


# Each command's module, loaded only when that command runs (or when help lists them all), so
# `cti-exchange triage list` does not import what `push` needs (TAXII, JOSE, ingest...).
# Each module's `register(app)` adds its commands or group to a Typer app.
COMMAND_MODULES: dict[str, str] = {
    "init": "init_cmd",
    "keys": "keys_cmd",
    "partners": "partners_cmd",
    "validate": "ingest_cmd",
    "convert": "ingest_cmd",
    "push": "exchange_cmd",
    "pull": "exchange_cmd",
    "sync": "sync_cmd",
    "status": "sync_cmd",
    "sent": "sync_cmd",
    "triage": "triage_cmd",
    "quarantine": "quarantine_cmd",
    "export": "export_cmd",
    "sight": "sight_cmd",
    "seal": "envelope_cmd",
    "open": "envelope_cmd",
    "serve": "server_cmd",
    "demo": "demo_cmd",
    "audit": "audit_cmd",
    "doctor": "doctor_cmd",
}


def _load_commands(module_name: str) -> dict[str, Any]:
    """The click commands a command module registers, by name."""
    module = importlib.import_module(f"cti_exchange.cli.{module_name}")
    holder = typer.Typer(rich_markup_mode=None)
    module.register(holder)
    group = typer.main.get_group(holder)
    for command in group.commands.values():
        format_epilogs(command)
    return dict(group.commands)


class _LazyCommands:
    """Mixin for the top-level group: commands come from COMMAND_MODULES on first use."""

    _loaded: ClassVar[dict[str, dict[str, Any]]] = {}  # per process, shared by design

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return None
        if module_name not in self._loaded:
            self._loaded[module_name] = _load_commands(module_name)
        return self._loaded[module_name].get(cmd_name)


def _end_if_reader_went_away() -> None:
    """`triage list | head`: the reader had what it wanted; end as `cat` would (exit 141)."""
    from cti_exchange.cli.output import reader_went_away, stdout_reader_gone

    if stdout_reader_gone():
        reader_went_away()


def _drop_stdout_if_reader_gone() -> None:
    from cti_exchange.cli.output import drop_stdout_if_reader_gone

    drop_stdout_if_reader_gone()


def _flush_stdout() -> None:
    """Flushed here, not at interpreter exit, where a closed pipe becomes exit 120 and a
    message on stderr."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _end_if_reader_went_away()
        raise


def _end_if_output_failed(exc: Exception) -> None:
    """Ends a command whose output could not be written: exit 141 if stdout's reader went
    away (`| head`), exit 2 with one line on a full disk or an I/O error; else returns."""
    if isinstance(exc, BrokenPipeError):
        _end_if_reader_went_away()
    if is_storage_failure(exc):
        # A full disk, a quota, an I/O error: the machine's problem, not a bug. Store writes
        # are transactions and files are written aside then renamed, so nothing half-written
        # was kept, and a re-run resumes.
        _print_error(
            f"cannot write to disk: {' '.join(str(exc).split())[:200]}; nothing "
            "half-written was kept; free space (or fix the device) and run the command again"
        )
        raise typer.Exit(int(ExitCode.USAGE)) from None


def _store_failure(ctx: Any, exc: Exception) -> CtiExchangeError | None:
    """An SQLite error met after the store was opened that is not a bug: a table the
    migrations made is gone (a damaged store), or another process kept the store locked past
    the busy timeout."""
    if type(exc).__name__ != "OperationalError":  # sqlite3 is not imported for every command
        return None
    from cti_exchange.store.schema_check import damage_behind
    from cti_exchange.store.store_file import is_locked, store_locked

    state = ctx.find_root().obj
    try:
        path = state.home.store_path() if isinstance(state, AppState) else Path("store")
    except CtiExchangeError:
        path = Path("store")
    if is_locked(exc):
        return store_locked(path, None)
    return damage_behind(exc, path)


def _usage_error(exc: UsageError) -> typer.Exit:
    """A usage error as one line, like every other error (click writes the usage, a "Try"
    line, a blank line and then the error): exit 2."""
    where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
    _print_error(" ".join(exc.format_message().split()) + where)
    return typer.Exit(int(ExitCode.USAGE))


class CtiGroup(_LazyCommands, TyperGroup):
    """Top-level group: loads commands lazily, renders errors once for every sub-command."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:
            raise  # `cti-exchange` alone: the help, as click shows it
        except UsageError as exc:  # an unknown option or a bad value before the command name
            raise _usage_error(exc) from None
        except OSError as exc:  # `--version` or `--help` written to a full disk or closed pipe
            if _debug_requested(None):
                _print_traceback()
            _end_if_output_failed(exc)
            raise

    def invoke(self, ctx: Any) -> Any:
        # Around the error handling too: the handler raises once, so a second SIGTERM (or a
        # late one) does not interrupt the ending being written.
        with sigterm_unwinds():
            try:
                return self._invoke(ctx)
            except Terminated as exc:  # while another ending was being written
                raise _terminated(exc) from None
            finally:
                _signals_ignored_from_now()

    def _invoke(self, ctx: Any) -> Any:
        try:
            result = super().invoke(ctx)
            _flush_stdout()
            return result
        except NoArgsIsHelpError:
            _flush_stdout()
            raise  # `cti-exchange triage` alone: the group's help
        except UsageError as exc:  # a sub-command's options or arguments
            _flush_stdout()
            raise _usage_error(exc) from None
        except CtiExchangeError as exc:
            if _debug_requested(ctx):
                _print_traceback()
            _print_error(exc.diagnostics())
            _drop_stdout_if_reader_gone()
            raise typer.Exit(int(exc.exit_code)) from None
        except (typer.TyperException, typer.Exit, typer.Abort) as exc:
            if isinstance(exc, typer.Abort) and isinstance(exc.__context__, Terminated):
                # A prompt turns any KeyboardInterrupt into Abort ("Aborted!", exit 1).
                raise _terminated(exc.__context__) from None
            # Usage errors, --help, Ctrl-C at a prompt: Typer renders those itself. (Typer
            # ships its own copy of click, so these are not `click.exceptions` classes.)
            _flush_stdout()
            raise
        except Terminated as exc:
            raise _terminated(exc) from None
        except KeyboardInterrupt:  # Ctrl-C: unwound as after SIGTERM, said alike
            raise _ended_by_signal("interrupted (SIGINT)", 128 + int(signal.SIGINT)) from None
        except Exception as exc:  # a bug: say so, without a traceback unless asked
            if _debug_requested(ctx):
                _print_traceback()
            store_error = _store_failure(ctx, exc)
            if store_error is not None:
                _print_error(store_error.diagnostics())
                raise typer.Exit(int(store_error.exit_code)) from None
            _end_if_output_failed(exc)
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
    epilog=format_examples("Example: cti-exchange --home ~/cert-fr init --agency cert-fr --name CERT-FR"),
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
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    state = AppState(home=ProfileHome.resolve(home), debug=debug)
    if sys.stderr is not None and sys.stderr.isatty():  # cron mail need not say it waited
        state.home.store_waiting = _note
    ctx.obj = state


def _note(text: str) -> None:
    from cti_exchange.cli.output import Output

    Output().note(text)


def main() -> None:
    app(prog_name="cti-exchange")


def iter_commands(command: Any, path: list[str] | None = None) -> Iterator[tuple[list[str], Any]]:
    """Every command and group below `command` (loading lazy ones), with its path."""
    path = path or []
    yield path, command
    if hasattr(command, "list_commands"):
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                yield from iter_commands(sub, [*path, name])
