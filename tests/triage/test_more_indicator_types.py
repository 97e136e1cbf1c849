"""Autonomous systems, e-mail subjects, ssdeep hashes, X.509 certificate fingerprints and MAC
addresses: pushed from a MISP event, listed in triage by their own types and written into the
exports (plain lists, CSV, MISP, STIX); into network rules only where a rule can match them
(a certificate's SHA-1 fingerprint in Suricata).

Before, the MISP attributes were rejected at ingest, and a partner's
`[autonomous-system:number = 13335]` reached the store with no IOC type (its integer literal
is not a quoted string): no list, filter or export showed it. A certificate's fingerprint must
never be listed or exported as a file hash.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from cti_exchange.store import migrations, text_index
from cti_exchange.store.store import Store
from cti_exchange.store.triage_queries import PageRequest, TriageFilter, list_page
from tests.conftest import Agency
from tests.exchange.conftest import Exchange
from tests.ingest.conftest import oasis_validate
from tests.triage.conftest import csv_export_round_trip, indicator, projected_after_upgrade, put

SSDEEP = "96:s4Ud1Lj96tHHlZDrwciQmA+4uy1I0G4HYuL8N3TzS8QsO/wqWXLcMSx:sF1LjEtHHlZDrJzrhuyZvHYm8tKp/RWO"
CERT_SHA1 = "4aa3667682cb6b23bbc3584723a463a778a4a118"
CERT_SHA1_PAIRS = "4a:a3:66:76:82:cb:6b:23:bb:c3:58:47:23:a4:63:a7:78:a4:a1:18"
CERT_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SUBJECT = "Re: Invoice #2026-11 overdue"
MAC = "00:1a:2b:3c:4d:5e"

EVENT = {
    "Event": {
        "uuid": "5be1e65d-8198-497b-bdf5-5ec20a016219",
        "info": "Phishing wave",
        "Tag": [{"name": "tlp:green"}],
        "Attribute": [
            {"uuid": "a1", "type": "AS", "value": "AS64496", "to_ids": True},
            {"uuid": "a2", "type": "email-subject", "value": SUBJECT, "to_ids": True},
            {"uuid": "a3", "type": "ssdeep", "value": SSDEEP, "to_ids": True},
            {"uuid": "a4", "type": "x509-fingerprint-sha1", "value": CERT_SHA1_PAIRS.upper(), "to_ids": True},
            {"uuid": "a5", "type": "x509-fingerprint-sha256", "value": CERT_SHA256, "to_ids": True},
            {"uuid": "a6", "type": "mac-address", "value": "00-1A-2B-3C-4D-5E", "to_ids": True},
        ],
    }
}
STORED = {
    ("autonomous-system", "64496"),
    ("email-subject", SUBJECT),
    ("ssdeep", SSDEEP),
    ("x509-sha1", CERT_SHA1),
    ("x509-sha256", CERT_SHA256),
    ("mac-addr", MAC),
}
PATTERNS = {
    "[autonomous-system:number = 64496]",
    f"[email-message:subject = '{SUBJECT}']",
    f"[file:hashes.SSDEEP = '{SSDEEP}']",
    f"[x509-certificate:hashes.'SHA-1' = '{CERT_SHA1}']",
    f"[x509-certificate:hashes.'SHA-256' = '{CERT_SHA256}']",
    f"[mac-addr:value = '{MAC}']",
}


def _lines(path: Path) -> list[str]:
    return sorted(line for line in path.read_text().splitlines() if not line.startswith("#"))


def _listed(agency: Agency, *args: str) -> set[tuple[str, str]]:
    result = agency.run("triage", "list", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return {(item["ioc_type"], item["value"]) for item in result.json()["items"]}


def test_a_misp_event_pushed_listed_and_exported_by_the_partner(exchange: Exchange, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps(EVENT))
    pushed = exchange.fr.run("push", str(event), "--to", "cert-in", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    assert pushed.json()["accepted_by_type"] == {
        "autonomous-system": 1,
        "email-subject": 1,
        "ssdeep": 1,
        "x509-sha1": 1,
        "x509-sha256": 1,
        "mac-addr": 1,
    }
    assert exchange.india.run("pull").exit_code == 0

    india = exchange.india
    assert _listed(india) == STORED
    for ioc_type, value in STORED:
        assert _listed(india, "--type", ioc_type) == {(ioc_type, value)}
    # A certificate's fingerprint is not a file hash, in either direction.
    assert _listed(india, "--type", "sha1", "--type", "sha256") == set()
    assert _listed(india, "--search", "invoice #2026") == {("email-subject", SUBJECT)}
    assert _listed(india, "--search", "64496") == {("autonomous-system", "64496")}
    assert india.run("triage", "accept", *[value for _, value in STORED]).exit_code == 0

    out = tmp_path / "lists"
    out.mkdir()
    assert india.run("export", "--format", "plain", "-o", str(out)).exit_code == 0
    for ioc_type, value in STORED:
        assert _lines(out / f"{ioc_type}.txt") == [value]
    assert _lines(out / "sha1.txt") == []

    rows, accepted = csv_export_round_trip(india, tmp_path)
    assert rows == STORED
    assert accepted == dict.fromkeys(("autonomous-system", "email-subject", "ssdeep", "mac-addr"), 1) | {
        "x509-sha1": 1,
        "x509-sha256": 1,
    }

    assert india.run("export", "--format", "misp", "-o", str(tmp_path / "misp.json")).exit_code == 0
    attributes = json.loads((tmp_path / "misp.json").read_text())["Event"]["Attribute"]
    assert {(a["type"], a["category"], a["value"]) for a in attributes} == {
        ("AS", "Network activity", "64496"),
        ("email-subject", "Payload delivery", SUBJECT),
        ("ssdeep", "Payload delivery", SSDEEP),
        ("x509-fingerprint-sha1", "Network activity", CERT_SHA1),
        ("x509-fingerprint-sha256", "Network activity", CERT_SHA256),
        ("mac-address", "Network activity", MAC),
    }

    assert india.run("export", "--format", "stix", "-o", str(tmp_path / "out.json")).exit_code == 0
    bundle = json.loads((tmp_path / "out.json").read_text())
    oasis_validate(bundle)
    assert {o["pattern"] for o in bundle["objects"] if o["type"] == "indicator"} == PATTERNS


def _stored(pattern: str, value: str) -> dict[str, Any]:
    """A partner's indicator with `pattern` (the conftest helper quotes every value)."""
    obj = indicator(value)
    obj["pattern"] = pattern
    return obj


def _store_one_of_each(agency: Agency) -> None:
    put(agency, [_stored(pattern, pattern) for pattern in PATTERNS])


def test_suricata_writes_a_rule_for_a_certificate_sha1_and_says_why_not_for_the_rest(
    cert_in: Agency, tmp_path: Path
) -> None:
    _store_one_of_each(cert_in)
    rules_path = tmp_path / "out.rules"
    result = cert_in.run("export", "--any-status", "--format", "suricata", "--json", "-o", str(rules_path))
    assert result.exit_code == 0, result.stderr
    text = rules_path.read_text()
    (rule,) = [line for line in text.splitlines() if line.startswith("alert")]
    head, _, options = rule.partition(" (")
    assert head == "alert tls any any -> $HOME_NET any"
    assert options.startswith('msg:"cti-exchange x509-sha1 ' + CERT_SHA1 + ' (TLP:AMBER, from cert-fr)"; ')
    assert (
        f'; flow:established,to_client; tls.cert_fingerprint; content:"{CERT_SHA1_PAIRS}"; '
        "classtype:trojan-activity; sid:"
    ) in options
    assert result.json()["files"][0]["values"] == 1
    for reason in (
        "not written: 1 autonomous-system: an autonomous system is the set of prefixes it announces",
        "not written: 1 email-subject: no rule keyword matches a mail's subject",
        "not written: 1 ssdeep: a fuzzy hash is compared by similarity",
        "not written: 1 x509-sha256: Suricata's tls.cert_fingerprint compares SHA-1 fingerprints only",
        "not written: 1 mac-addr: a MAC address never crosses a router",
    ):
        assert reason in text, reason

    snort_path = tmp_path / "snort.rules"
    snort = cert_in.run("export", "--any-status", "--format", "snort", "-o", str(snort_path))
    assert snort.exit_code == 0, snort.stderr
    snort_text = snort_path.read_text()
    assert not [line for line in snort_text.splitlines() if line.startswith("alert")]
    assert "not written: 1 x509-sha1: Snort 2.9 has no keyword for a certificate's fingerprint" in snort_text


def test_export_writes_partner_spellings_canonically_and_refuses_broad_or_invalid_values(
    cert_in: Agency, tmp_path: Path
) -> None:
    put(
        cert_in,
        [
            _stored("[autonomous-system:number = 64512]", "private"),
            _stored("[autonomous-system:number = 64500]", "documentation"),
            _stored(f"[x509-certificate:hashes.'SHA-1' = '{CERT_SHA1_PAIRS.upper()}']", "colons"),
            _stored("[mac-addr:value = '00-1A-2B-3C-4D-5F']", "dashes"),
            _stored("[mac-addr:value = 'ff:ff:ff:ff:ff:ff']", "broadcast"),
            _stored("[mac-addr:value = '00:1a:2b']", "short"),
            _stored("[email-message:subject = 'Invoice\nBCC: x']", "two lines"),
            _stored("[email-message:subject = ' padded']", "padded"),
            _stored("[file:hashes.SSDEEP = '3::']", "empty"),
        ],
    )
    out = tmp_path / "out.txt"
    result = cert_in.run("export", "--any-status", "--json", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert _lines(out) == sorted(["64500", CERT_SHA1, "00:1a:2b:3c:4d:5f"])
    refused = {r["value"]: (r["code"], r["broad"]) for r in result.json()["files"][0]["refused_values"]}
    assert refused == {
        "64512": ("private-asn", True),
        "ff:ff:ff:ff:ff:ff": ("reserved-mac", True),
        "00:1a:2b": ("invalid-value", False),
        "Invoice\nBCC: x": ("unprintable", False),
        " padded": ("whitespace", False),
        "3::": ("invalid-value", False),
    }
    allowed = cert_in.run("export", "--any-status", "--allow-broad", "--type", "autonomous-system")
    assert allowed.stdout.splitlines()[-2:] == ["64500", "64512"]


def test_an_older_store_gets_these_indicators_projected(tmp_path: Path) -> None:
    """MISP's STIX export and other producers wrote these patterns before cti-exchange did: a
    store of version 10 kept them without an IOC type; version 11 projects them."""
    path = tmp_path / "store.sqlite"
    put(path, [_stored(pattern, pattern) for pattern in PATTERNS])
    version, rows = projected_after_upgrade(path, stored_by=10)
    assert version == migrations.MIGRATIONS[-1][0]  # 11 and later
    assert set(rows) == STORED


def test_the_upgrade_forgets_a_text_index_that_could_not_see_the_new_values(tmp_path: Path) -> None:
    """A store of version 10 searched once has a text index of its rows as they were (no value
    for these patterns). Version 11 fills the values in place: the index, kept, never found
    them (`--search 13335` gave nothing while `triage list` showed AS 13335). It is dropped, and
    the next search builds it from the projected rows."""
    path = tmp_path / "store.sqlite"
    put(path, [_stored(pattern, "lure " + pattern) for pattern in PATTERNS])
    old = sqlite3.connect(path, isolation_level=None)  # as version 10 left it, then searched
    try:
        old.execute("DELETE FROM schema_migrations WHERE version > 10")
        old.execute("UPDATE objects SET ioc_type = NULL, value = NULL")
        text_index.catch_up(old)
        assert text_index.indexed_through(old) is not None
    finally:
        old.close()
    with Store(path) as store:
        conn = store.db.conn
        assert (
            store.db.schema_version == migrations.MIGRATIONS[-1][0]
            and text_index.indexed_through(conn) is None
        )
        text_index.catch_up(conn)
        for value in ("64496", MAC[:8], CERT_SHA1[:12], SUBJECT.split()[0]):
            rows, _ = list_page(conn, TriageFilter(text=value), PageRequest())
            assert [row.value for row in rows if row.value is not None], value


def test_the_search_fallback_reads_partners_spellings_of_macs_and_fingerprints(tmp_path: Path) -> None:
    """Partners' values are stored as spelled (`AA-BB-...`, `aabb.ccdd...`, `AB:CD:...`): the
    search's fallback, which skips types whose values cannot hold the text, skipped these."""
    path = tmp_path / "store.sqlite"
    spelled = {
        "[mac-addr:value = 'AA-BB-CC-DD-EE-F0']": "aa-bb-cc",
        "[mac-addr:value = 'aabb.ccdd.eef2']": "aabb.cc",
        f"[x509-certificate:hashes.'SHA-1' = '{CERT_SHA1_PAIRS.upper()}']": CERT_SHA1_PAIRS[:8],
    }
    put(path, [_stored(pattern, "x") for pattern in spelled])
    # Received later: an ordered scan meets these first and gives up (budget 0) before the rest.
    others = [indicator(f"198.51.{n // 250}.{n % 250}") for n in range(3000)]
    put(path, others, received_at="2026-02-10T12:00:00.000Z")
    with Store(path) as store:
        for pattern, text in spelled.items():
            rows, _ = list_page(
                store.db.conn, TriageFilter(text=text), PageRequest(scan_budget=0.0, text_index=False)
            )
            assert [row.object_id for row in rows] and rows[0].value is not None, (pattern, text)
