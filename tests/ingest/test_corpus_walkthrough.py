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
