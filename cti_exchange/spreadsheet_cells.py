"""CSV cells a spreadsheet would take for a formula (`=cmd|' /C calc'!A0`, CSV injection): the
CSV export writes them with a leading `'`, which keeps them text (exporters/csv_export.py), and
the CSV reader takes that `'` off again (readers/csv_reader.py): it is not part of the value."""

from __future__ import annotations

import unicodedata

# Characters a spreadsheet starts a formula with (or, for tab and CR, strips before one);
# full-width forms count, as spreadsheets fold them (NFKC).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_guarded(cell: str) -> str:
    """The cell with a leading `'` if a spreadsheet could take it for a formula. (Called for
    every cell of a CSV export: the test is written out here, not in a helper.)"""
    if unicodedata.normalize("NFKC", cell[:1]).startswith(FORMULA_START):
        return "'" + cell
    return cell


def without_formula_guard(cell: str) -> str:
    """`'+++ URGENT +++`, as `formula_guarded` wrote it, back to `+++ URGENT +++`; other cells
    unchanged."""
    if cell[:1] == "'" and formula_guarded(cell[1:]) != cell[1:]:
        return cell[1:]
    return cell
