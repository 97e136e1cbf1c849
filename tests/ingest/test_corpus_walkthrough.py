"""Findings of the corpus walkthrough (every file of /work/shared/corpus through `validate` and
`convert`), each checked through the CLI on the corpus file or the few lines of it that show it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Agency

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
MARKINGS = CORPUS / "stix21-markings-extensions"


def test_convert_writes_nothing_when_nothing_is_usable(cert_fr: Agency, tmp_path: Path) -> None:
    """F13: a lone IEP or statement marking-definition is nothing to share (exit 6), yet
    `convert` wrote it as a bundle and said "Wrote 1 objects"; --help and INGEST.md say exit 6
    writes nothing, and a script tests whether the file exists."""
    for name in ("iep-data-marking-example.json", "statement-marking-bsd3.json"):
        output = tmp_path / f"{name}.bundle.json"
        result = cert_fr.run("convert", str(MARKINGS / name), "-o", str(output))
        assert result.exit_code == 6, name
        assert not output.exists(), name
        assert "Wrote" not in result.stdout, name
        report = cert_fr.run("convert", str(MARKINGS / name), "-o", str(output), "--json")
        assert report.exit_code == 6 and report.json()["bytes"] is None, name
        assert not output.exists(), name


ESET_EVASIVE_PANDA = CORPUS / "iocs" / "eset-evasive_panda-README.adoc"
ESET_STANTINKO = CORPUS / "iocs" / "eset-stantinko-README.adoc"


def test_eset_tables_of_indicators_are_read_and_the_victims_table_is_not(cert_fr: Agency) -> None:
    """F1, F2: every AsciiDoc table was skipped, so evasive_panda's 32 file SHA-1s, 3 C&C and
    compromised-site domains and 3 addresses, and stantinko's C&C table (41 domains, a URL,
    two ip:ports), were lost while the run said "all accepted". The victims' networks
    ("Targetted Networks", 74 /24s) must stay out."""
    panda = cert_fr.run("validate", "--json", str(ESET_EVASIVE_PANDA))
    report = panda.json()
    assert report["accepted_by_type"]["sha1"] == 32
    assert report["accepted_by_type"]["domain-name"] == 3
    assert report["accepted_by_type"]["ipv4-addr"] == 3
    assert "ipv4-cidr" not in report["accepted_by_type"]  # no victim /24
    victims = [w for w in report["warnings"] if w["code"] == "table-rows" and "victims" in w["reason"]]
    assert len(victims) == 1 and victims[0]["skipped_lines"] == 74 and "79-152" in victims[0]["reason"]

    stantinko = cert_fr.run("validate", "--json", str(ESET_STANTINKO))
    by_type = stantinko.json()["accepted_by_type"]
    assert by_type["domain-name"] == 41
    assert by_type["ipv4-port"] == 2  # 185.28.22[.]22:81, 93.188.161[.]17:8000
    rejected = {r["line"]: r for r in stantinko.json()["rejections"]}
    assert 499 in rejected  # 195.226.218.[.]234:80, malformed in the source
    bundle = cert_fr.run("convert", str(ESET_STANTINKO), "-o", "-").stdout
    assert "[url:value = 'http://raw.githubusercontent.com/brenev/collection/master/index']" in bundle
    assert "[domain-name:value = 'clients1.ultimate-discounter.com']" in bundle
    assert "Browser Extension" not in bundle  # the family column is no description


def test_a_markdown_table_is_read_by_its_header_and_skipped_rows_are_counted(
    cert_fr: Agency, tmp_path: Path
) -> None:
    """F1, F14: what is still skipped shows in the summary line and in --json, so that "all
    accepted" hides nothing."""
    text = tmp_path / "report.md"
    text.write_text(
        "# Campaign X\n\n## Indicators\n\n"
        "| SHA-256 | File name | Details |\n|---|---|---|\n"
        f"| `{'ab' * 32}` | loader.dll | First stage. |\n\n"
        "## Infrastructure\n\n"
        "| Name | Role |\n| --- | --- |\n| c2.evil[.]example | C&C |\n| mail.partner.example | relay |\n\n"
        "## Victims\n\n"
        "| IP address | Sector |\n|---|---|\n| 198.51.100.7 | energy |\n"
    )
    result = cert_fr.run("validate", "--json", str(text))
    report = result.json()
    assert report["verdict"] == "all accepted"
    assert report["accepted_by_type"] == {"sha256": 1, "domain-name": 1}
    assert report["skipped_lines"] == 2 and report["skipped_lines_by_code"] == {"table-rows": 2}
    reasons = [w["reason"] for w in report["warnings"] if w["code"] == "table-rows"]
    assert any("line 14" in r and "nothing in the row is defanged" in r for r in reasons), reasons
    plain = cert_fr.run("validate", str(text))
    assert "all accepted: 2 objects; 0 rejected;" in plain.stdout
    assert "not read: 2 table rows (see the warnings)" in plain.stdout
    bundle = cert_fr.run("convert", str(text), "-o", "-").stdout
    assert "First stage.; File name: loader.dll" in bundle
    assert "198.51.100.7" not in bundle and "mail.partner.example" not in bundle
