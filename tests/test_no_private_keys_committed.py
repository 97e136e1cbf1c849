"""No tracked file may hold a private JWK (keys/README.md, .gitignore)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRIVATE_MEMBER = re.compile(r'"(d|p|q|dp|dq|qi|k)"\s*:\s*"([A-Za-z0-9_-]{16,})')
# The worked example of docs/ENVELOPE.md uses keys published in RFC 8037 and RFC 7748 as test
# vectors: public knowledge, never used for real traffic.
from tests.data.envelope.rfc_test_keys import PUBLISHED_PRIVATE_VALUES  # noqa: E402


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in out.stdout.decode().split("\0") if name]


def _walk_json(value: object) -> bool:
    if isinstance(value, dict):
        private = {"d", "p", "q", "k"} & set(value)
        if "kty" in value and any(value[m] not in PUBLISHED_PRIVATE_VALUES for m in private):
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
        if '"kty"' in text and any(
            m.group(2) not in PUBLISHED_PRIVATE_VALUES for m in PRIVATE_MEMBER.finditer(text)
        ):
            offenders.append(path)
    assert not offenders, f"private key material tracked in: {offenders}"


def test_private_key_files_are_ignored() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "keys/private.jwe", "keys/public.json", "x/private.jwe"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert "keys/private.jwe" in ignored.stdout and "x/private.jwe" in ignored.stdout


def test_the_detector_catches_a_real_private_jwk() -> None:
    from cti_exchange.clock import utc_now
    from cti_exchange.keys.material import generate_key_pair
    from cti_exchange.keys.model import KeyUse

    private, _ = generate_key_pair(KeyUse.SIG, "cert-fr", utc_now(), 30)
    assert _walk_json({"keys": [private]})
    text = json.dumps(private)
    assert any(m.group(2) not in PUBLISHED_PRIVATE_VALUES for m in PRIVATE_MEMBER.finditer(text))
