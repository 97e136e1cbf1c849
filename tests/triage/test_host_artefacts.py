"""Mutex names and Windows registry keys (host artefacts): read from an IOC list, shared over
TAXII, listed in triage and written into the exports host-based tools take (plain lists, CSV,
MISP, STIX), never into network rules.

The values are ESET's Stantinko artefacts (tests/data/corpus/iocs/eset-stantinko-README.adoc,
"Windows Artifacts"). Before, ingest rejected every one of them as "not a recognised
indicator", and a partner's `[mutex:name = ...]` indicators reached the store with no IOC type:
no list, filter or export showed them.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Agency
from tests.exchange.conftest import Exchange
from tests.ingest.conftest import oasis_validate
from tests.triage.conftest import csv_export_round_trip, indicator, projected_after_upgrade, put

LIST = "\n".join(
    [
        "# Mutexes",
        r"Global\BitStreamSvc",
        "3,141592653589793238462643",
        "==== Windows Registry keys",
        "HKLM\\SYSTEM\\CurrentControlSet\\services\\Bonjoiur Host Controller\\",
        r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\svchost32",
        "",
    ]
)
BONJOIUR = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\services\Bonjoiur Host Controller"
RUN_ENTRY = r"HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run\svchost32"
STORED = {
    ("mutex", r"Global\BitStreamSvc"),
    ("mutex", "3,141592653589793238462643"),
    ("windows-registry-key", BONJOIUR),
    ("windows-registry-key", RUN_ENTRY),
}


def _lines(path: Path) -> list[str]:
    return sorted(line for line in path.read_text().splitlines() if not line.startswith("#"))


def test_mutexes_and_registry_keys_from_a_list_to_the_partners_exports(
    exchange: Exchange, tmp_path: Path
) -> None:
    iocs = tmp_path / "stantinko.txt"
    iocs.write_text(LIST)
    pushed = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--tlp", "green", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    assert pushed.json()["accepted_by_type"] == {"mutex": 2, "windows-registry-key": 2}
    assert exchange.india.run("pull").exit_code == 0

    listed = exchange.india.run("triage", "list", "--json").json()["items"]
    assert {(item["ioc_type"], item["value"]) for item in listed} == STORED
    mutexes = exchange.india.run("triage", "list", "--type", "mutex", "--json").json()["items"]
    assert {item["value"] for item in mutexes} == {r"Global\BitStreamSvc", "3,141592653589793238462643"}
    found = exchange.india.run("triage", "list", "--search", "bonjoiur host", "--json").json()["items"]
    assert [item["value"] for item in found] == [BONJOIUR]
    assert exchange.india.run("triage", "accept", *[value for _, value in STORED]).exit_code == 0

    out = tmp_path / "lists"
    out.mkdir()
    assert exchange.india.run("export", "--format", "plain", "-o", str(out)).exit_code == 0
    assert _lines(out / "mutex.txt") == ["3,141592653589793238462643", r"Global\BitStreamSvc"]
    assert _lines(out / "windows-registry-key.txt") == sorted([BONJOIUR, RUN_ENTRY])

    rows, accepted = csv_export_round_trip(exchange.india, tmp_path)
    assert rows == STORED
    assert accepted == {"mutex": 2, "windows-registry-key": 2}

    assert exchange.india.run("export", "--format", "misp", "-o", str(tmp_path / "misp.json")).exit_code == 0
    attributes = json.loads((tmp_path / "misp.json").read_text())["Event"]["Attribute"]
    assert {(a["type"], a["category"], a["value"]) for a in attributes} == {
        ("mutex", "Artifacts dropped", r"Global\BitStreamSvc"),
        ("mutex", "Artifacts dropped", "3,141592653589793238462643"),
        ("regkey", "Artifacts dropped", BONJOIUR),
        ("regkey", "Artifacts dropped", RUN_ENTRY),
    }

    assert exchange.india.run("export", "--format", "stix", "-o", str(tmp_path / "out.json")).exit_code == 0
    bundle = json.loads((tmp_path / "out.json").read_text())
    oasis_validate(bundle)
    assert {o["pattern"] for o in bundle["objects"] if o["type"] == "indicator"} == {
        r"[mutex:name = 'Global\\BitStreamSvc']",
        "[mutex:name = '3,141592653589793238462643']",
        "[windows-registry-key:key = '" + BONJOIUR.replace("\\", "\\\\") + "']",
        "[windows-registry-key:key = '" + RUN_ENTRY.replace("\\", "\\\\") + "']",
    }

    rules_path = tmp_path / "host.rules"
    rules = exchange.india.run("export", "--format", "suricata", "--json", "-o", str(rules_path))
    assert rules.exit_code == 0, rules.stderr
    text = rules_path.read_text()
    assert not [line for line in text.splitlines() if line.startswith("alert")]
    # Said, not silently dropped: no network rule can see a host artefact.
    skipped = rules.json()["files"][0]
    assert skipped["values"] == 0
    for kind in ("mutex", "windows-registry-key"):
        assert f"not written: 2 {kind}: a host artefact, never seen on the network" in text


def test_export_refuses_control_characters_and_system_keys_and_writes_keys_in_full(
    cert_in: Agency, tmp_path: Path
) -> None:
    put(
        cert_in,
        [
            indicator(r"Global\Wsaudio_Initialize", "mutex"),
            indicator("Global\\a\x0b0.0.0.0/0", "mutex"),  # VT: many tools split a line there
            indicator("Global\\a\nb", "mutex"),
            indicator(" Global\\padded", "mutex"),
            indicator("HKLM\\SYSTEM\\CurrentControlSet\\Services\\wsaudio\\", "windows-registry-key"),
            indicator("HKLM\\SOFTWARE\\a\u2028b", "windows-registry-key"),
            indicator(r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run", "windows-registry-key"),
        ],
    )
    out = tmp_path / "host.txt"
    result = cert_in.run("export", "--any-status", "--json", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    # A partner's abbreviated hive is written in full, as STIX and host tools read it.
    assert _lines(out) == [
        r"Global\Wsaudio_Initialize",
        r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\wsaudio",
    ]
    refused = {r["value"]: (r["code"], r["broad"]) for r in result.json()["files"][0]["refused_values"]}
    assert refused == {
        "Global\\a\x0b0.0.0.0/0": ("unprintable", False),
        "Global\\a\nb": ("unprintable", False),
        " Global\\padded": ("whitespace", False),
        "HKLM\\SOFTWARE\\a\u2028b": ("unprintable", False),
        r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run": ("system-registry-key", True),
    }
    head = out.read_text()
    assert '#   mutex "Global\\a\\x0b0.0.0.0/0": unprintable: ' in head  # escaped, one line
    allowed = cert_in.run("export", "--any-status", "--allow-broad", "--type", "windows-registry-key")
    assert r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run" in allowed.stdout.splitlines()


def test_an_older_store_gets_its_mutex_and_registry_key_indicators_projected(tmp_path: Path) -> None:
    """Other producers (MISP's STIX export) wrote these patterns before cti-exchange did: a
    store of version 9 kept them without an IOC type; version 10 projects them."""
    path = tmp_path / "store.sqlite"
    put(path, [indicator(r"Global\ThemeControl", "mutex"), indicator(BONJOIUR, "windows-registry-key")])
    version, rows = projected_after_upgrade(path, stored_by=9)
    assert version >= 10  # and the later migrations
    assert rows == [("mutex", r"Global\ThemeControl"), ("windows-registry-key", BONJOIUR)]
