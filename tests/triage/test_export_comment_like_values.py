"""Values that begin with `#` in exports whose head is `#` comment lines: a plain list leaves
them out (counted, with the reason, in the head: every list reader, ours included, would skip
them as comments), a CSV export quotes their row so that no reader takes it for a comment."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put


def _pattern(pattern: str) -> dict[str, Any]:
    obj = indicator("x.example", tlp="green")
    obj["pattern"], obj["name"] = pattern, "n"
    return obj


COMMENT_LIKE = [
    _pattern("[mutex:name = '#evilmutex']"),
    _pattern("[email-message:subject = '# TLP:CLEAR invoice overdue']"),
    _pattern("[file:name = '#payload.exe']"),
]


def _store(agency: Agency) -> None:
    objects = [*COMMENT_LIKE, indicator("ok.example", tlp="green")]
    put(agency, [identity(FR_IDENTITY, "CERT-FR"), *objects])
    assert agency.run("triage", "accept", *(o["id"] for o in objects)).exit_code == 0


def test_plain_never_writes_a_value_that_reads_as_a_comment(cert_in: Agency, tmp_path: Path) -> None:
    _store(cert_in)
    result = cert_in.run("export", "--format", "plain", "-o", str(tmp_path / "x.txt"), "--json")
    assert result.exit_code == 0, result.stderr
    out = cert_in.run("export", "--format", "plain")
    body = [line for line in out.stdout.splitlines() if not line.startswith("# ")]
    assert body == ["ok.example"]
    head = [line for line in out.stdout.splitlines() if line.startswith("# not written")]
    assert {": ".join(line.split(": ")[:2]) for line in head} == {
        "# not written: 1 mutex",
        "# not written: 1 file-name",
        "# not written: 1 email-subject",
    }
    assert all("beginning with '#'" in line for line in head)
    assert result.json()["files"][0]["skipped"] == {"email-subject": 1, "file-name": 1, "mutex": 1}


def test_a_plain_export_read_back_by_our_text_reader_agrees(cert_in: Agency, tmp_path: Path) -> None:
    _store(cert_in)
    exported = tmp_path / "export.txt"
    assert cert_in.run("export", "--format", "plain", "-o", str(exported)).exit_code == 0
    converted = cert_in.run("convert", str(exported), "-o", str(tmp_path / "b.json"), "--json")
    assert converted.exit_code == 0, converted.stderr
    assert converted.json()["accepted_by_type"] == {"domain-name": 1}


def test_csv_quotes_a_row_whose_value_begins_with_a_hash(cert_in: Agency, tmp_path: Path) -> None:
    _store(cert_in)
    exported = tmp_path / "export.csv"
    assert cert_in.run("export", "--format", "csv", "-o", str(exported)).exit_code == 0
    text = exported.read_text()
    lines = text.splitlines()
    # A reader that drops every line beginning with `#` (many SIEM importers) keeps the rows.
    kept = [line for line in lines if not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(kept))))
    assert {r["value"] for r in rows} == {
        "ok.example",
        "#evilmutex",
        "# TLP:CLEAR invoice overdue",
        "#payload.exe",
    }
    assert '"#evilmutex","mutex","green"' in text
    assert any(line.startswith("ok.example,domain-name,green,") for line in lines)
    # Our own reader takes the export back with the same values.
    converted = cert_in.run("convert", str(exported), "-o", str(tmp_path / "b.json"), "--json")
    assert converted.exit_code == 0, converted.stderr
    assert converted.json()["accepted_by_type"] == {
        "domain-name": 1,
        "email-subject": 1,
        "file-name": 1,
        "mutex": 1,
    }
