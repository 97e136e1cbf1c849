"""The TLP line at the head of a CSV export is one cell to a CSV reader or a spreadsheet that
does not skip `#` lines: before, its comma (`limited disclosure, recipients ...`) split it,
and `csv.DictReader` read two column names out of it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put


def test_the_tlp_line_is_one_cell_and_still_marks_the_file(cert_in: Agency, tmp_path: Path) -> None:
    objects = [indicator("a.example", tlp="green"), indicator("b.example", tlp="amber")]
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *objects])
    assert cert_in.run("triage", "accept", "a.example", "b.example").exit_code == 0

    result = cert_in.run("export", "--format", "csv")

    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.startswith("# TLP:AMBER \u2014 limited disclosure\\x2c recipients can only spread")
    for delimiter in (",", ";"):
        first = next(csv.reader(io.StringIO(text), delimiter=delimiter))
        assert len(first) == 1 and first[0].startswith("# TLP:AMBER"), (delimiter, first)
    assert csv.DictReader(io.StringIO(text)).fieldnames == [text.splitlines()[0]]
    # Our own reader still takes the file's TLP from it (and from nothing else of the head).
    exported = tmp_path / "export.csv"
    exported.write_text(text, encoding="utf-8")
    converted = cert_in.run("convert", str(exported), "-o", str(tmp_path / "bundle.json"), "--json")
    assert converted.exit_code == 0, converted.stdout + converted.stderr
    assert sum(converted.json()["accepted_by_type"].values()) == 2
