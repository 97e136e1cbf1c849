"""No tracked file may hold a private JWK (keys/README.md, .gitignore)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRIVATE_MEMBER = re.compile(r'"(d|p|q|dp|dq|qi|k)"\s*:\s*"[A-Za-z0-9_-]{16,}')


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in out.stdout.decode().split("\0") if name]


def _walk_json(value: object) -> bool:
    if isinstance(value, dict):
        if "kty" in value and {"d", "p", "q", "k"} & set(value):
            return True
        return any(_walk_json(v) for v in value.values())
    if isinstance(value, list):
        return any(_walk_json(v) for v in value)
    return False


def test_no_tracked_file_holds_a_private_jwk() -> None:
    offenders = []
    for path in _tracked_files():
        if not path.is_file():
            continue
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if path.suffix == ".json":
            try:
                if _walk_json(json.loads(text)):
                    offenders.append(path)
                continue
            except ValueError:
                pass
        if '"kty"' in text and PRIVATE_MEMBER.search(text):
            offenders.append(path)
    assert not offenders, f"private key material tracked in: {offenders}"


def test_private_key_files_are_ignored() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "keys/private.jwe", "keys/public.json", "x/private.jwe"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert "keys/private.jwe" in ignored.stdout and "x/private.jwe" in ignored.stdout
