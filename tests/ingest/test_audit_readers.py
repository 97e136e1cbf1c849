"""Reader bugs found by feeding real inputs (tests/data/corpus) to `convert`: each test starts
from a corpus file, changed the way analysts' files really differ (a stray quote, a comment
typed in a web form, a MISP object kept inside the organisation)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cti_exchange.ingest import IngestVerdict, ingest_files
from cti_exchange.ingest_settings import IngestOptions
from cti_exchange.readers.interface import ReadLimits
from cti_exchange.readers.lines import LineSource

from ..conftest import Agency
from .conftest import CORPUS, IngestText, indicators, make_context, patterns

VENOMRAT = CORPUS / "iocs" / "unit42-venomrat_iocs.csv"
CLOUDMENSIS = CORPUS / "misp" / "eset-cloudmensis.misp.json"


def _venomrat_with_stray_quote(tmp_path: Path, line: int) -> Path:
    """The Unit 42 CSV with an opening quote, never closed, in the C2 cell of `line`."""
    rows = VENOMRAT.read_bytes().split(b"\n")
    sha, kind, c2 = rows[line - 1].split(b",", 2)
    rows[line - 1] = b",".join([sha, kind, b'"' + c2])
    path = tmp_path / "venomrat-stray-quote.csv"
    path.write_bytes(b"\n".join(rows))
    return path


def test_csv_unterminated_quote_is_reported_not_swallowed(tmp_path: Path) -> None:
    """Python's csv module, at the end of a file, closes a quoted field left open without a
    word: every row after the stray quote became part of one cell. Here (a value cell) the
    report only said "domain name longer than 253 characters", not that 430 rows were lost."""
    path = _venomrat_with_stray_quote(tmp_path, 10)
    total_lines = VENOMRAT.read_bytes().count(b"\n")
    result = ingest_files([path], make_context(), IngestOptions())
    [rejection] = [r for r in result.rejections if r.code == "malformed-row"]
    assert rejection.line == 10
    assert f"lines 10-{total_lines}" in rejection.reason and "close the quote" in rejection.reason
    assert str(rejection).startswith(f"{path}, line 10: unterminated quoted field")
    assert result.verdict is IngestVerdict.SOME_REJECTED
    # Rows 2-9 (before the stray quote) are read as before.
    assert len(indicators(result)) == len(
        indicators(ingest_files([_first_lines(tmp_path, 9)], make_context(), IngestOptions()))
    )


def _first_lines(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "venomrat-head.csv"
    path.write_bytes(b"\n".join(VENOMRAT.read_bytes().split(b"\n")[:count]) + b"\n")
    return path


def test_csv_unterminated_quote_on_the_last_line(ingest_text: IngestText) -> None:
    result = ingest_text('value,comment\n198.51.100.7,ok\n203.0.113.9,"no end', name="a.csv")
    assert [(r.line, r.code) for r in result.rejections] == [(3, "malformed-row")]
    assert "at the end" in result.rejections[0].reason
    assert patterns(result) == {"[ipv4-addr:value = '198.51.100.7']"}


def test_csv_closed_multiline_quotes_are_not_flagged(ingest_text: IngestText) -> None:
    for text in (
        'value,c\n198.51.100.7,"a\nb"',
        'value,c\n198.51.100.7,"a\nb"\n',
        'value,c\n198.51.100.7,"a"',
    ):
        result = ingest_text(text, name="b.csv")
        assert result.rejected_count == 0, text
        assert patterns(result) == {"[ipv4-addr:value = '198.51.100.7']"}


def test_convert_exit_code_shows_the_unterminated_quote(cert_fr: Agency, tmp_path: Path) -> None:
    """With the stray quote in a comment cell, the rows after it were lost silently: exit 0."""
    path = tmp_path / "c2.csv"
    rows = ["ip,comment", '198.51.100.7,"Cobalt Strike C2', "203.0.113.9,Sliver C2", "192.0.2.44,staging"]
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "bundle.json"
    result = cert_fr.run("convert", str(path), "-o", str(out))
    assert result.exit_code == 6, result.stderr  # was 0: "all accepted", one indicator of three
    assert "line 2: unterminated quoted field: lines 2-4 were read as one row" in result.stderr
    assert not out.exists()


def test_csv_multiline_cell_with_crlf_keeps_the_row(ingest_text: IngestText) -> None:
    """A CSV saved with CRLF line ends keeps CRLF inside a quoted multi-line cell; the CR was
    reported as an unprintable character and the whole row (the indicator) was rejected."""
    text = (
        "Indicator,Type,Comment\r\n"
        'hxxps://evil[.]example/gate.php,url,"Seen in phishing wave 1\r\nand wave 2"\r\n'
        "198.51.100.7,ip,single line\r\n"
    )
    result = ingest_text(text, name="crlf.csv")
    assert result.rejected_count == 0, [str(r) for r in result.rejections]
    url = next(o for o in indicators(result) if o["pattern"].startswith("[url:"))
    assert url["pattern"] == "[url:value = 'https://evil.example/gate.php']"
    assert url["description"] == "Seen in phishing wave 1\nand wave 2"


def _cloudmensis(tmp_path: Path, change: Any) -> Path:
    document = json.loads(CLOUDMENSIS.read_bytes())
    change(document["response"][0]["Event"])
    path = tmp_path / "cloudmensis-changed.misp.json"
    path.write_text(json.dumps(document))
    return path


def _file_objects(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in event["Object"] if o["name"] == "file"]


def test_misp_comment_with_crlf_keeps_the_attribute(tmp_path: Path) -> None:
    """MISP's web form stores multi-line comments with CRLF: the attribute was rejected."""

    def comment(event: dict[str, Any]) -> None:
        for attribute in _file_objects(event)[0]["Attribute"]:
            attribute["comment"] = "Dropper seen in July\r\nSee the blog post"

    result = ingest_files([_cloudmensis(tmp_path, comment)], make_context(), IngestOptions())
    assert result.accepted_by_type == {"md5": 3, "sha1": 3, "sha256": 3}
    assert result.rejections_by_code == {"unsupported-type": 2}  # as in the unchanged event
    assert any("Dropper seen in July\nSee the blog post" in o["description"] for o in result.objects)


def test_misp_object_with_distribution_0_is_not_shared(tmp_path: Path) -> None:
    """A MISP object's distribution bounds its attributes' (theirs is "5", inherit): an object
    marked "your organisation only" had its hashes shared all the same."""
    kept_inside: list[str] = []

    def restrict(event: dict[str, Any]) -> None:
        first = _file_objects(event)[0]
        first["distribution"] = "0"
        kept_inside.extend(a["value"] for a in first["Attribute"] if a["type"] in ("md5", "sha1", "sha256"))

    result = ingest_files([_cloudmensis(tmp_path, restrict)], make_context(), IngestOptions())
    assert kept_inside and result.objects
    shared = "\n".join(patterns(result))
    assert not [value for value in kept_inside if value.lower() in shared]
    warning = next(w for w in result.warnings if w.code == "not-shareable")
    assert "MISP object file not shared" in warning.reason
    assert warning.where is not None and warning.where.startswith("event 7a1f92cb-")


def test_misp_links_not_shared_or_deleted_are_not_references(tmp_path: Path) -> None:
    """`link` attributes become external references on every indicator of the event; one with
    distribution 0 (an internal ticket) or deleted was shared that way too."""
    internal = "https://tickets.cert.example/INC-4711"
    deleted = "https://old.example/removed-post"
    public = "https://www.welivesecurity.com/2018/07/24/cloudmensis-macos-spyware/"

    def links(event: dict[str, Any]) -> None:
        event.setdefault("Attribute", []).extend(
            [
                {"uuid": "l1", "type": "link", "value": internal, "to_ids": False, "distribution": "0"},
                {"uuid": "l2", "type": "link", "value": deleted, "to_ids": False, "deleted": True},
                {"uuid": "l3", "type": "link", "value": public, "to_ids": False, "distribution": "5"},
            ]
        )

    result = ingest_files([_cloudmensis(tmp_path, links)], make_context(), IngestOptions())
    urls = {r.get("url") for o in result.objects for r in o.get("external_references", [])}
    assert public in urls
    assert internal not in urls and deleted not in urls
    assert any(w.code == "not-shareable" and w.field == "link" for w in result.warnings)


def _with_cr_line_ends(source: Path, tmp_path: Path) -> Path:
    """The file as classic Mac OS (and Excel's "Macintosh" CSV) writes it: CR alone ends lines."""
    path = tmp_path / f"cr-{source.name}"
    path.write_bytes(source.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
    return path


def _report(path: Path) -> tuple[dict[str, int], list[tuple[int | None, str]], int]:
    result = ingest_files([path], make_context(), IngestOptions())
    return result.accepted_by_type, [(r.line, r.code) for r in result.rejections], result.duplicates_merged


def test_cr_only_line_ends_read_like_lf(tmp_path: Path) -> None:
    """A file without a single LF was one line: a CSV was refused ("malformed header row:
    new-line character seen in unquoted field"), a text list was one unrecognised value."""
    for source in (VENOMRAT, CORPUS / "iocs" / "unit42-Shade-ransomware-URLs-March-and-April-2019.txt"):
        assert _report(_with_cr_line_ends(source, tmp_path)) == _report(source), source.name
    # The venomrat row whose port is 'None' keeps its line number in its warning.
    cr_only = ingest_files([_with_cr_line_ends(VENOMRAT, tmp_path)], make_context(), IngestOptions())
    assert [w.line for w in cr_only.warnings if w.code == "unknown-port"] == [163]


def test_cr_only_quoted_multiline_cell(ingest_text: IngestText) -> None:
    result = ingest_text('value,comment\r198.51.100.7,"two\rlines"\r203.0.113.9,x\rbad\r', name="mac.csv")
    assert patterns(result) == {"[ipv4-addr:value = '198.51.100.7']", "[ipv4-addr:value = '203.0.113.9']"}
    assert {o["description"] for o in indicators(result)} == {"two\nlines", "x"}
    assert [(r.line, r.code) for r in result.rejections] == [(5, "unrecognised")]


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")), max_size=30
    ),
    limit=st.integers(min_value=1, max_value=50),
)
def test_cr_lines_match_lf_lines(lines: list[bytes], limit: int) -> None:
    """Whatever the lines and the line limit, a CR-only file gives the lines, line numbers and
    remarks of the same file with LF line ends."""
    body = b"".join(line + b"\n" for line in lines)
    if b"\x00" in body:
        return  # refused as binary either way
    assert _lines_of(body.replace(b"\n", b"\r"), limit) == _lines_of(body, limit)


def _lines_of(data: bytes, limit: int) -> tuple[list[tuple[int, str]], list[str], int]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.txt"
        path.write_bytes(data)
        source = LineSource(path, ReadLimits(max_line_bytes=limit), "f.txt")
        lines = [(source.line_number, line) for line in source]
        return lines, [str(r) for r in source.remarks], source.offset


def test_unreadable_file_is_named_once(cli: Any, tmp_path: Path) -> None:
    """The rejection names the file, and the reader's message named it again:
    "x.json: x.json is not a STIX bundle or object"."""
    medallion = CORPUS / "taxii21" / "medallion-default_data.json"
    no_header = tmp_path / "no-header.csv"
    no_header.write_text("foo,bar\n1,2\n")
    result = cli("validate", str(medallion), "--format", "stix", home=tmp_path / "none")
    assert f"rejected: {medallion}: the file is not a STIX bundle or object" in result.stderr
    forced = cli("validate", str(no_header), "--format", "csv", home=tmp_path / "none")
    assert f"rejected: {no_header}: no indicator column in the header" in forced.stderr
    assert str(medallion) not in result.stderr.split(f"{medallion}: ", 1)[1]


SECTIONED_LIST = """Domains:
evil.example.net
bad.example.org

IP addresses:
198.51.100.7

Hashes (SHA256):
8b3f191819931d1f2cef7289239b5f77c00b079847b9c2636e56854d1e5eff71
"""


def test_text_list_with_colon_titles_is_not_a_one_column_csv(ingest_text: IngestText) -> None:
    """ "Domains:" as the first line was taken for a CSV header: every later value was typed a
    domain, and the IP address and the hash were rejected ("Domains:: not a valid
    domain-name")."""
    result = ingest_text(SECTIONED_LIST, name="advisory.txt")
    assert result.formats == {str(next(iter(result.formats))): "text"}
    assert result.accepted_by_type == {"domain-name": 2, "ipv4-addr": 1, "sha256": 1}
    assert result.rejected_count == 0  # the titles are prose, not unrecognised values
    assert any(w.code == "prose" and "lines 1, 5, 8" in w.reason for w in result.warnings)
    # Without the colon, a title followed by colon titles is a text list as well.
    result = ingest_text(SECTIONED_LIST.replace("Domains:", "Domains"), name="advisory2.txt")
    assert result.accepted_by_type == {"domain-name": 2, "ipv4-addr": 1, "sha256": 1}


def test_one_column_csv_is_still_csv(tmp_path: Path) -> None:
    from cti_exchange.readers.detect import detect_format

    for content in (
        "SHA256\n8b3f191819931d1f2cef7289239b5f77c00b079847b9c2636e56854d1e5eff71\n",
        "value\n::1\n",
    ):
        path = tmp_path / "one.csv"
        path.write_text(content)
        assert detect_format(path) == "csv", content


def test_an_old_first_seen_date_warns_the_indicator_is_already_expired(
    cert_fr: Agency, tmp_path: Path
) -> None:
    # valid_until defaults to valid_from plus the type's lifetime (domain-name: 90 days).
    path = tmp_path / "old.csv"
    path.write_text("indicator,first seen\nold.example.net,2019-05-01\nnew.example.net,2099-01-01\n")
    out = tmp_path / "out.json"
    result = cert_fr.run("convert", str(path), "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    warnings = [w for w in result.json()["warnings"] if w["code"] == "expired"]
    assert [w["line"] for w in warnings] == [2]
    assert "valid for 90 days from valid_from" in warnings[0]["reason"]
    (old,) = [o for o in json.loads(out.read_text())["objects"] if o.get("name") == "old.example.net"]
    assert old["valid_until"] == "2019-07-30T00:00:00.000Z"
