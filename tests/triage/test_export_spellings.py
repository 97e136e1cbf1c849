"""Lists that tools match as text (plain, CSV) hold each value in canonical form, once:
a partner's `Bücher.Example` is the `xn--bcher-kva.example` DNS carries."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import Agency
from tests.triage.conftest import indicator, put

SPELLINGS = [
    ("Bücher.Example", "domain-name", "cert-fr"),
    ("bücher.example", "domain-name", "cert-uk"),
    ("EVIL.example", "domain-name", "cert-fr"),
    ("evil.example", "domain-name", "cert-uk"),
    ("zürich.example", "domain-name", "cert-fr"),
    ("xn--zrich-kva.example", "domain-name", "cert-uk"),
    ("HTTP://C2.EXAMPLE:80/x", "url", "cert-fr"),
    ("2001:DB8:0:0::1", "ipv6-addr", "cert-fr"),
    ("plain.example", "domain-name", "cert-fr"),
]


@pytest.fixture
def spelt(cert_in: Agency) -> Agency:
    for value, kind, partner in SPELLINGS:
        put(cert_in, [indicator(value, kind, tlp="green")], partner=partner)
    accepted = cert_in.run("triage", "accept", *[v for v, _, _ in SPELLINGS])
    assert accepted.exit_code == 0, accepted.stderr
    return cert_in


def test_plain_lists_hold_each_value_once_in_canonical_form(spelt: Agency) -> None:
    result = spelt.run("export", "--format", "plain", "--allow-broad")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert sorted(lines) == sorted(
        [
            "xn--bcher-kva.example",
            "evil.example",
            "xn--zrich-kva.example",
            "http://c2.example/x",
            "2001:db8::1",
            "plain.example",
        ]
    )


def test_csv_and_json_say_how_many_spellings_were_merged(spelt: Agency, tmp_path: Path) -> None:
    result = spelt.run("export", "--format", "csv", "--allow-broad")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(line for line in io.StringIO(result.stdout) if not line.startswith("#")))
    values = [r[0] for r in rows[1:]]
    assert len(values) == len(set(values)) == 6 and "xn--bcher-kva.example" in values
    assert "Bücher.Example" not in result.stdout
    target = tmp_path / "x.txt"
    described = spelt.run("export", "--format", "plain", "--allow-broad", "--json", "-o", str(target))
    assert described.exit_code == 0, described.stderr
    assert described.json()["files"][0]["merged_spellings"] == 3


def test_misp_events_hold_each_value_once_in_canonical_form(spelt: Agency) -> None:
    result = spelt.run("export", "--format", "misp", "--allow-broad")
    assert result.exit_code == 0, result.stderr
    attributes = json.loads(result.stdout)["Event"]["Attribute"]
    values = [a["value"] for a in attributes]
    assert len(values) == len(set(values)) == 6
    assert "xn--bcher-kva.example" in values and "2001:db8::1" in values
    assert len({a["uuid"] for a in attributes}) == 6


def test_ids_rules_give_one_rule_for_all_spellings(spelt: Agency) -> None:
    # The spellings give the same rule (its content is the wire form): written once, with the
    # first spelling's sid (tests/triage/test_ids_rules_review.py).
    result = spelt.run("export", "--format", "suricata", "--allow-broad")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count('dns.query; dotprefix; content:".evil.example"') == 1


def test_file_names_stay_as_written(cert_in: Agency) -> None:
    # normalise() keeps a file name's last path component: another file, not another spelling.
    values = ["C:\\Users\\Public\\evil.exe", "evil.exe"]
    put(cert_in, [indicator(value, "file-name", tlp="green") for value in values])
    assert cert_in.run("triage", "accept", *values).exit_code == 0
    result = cert_in.run("export", "--format", "plain", "--allow-broad")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert sorted(lines) == sorted(values)
