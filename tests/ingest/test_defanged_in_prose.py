"""Defanged indicators on lines that start with prose, and code that is not indicators.

ESET's Stantinko page (tests/data/corpus/iocs/eset-stantinko-README.adoc, credited in
tests/data/corpus/SOURCES.md) lists 172 compromised sites used as C&C as `Jan 21, 2014 |
hxxp://.../index.php` (lines 598-769): the author defanged them, i.e. marked them as
indicators, yet they were skipped as prose with a warning that said the lines held none. Its
last block is the JavaScript ESET found injected (`[source, javascript]`, lines 855-916), which
gave the domain names `b.src` and `b.style.display` and the file name `this._hrefs`.

Through the CLI (`validate`, `convert`, `push --dry-run`), on the real file and on small ones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_exchange.ingest import ingest_files
from tests.conftest import Agency, run_cli

from .conftest import CORPUS, make_context

STANTINKO = CORPUS / "iocs" / "eset-stantinko-README.adoc"
_CNC_LINE = re.compile(r"[A-Z][a-z]{2} \d{1,2}, \d{4} \| (hxxp://\S+)")


def _cnc_lines() -> list[tuple[int, str, str]]:
    """(line number, line, refanged URL) of the Stantinko C&C list."""
    found = []
    for number, line in enumerate(STANTINKO.read_text(encoding="utf-8").splitlines(), 1):
        match = _CNC_LINE.fullmatch(line)
        if match is not None:
            found.append((number, line, match.group(1).replace("hxxp://", "http://", 1)))
    return found


def _convert(agency: Agency, tmp_path: Path, source: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    out = tmp_path / "bundle.json"
    result = agency.run("convert", str(source), "-o", str(out), "--json")
    assert result.exit_code in (0, 1), result.stderr
    return result.json(), json.loads(out.read_text())["objects"]


def _warning(report: dict[str, Any], code: str) -> str:
    [reason] = [w["reason"] for w in report["warnings"] if w["code"] == code]
    return reason


def _text(tmp_path: Path, content: str, name: str = "advisory.txt") -> str:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


# -- 1. defanged indicators after a first field that is not one ---------------------------


def test_stantinko_defanged_cnc_urls_after_a_date_are_read(cert_fr: Agency, tmp_path: Path) -> None:
    cnc = _cnc_lines()
    assert len(cnc) == 172 and (cnc[0][0], cnc[-1][0]) == (598, 769)
    report, objects = _convert(cert_fr, tmp_path, STANTINKO)
    urls = {o["pattern"]: o for o in objects if o["type"] == "indicator" and o["pattern"].startswith("[url:")}
    lost = [url for _, _, url in cnc if f"[url:value = '{url}']" not in urls]
    # The one the tool must not share: ESET's own test server. It is rejected, with its line.
    assert lost == ["http://localhost/searchparser/index.php"]
    [localhost] = [r for r in report["rejections"] if "localhost" in r.get("value", "")]
    assert localhost["line"] == 602 and "fully qualified" in localhost["reason"]
    # The line is the context: the date the site first served as C&C.
    first = urls["[url:value = 'http://www.corsionlinemtpromozione.it/images/banners/b1/index.php']"]
    assert first["description"] == cnc[0][1]
    # Before: 33 URLs (the other lists of the page); the C&C list adds 170 (one repeats); the
    # C&C servers table one more (raw.githubusercontent.com/brenev/...); ESET's two links to
    # its own report (lines 113, 116) are rejected as citations.
    assert report["accepted_by_type"]["url"] == 202


def test_defanged_values_on_prose_lines_are_read_and_plain_words_are_not(tmp_path: Path) -> None:
    source = _text(
        tmp_path,
        "Jan 21, 2014 | hxxp://www.evil-site.com/images/index.php\n"
        "2014-01-21 hxxp://bad.example.org/x.php\n"
        "Seen on evil[.]com and 203.0.113[.]7 since March\n"
        "Visit example.org or 198.51.100.1 for details\n"  # not defanged: prose words
        "The campaign is still active.\n",
    )
    result = run_cli("validate", source, "--json")
    assert result.exit_code == 0, result.stdout  # the date is context, not a rejected value
    report = result.json()
    assert report["accepted_by_type"] == {"url": 2, "domain-name": 1, "ipv4-addr": 1}
    assert report["rejections"] == []
    # The warning names only the lines that were skipped, and says why they were.
    assert _warning(report, "prose") == (
        "2 lines were skipped as prose (the first word is not an indicator and nothing on the "
        "line is defanged): lines 4-5"
    )


def test_stantinko_prose_warning_leaves_out_the_cnc_lines_and_names_every_skipped_line(
    tmp_path: Path,
) -> None:
    """Before: "233 lines without an indicator were skipped: lines 8, 9, 10, 11, 12, 21, 23, 24,
    ..." (in --json too): 172 of them held a defanged URL, and 225 lines went unnamed. Runs of
    lines are shown as ranges; past the first eight runs the rest are counted (see below)."""
    reason = _warning(run_cli("validate", str(STANTINKO), "--json").json(), "prose")
    assert reason.startswith("17 lines were skipped as prose")
    assert reason.endswith(": lines 8-12, 21, 23-25, 111-112, 115, 118-119, 461-462, 836")
    numbers = {int(n) for n in re.findall(r"\d+", reason.split(": lines ", 1)[1])}
    assert not numbers & {number for number, _, _ in _cnc_lines()}


def test_a_long_prose_warning_names_the_first_runs_and_counts_the_rest(tmp_path: Path) -> None:
    source = _text(tmp_path, "".join(f"Paragraph {n} of the report.\n1.2.3.{n}\n" for n in range(1, 31)))
    report = run_cli("validate", source, "--json").json()
    assert report["accepted_by_type"] == {"ipv4-addr": 30}
    assert _warning(report, "prose").endswith(": lines 1, 3, 5, 7, 9, 11, 13, 15 and 22 more")


@st.composite
def _defanged(draw: st.DrawFn) -> tuple[str, str]:
    """(a defanged indicator as advisories write it, the STIX pattern it must give)."""
    labels = draw(st.lists(st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True), min_size=1, max_size=3))
    host = ".".join([*labels, draw(st.sampled_from(["com", "net", "ru", "io", "info", "org"]))])
    dot = draw(st.sampled_from(["[.]", "(.)", "[dot]"]))
    kind = draw(st.sampled_from(["domain", "url", "ip"]))
    if kind == "domain":
        return host.replace(".", dot), f"[domain-name:value = '{host}']"
    if kind == "url":
        path = draw(st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}(\.php)?", fullmatch=True))
        scheme = draw(st.sampled_from(["http", "https"]))
        written = f"{scheme.replace('tt', 'xx')}://{host.replace('.', dot, 1)}/{path}"
        return written, f"[url:value = '{scheme}://{host}/{path}']"
    octets = draw(st.tuples(*[st.integers(1, 223)] + [st.integers(0, 255)] * 3))
    address = ".".join(map(str, octets))
    return address[::-1].replace(".", dot[::-1], 1)[::-1], f"[ipv4-addr:value = '{address}']"


# Words before the indicator: never an indicator themselves (no dot, under 16 letters).
_WORD = st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True) | st.sampled_from(["2014-01-21", "21,", "2019"])
_FILLER = _WORD | st.sampled_from(["|", "-", "on", "at", "(C&C)"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=_WORD,
    before=st.lists(_FILLER, max_size=4),
    after=st.lists(_FILLER, max_size=3),
    indicator=_defanged(),
)
def test_a_defanged_value_anywhere_on_a_prose_line_is_read_with_the_line_as_context(
    tmp_path: Path, first: str, before: list[str], after: list[str], indicator: tuple[str, str]
) -> None:
    written, pattern = indicator
    line = " ".join([first, *before, written, *after])
    path = tmp_path / "prose.txt"
    path.write_text(line + "\n", encoding="utf-8")
    result = ingest_files([path], make_context())
    [found] = [o for o in result.objects if o["type"] == "indicator"]
    assert (found["pattern"], found["description"]) == (pattern, line)
    assert "prose" not in result.warnings_by_code and not result.rejections
    # The same line written plainly is prose: skipped, counted, nothing shared. (A lone line
    # with a comma, `2014-01-21 a.com 21, AS`, reads as a CSV header with no value column:
    # nothing shared either, said by a "columns not used" warning.)
    path.write_text(line.replace(written, pattern.split("'")[1]) + "\n", encoding="utf-8")
    plain = ingest_files([path], make_context())
    assert plain.objects == []
    as_csv = "," in line and plain.formats.get(str(path)) == "csv"
    assert plain.warnings_by_code.get("prose") == 1 or (as_csv and plain.warning_count == 1), plain.warnings


# -- 4. code is not indicators ------------------------------------------------------------


def test_stantinko_javascript_block_gives_no_indicators(cert_fr: Agency, tmp_path: Path) -> None:
    report, objects = _convert(cert_fr, tmp_path, STANTINKO)
    patterns = [o["pattern"] for o in objects if o["type"] == "indicator"]
    assert not [p for p in patterns if any(s in p for s in ("'b.src'", "'b.style.display'", "this._hrefs"))]
    # b.src and b.style.display were two; the 41 are the C&C servers table's (lines 479-526).
    domains = [o for o in objects if o["type"] == "indicator" and o["pattern"].startswith("[domain-name:")]
    assert len(domains) == report["accepted_by_type"]["domain-name"] == 41
    assert _warning(report, "code-block") == (
        "62 lines of source code blocks were not read (code, not an indicator list): lines 855-916"
    )
    # Nor are its lines rejected one by one (`},`, `document.body.appendChild(b)`, ...).
    assert not [r for r in report["rejections"] if r.get("line", 0) >= 855]


def test_push_dry_run_of_stantinko_shares_the_cnc_urls_and_no_code(partnered: tuple[Agency, Agency]) -> None:
    cert_fr, _ = partnered
    result = cert_fr.run("push", str(STANTINKO), "--to", "cert-in", "--dry-run", "--json")
    assert result.exit_code == 1, result.stderr  # the localhost URL and the placeholders
    report = result.json()
    assert report["accepted_by_type"] == {
        "domain-name": 41,  # the C&C servers table (with 2 ip:port and a URL)
        "file-name": 22,
        "ipv4-addr": 97,
        "ipv4-port": 2,
        "mutex": 12,
        "sha1": 127,
        "url": 202,  # ESET's own report links rejected (reference-site)
        "windows-registry-key": 13,
    }
    assert report["warnings_by_code"]["code-block"] == 1


def test_bare_names_need_a_real_top_level_domain(tmp_path: Path) -> None:
    source = _text(
        tmp_path,
        "b.src\n"  # a word alone that is not an indicator: rejected, with the reason
        'b.style.display = "none";\n'  # code outside a code block: prose
        "this._hrefs = document.links;\n"
        "evil.zip\n"  # .zip and .mov are real TLDs
        "c2.example.org:8443\n"
        "hidden2example.onion\n"  # special-use names that host C&C
        "dc01.corp\n"  # an internal name: read, and flagged by the guardrails
        "\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444\n"  # .рф (xn--p1ai)
        "evil[.]notatld\n"  # defanged: the author marked it
        "cdn.notatld/x.js\n",
    )
    report = run_cli("validate", source, "--json").json()
    assert report["accepted_by_type"] == {"domain-name": 5, "domain-port": 1}
    assert [(r["line"], r["reason"]) for r in report["rejections"]] == [
        (1, "not a recognised indicator: .src is not a top-level domain"),
        (10, "not a recognised indicator: .notatld is not a top-level domain"),
    ]
    assert _warning(report, "prose").endswith(": lines 2-3")
    assert report["warnings_by_code"]["internal-name"] == 1


def test_markdown_code_fences_naming_a_language_are_not_read(tmp_path: Path) -> None:
    source = _text(
        tmp_path,
        "```javascript\nb.src = 'hxxp://x[.]com';\nthis._hrefs = document.links;\n```\n"
        "```\nevil[.]com\n```\n"  # a plain fence is a list
        "```text\n1.2.3[.]4\n```\n"
        "[source,python]\nopen('payload.exe')\n\n"  # a source paragraph ends at a blank line
        "bad[.]example.net\n",
        name="advisory.md",
    )
    report = run_cli("validate", source, "--json").json()
    assert report["accepted_by_type"] == {"domain-name": 2, "ipv4-addr": 1}
    assert _warning(report, "code-block").endswith(": lines 1-4, 11-12")


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("IP a[.]com", "[domain-name:value = 'a.com']"),
        ("Domain evil[.]example seen today", "[domain-name:value = 'evil.example']"),
        ("URL hxxp://evil[.]example/a", "[url:value = 'http://evil.example/a']"),
    ],
)
def test_a_first_line_starting_with_a_type_word_is_prose_not_a_csv_header(
    tmp_path: Path, line: str, pattern: str
) -> None:
    """`IP a[.]com` alone in a file was taken for the header of a one-column CSV: nothing read,
    and not a word said (found as a rare example of the property above)."""
    path = tmp_path / "note.txt"
    path.write_text(line + "\n", encoding="utf-8")
    result = ingest_files([path], make_context())
    assert result.formats == {str(path): "text"}
    assert [o["pattern"] for o in result.objects if o["type"] == "indicator"] == [pattern]
    table = tmp_path / "hashes.csv"  # a one-column CSV named after its type is still one
    table.write_text("SHA256\n" + "a" * 64 + "\n", encoding="utf-8")
    assert ingest_files([table], make_context()).formats == {str(table): "csv"}
