"""IDS rules no engine can load are not written: Suricata reads a rules file in 8,192-byte
lines (DETECT_MAX_RULE_SIZE), Snort 2.9 stops at 32,768-byte lines, and a 16 KiB URL full of
bytes written as hex (`|7C|`) gave rules of up to 48 KB. Such a value is counted among those
not written, with the reason in the file's head and in --json; the rest of the file is
written as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put

LONG_URL = "http://evil.example/gate?q=" + "|" * 3000  # a 9 KB rule: `|` is written `7C `
SHORT_URL = "http://evil.example/gate?q=1"


@pytest.mark.parametrize("engine", ["suricata", "snort"])
def test_a_rule_longer_than_the_engines_load_is_not_written(
    cert_in: Agency, tmp_path: Path, engine: str
) -> None:
    objects = [indicator(LONG_URL, "url", tlp="red"), indicator(SHORT_URL, "url", tlp="green")]
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *objects])
    assert cert_in.run("triage", "accept", *(o["id"] for o in objects)).exit_code == 0
    target = tmp_path / f"cti.{engine}.rules"

    result = cert_in.run("export", "--format", engine, "-o", str(target), "--i-understand-tlp", "--json")

    assert result.exit_code == 0, result.stderr
    (summary,) = result.json()["files"]
    assert summary["values"] == 1
    assert summary["skipped"] == {"url": 1}
    lines = target.read_text(encoding="utf-8").splitlines()
    rules = [line for line in lines if line.startswith("alert")]
    assert len(rules) == 1 and "/gate?q=1" in rules[0]
    assert all(len(line.encode("utf-8")) + 1 <= 8_000 for line in lines)
    head = "\n".join(line for line in lines if line.startswith("#"))
    assert "not written: 1 url: its rule would be longer than 8,000 bytes" in head
    assert 'url "http://evil.example/gate?q=|||' in head
    # The head quotes the TLP:RED value: the file is as strict as what it holds.
    assert lines[0].startswith("# TLP:RED")


def test_a_rule_just_under_the_limit_is_written(cert_in: Agency) -> None:
    url = "http://evil.example/" + "a" * 7000
    obj = indicator(url, "url", tlp="green")
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), obj])
    assert cert_in.run("triage", "accept", obj["id"]).exit_code == 0

    result = cert_in.run("export", "--format", "suricata")

    assert result.exit_code == 0, result.stderr
    rules = [line for line in result.stdout.splitlines() if line.startswith("alert")]
    assert len(rules) == 1 and 7_000 < len(rules[0]) < 8_000
    assert "not written" not in result.stdout
