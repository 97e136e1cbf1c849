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


ZEBROCY = CORPUS / "misp" / "eset-sednit-2018-11-20_Zebrocy.misp.json"


def test_a_publishers_own_report_links_are_rejected_not_shared(cert_fr: Agency, tmp_path: Path) -> None:
    """F3: ESET's blog and PDF links were shared as malicious-activity URL indicators with a
    benign-domain warning (in evasive_panda, the only objects). A URL on abused hosting named
    in the same list (raw.githubusercontent.com) stays an indicator."""
    lines = ESET_STANTINKO.read_text(encoding="utf-8").splitlines()
    text = tmp_path / "stantinko.txt"
    # The white paper's intro (lines 111-116) and one C&C URL of the page (line 514's table).
    text.write_text(
        "\n".join(lines[110:116]) + "\nhxxp://raw.githubusercontent.com/brenev/collection/master/index\n"
    )
    report = cert_fr.run("validate", "--json", str(text)).json()
    assert report["accepted_by_type"] == {"url": 1}
    refused = [r for r in report["rejections"] if r["code"] == "reference-site"]
    assert [r["line"] for r in refused] == [3, 6]
    assert "welivesecurity.com is a security publisher's or reference site" in refused[0]["reason"]
    assert "cite it in a CSV reference column" in refused[0]["reason"]

    # MISP: a `url` in category "External analysis" is the event's reference, as `link` is.
    bundle = cert_fr.run("convert", str(ZEBROCY), "--include-non-ids", "-o", "-").stdout
    blog = "https://www.welivesecurity.com/2018/11/20/sednit-whats-going-zebrocy/"
    assert f"[url:value = '{blog}']" not in bundle
    assert f'"url":"{blog}"' in bundle.replace(" ", "")


def test_a_system_file_name_is_rejected_not_shared(cert_fr: Agency, tmp_path: Path) -> None:
    """F4: `regsvr32.exe` (TA551 list, line 94: how the DLL is run) was shared as a file-name
    indicator with a warning: it matches every Windows host."""
    text = tmp_path / "ta551.txt"
    text.write_text("DLL RUN METHOD:\n\n- regsvr32.exe [filename]\n- loader_x64.dll\n")
    result = cert_fr.run("validate", "--json", str(text))
    report = result.json()
    assert result.exit_code == 1 and report["accepted_by_type"] == {"file-name": 1}
    [refused] = report["rejections"]
    assert (refused["line"], refused["code"]) == (3, "benign-file-name")
    assert "share the file's hash" in refused["reason"] and "stix-pattern" in refused["reason"]


POISONIVY = CORPUS / "stix21" / "oasis-poisonivy.json"


def test_strict_rejects_a_pattern_value_that_can_never_match(cert_fr: Agency) -> None:
    """F10: INGEST.md says suspect-pattern-value is a warning, a rejection with --strict; under
    --strict PoisonIvy's `[domain-name:value = 'domain autuo.xicp.net' OR ...]` still passed."""
    default = cert_fr.run("validate", "--json", str(POISONIVY)).json()
    assert default["warnings_by_code"]["suspect-pattern-value"] == 1
    assert "suspect-pattern-value" not in default["rejections_by_code"]
    strict = cert_fr.run("validate", "--strict", "--json", str(POISONIVY))
    assert strict.exit_code == 1
    report = strict.json()
    [refused] = [r for r in report["rejections"] if r["code"] == "suspect-pattern-value"]
    assert "'domain autuo.xicp.net'" in refused["reason"]
    assert report["objects"] == default["objects"] - 2  # the indicator and its relationship
