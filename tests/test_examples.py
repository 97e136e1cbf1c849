"""The examples operators copy: the two sample agency configs, the crontab line and the systemd
units. Each must be what it claims to be (examples/README.md)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import pytest

from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.profile.model import identity_id_for
from cti_exchange.server.provisioning import collection_id_for
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SAMPLES = {"cert-fr": "cert-in", "cert-in": "cert-fr"}  # agency -> its partner


# -- the two-agency configuration ---------------------------------------------------------


@pytest.mark.parametrize("agency", sorted(SAMPLES))
def test_sample_config_validates_against_the_schema(agency: str, tmp_path: Path) -> None:
    path = EXAMPLES / "two-agencies" / f"{agency}.config.toml"
    data = tomllib.loads(path.read_text())
    schema = json.loads((REPO / "schemas" / "profile.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)

    # And the way cti-exchange itself reads it, from a profile home.
    home = tmp_path / agency
    home.mkdir()
    shutil.copy(path, home / "config.toml")
    profile = ProfileHome(home).load_profile()
    assert profile.agency_id == agency
    assert profile.identity_id == identity_id_for(agency)
    partner = profile.partners[SAMPLES[agency]]
    assert partner.identity_id == identity_id_for(SAMPLES[agency])
    assert partner.taxii is not None and partner.taxii.username == agency


def test_sample_agencies_are_wired_to_each_other() -> None:
    profiles = {}
    for agency in SAMPLES:
        data = tomllib.loads((EXAMPLES / "two-agencies" / f"{agency}.config.toml").read_text())
        profiles[agency] = data["partners"][SAMPLES[agency]]["taxii"]
    fr, india = profiles["cert-fr"], profiles["cert-in"]
    assert fr["api_root"] == india["api_root"]  # one exchange server
    # What one writes the other reads, with the ids `cti-exchange serve` provisions.
    assert fr["write_collection"] == india["read_collection"] == collection_id_for("cert-fr", "cert-in")
    assert india["write_collection"] == fr["read_collection"] == collection_id_for("cert-in", "cert-fr")


# -- crontab ------------------------------------------------------------------------------

_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")


def test_crontab_line_runs_sync_every_five_minutes_unattended() -> None:
    lines = [
        line
        for line in (EXAMPLES / "crontab").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(lines) == 1, lines
    fields = lines[0].split(None, 5)
    schedule, command = fields[:5], fields[5]
    assert all(_CRON_FIELD.match(field) for field in schedule), schedule
    assert schedule == ["*/5", "*", "*", "*", "*"]

    words = shlex.split(command)
    assignments = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_][A-Z0-9_]*=", w))
    assert {"CTI_EXCHANGE_HOME", "CTI_EXCHANGE_PASSPHRASE_FILE"} <= set(assignments)
    program = words[len(assignments)]
    assert Path(program).name == "cti-exchange" and Path(program).is_absolute()  # cron's PATH is short
    assert words[len(assignments) + 1] == "sync"
    # cti-exchange writes its own log; only the summary line on stdout is dropped.
    assert words[len(assignments) + 2 :] == [">/dev/null"]
    assert run_cli("sync", "--help").exit_code == 0


# -- systemd ------------------------------------------------------------------------------


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd unit syntax: [Section], Key=value, keys may repeat, # and ; comments."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}: not a unit line: {raw!r}"
        key, value = (part.strip() for part in line.split("=", 1))
        current.setdefault(key, []).append(value)
    return sections


SYSTEMD = EXAMPLES / "systemd"


def test_systemd_service_is_a_hardened_oneshot_sync() -> None:
    unit = _unit(SYSTEMD / "cti-exchange-sync.service")
    assert set(unit) == {"Unit", "Service"}
    service = unit["Service"]
    assert service["Type"] == ["oneshot"]
    assert service["ExecStart"][0].endswith("/cti-exchange sync")
    assert service["User"][0] not in ("", "root")
    environment = dict(e.split("=", 1) for e in service["Environment"])
    home = environment["CTI_EXCHANGE_HOME"]
    assert environment["CTI_EXCHANGE_PASSPHRASE_FILE"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
    }.items():
        assert service[key] == [value], key
    assert service["ReadWritePaths"] == [home]  # the profile home is all it may write
    assert service["CapabilityBoundingSet"] == [""]
    assert "5" in service["SuccessExitStatus"][0].split()  # lock held: not a failure
    assert "143" in service["SuccessExitStatus"][0].split()  # systemctl stop: unwound, resumes
    assert "network-online.target" in unit["Unit"]["After"][0]


def test_systemd_timer_starts_the_service_every_five_minutes() -> None:
    unit = _unit(SYSTEMD / "cti-exchange-sync.timer")
    assert unit["Timer"]["OnUnitActiveSec"] == ["5min"]
    assert unit["Timer"]["Unit"] == ["cti-exchange-sync.service"]
    assert unit["Install"]["WantedBy"] == ["timers.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    # verify insists that ExecStart's program exists: point it at the installed one.
    installed = shutil.which("cti-exchange") or str(Path(REPO / ".venv" / "bin" / "cti-exchange"))
    assert Path(installed).exists()
    service = (SYSTEMD / "cti-exchange-sync.service").read_text()
    (tmp_path / "cti-exchange-sync.service").write_text(
        service.replace("/opt/cti-exchange/bin/cti-exchange", installed)
    )
    shutil.copy(SYSTEMD / "cti-exchange-sync.timer", tmp_path)
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            "cti-exchange-sync.timer",
            "cti-exchange-sync.service",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Unknown keys and bad values are only warnings for systemd: refuse them here.
    assert not re.search(r"Unknown|[Ii]nvalid|ignoring|Failed", result.stderr), result.stderr
