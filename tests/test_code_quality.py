"""The linters run with the tests, so CI (`.ci/run`, the README's test command) fails on a lint
or type error as it does on a failing test. ruff and mypy are pinned in the `test` extra: a new
release with new rules must not turn a clean tree red on its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["cti_exchange", "tests", "bench"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", *SOURCES),
        ("ruff", "format", "--check", *SOURCES),
        ("mypy", *SOURCES),
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_the_code_passes_its_linters(command: tuple[str, ...]) -> None:
    result = _run(*command)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"
