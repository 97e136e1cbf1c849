"""Our plain export, fed back as input, is read as it was written.

Before, its head's list of values not written (`#   ipv4-addr "10.0.0.1": private-ip [broad]:
...`, and `# not written: 1 ipv4-addr: ...`) was taken for a `# IP addresses` section heading:
every domain and URL below it was rejected as "not a valid ipv4-addr". A comment is a section
heading only as a title: not when it quotes something, and of a `Label: text` comment only the
label counts; the export's `# types: mutex 2` line still types a one-type list.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_exchange.readers.text_reader import TextReader
from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put

STORED = [
    ("red.example", "domain-name", "red"),
    ("amber.example", "domain-name", "amber"),
    ("203.0.113.9", "ipv4-addr", "amber"),
    ("198.51.100.0/24", "ipv4-addr", "green"),
    ("http://bad.example/x.php", "url", "green"),
    ("10.0.0.1", "ipv4-addr", "amber"),  # private: not written, listed in the head
    (r"Global\BitStreamSvc", "mutex", "amber"),
]


@pytest.fixture
def soc(cert_in: Agency) -> Agency:
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *(indicator(v, t, tlp=tlp) for v, t, tlp in STORED)])
    accepted = cert_in.run("triage", "accept", *(value for value, _, _ in STORED))
    assert accepted.exit_code == 0, accepted.stderr
    return cert_in


def test_a_plain_export_of_several_types_reads_back(soc: Agency, tmp_path: Path) -> None:
    exported = tmp_path / "out.plain"
    options = ("--type", "domain-name", "--type", "ipv4-addr", "--type", "url", "--i-understand-tlp")
    assert soc.run("export", "--format", "plain", *options, "-o", str(exported)).exit_code == 0
    head = exported.read_text()
    assert '#   ipv4-addr "10.0.0.1": private-ip [broad]' in head
    assert "# not written: 1 ipv4-addr" in head
    result = soc.run("validate", "--json", str(exported))
    assert result.exit_code == 0, result.stdout
    report = result.json()
    assert report["rejections"] == []
    assert report["accepted_by_type"] == {"domain-name": 2, "ipv4-addr": 1, "ipv4-cidr": 1, "url": 1}
    assert report["warnings_by_code"] == {"head-tlp": 1}  # the head's TLP:RED, its strictest


def test_one_type_lists_read_back_typed_by_their_head(soc: Agency, tmp_path: Path) -> None:
    """One file per type: `# types: mutex 1` types a mutex name (never detected from its
    shape); an address list, whose type holds ranges too, is read by the values' shapes."""
    lists = tmp_path / "lists"
    lists.mkdir()
    assert soc.run("export", "--format", "plain", "--i-understand-tlp", "-o", str(lists)).exit_code == 0
    expected = {
        "mutex.txt": {"mutex": 1},
        "ipv4-addr.txt": {"ipv4-addr": 1, "ipv4-cidr": 1},
        "domain-name.txt": {"domain-name": 2},
        "url.txt": {"url": 1},
    }
    for name, accepted in expected.items():
        result = soc.run("validate", "--json", str(lists / name))
        assert result.exit_code == 0, (name, result.stdout)
        assert result.json()["accepted_by_type"] == accepted, name


def test_only_a_title_comment_types_the_lines_below(tmp_path: Path) -> None:
    path = tmp_path / "iocs.txt"
    path.write_text(
        "# Mutexes: dropped by the loader\n"  # the label is the title
        "Global\\x\n"
        "# Note: the domains below are sinkholed\n"  # names no type: the section goes on
        "Global\\y\n"
        '# "URL" was the column name in the source\n'  # quotes something: not a title
        "Global\\z\n"
        "# IP addresses\n"
        "203.0.113.5\n"
    )
    result = TextReader().read_all(path)
    assert [(c.value, c.type_hint) for c in result.candidates] == [
        ("Global\\x", "Mutexes"),
        ("Global\\y", "Mutexes"),
        ("Global\\z", "Mutexes"),
        ("203.0.113.5", "IP addresses"),
    ]
