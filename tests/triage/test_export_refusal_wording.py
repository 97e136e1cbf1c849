"""A partner's value that ingest would reject (a security publisher's report site, a system
file name) is left out of an export with the reason alone, not with ingest's advice on how to
share it ("rejected; cite it in a CSV reference column ..."), which made no sense in a
blocklist's head (stop 27, after the ingest change of the corpus walkthrough)."""

from __future__ import annotations

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put


def test_export_head_gives_the_reason_without_ingest_advice(cert_in: Agency) -> None:
    site = indicator("www.welivesecurity.com", tlp="green")
    system = indicator("regsvr32.exe", "file-name", tlp="green")
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), site, system])
    assert cert_in.run("triage", "accept", site["id"], system["id"]).exit_code == 0

    result = cert_in.run("export", "--format", "plain")

    assert result.exit_code == 0, result.stderr
    head = [line for line in result.stdout.splitlines() if line.startswith("#   ")]
    assert len(head) == 2
    assert "security publisher's or reference site" in head[0] and "matches on every host" in head[1]
    for line in head:
        assert "rejected" not in line and "stix-pattern" not in line and "CSV" not in line, line
