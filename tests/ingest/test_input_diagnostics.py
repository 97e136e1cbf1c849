"""What `validate` and `push` say about a file that cannot be read as a whole.

- A JSON file that stops before its document does (an interrupted copy or download) is called
  truncated, with where it ends and what it ends inside, and how to fix it; a JSON file with
  a syntax error before its end is malformed, at a line and column, with a complete reason.
- A CSV file whose header names no indicator column (`vaule,type`) is detected as a text list;
  when nothing in it was usable, the rejection is the header's, as `--format csv` gives it,
  not one "not a recognised indicator" per line.
- `push`, which prints one line when nothing is usable, gives the reason a whole file was
  refused in that line, instead of only pointing at `validate`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti_exchange.errors import InputError
from cti_exchange.readers.json_input import parse_json
from tests.conftest import Agency, CliResult

from .conftest import CORPUS

Cli = Callable[..., CliResult]
TRUNCATED_HINT = "the file was cut (copy or download it again)"


def _write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def _validate(cli: Cli, tmp_path: Path, *args: str) -> CliResult:
    return cli("validate", *args, home=tmp_path / "no-profile")


def _rejections(result: CliResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("rejected: ")]


# --- F4: truncated and malformed JSON --------------------------------------------------------


def test_a_cut_stix_file_is_called_truncated_with_where_and_how_to_fix(cli: Cli, tmp_path: Path) -> None:
    """The user walkthrough: `head -c 700` of a STIX bundle. Before, the message was
    "malformed JSON at line 15 column 9: Unterminated string starting at"."""
    cut = _write(tmp_path, "t.json", (CORPUS / "stix21" / "oasis-poisonivy.json").read_bytes()[:700])
    result = _validate(cli, tmp_path, cut)
    assert result.exit_code == 6
    assert _rejections(result) == [
        f"rejected: {cut}: truncated JSON: the file ends early at line 15: an unterminated "
        f"string that starts at line 15 column 9; {TRUNCATED_HINT}"
    ]
    assert "malformed" not in result.stderr and "Traceback" not in result.stderr
    # The reason is listed once: the closing error line points at it.
    assert result.stderr.count("truncated JSON") == 1
    assert result.stderr.splitlines()[-1] == (
        "cti-exchange: error: nothing usable in the input (1 rejected); see the rejections and warnings above"
    )


@pytest.mark.parametrize(
    ("content", "inside"),
    [
        (
            '{"type": "bundle",\n "objects": [\n  {"type": "indicator", "name": "x"},\n',
            "an unclosed array ('[') that starts at line 2 column 13",
        ),
        (
            '{"type": "bundle", "objects": [{"type": "indicator", "revoked": fal',
            "an unclosed object ('{') that starts at line 1 column 32",
        ),
        (
            '{"type": "bundle", "objects": [{"type": "indicator", "confidence": 8',
            "an unclosed object ('{') that starts at line 1 column 32",
        ),
        (
            '{"type": "bundle", "objects": [{"x_score": 1.',
            "an unclosed object ('{') that starts at line 1 column 32",
        ),
        (
            '{"type": "bundle", "objects": [{"x_score": -2e',
            "an unclosed object ('{') that starts at line 1 column 32",
        ),
        (
            '{"type": "bundle", "objects": [{"name": "caf\\u00e',
            "an unterminated string that starts at line 1 column 41",
        ),
        (
            '{"type": "bundle", "objects": [{"name": "caf\\',
            "an unterminated string that starts at line 1 column 41",
        ),
        (
            '{"type": "bundle", "objects": [{"name"',
            "an unclosed object ('{') that starts at line 1 column 32",
        ),
        (
            '{"type": "bundle", "objects": [{"name":',
            "an unclosed object ('{') that starts at line 1 column 32",
        ),
        (
            '{"type": "bundle", "objects": [{"name": "x",  \n\n',
            "an unclosed object ('{') that starts at line 1 column 32",
        ),
        # A character cut in two by the truncation: not "not UTF-8".
        (
            '{"type": "bundle", "objects": [{"name": "Café"}]}'.encode()[:45],
            "an unterminated string that starts at line 1 column 41",
        ),
        # UTF-16 (with a BOM), cut after the BOM.
        (
            '{"type": "bundle", "objects": [{"name": "x"}'.encode("utf-16"),
            "an unclosed array ('[') that starts at line 1 column 31",
        ),
    ],
)
def test_json_that_ends_early_says_what_it_ends_inside(
    cli: Cli, tmp_path: Path, content: str | bytes, inside: str
) -> None:
    path = _write(tmp_path, "cut.json", content)
    result = _validate(cli, tmp_path, "--format", "stix", path)
    assert result.exit_code == 6
    text = content.decode("utf-16") if isinstance(content, bytes) and content[:2] == b"\xff\xfe" else None
    last_line = (
        text or (content if isinstance(content, str) else content.decode(errors="ignore"))
    ).rstrip().count("\n") + 1
    assert _rejections(result) == [
        f"rejected: {path}: truncated JSON: the file ends early at line {last_line}: "
        f"{inside}; {TRUNCATED_HINT}"
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        # json's own message ended "Invalid control character at": the position is in front.
        (
            '{"type": "bundle",\n "id": "a\tb"}',
            "malformed JSON at line 2 column 10: Invalid control character",
        ),
        (
            '{"type": "bundle", "objects": [1 2]}',
            "malformed JSON at line 1 column 34: Expecting ',' delimiter",
        ),
        ('{"type": "bundle"} {"type": "bundle"}', "malformed JSON at line 1 column 20: Extra data"),
        (
            '{"type": "bundle", "objects": [1.5.]}',
            "malformed JSON at line 1 column 35: Expecting ',' delimiter",
        ),
        ('{"type": "bundle", "objects": [.5]}', "malformed JSON at line 1 column 32: Expecting value"),
        (
            '{"type": "bundle", "objects": ["\\u12"]}',
            "malformed JSON at line 1 column 34: Invalid \\uXXXX escape",
        ),
        # "tru" followed by more text is no cut literal.
        ('{"type": "bundle", "revoked": tru}', "malformed JSON at line 1 column 31: Expecting value"),
    ],
)
def test_malformed_json_names_line_column_and_a_whole_reason(
    cli: Cli, tmp_path: Path, content: str, reason: str
) -> None:
    path = _write(tmp_path, "bad.json", content)
    result = _validate(cli, tmp_path, path)
    assert result.exit_code == 6
    assert _rejections(result) == [
        f"rejected: {path}: {reason}; correct the JSON there, or export the file again"
    ]
    assert "truncated" not in result.stderr


def test_an_empty_json_file_is_called_empty(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path, "empty.json", "\n  \n")
    result = _validate(cli, tmp_path, "--format", "stix", path)
    assert result.exit_code == 6
    assert _rejections(result) == [
        f"rejected: {path}: the file is empty; give a STIX bundle or MISP event, or copy it again"
    ]


_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_CONTAINER = st.recursive(
    _LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
_DOCUMENT = st.lists(_CONTAINER, max_size=4) | st.dictionaries(st.text(max_size=8), _CONTAINER, max_size=5)
_LAYOUT = st.fixed_dictionaries(
    {"ensure_ascii": st.booleans(), "indent": st.sampled_from([None, 0, 2, "\t"])}
)


def _serialised(document: Any, layout: dict[str, Any]) -> bytes:
    return json.dumps(document, **layout).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(document=_DOCUMENT, layout=_LAYOUT, data=st.data())
def test_every_cut_of_a_json_document_reads_as_truncated(
    document: Any, layout: dict[str, Any], data: st.DataObject
) -> None:
    """Whatever the document and wherever it is cut (inside a string, a \\u escape, a number,
    a literal, a UTF-8 character, between tokens), the reason is "truncated", at the line the
    file ends on: never "malformed", "not UTF-8", nor any other exception."""
    whole = _serialised(document, layout)
    cut = data.draw(st.integers(1, len(whole) - 1), label="cut")
    with pytest.raises(InputError) as caught:
        parse_json(whole[:cut], "cut.json")
    message = caught.value.diagnostics()
    last_line = whole[:cut].decode("utf-8", errors="ignore").rstrip().count("\n") + 1
    assert message.startswith(f"cut.json: truncated JSON: the file ends early at line {last_line}: "), message
    assert message.endswith(f"; {TRUNCATED_HINT}") and "\n" not in message


@settings(max_examples=200, deadline=None)
@given(document=_DOCUMENT, layout=_LAYOUT, data=st.data())
def test_a_stray_character_before_the_end_reads_as_malformed_there(
    document: Any, layout: dict[str, Any], data: st.DataObject
) -> None:
    """A character that no JSON document can hold, put before a closing bracket (outside any
    string): "malformed" at its line and column, never "truncated"."""
    text = json.dumps(document, **(layout | {"indent": 1}))
    lines = text.split("\n")
    # With one value per line, a line that starts (after indentation) with a bracket holds no
    # string: the bracket is structure; so is the last character ("[]" or "{}" on one line).
    closing = [
        (n, len(line) - len(line.lstrip()) + 1)
        for n, line in enumerate(lines)
        if line.strip()[:1] in ("]", "}")
    ]
    closing.append((len(lines) - 1, len(lines[-1])))
    number, column = data.draw(st.sampled_from(closing), label="where")
    lines[number] = lines[number][: column - 1] + "@" + lines[number][column - 1 :]
    with pytest.raises(InputError) as caught:
        parse_json("\n".join(lines).encode(), "bad.json")
    message = caught.value.diagnostics()
    assert message.startswith(f"bad.json: malformed JSON at line {number + 1} column {column}: "), message
    assert not message.split(";")[0].endswith(" at")


# --- F5: a CSV header that names no indicator column -------------------------------------------


def test_a_misspelt_csv_header_is_the_rejection(cli: Cli, tmp_path: Path) -> None:
    """The user walkthrough. Before: "read as text", then "not a recognised indicator" for
    the header and for every row."""
    path = _write(tmp_path, "typo.csv", "vaule,type\nevil[.]com,domain\n")
    result = _validate(cli, tmp_path, path)
    assert result.exit_code == 6
    assert f"{path}: read as text" in result.stdout
    assert _rejections(result) == [
        f"rejected: {path}, line 1: no indicator column in the header (vaule, type): read "
        "as a text list, nothing in it was usable; rename the column 'vaule' to 'value', or name it "
        "after an indicator type such as 'sha256'"
    ]
    assert "not a recognised indicator" not in result.stderr
    report = _validate(cli, tmp_path, "--json", path).json()
    assert report["rejected"] == 1 and report["formats"] == {path: "text"}
    assert report["rejections"][0] | {"reason": ""} == {
        "file": path,
        "line": 1,
        "code": "unreadable-file",
        "reason": "",
    }


def test_forcing_csv_suggests_the_column_name_too(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path, "typo.csv", "vaule,type\nevil[.]com,domain\n")
    result = _validate(cli, tmp_path, "--format", "csv", path)
    assert _rejections(result) == [
        f"rejected: {path}: no indicator column in the header (vaule, type); rename the "
        "column 'vaule' to 'value', or name it after an indicator type such as 'sha256'"
    ]


@pytest.mark.parametrize(
    ("name", "content", "line", "columns"),
    [
        (
            "feed.txt",
            "sep=;\nIndicator Valeur;Kind\nevil[.]com;domain\nbad[.]org;domain\n",
            2,
            "Indicator Valeur, Kind",
        ),
        (
            "feed.tsv",
            "# exported 2025-03-01\n\nObserved Thing\tfirst seen\nzz\t2025\n",
            3,
            "Observed Thing, first seen",
        ),
        ("feed.dat", "Observable Val\tComment\nnope\tx\nnothing\ty\n", 1, "Observable Val, Comment"),
    ],
)
def test_other_csv_shapes_with_an_unknown_header(
    cli: Cli, tmp_path: Path, name: str, content: str, line: int, columns: str
) -> None:
    path = _write(tmp_path, name, content)
    result = _validate(cli, tmp_path, path)
    assert result.exit_code == 6
    (rejection,) = _rejections(result)
    assert rejection.startswith(
        f"rejected: {path}, line {line}: no indicator column in the header ({columns}): read as a text list"
    ), rejection


@pytest.mark.parametrize(
    ("name", "content"),
    [
        # Not a .csv name, and one row only: too little to call it CSV.
        ("notes.txt", "vaule,type\nevil[.]com,domain\n"),
        # Rows of other widths than the first line: prose, not a table.
        ("notes.csv", "Hello team, see below\nnothing here\nor, here, either\n"),
        # The first line holds values, not names (with a comma between them, the file is a
        # CSV file without a header: test_headerless_csv.py).
        ("list.csv", "evil[.]com bad[.]org\nworse[.]net foo\n"),
    ],
)
def test_text_that_only_resembles_csv_reads_as_text_did(
    cli: Cli, tmp_path: Path, name: str, content: str
) -> None:
    path = _write(tmp_path, name, content)
    result = _validate(cli, tmp_path, path)
    assert "no indicator column" not in result.stderr
    assert result.stderr == _validate(cli, tmp_path, "--format", "text", path).stderr


def test_a_misnamed_csv_that_still_gives_indicators_as_text_is_read_as_before(
    cli: Cli, tmp_path: Path
) -> None:
    """Only when nothing is usable does the header take the place of the text reading."""
    path = _write(tmp_path, "urls.csv", "vaule,type\nhxxp://evil[.]com/a,url\nbad[.]org,domain\n")
    result = _validate(cli, tmp_path, path)
    assert result.exit_code == 1
    assert "no indicator column" not in result.stderr
    assert any("line 3: not a recognised indicator" in line for line in _rejections(result))


def test_a_forced_text_format_reads_lines_as_asked(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path, "typo.csv", "vaule,type\nevil[.]com,domain\n")
    result = _validate(cli, tmp_path, "--format", "text", path)
    assert result.exit_code == 6
    assert "no indicator column" not in result.stderr
    assert len(_rejections(result)) == 2


def test_a_defanged_list_with_commas_in_prose_is_still_text(cli: Cli, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "advisory.csv",
        "Indicators, as reported\nevil[.]com, the C2\n185.178.209[.]193, its address\n",
    )
    result = _validate(cli, tmp_path, "--json", path)
    report = result.json()
    assert report["formats"] == {path: "text"}
    assert report["accepted_by_type"] == {"domain-name": 1, "ipv4-addr": 1}
    assert all(r["code"] != "unreadable-file" for r in report["rejections"])


# --- push: the reason a whole file was refused ---------------------------------------------------


def test_push_says_why_a_truncated_file_gave_nothing(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """Before: "nothing usable to share in t.json; run `cti-exchange validate` on the input to
    see what was rejected"."""
    cert_fr, _ = partnered
    cut = _write(tmp_path, "t.json", (CORPUS / "stix21" / "oasis-poisonivy.json").read_bytes()[:700])
    result = cert_fr.run("push", cut, "--to", "cert-in", "--dry-run")
    assert result.exit_code == 6
    assert result.stderr == (
        f"cti-exchange: error: nothing usable to share in {cut}; {cut}: truncated JSON: the file "
        f"ends early at line 15: an unterminated string that starts at line 15 column 9; {TRUNCATED_HINT}\n"
    )


def test_push_says_why_a_misnamed_csv_gave_nothing(partnered: tuple[Agency, Agency], tmp_path: Path) -> None:
    cert_fr, _ = partnered
    path = _write(tmp_path, "typo.csv", "vaule,type\nevil[.]com,domain\n")
    result = cert_fr.run("push", path, "--to", "cert-in", "--dry-run")
    assert result.exit_code == 6 and result.stderr.count("\n") == 1
    assert (
        f"nothing usable to share in {path}; {path}, line 1: no indicator column in the header"
        in result.stderr
    )
    assert "rename the column 'vaule' to 'value'" in result.stderr


def test_push_names_the_refused_files_then_points_at_validate_for_the_rest(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    cert_fr, _ = partnered
    cut = _write(tmp_path, "a.json", '{"type": "bundle", "objects": [')
    rows = _write(tmp_path, "rows.csv", "value,type\nnot an address,ipv4-addr\n")
    result = cert_fr.run("push", cut, rows, "--to", "cert-in", "--dry-run")
    assert result.exit_code == 6 and result.stderr.count("\n") == 1
    assert f"{cut}: truncated JSON: the file ends early at line 1" in result.stderr
    assert result.stderr.rstrip().endswith(
        "run `cti-exchange validate` on the input to see what was rejected"
    )


def test_push_lists_a_refused_file_beside_what_it_shares(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    cert_fr, _ = partnered
    cut = _write(tmp_path, "a.json", '{"type": "bundle", "objects": [')
    good = _write(tmp_path, "good.csv", "value,type\n203.0.113.250,ipv4-addr\nevil.example.com,domain\n")
    result = cert_fr.run("push", cut, good, "--to", "cert-in", "--dry-run")
    assert f"rejected: {cut}: truncated JSON: the file ends early at line 1" in result.stderr
