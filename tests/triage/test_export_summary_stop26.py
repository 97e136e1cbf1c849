"""The export's summary (stop 26): IDS rules left out for being too long were counted as "not
expressible in suricata", as if the format had no form for URLs; the summary says "left out
(rule too long)" for them, and --json gives the reason of every value not written
(`skipped_reasons`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_exchange.exporters.ids_rules import RULE_TOO_LONG
from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put

LONG_URL = "http://evil.example/gate?q=" + "|" * 3000  # a 9 KB rule
SHORT_URL = "http://evil.example/gate?q=1"
HASH = "e" * 64


@pytest.mark.parametrize("engine", ["suricata", "snort"])
def test_too_long_rules_are_not_said_inexpressible(cert_in: Agency, tmp_path: Path, engine: str) -> None:
    objects = [
        indicator(LONG_URL, "url", tlp="green"),
        indicator(SHORT_URL, "url", tlp="green"),
        indicator(HASH, "sha256", tlp="green"),
    ]
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *objects])
    assert cert_in.run("triage", "accept", *(o["id"] for o in objects)).exit_code == 0
    target = tmp_path / "cti.rules"

    said = cert_in.run("export", "--format", engine, "-o", str(target))
    assert said.exit_code == 0, said.stderr
    assert f"1 not expressible in {engine}" in said.stdout  # the hash (the summary: stdout with -o)
    assert "1 left out (rule too long" in said.stdout

    summary = cert_in.run("export", "--format", engine, "-o", str(target), "--json").json()["files"][0]
    assert summary["skipped"] == {"url": 1, "sha256": 1}
    reasons = summary["skipped_reasons"]
    assert reasons["url"] == {RULE_TOO_LONG: 1}
    ((why, count),) = reasons["sha256"].items()
    assert count == 1 and "hash" in why
