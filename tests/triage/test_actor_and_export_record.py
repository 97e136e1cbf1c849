"""Who acted and on which file, as the audit trail keeps them (found on a walkthrough): an
analyst name holding an escape sequence was stored raw and echoed to the terminal, and an
export's record named its file as typed (`ex.plain`), with no directory."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import Agency
from tests.triage.conftest import indicator, put, store_path


@pytest.mark.parametrize("name", ["bob\x1b[31m", "bob\u202eevil"], ids=["escape", "bidi-override"])
def test_an_analyst_name_with_control_characters_is_refused(cert_in: Agency, name: str) -> None:
    put(cert_in, [indicator("named.example")])
    refused = cert_in.run("triage", "accept", "named.example", env={"CTI_EXCHANGE_ANALYST": name})
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "CTI_EXCHANGE_ANALYST holds the control or invisible character" in refused.stderr
    assert "\x1b" not in refused.stderr and "\u202e" not in refused.stderr
    accepted = cert_in.run("triage", "accept", "named.example", env={"CTI_EXCHANGE_ANALYST": "Bob  Martin"})
    assert accepted.exit_code == 0 and "by Bob Martin" in accepted.stdout + accepted.stderr


def test_an_export_record_names_its_file_by_absolute_path(
    cert_in: Agency, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(cert_in, [indicator("recorded.example", tlp="green")])
    assert cert_in.run("triage", "accept", "recorded.example").exit_code == 0
    monkeypatch.chdir(tmp_path)
    exported = cert_in.run("export", "--format", "plain", "-o", "ex.plain")
    assert exported.exit_code == 0, exported.stderr
    with sqlite3.connect(store_path(cert_in)) as conn:
        (details,) = conn.execute(
            "SELECT details FROM audit_log WHERE action = 'export' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert json.loads(details)["files"][0]["path"] == str(tmp_path / "ex.plain")
