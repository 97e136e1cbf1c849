"""An input with nothing to share says what reading found, as `validate` does: `push --json`
prints the report at exit 6, and `convert` refuses to put a report and a bundle on stdout."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Agency

MARKINGS = Path(__file__).resolve().parent.parent / "data" / "corpus" / "stix21-markings-extensions"


def test_push_of_a_file_holding_only_a_marking_says_so(partnered: tuple[Agency, Agency]) -> None:
    cert_fr, _ = partnered
    text = cert_fr.run("push", str(MARKINGS / "tlp2-amber.json"), "--to", "cert-in", "--dry-run")
    assert text.exit_code == 6
    assert "holds no indicator or other object to share" in text.stderr
    data = cert_fr.run("push", str(MARKINGS / "tlp2-amber.json"), "--to", "cert-in", "--dry-run", "--json")
    assert data.exit_code == 6
    report = json.loads(data.stdout)
    assert report["nothing_usable"] is True and report["rejected_rows"] == 0


def test_push_of_rejected_rows_lists_them_in_json_at_exit_6(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    cert_fr, _ = partnered
    bad = tmp_path / "bad.csv"
    bad.write_text("value,type\nnot an address,ipv4-addr\n10.0.0.1,ipv4-addr\n")
    text = cert_fr.run("push", str(bad), "--to", "cert-in", "--dry-run", "--strict")
    assert text.exit_code == 6 and text.stderr.count("\n") == 1  # one line, naming `validate`
    assert "cti-exchange validate" in text.stderr
    data = cert_fr.run("push", str(bad), "--to", "cert-in", "--dry-run", "--strict", "--json")
    assert data.exit_code == 6 and json.loads(data.stdout)["rejected_rows"] == 2


def test_convert_refuses_json_and_a_bundle_both_on_stdout(cert_fr: Agency) -> None:
    both = cert_fr.run("convert", str(MARKINGS / "incident-impact-paid_ransom.json"), "-o", "-", "--json")
    assert both.exit_code == 2 and "--json and -o - both want stdout" in both.stderr
    assert both.stdout == ""


def test_validate_and_push_agree_on_a_file_of_markings_alone(partnered: tuple[Agency, Agency]) -> None:
    """validate said "all accepted: 1 objects" (exit 0) for a lone IEP marking-definition,
    which push then refused as nothing to share (exit 6); and its exit 6 for a TLP marking
    pointed at rejections and warnings that were not there."""
    cert_fr, _ = partnered
    for name in ("iep-data-marking-example.json", "statement-marking-bsd3.json", "tlp2-amber.json"):
        checked = cert_fr.run("validate", str(MARKINGS / name))
        pushed = cert_fr.run("push", str(MARKINGS / name), "--to", "cert-in", "--dry-run")
        assert (checked.exit_code, pushed.exit_code) == (6, 6), name
        assert "holds no indicator or other object to share" in checked.stderr, name


def test_an_empty_or_comment_only_list_says_so(cert_fr: Agency, tmp_path: Path) -> None:
    """Found on a walkthrough: an empty file was told that "marking definitions and identities
    travel with the objects that use them", which is about STIX input."""
    for name, text in (("empty.txt", ""), ("comments.txt", "# nothing here yet\n\n")):
        source = tmp_path / name
        source.write_text(text)
        result = cert_fr.run("validate", str(source))
        assert result.exit_code == 6
        assert "it is empty, or only blank lines, comments or a header" in result.stderr
        assert "marking definitions" not in result.stderr
