"""What every command gets from the top-level options: the profile home and the debug switch."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Annotated

import typer

from cti_exchange.home.profile_home import ProfileHome


@dataclass
class AppState:
    home: ProfileHome
    debug: bool = False


def app_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):  # a command invoked without the root callback
        root.obj = AppState(home=ProfileHome.resolve(None))
    return root.obj


def profile_home(ctx: typer.Context) -> ProfileHome:
    return app_state(ctx).home


def writer_lock(home: ProfileHome, what: str) -> AbstractContextManager[None]:
    """The profile lock for a command run by hand (push, pull, open, accept-gap): it waits up
    to LOCK_WAIT_SECONDS for a running sync, and says so on stderr when it has to wait."""
    from cti_exchange.cli.output import Output
    from cti_exchange.home.lock import LOCK_WAIT_SECONDS, profile_lock

    return profile_lock(home.root, wait_seconds=LOCK_WAIT_SECONDS, what=what, waiting=Output().note)


JsonOption = Annotated[
    bool, typer.Option("--json", help="Write machine-readable JSON to stdout instead of text.")
]
