"""Tables on a terminal never break a word (found by a fresh-eyes review): rich folded the
signing-key fingerprint the README has the analyst read to the partner by phone over 2 lines
at 120 columns and 5 at 80, and `triage list` showed `185.178.20` / `9.193`. A column is now
as wide as its longest word at least; where the words do not fit side by side, each record
is a block of `name: value` fields. Piped output (tab-separated) is unchanged."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from cti_exchange.cli.output import Output
from tests.conftest import Agency
from tests.triage.conftest import on_a_terminal

THUMBPRINT = "nzstURRymcQ5LK2o1u6JMTu7I9OyWzdlG1cuG8ev7LA"
COLUMNS = ["id", "type", "value / name", "TLP", "signed by", "received", "description"]
ROWS = [
    [
        "indicator--f701b034",
        "ipv4-addr",
        "185.178.209.193",
        "TLP:AMBER",
        "cert-fr-sig-20261206-ftnrGnSV cert-de-sig-20261206-WOWZKisa",
        "2026-12-06 18:01",
        "Cobalt Strike C2 communication seen from several national networks over the weekend",
    ],
    [
        "indicator--d6387e97",
        "url",
        "http://333media.co.uk/.tmb/inf.inf",
        "TLP:GREEN",
        "cert-fr-sig-20261206-ftnrGnSV",
        "2026-12-06 18:03",
        "",
    ],
    ["key", "sig", THUMBPRINT, "", "", "", "sha512 " + "f20ed03b" * 16],
]


class _Terminal(Output):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.screen = io.StringIO()
        self.console = Console(
            file=self.screen, width=width, color_system=None, highlight=False, soft_wrap=True
        )

    @property
    def is_terminal(self) -> bool:
        return True


def _screen(width: int, columns: list[str], rows: list[list[str]]) -> str:
    out = _Terminal(width)
    out.table(columns, rows, title="Indicators")
    return out.screen.getvalue()


@pytest.mark.parametrize("width", [60, 80, 120, 160, 400])
def test_no_word_is_broken_on_a_terminal(width: int) -> None:
    screen = _screen(width, COLUMNS, ROWS)
    lines = screen.splitlines()
    for row in ROWS:
        for word in " ".join(row).split():
            assert any(word in line for line in lines), (word, screen)
    # The description is text: wrapped at its spaces, every word still there.
    assert "over the weekend" in " ".join(" ".join(screen.split()).split("│"))


def test_a_table_that_fits_stays_a_table() -> None:
    narrow = [row[:3] for row in ROWS]
    screen = _screen(120, COLUMNS[:3], narrow)
    assert "┃ id" in screen and THUMBPRINT in screen
    # Text too long for its share wraps at spaces inside the table, words whole.
    text = [["1", "a-rather-long-identifier-that-stays-whole", "word " * 40]]
    screen = _screen(80, ["n", "id", "note"], text)
    assert "┃ n" in screen and "a-rather-long-identifier-that-stays-whole" in screen
    assert all(len(line) <= 80 for line in screen.splitlines())
    assert not re.search(r"\bwor\b|\bor\b|\bw\b", screen)


def test_piped_output_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    Output().table(COLUMNS, [[*ROWS[0][:-1], "tab\there"]], title="Indicators")
    assert (
        capsys.readouterr().out == "\t".join(COLUMNS) + "\n" + "\t".join([*ROWS[0][:-1], "tab here"]) + "\n"
    )


def _keys_show_on_a_terminal(agency: Agency, columns: int) -> str:
    output = on_a_terminal(agency, "keys", "show", columns=columns)
    return re.sub(r"\x1b\[[0-9;]*m", "", output)  # NO_COLOR leaves bold and italic


@pytest.mark.parametrize("columns", [80, 120])
def test_keys_show_keeps_each_fingerprint_and_key_id_on_one_line(cert_in: Agency, columns: int) -> None:
    keys = cert_in.run("keys", "show", "--json").json()["keys"]
    screen = _keys_show_on_a_terminal(cert_in, columns)
    lines = screen.splitlines()
    for key in keys:
        assert any(key["thumbprint"] in line for line in lines), screen
        assert any(key["kid"] in line for line in lines), screen
    assert all(len(line.rstrip("\r")) <= columns for line in lines), screen


def test_optional_columns_go_before_the_table_does(capsys: pytest.CaptureFixture[str]) -> None:
    """`triage list` at 120 columns was a block per record: its columns are now left out, least
    needed first (`optional`), with a note naming them, and it stays a table."""
    out = _Terminal(100)
    out.table(COLUMNS, ROWS[:2], optional=("description", "received", "signed by"))
    screen = out.screen.getvalue()
    assert "┃ id" in screen and "┃ TLP" in screen
    assert "signed by" not in screen and "description" not in screen
    for word in ("indicator--f701b034", "185.178.209.193", "http://333media.co.uk/.tmb/inf.inf"):
        assert word in screen
    assert "not shown at this terminal's width: description, received, signed by" in capsys.readouterr().err
    # Too narrow even without them: one block per record, every field there.
    out = _Terminal(40)
    out.table(COLUMNS, ROWS[:2], optional=("description",))
    assert "signed by: cert-fr-sig-20261206-ftnrGnSV" in out.screen.getvalue()


def test_triage_list_stays_a_table_at_120_columns(partnered: tuple[Agency, Agency]) -> None:
    from tests.triage.conftest import indicator, put

    _, india = partnered
    put(
        india, [indicator("evil.example"), indicator("http://333media.co.uk/.tmb/inf.inf")], partner="cert-fr"
    )
    screen = re.sub(r"\x1b\[[0-9;]*m", "", on_a_terminal(india, "triage", "list", columns=120))
    assert "┃ id" in screen and "┃ value / name" in screen and "┃ status" in screen
    assert "http://333media.co.uk/.tmb/inf.inf" in screen
    assert "not shown at this terminal's width:" in screen


def test_short_cells_stay_on_one_line_and_empty_columns_go_first(capsys: pytest.CaptureFixture[str]) -> None:
    """At 200 columns every `triage list` row took two lines (`2026-12-06` / `19:01`); `sent`
    at 80 columns left out its useful columns and kept two empty ones."""
    columns = ["envelope", "partner", "objects", "created", "receipt", "note"]
    rows = [["df14ac47-5ae2-4e32-907c-5039f5de059d", "cert-in", "19", "2026-12-06 18:18", "", ""]] * 2
    out = _Terminal(80)
    out.table(columns, rows, optional=("created", "objects"))
    screen = out.screen.getvalue()
    assert "2026-12-06 18:18" in screen and "receipt" not in screen and "note" not in screen
    assert "┃ created" in screen and capsys.readouterr().err == ""


def test_a_field_and_value_table_too_wide_is_a_line_per_field() -> None:
    """`triage show`'s object at 80 columns was blocks labelled `field: id   value: ...`."""
    out = _Terminal(60)
    out.table(["field", "value"], [["id", "indicator--c13b7ec3"], ["value", "f20ed03b" * 8]], title="Object")
    assert out.screen.getvalue().splitlines()[1:] == ["id: indicator--c13b7ec3", "value: " + "f20ed03b" * 8]


def test_an_optional_column_that_is_empty_and_short_rows_do_not_break_the_table() -> None:
    """Review of this stop's table code: an optional column already left out as empty was
    removed a second time (ValueError), and a row shorter than the header (IndexError)."""
    columns = ["envelope", "partner", "created", "posted", "receipt", "note"]
    rows = [
        ["df14ac47-5ae2-4e32-907c-5039f5de059d", "cert-in", "2026-12-06 18:18", "", "", "a note " * 6],
        ["89b057fd-ad12-419e-9d6a-a8549c83c6cd", "cert-in"],
    ]
    for width in (40, 60, 80):
        out = _Terminal(width)
        out.table(columns, rows, optional=("posted", "created", "note"))
        screen = out.screen.getvalue()
        assert (
            "df14ac47-5ae2-4e32-907c-5039f5de059d" in screen
            and "89b057fd-ad12-419e-9d6a-a8549c83c6cd" in screen
        )
    blank = _Terminal(80)
    blank.table(["a", "b", "c"], [["", "", ""]], optional=("a",))  # nothing at all to show
