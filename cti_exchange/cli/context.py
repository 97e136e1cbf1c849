"""What every command gets from the top-level options: the profile home and the debug switch."""

from __future__ import annotations

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


JsonOption = Annotated[
    bool, typer.Option("--json", help="Write machine-readable JSON to stdout instead of text.")
]
