"""A Snort or Suricata rules file given as input: each rule is a rule indicator.

Before, format detection took a rules file for CSV (its `;`-separated options for cells, and
`dns.query` or `tls.sni` for a column named after the `dns` type): `validate` said "read as
csv" with seven rejections and exit 1, and `convert` wrote indicators for the domains
`tls.sni` and `dns.query`. A rule line is now read as one indicator of `pattern_type` snort or
suricata (as the rule's keywords say), marked with the `tlp` of its `metadata` (as our rule
exports write it) or the file head's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_exchange.exporters.ids_rules import content, message
from cti_exchange.readers.detect import detect_format
from cti_exchange.readers.text_reader import TextReader
from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency, CliResult
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put

from .conftest import IngestText

Cli = Callable[..., CliResult]
STORED = [
    ("red.example", "domain-name", "red"),
    ("203.0.113.9", "ipv4-addr", "amber"),
    ("http://bad.example/x.php", "url", "green"),
    ("10.0.0.1", "ipv4-addr", "amber"),  # private: not written, listed in the head
]


@pytest.fixture
def soc(partnered: tuple[Agency, Agency]) -> Agency:
    _, cert_in = partnered
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *(indicator(v, t, tlp=tlp) for v, t, tlp in STORED)])
    accepted = cert_in.run("triage", "accept", *(value for value, _, _ in STORED))
    assert accepted.exit_code == 0, accepted.stderr
    return cert_in


def _export(agency: Agency, path: Path, *options: str) -> Path:
    result = agency.run("export", *options, "--i-understand-tlp", "-o", str(path))
    assert result.exit_code == 0, result.stderr
    return path


def _rule_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("alert")]


def test_our_suricata_export_reads_back_as_rules_not_csv(soc: Agency, tmp_path: Path) -> None:
    rules = _export(soc, tmp_path / "ids.rules", "--format", "suricata")
    checked = soc.run("validate", "--json", str(rules))
    assert checked.exit_code == 0, checked.stdout
    report = checked.json()
    assert report["formats"] == {str(rules): "text"}
    # A domain gives a DNS and a TLS rule; an address rule uses only keywords both engines
    # share, so it is a Snort rule, as it would be from a CSV cell or a MISP attribute.
    assert report["accepted_by_type"] == {"suricata": 3, "snort": 1}
    assert report["rejections"] == [] and report["warnings"] == []

    converted = soc.run("convert", str(rules), "-o", "-")
    assert converted.exit_code == 0, converted.stderr
    objects = [o for o in json.loads(converted.stdout)["objects"] if o["type"] == "indicator"]
    assert sorted(o["pattern"] for o in objects) == sorted(_rule_lines(rules))
    assert not any("tls.sni'" in o["pattern"] or "dns.query'" in o["pattern"] for o in objects)
    levels = {_level(o) for o in objects if "red.example" in o["name"]}
    assert levels == {"red"}  # each rule keeps its own TLP (metadata `tlp red`)
    assert {_level(o) for o in objects if "203.0.113.9" in o["name"]} == {"amber"}
    assert {_level(o) for o in objects if "bad.example" in o["name"]} == {"green"}


def _level(obj: dict[str, Any]) -> str:
    level = Tlp.from_marking_id(obj["object_marking_refs"][0])
    return level.value if level is not None else "none"


def test_our_snort_export_reads_back_as_rules_and_pushes_with_its_tlps(soc: Agency, tmp_path: Path) -> None:
    rules = _export(soc, tmp_path / "ids.snort", "--format", "snort", "--type", "ipv4-addr", "--type", "url")
    checked = soc.run("validate", "--json", str(rules))
    assert checked.exit_code == 0, checked.stdout
    assert checked.json()["accepted_by_type"] == {"snort": 2}
    planned = soc.run("push", str(rules), "--to", "cert-fr", "--dry-run", "--json")
    assert planned.exit_code == 0, planned.stderr
    report = planned.json()
    assert report["accepted_by_type"] == {"snort": 2}
    assert report["partners"][0]["by_tlp"] == {"amber": 1, "green": 1}


ET_STYLE = r"""# Emerging Threats style rules file
#
# TLP:AMBER
#alert dns $HOME_NET any -> any any (msg:"disabled"; dns.query; content:"off.example"; sid:9; rev:1;)

alert dns $HOME_NET any -> any any (msg:"ET DNS Query to evil"; dns.query; content:"evil.example"; nocase; sid:2000001; rev:2;)
alert tcp $HOME_NET any -> $EXTERNAL_NET 443 (msg:"continued over lines"; \
    flow:established,to_server; content:"|16 03|"; depth:2; \
    sid:2000002; rev:1; metadata:created_at 2026_01_10, tlp green;)
alert users about evil[.]example before Friday
alert<TAB>udp $HOME_NET any -> any 53 (msg:"tabs"; content:"|04|evil"; sid:3; rev:1;)
alert udp $HOME_NET any -> any 53 (msg:"tabs";<TAB>content:"|04|evil"; sid:4; rev:1;)
""".replace("<TAB>", "\t")


def test_a_rules_file_with_comments_disabled_and_continued_rules(tmp_path: Path) -> None:
    path = tmp_path / "et.rules"
    path.write_text(ET_STYLE)
    assert detect_format(path) == "text"
    result = TextReader().read_all(path)
    # The rule's own `tlp green` is weaker than the head's TLP:AMBER, a floor: raised to it.
    assert [(c.line, c.tlp) for c in result.candidates] == [
        (6, None),
        (7, "amber"),
        (10, None),
        (11, None),
        (12, None),
    ]
    first, continued, prose_domain, *tabbed = (c.value for c in result.candidates)
    assert tabbed == ET_STYLE.splitlines()[-2:]  # a tab anywhere: still the whole rule
    assert first.startswith('alert dns $HOME_NET any -> any any (msg:"ET DNS Query to evil"')
    assert continued == (
        'alert tcp $HOME_NET any -> $EXTERNAL_NET 443 (msg:"continued over lines";     '
        'flow:established,to_server; content:"|16 03|"; depth:2;     sid:2000002; rev:1; '
        "metadata:created_at 2026_01_10, tlp green;)"
    )
    # A line of prose that starts with "alert" is no rule: its defanged value is read as before.
    assert prose_domain == "evil[.]example"
    assert result.rejections == []
    assert [(f.line, f.code) for f in result.findings if f.code == "head-tlp-floor"] == [
        (7, "head-tlp-floor")
    ]


def test_a_rule_messages_text_cannot_give_it_a_tlp(ingest_text: IngestText) -> None:
    """A partner's URL in the msg (`...metadata:a,tlp clear...`) is no metadata option."""
    rule = (
        'alert http $HOME_NET any -> any any (msg:"cti-exchange url http://x.example/metadata:a,tlp '
        'clear\\; (TLP:RED, from cert-fr)"; flow:established,to_server; http.host; content:"x.example"; '
        "sid:1; rev:1; metadata:stix_id indicator--1, tlp red, source cert-fr;)"
    )
    unmarked = rule.replace("tlp red", "tlp none")
    result = ingest_text(f"# TLP:AMBER+STRICT\n{rule}\n{unmarked}\n", "x.rules")
    levels = [Tlp.from_marking_id(o["object_marking_refs"][0]) for o in result.objects]
    assert levels == [Tlp.RED, Tlp.AMBER_STRICT]  # its own; none: the head's


PROTOCOLS = ["ip", "tcp", "udp", "dns", "tls", "http"]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(PROTOCOLS), st.text(min_size=1, max_size=40), st.integers(1, 2**31)),
        min_size=1,
        max_size=6,
    )
)
def test_rules_of_any_content_are_never_read_as_csv(
    tmp_path: Path, rules: list[tuple[str, str, int]]
) -> None:
    lines = [
        f'alert {protocol} $HOME_NET any -> any any (msg:"{message(text)}"; content:"{content(text)}"; '
        f"sid:{sid}; rev:1;)"
        for protocol, text, sid in rules
    ]
    path = tmp_path / "any.rules"
    path.write_text("# TLP:GREEN\n" + "\n".join(lines) + "\n", encoding="utf-8")
    assert detect_format(path) == "text"
    result = TextReader().read_all(path)
    assert [c.value for c in result.candidates] == lines
    assert result.rejections == []
