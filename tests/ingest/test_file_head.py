"""The head of a text list or CSV file (readers/file_head.py): which lines it is, which TLP it
states, and that our own exports' heads state exactly their strictest TLP, whatever the partner
text quoted in them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_exchange.exporters.csv_export import CsvExporter
from cti_exchange.exporters.interface import ExportContext, Exporter, ExportSummary, RefusedValue
from cti_exchange.exporters.plain import PlainExporter
from cti_exchange.exporters.snort import SnortExporter
from cti_exchange.exporters.suricata import SuricataExporter
from cti_exchange.readers.file_head import HeadConflict, is_marking_line, read_head, scan_head
from cti_exchange.readers.interface import ReadLimits
from cti_exchange.readers.text_reader import TextReader
from cti_exchange.stix.tlp import Tlp

LEVELS = list(Tlp)
# How people write each level (TLP 1.0's WHITE is CLEAR).
SPELLINGS = {
    Tlp.CLEAR: ["CLEAR", "WHITE"],
    Tlp.GREEN: ["GREEN"],
    Tlp.AMBER: ["AMBER"],
    Tlp.AMBER_STRICT: ["AMBER+STRICT", "AMBER + STRICT", "AMBER STRICT", "AMBER_STRICT", "AMBER-STRICT"],
    Tlp.RED: ["RED"],
}


@st.composite
def marking(draw: st.DrawFn, level: Tlp) -> str:
    """A TLP marking of `level` as an analyst may write it: any case, separator, label."""
    spelt = draw(st.sampled_from(SPELLINGS[level]))
    text = draw(st.sampled_from(["TLP", "TLP 2.0", "tlp"])) + draw(
        st.sampled_from([":", ": ", " ", " - ", "="])
    )
    text += draw(st.sampled_from([spelt, spelt.lower(), spelt.title()]))
    return draw(st.sampled_from(["", "Classification: ", "Distribution - ", "marking:"])) + text


@given(st.sampled_from(LEVELS), st.data())
def test_every_spelling_of_a_level_reads_as_that_level(level: Tlp, data: st.DataObject) -> None:
    text = data.draw(marking(level))
    comment = data.draw(st.sampled_from(["#", "# ", "## ", "#\t"])) + text
    comment += data.draw(st.sampled_from(["", ".", " — do not forward", " (see the policy)"]))
    for head in ([comment], [text], ["# Campaign X", "", comment, "#"]):
        stated = read_head([*head, "evil.example"]).tlp
        assert stated is not None and stated.tlp is level, head
        assert stated.line == len(head) - (1 if head[-1] == "#" else 0)


@given(st.lists(st.sampled_from(LEVELS), min_size=2, max_size=4, unique=True), st.data())
def test_two_different_levels_in_a_head_are_refused(levels: list[Tlp], data: st.DataObject) -> None:
    lines = [f"# {data.draw(marking(level))}" for level in levels]
    with pytest.raises(HeadConflict) as refused:
        read_head([*lines, "value,type"])
    assert refused.value.line == 2
    same = [f"# {data.draw(marking(levels[0]))}" for _ in range(3)]
    assert read_head(same).tlp is not None


@given(st.lists(st.text(), max_size=6))
def test_any_head_is_read_or_refused_as_stating_two_levels(lines: list[str]) -> None:
    """Unicode case folding made `TLP:wh\\u0131te` (a dotless i) match, and `Tlp.parse` fail."""
    try:
        head = read_head(["# " + line for line in lines] + ["TLP:wh\u0131te", "# TLP:amber+\u017ftrict"])
    except HeadConflict:
        return
    assert head.end <= len(lines) + 3


def test_where_the_head_ends() -> None:
    head = read_head(["# a", "", "TLP:RED", "sep=;", "#   b", "value,type", "# TLP:GREEN"])
    assert head.end == 6  # the header row; a comment below it is no part of the head
    assert head.tlp is not None and (head.tlp.tlp, head.tlp.line) == (Tlp.RED, 3)
    assert read_head([]).end == 1 and read_head(["#"]).tlp is None


@pytest.mark.parametrize(
    "line",
    ["TLP:RED,evil[.]com", "TLP:RED evil.example", "TLP:AMBERx", "TLP: amber 1, red 2", "red", "TLP:"],
)
def test_a_line_with_more_than_a_marking_is_not_a_marking_line(line: str) -> None:
    assert not is_marking_line(line)


def test_scan_head_reads_utf16_and_crlf_and_stops_at_the_first_value(tmp_path: Path) -> None:
    path = tmp_path / "iocs.csv"
    path.write_bytes("\ufeff# Classification: TLP:AMBER+STRICT\r\nvalue\r\n# TLP:RED\r\n".encode("utf-16-le"))
    head = scan_head(path, ReadLimits())
    assert head.tlp is not None and head.tlp.tlp is Tlp.AMBER_STRICT and head.end == 2


# -- our exports' heads ---------------------------------------------------------------------------

EXPORTERS: list[type[Exporter]] = [PlainExporter, CsvExporter, SuricataExporter, SnortExporter]
STORE_TYPES = ["domain-name", "ipv4-addr", "url", "mutex", "sha256", "email-subject", "file-name"]
CONTEXT = ExportContext(generated_at="2026-01-10T10:00:00.000Z", producer="cert-in", producer_identity={})


@st.composite
def summaries(draw: st.DrawFn) -> ExportSummary:
    """What an export wrote and left out, with partners' values and reasons of any text."""
    summary = ExportSummary()
    for tlp in draw(st.lists(st.sampled_from([*(t.value for t in Tlp), "unmarked"]), unique=True)):
        summary.by_tlp[tlp] = draw(st.integers(1, 5000))
    summary.by_type = Counter(
        {t: draw(st.integers(1, 5000)) for t in draw(st.lists(st.sampled_from(STORE_TYPES), unique=True))}
    )
    summary.values = sum(summary.by_type.values())
    for ioc_type in draw(st.lists(st.sampled_from(STORE_TYPES), unique=True, max_size=2)):
        summary.skipped[ioc_type] = draw(st.integers(1, 9))
        summary.skip_reasons[ioc_type] = "values with a line break cannot be one line"
    for _ in range(draw(st.integers(0, 4))):
        value = draw(st.one_of(st.text(), st.sampled_from(['x" TLP:CLEAR "y', "TLP:CLEAR", "tlp clear"])))
        reason = draw(st.one_of(st.text(), st.just("label 'TLP:CLEAR' is not valid")))
        level: str | None = draw(st.sampled_from([None, *(t.value for t in Tlp)]))
        ioc_type = draw(st.sampled_from(STORE_TYPES))
        summary.refuse(
            RefusedValue(ioc_type, value, "invalid-value", reason, draw(st.booleans()), level, "x")
        )
    return summary


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(EXPORTERS), summaries())
def test_our_exports_heads_state_their_strictest_tlp_and_type_nothing_else(
    tmp_path: Path, exporter: type[Exporter], summary: ExportSummary
) -> None:
    """Values not written are listed in the head, partners' text and all: none of it can state
    a TLP (a refused `TLP:CLEAR` value would otherwise mark a re-read export CLEAR) or type the
    lines below (`#   ipv4-addr "10.0.0.1": ...` typed every value as an address)."""
    head = exporter(CONTEXT).header(summary)
    stated = read_head([*head.splitlines(), "evil.example"])
    assert (stated.tlp.tlp if stated.tlp else None) == summary.strictest
    assert stated.tlp is None or stated.tlp.line == 1
    path = tmp_path / "export.txt"
    path.write_text(head + "evil.example\n", encoding="utf-8")
    result = TextReader().read_all(path)
    (candidate,) = result.candidates
    single = list(summary.by_type) if len(summary.by_type) == 1 else []
    expected = single[0] if single and single[0] != "ipv4-addr" else None
    assert candidate.type_hint == expected  # only our `# types: mutex 2` line types the lines
    assert result.rejections == []
