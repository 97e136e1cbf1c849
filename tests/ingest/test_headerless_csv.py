"""CSV files without a header row: a first row holding an indicator is data, not a header.

Before, `evil[.]com,domain` on the first line was read as a header naming a `domain` column,
so every later row's type cell was taken for a domain and rejected; without a type-name cell
the file was read as a text list, where `1.2.3.4,443` is no indicator: nothing was usable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_exchange.ingest import IngestOptions, ingest_files
from cti_exchange.readers.csv_reader import data_row_columns
from tests.conftest import CliResult

from .conftest import IngestText, indicators, make_context, patterns

Cli = Callable[..., CliResult]


def _validate(cli: Cli, tmp_path: Path, name: str, content: str, *args: str) -> CliResult:
    path = tmp_path / name
    path.write_text(content)
    return cli("validate", "--json", *args, str(path), home=tmp_path / "no-profile")


def test_value_and_type_rows_without_a_header_are_all_read(cli: Cli, tmp_path: Path) -> None:
    result = _validate(cli, tmp_path, "iocs.txt", "evil[.]com,domain\nbad[.]org,domain\n")
    report = result.json()
    assert result.exit_code == 0, result.stderr
    assert report["formats"] == {str(tmp_path / "iocs.txt"): "csv"}
    assert report["accepted_by_type"] == {"domain-name": 2}
    assert report["rejected"] == 0
    (warning,) = [w for w in report["warnings"] if w["code"] == "no-header-row"]
    assert warning["line"] == 1
    assert warning["reason"] == (
        "no header row: line 1 holds the indicator 'evil[.]com', so it is read as data, its "
        "columns as value, type; add a header row naming the columns (such as "
        "value,type,description) to read them otherwise"
    )


def test_the_warning_is_printed_once_in_text_output(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "iocs.csv"
    path.write_text("1.2.3.4;443;2026-01-01\n5.6.7.8;80;2026-01-02\n")
    result = cli("validate", str(path), home=tmp_path / "no-profile")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("no header row") == 1
    assert "its columns as value, (not read), (not read)" in result.stderr


def test_columns_are_named_from_the_first_row(ingest_text: IngestText) -> None:
    result = ingest_text(
        "1.2.3.4,ip,Cobalt Strike C2,TLP:GREEN\n"
        "evil[.]com,domain,phishing kit,TLP:GREEN\n"
        "hxxp://bad[.]org/x.php,url,dropper,TLP:RED\n"
    )
    assert patterns(result) == {
        "[ipv4-addr:value = '1.2.3.4']",
        "[domain-name:value = 'evil.com']",
        "[url:value = 'http://bad.org/x.php']",
    }
    assert not result.rejections
    # The free-text column has no header calling it a description: it is not shared.
    assert not any("Cobalt" in str(obj) or "phishing" in str(obj) for obj in result.objects)
    markings = {o["pattern"]: o["object_marking_refs"] for o in indicators(result)}
    green, red = (
        markings["[ipv4-addr:value = '1.2.3.4']"],
        markings["[url:value = 'http://bad.org/x.php']"],
    )
    assert green != red
    assert data_row_columns(["1.2.3.4", "ip", "Cobalt Strike C2", "TLP:GREEN"]) == [
        "value",
        "type",
        "",
        "tlp",
    ]


def test_a_second_indicator_column_is_typed_as_its_first_value(ingest_text: IngestText) -> None:
    result = ingest_text("1.2.3.4,5.6.7.8\n9.8.7.6,not-an-address\n")
    assert patterns(result) == {
        "[ipv4-addr:value = '1.2.3.4']",
        "[ipv4-addr:value = '5.6.7.8']",
        "[ipv4-addr:value = '9.8.7.6']",
    }
    (rejection,) = result.rejections
    assert rejection.line == 2
    assert str(rejection).startswith(f"{rejection.file}, line 2: ipv4-addr: not a valid")


def test_a_bad_first_row_is_rejected_at_line_one(ingest_text: IngestText) -> None:
    """The first row is read as a row, after the lines before it: its line number is kept."""
    result = ingest_text("# exported 2026-12-01\n\n1.2.3.4,domain\nevil[.]com,domain\n")
    assert patterns(result) == {"[domain-name:value = 'evil.com']"}
    (rejection,) = result.rejections
    assert rejection.line == 3
    assert "not a valid domain-name" in str(rejection)


def test_reading_in_parallel_parts_gives_the_same_result(tmp_path: Path) -> None:
    rows = [f"10.{i // 250}.{i % 250}.1,ip-dst" for i in range(3000)] + ["bad,ip-dst", "10.0.0.1,ip-dst"]
    path = tmp_path / "big.txt"
    path.write_text("\n".join(rows) + "\n")
    one = ingest_files([path], make_context(), IngestOptions(workers=1))
    two = ingest_files([path], make_context(), IngestOptions(workers=3, parallel_min_bytes=1))
    assert len(indicators(one)) == 3000  # the first row is neither lost nor read twice
    assert one.objects == two.objects
    assert [str(r) for r in one.rejections] == [str(r) for r in two.rejections]
    assert [r.line for r in one.rejections] == [3001]
    assert one.warnings_by_code == two.warnings_by_code
    assert one.duplicates_merged == two.duplicates_merged == 1


def test_a_utf16_file_without_a_header_is_read(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("evil[.]com,domain\nbad[.]org,domain\n", encoding="utf-16")
    result = ingest_files([path], make_context(), IngestOptions())
    assert patterns(result) == {"[domain-name:value = 'evil.com']", "[domain-name:value = 'bad.org']"}


def test_headers_stay_headers(ingest_text: IngestText) -> None:
    for header in (
        "value,type",
        "ip.address,threat.actor",
        "Domain,first_seen",
        "host.name,notes",
        "event.date,url.full,source.ip",
    ):
        result = ingest_text(f"{header}\nevil.com,domain\n", name="with-header.csv")
        assert "no-header-row" not in result.warnings_by_code, header


def test_a_value_with_its_description_after_a_space_stays_a_text_line(ingest_text: IngestText) -> None:
    """`evil[.]com, see below` and `1.2.3.4<TAB>C2` are text-list lines whose rest describes the
    value: the text reader keeps it as the description."""
    for line in ("evil[.]com, see below", "1.2.3.4\tCobalt Strike C2, port 443"):
        result = ingest_text(line + "\n")
        assert list(result.formats.values()) == ["text"]
        (indicator,) = indicators(result)
        assert indicator["description"] in ("see below", "Cobalt Strike C2, port 443")


def test_a_quoted_phrase_around_a_defanged_value_is_prose(ingest_text: IngestText) -> None:
    """The opening quote belongs to the phrase, not to the value: `"evil.com` is no file name."""
    result = ingest_text('"evil[.]com, see below",domain\n')
    assert patterns(result) == {"[domain-name:value = 'evil.com']"}


def test_forcing_csv_reads_a_first_row_of_data_too(cli: Cli, tmp_path: Path) -> None:
    result = _validate(cli, tmp_path, "list.txt", "evil[.]com, see below\n", "--format", "csv")
    report = result.json()
    assert report["accepted_by_type"] == {"domain-name": 1}
    assert report["warnings_by_code"]["no-header-row"] == 1


_ADDRESSES = st.tuples(
    st.integers(1, 223), st.integers(0, 255), st.integers(0, 255), st.integers(1, 254)
).map(lambda parts: ".".join(map(str, parts)))
# What stands beside the address on every row: a type name, a TLP, nothing, or free text.
_OTHER_CELL = st.sampled_from(
    ["ip", "ip-dst", "ipv4-addr", "", "seen 2026-01-01", "443", "TLP:CLEAR", "botnet"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    addresses=st.lists(_ADDRESSES, min_size=1, max_size=12),
    other=_OTHER_CELL,
    delimiter=st.sampled_from([",", ";"]),
)
def test_every_address_of_a_headerless_file_is_read(
    ingest_text: IngestText, addresses: list[str], other: str, delimiter: str
) -> None:
    text = "".join(f"{address}{delimiter}{other}\n" for address in addresses)
    result = ingest_text(text, name="rows.txt")
    assert not result.rejections, [str(r) for r in result.rejections]
    assert patterns(result) == {f"[ipv4-addr:value = '{address}']" for address in addresses}
