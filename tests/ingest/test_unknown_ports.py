"""An ip:port whose port its source did not know (`95.214.26.97:None` in Unit 42's VenomRAT
list, line 163) is shared as the address alone, with an `unknown-port` warning: it was rejected
for port 'None', and a real C2 address was lost (corpus walkthrough F6)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Agency, CliResult

from .conftest import CORPUS

Cli = Callable[..., CliResult]


def test_venomrat_c2_with_port_none_is_shared_as_its_address(cli: Cli, tmp_path: Path) -> None:
    venomrat = str(CORPUS / "iocs" / "unit42-venomrat_iocs.csv")
    result = cli("validate", "--json", venomrat, home=tmp_path / "none")
    assert result.exit_code == 0, result.stderr  # was 1: "port 'None' is not between 1 and 65535"
    report = result.json()
    assert report["rejected"] == 0
    assert report["accepted_by_type"]["ipv4-addr"] == 1
    (unknown,) = [w for w in report["warnings"] if w["code"] == "unknown-port"]
    assert unknown["line"] == 163 and unknown["value"] == "95.214.26.97:None"
    assert "the port is unknown ('None'): shared as the ipv4-addr alone" in unknown["reason"]


def test_placeholder_ports_in_a_csv(cert_fr: Agency, tmp_path: Path) -> None:
    listed = tmp_path / "c2.csv"
    listed.write_text(
        "Type,C2\n"
        "IPV4:PORT,198.51.100.1:None\n"
        "IPV4:PORT,198.51.100.2:\n"
        "IPV4:PORT,198.51.100.3:null\n"
        "IPV4:PORT,198.51.100.4:-\n"
        "IPV4:PORT,198.51.100.5:N/A\n"
        "IPV6:PORT,[2001:db8::5]:None\n"
        "domain:port,c2.example.org:None\n"
        "IPV4:PORT,198.51.100.6:4449\n"
        "IPV4:PORT,198.51.100.7:abc\n"
    )
    out = tmp_path / "bundle.json"
    result = cert_fr.run("convert", str(listed), "-o", str(out))
    assert result.exit_code == 1, result.stderr  # the one real mistake: a port that is a word
    assert "port 'abc' is not between 1 and 65535" in result.stderr
    assert "198.51.100.7" not in out.read_text()
    patterns = {o["pattern"] for o in json.loads(out.read_text())["objects"] if o["type"] == "indicator"}
    assert patterns == {
        *(f"[ipv4-addr:value = '198.51.100.{n}']" for n in range(1, 6)),
        "[ipv6-addr:value = '2001:db8::5']",
        "[domain-name:value = 'c2.example.org']",
        "[network-traffic:dst_ref.value = '198.51.100.6' AND network-traffic:dst_port = 4449]",
    }
    assert result.stderr.count("the port is unknown") == 5  # the rest summed up, as ever
    assert "the port is unknown (empty)" in result.stderr
