"""Shared fixtures: agencies initialised in temporary homes, driven through the real CLI."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cti_exchange.cli.app import app

# Fewer PBKDF2 rounds for key files, in this process and every Python process a test starts:
# tests/test_processes/sitecustomize.py says why and what checks the product's own strength.
TEST_PROCESSES = Path(__file__).resolve().parent / "test_processes"
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(TEST_PROCESSES), *filter(None, [os.environ.get("PYTHONPATH")])]
)
runpy.run_path(str(TEST_PROCESSES / "sitecustomize.py"))

PASSPHRASE = "correct horse battery staple"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """The command's JSON output, as `json.loads` gives it."""
        return json.loads(self.stdout)


def _isolate(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CTI_EXCHANGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(root / "user-home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "user-home" / ".config"))


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may touch the real user's profile or depend on the caller's environment."""
    _isolate(monkeypatch, tmp_path)


def run_cli(
    *args: str,
    home: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> CliResult:
    full_env = {"CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    full_env.update(env or {})
    argv = (["--home", str(home)] if home is not None else []) + list(args)
    result = CliRunner().invoke(app, argv, env=full_env, input=input, catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    return run_cli


@dataclass
class Agency:
    agency_id: str
    name: str
    home: Path

    def run(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> CliResult:
        return run_cli(*args, home=self.home, env=env, input=input)

    def signing_fingerprint(self) -> str:
        keys = self.run("keys", "show", "--json").json()["keys"]
        return next(k["thumbprint"] for k in keys if k["use"] == "sig" and k["status"] == "current")

    def export_keys(self, path: Path) -> Path:
        result = self.run("keys", "export", "-o", str(path))
        assert result.exit_code == 0, result.stderr
        return path


def make_agency(root: Path, agency_id: str, name: str) -> Agency:
    agency = Agency(agency_id, name, root / agency_id)
    result = agency.run("init", "--agency", agency_id, "--name", name)
    assert result.exit_code == 0, result.stderr
    return agency


def pin(receiver: Agency, sender: Agency, tmp: Path) -> None:
    doc = sender.export_keys(tmp / f"{sender.agency_id}.keys.json")
    result = receiver.run(
        "partners",
        "add",
        sender.agency_id,
        "--jwks",
        str(doc),
        "--fingerprint",
        sender.signing_fingerprint(),
    )
    assert result.exit_code == 0, result.stderr


def revoke_encryption_key(agency: Agency) -> str:
    """`keys revoke` of the agency's current encryption key (a new one replaces it at once)."""
    keys = agency.run("keys", "show", "--json").json()["keys"]
    kid = next(k["kid"] for k in keys if k["use"] == "enc" and k["status"] == "current")
    result = agency.run("keys", "revoke", kid, "--reason", "compromised")
    assert result.exit_code == 0, result.stderr
    return str(kid)


def update_keys(receiver: Agency, partner: Agency, tmp: Path) -> dict[str, Any]:
    """`partners update-keys` with the partner's key file as it is now: its --json output."""
    document = partner.export_keys(tmp / f"{partner.agency_id}-after.keys.json")
    result = receiver.run("partners", "update-keys", partner.agency_id, "--jwks", str(document), "--json")
    assert result.exit_code == 0, result.stderr
    return dict(result.json())


def update_keys_confirmed(receiver: Agency, partner: Agency, document: Path, *extra: str) -> CliResult:
    """`partners update-keys` from `document`, confirmed by the partner's signing fingerprint
    read out of band (when no pinned key can vouch for the file)."""
    return receiver.run(
        "partners",
        "update-keys",
        partner.agency_id,
        "--jwks",
        str(document),
        "--fingerprint",
        partner.signing_fingerprint(),
        *extra,
    )


# The fixtures' agencies are made once per test process, `init` and `partners add` run as any
# test would run them, and copied into each test's tmp_path: a copy is the profile those
# commands leave (no file names a path), at a tenth of the cost (some 1,400 agencies and 900
# pinnings a run). Their keys, and the time they were made, are then the same in each test a
# process runs (servers and stores are each test's own); an agency a test makes itself
# (make_agency) has keys of its own.
_FIXTURE_AGENCIES = {"cert-fr": "CERT-FR", "cert-in": "CERT-In"}


@dataclass(frozen=True)
class _AgencyTemplates:
    alone: Path  # cert-fr/ and cert-in/ as `init` left them
    partnered: Path  # the same two after `partners add` of each other, and the key files pin exported
    alone_state: dict[str, list[tuple[str, int, int, int]]]  # by agency id: _home_state of alone


def _home_state(home: Path) -> list[tuple[str, int, int, int]]:
    """Every file and directory of a home: name, size, mode and modification time (copies keep
    them), to tell a copy nothing has touched yet."""
    entries = []
    for path in sorted(home.rglob("*")):
        info = path.lstat()
        entries.append((str(path.relative_to(home)), info.st_size, info.st_mode, info.st_mtime_ns))
    return entries


@pytest.fixture(scope="session")
def _agency_templates(tmp_path_factory: pytest.TempPathFactory) -> _AgencyTemplates:
    root = tmp_path_factory.mktemp("agency-templates")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch, root)
        alone = root / "alone"
        for agency_id, name in _FIXTURE_AGENCIES.items():
            make_agency(alone, agency_id, name)
        partnered = root / "partnered"
        shutil.copytree(alone, partnered, symlinks=True)
        fr, india = (Agency(a, n, partnered / a) for a, n in _FIXTURE_AGENCIES.items())
        pin(india, fr, partnered)
        pin(fr, india, partnered)
    state = {agency_id: _home_state(alone / agency_id) for agency_id in _FIXTURE_AGENCIES}
    return _AgencyTemplates(alone, partnered, state)


def _copy_agency(templates: _AgencyTemplates, agency_id: str, root: Path) -> Agency:
    home = root / agency_id
    shutil.copytree(templates.alone / agency_id, home, symlinks=True)
    return Agency(agency_id, _FIXTURE_AGENCIES[agency_id], home)


@pytest.fixture
def cert_fr(tmp_path: Path, _agency_templates: _AgencyTemplates) -> Agency:
    return _copy_agency(_agency_templates, "cert-fr", tmp_path)


@pytest.fixture
def cert_in(tmp_path: Path, _agency_templates: _AgencyTemplates) -> Agency:
    return _copy_agency(_agency_templates, "cert-in", tmp_path)


@pytest.fixture
def partnered(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path, _agency_templates: _AgencyTemplates
) -> Iterator[tuple[Agency, Agency]]:
    """CERT-FR and CERT-In, each having pinned the other's keys."""
    untouched = all(
        _home_state(agency.home) == _agency_templates.alone_state[agency.agency_id]
        for agency in (cert_fr, cert_in)
    )
    if untouched:  # the pinned copies of the same two agencies
        for entry in _agency_templates.partnered.iterdir():
            target = tmp_path / entry.name
            if entry.is_dir():
                shutil.rmtree(target)
                shutil.copytree(entry, target, symlinks=True)
            else:
                shutil.copy2(entry, target)
    else:  # another fixture changed one first: pinned as it is now
        pin(cert_in, cert_fr, tmp_path)
        pin(cert_fr, cert_in, tmp_path)
    yield cert_fr, cert_in


@contextmanager
def lock_held_by_another_run(home: Path, seconds: float) -> Iterator[None]:
    """Another run (a cron sync) holding the profile lock, released `seconds` after entry."""
    from cti_exchange.home.lock import profile_lock

    locked, release = threading.Event(), threading.Event()

    def a_sync_running() -> None:
        with profile_lock(home):
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=a_sync_running)
    holder.start()
    try:
        assert locked.wait(10)
        threading.Timer(seconds, release.set).start()
        yield
    finally:
        release.set()
        holder.join()


def set_store_wait(agency: Agency, seconds: int) -> None:
    """config.toml `operations.store_wait_seconds`: how long the agency's commands wait for
    another process holding its store (a test shortens the 30 s default to see the end of it)."""
    import tomllib

    import tomli_w

    config = agency.home / "config.toml"
    data = tomllib.loads(config.read_text())
    data.setdefault("operations", {})["store_wait_seconds"] = seconds
    config.write_text(tomli_w.dumps(data))
