"""Indicators of a host and a port (`1.2.3.4:443`, `[2001:db8::1]:443`, `c2.example:8080`):
read from an IOC list, shared over TAXII, listed in triage and written into every export.

C2 lists give the port because it is what makes a shared relay specific
(`2.tcp.eu.ngrok.io:12002`, from tests/data/corpus: Unit 42's VenomRAT list). Before, a name
with a port was not recognised, and address-and-port indicators reached the partner but no
blocklist or rule: the store gave them no IOC type.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from stix2validator import ValidationOptions, validate_instance

from cti_exchange.store.migrations import MIGRATIONS
from tests.conftest import Agency
from tests.exchange.conftest import Exchange
from tests.triage.conftest import csv_export_round_trip, indicator, projected_after_upgrade, put, store_path

VALUES = ["198.51.100.23:4444", "[2001:db8::23]:8443", "2.tcp.eu.ngrok.io:12002", "C2.Example:08080"]
STORED = {
    ("ipv4-port", "198.51.100.23:4444"),
    ("ipv6-port", "[2001:db8::23]:8443"),
    ("domain-port", "2.tcp.eu.ngrok.io:12002"),
    ("domain-port", "c2.example:8080"),
}


def test_host_and_port_from_a_list_to_the_partners_exports(exchange: Exchange, tmp_path: Path) -> None:
    iocs = tmp_path / "c2.txt"
    iocs.write_text("# C2 servers\n" + "\n".join(v.replace(".", "[.]") for v in VALUES) + "\n")
    pushed = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--tlp", "green", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    assert pushed.json()["accepted_by_type"] == {"ipv4-port": 1, "ipv6-port": 1, "domain-port": 2}
    assert exchange.india.run("pull").exit_code == 0

    listed = exchange.india.run("triage", "list", "--json").json()["items"]
    assert {(item["ioc_type"], item["value"]) for item in listed} == STORED
    by_type = exchange.india.run("triage", "list", "--type", "domain-port", "--json").json()["items"]
    assert {item["value"] for item in by_type} == {"2.tcp.eu.ngrok.io:12002", "c2.example:8080"}
    found = exchange.india.run("triage", "list", "--search", "ngrok", "--json").json()["items"]
    assert [item["value"] for item in found] == ["2.tcp.eu.ngrok.io:12002"]
    assert exchange.india.run("triage", "accept", *[value for _, value in STORED]).exit_code == 0

    out = tmp_path / "lists"
    out.mkdir()
    assert exchange.india.run("export", "--format", "plain", "-o", str(out)).exit_code == 0
    assert (out / "ipv4-port.txt").read_text().splitlines()[-1] == "198.51.100.23:4444"
    assert (out / "ipv6-port.txt").read_text().splitlines()[-1] == "[2001:db8::23]:8443"
    assert sorted(
        line for line in (out / "domain-port.txt").read_text().splitlines() if not line.startswith("#")
    ) == [
        "2.tcp.eu.ngrok.io:12002",
        "c2.example:8080",
    ]

    rules = exchange.india.run("export", "--format", "suricata", "--json", "-o", str(tmp_path / "c2.rules"))
    assert rules.exit_code == 0, rules.stderr
    headers = [
        line.split(" (")[0]
        for line in (tmp_path / "c2.rules").read_text().splitlines()
        if line.startswith("alert")
    ]
    assert sorted(headers) == [
        "alert tcp $HOME_NET any -> 198.51.100.23 4444",
        "alert tcp $HOME_NET any -> [2001:db8::23] 8443",
        "alert udp $HOME_NET any -> 198.51.100.23 4444",
        "alert udp $HOME_NET any -> [2001:db8::23] 8443",
    ]
    # A name-only rule would match every tunnel on the relay: said, not written.
    assert "domain-port" in json.dumps(rules.json())
    assert "a rule cannot tie a name to a port" in (tmp_path / "c2.rules").read_text()

    assert exchange.india.run("export", "--format", "misp", "-o", str(tmp_path / "misp.json")).exit_code == 0
    attributes = json.loads((tmp_path / "misp.json").read_text())["Event"]["Attribute"]
    assert {(a["type"], a["value"]) for a in attributes} == {
        ("ip-dst|port", "198.51.100.23|4444"),
        ("ip-dst|port", "2001:db8::23|8443"),
        ("hostname|port", "2.tcp.eu.ngrok.io|12002"),
        ("hostname|port", "c2.example|8080"),
    }
    stix = exchange.india.run("export", "--format", "stix")
    assert stix.exit_code == 0, stix.stderr
    bundle = json.loads(stix.stdout)
    results = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert results.is_valid, [str(e) for e in results.errors][:5]
    assert len([o for o in bundle["objects"] if o["type"] == "indicator"]) == len(STORED)

    rows, accepted = csv_export_round_trip(exchange.india, tmp_path)
    assert rows == STORED
    assert accepted == {"ipv4-port": 1, "ipv6-port": 1, "domain-port": 2}


def test_a_reserved_address_with_a_port_stays_out_of_the_rules(cert_in: Agency, tmp_path: Path) -> None:
    put(
        cert_in,
        [
            _port_indicator("10.1.2.3", 4444),
            _port_indicator("198.51.100.9", 99999),
            _port_indicator("198.51.100.10", 443),
        ],
    )
    with sqlite3.connect(store_path(cert_in)) as conn:
        projected = sorted(
            conn.execute("SELECT ioc_type, value FROM objects WHERE type = 'indicator'").fetchall(), key=str
        )
    # A port beyond 65535 is no host-and-port indicator: kept as a pattern, never exported.
    assert projected == [("ipv4-port", "10.1.2.3:4444"), ("ipv4-port", "198.51.100.10:443"), (None, None)]
    assert cert_in.run("triage", "accept", "10.1.2.3:4444", "198.51.100.10:443").exit_code == 0
    exported = cert_in.run("export", "--format", "snort", "--json", "-o", str(tmp_path / "x.rules"))
    assert exported.exit_code == 0, exported.stderr
    rules = [line for line in (tmp_path / "x.rules").read_text().splitlines() if line.startswith("alert")]
    assert [rule.split(" (")[0] for rule in rules] == [
        "alert tcp $HOME_NET any -> 198.51.100.10 443",
        "alert udp $HOME_NET any -> 198.51.100.10 443",
    ]
    assert "10.1.2.3:4444" in json.dumps(exported.json())  # refused as private, and listed


def _port_indicator(host: str, port: int, ref_type: str | None = None) -> dict[str, Any]:
    obj = indicator(host, "ipv4-addr", tlp="green")
    stated = f"network-traffic:dst_ref.type = '{ref_type}' AND " if ref_type else ""
    obj["pattern"] = (
        f"[{stated}network-traffic:dst_ref.value = '{host}' AND network-traffic:dst_port = {port}]"
    )
    obj["name"] = f"{host}:{port}"
    return obj


def test_an_older_store_gets_its_host_and_port_indicators_projected(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    put(path, [_port_indicator("198.51.100.7", 8080), _port_indicator("c2.example", 443, "domain-name")])
    version, rows = projected_after_upgrade(path, stored_by=8)
    assert version == MIGRATIONS[-1][0]
    assert rows == [("domain-port", "c2.example:443"), ("ipv4-port", "198.51.100.7:8080")]


def test_a_stix_bundle_with_a_name_and_port_is_checked_as_a_name(cert_in: Agency, tmp_path: Path) -> None:
    good = _port_indicator("c2.example", 8080, "domain-name")
    bad = _port_indicator("c2..example", 8080)
    bundle = tmp_path / "bundle.json"
    bundle.write_text(
        json.dumps({"type": "bundle", "id": f"bundle--{good['id'][11:]}", "objects": [good, bad]})
    )
    converted = cert_in.run("convert", str(bundle), "-o", str(tmp_path / "out.json"), "--json")
    assert converted.exit_code == 0, converted.stderr
    # Checked as a name (it was checked as an IPv4 address: every name was "suspect").
    suspect = [w for w in converted.json()["warnings"] if w["code"] == "suspect-pattern-value"]
    assert len(suspect) == 1 and "c2..example" in suspect[0]["reason"], suspect
    assert "empty label" in suspect[0]["reason"]
