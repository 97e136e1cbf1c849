"""Audit regressions for `export`: the CSV head as spreadsheet rows, IDS rules for what is on
the wire, and identities in a STIX bundle under the TLP gate."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from stix2validator import ValidationOptions, validate_instance

from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put

FORMULA = ("=", "+", "-", "@")


def _export(agency: Agency, *args: str) -> str:
    result = agency.run("export", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_refused_values_in_the_csv_head_cannot_open_a_formula_cell(cert_in: Agency) -> None:
    hostile = [
        'x.example,=HYPERLINK("http://attacker.example"),',
        "y.example;=1+2;",
        '"z.example",@SUM(1+1)',
    ]
    put(cert_in, [indicator(v, tlp="green") for v in [*hostile, "ok.example"]])
    assert cert_in.run("triage", "accept", *hostile, "ok.example").exit_code == 0
    text = _export(cert_in, "--format", "csv")
    assert text.count("not written, invalid or overly broad") == 1  # they are listed in the head
    for delimiter in (",", ";"):
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            for cell in row:
                assert not cell.lstrip().startswith(FORMULA), (delimiter, row)
    rows = list(csv.reader(line for line in text.splitlines() if not line.startswith("#")))
    assert [r[0] for r in rows] == ["value", "ok.example"]


def test_ids_rules_match_names_and_hosts_as_the_traffic_carries_them(cert_in: Agency) -> None:
    values = [
        ("Bücher.Example", "domain-name"),
        ("http://Bücher.example/ä?x=1", "url"),
        ("HTTP://EVIL.EXAMPLE:80/x", "url"),
    ]
    put(cert_in, [indicator(v, t, tlp="green") for v, t in values])
    assert cert_in.run("triage", "accept", *[v for v, _ in values]).exit_code == 0
    suricata = _export(cert_in, "--format", "suricata")
    assert 'dns.query; dotprefix; content:".xn--bcher-kva.example"' in suricata
    assert 'tls.sni; dotprefix; content:".xn--bcher-kva.example"' in suricata
    assert 'http.host; content:"xn--bcher-kva.example"' in suricata
    # The path as the engines' normalised URI buffer holds it: decoded, not %-escaped.
    assert 'http.uri; content:"/|C3 A4|?x=1"' in suricata
    assert 'http.host; content:"evil.example"; startswith; endswith' in suricata
    # (msg names the value in its canonical spelling, as the plain export writes it.)
    assert "|C3 BC|" not in suricata and "|3A|80" not in suricata and 'content:"/%C3%A4' not in suricata
    snort = _export(cert_in, "--format", "snort")
    assert 'content:"|0D|xn--bcher-kva|07|example|00|"' in snort
    assert 'content:"Host|3A| xn--bcher-kva.example|0D 0A|"' in snort
    assert 'content:"Host|3A| evil.example|0D 0A|"' in snort
    assert 'content:"/|C3 A4|?x=1"; http_uri;' in snort
    assert "|C3 BC|" not in snort and "|3A|80" not in snort


def test_ids_rules_match_percent_escaped_urls_in_the_raw_uri_buffer(cert_in: Agency) -> None:
    # http.uri / http_uri hold the URI %-decoded: content with a `%` escape never matches there.
    escaped, plain = "http://evil.example/a%20b?q=%2e", "http://evil.example/plain?x=1"
    put(cert_in, [indicator(v, "url", tlp="green") for v in (escaped, plain)])
    assert cert_in.run("triage", "accept", escaped, plain).exit_code == 0
    suricata = _export(cert_in, "--format", "suricata")
    assert 'http.uri.raw; content:"/a%20b?q=%2e"; startswith; endswith;' in suricata
    assert 'http.uri; content:"/plain?x=1"; startswith; endswith;' in suricata
    assert 'http.uri; content:"/a%20b' not in suricata
    assert suricata.count('http.host; content:"evil.example"; startswith; endswith;') == 2
    snort = _export(cert_in, "--format", "snort")
    assert 'content:"/a%20b?q=%2e"; http_raw_uri;' in snort
    assert 'content:"/plain?x=1"; http_uri;' in snort
    assert snort.count('content:"Host|3A| evil.example|0D 0A|"; http_header; nocase;') == 2
    # Sids keep following the stored value: the same in a later export.
    sids = [re.findall(r" sid:(\d+);", text) for text in (suricata, snort)]
    assert sids == [
        re.findall(r" sid:(\d+);", _export(cert_in, "--format", f)) for f in ("suricata", "snort")
    ]


def _bundle(agency: Agency, *args: str) -> Any:
    return json.loads(_export(agency, "--format", "stix", *args))


def _check_markings_resolve(bundle: Any) -> None:
    objects = bundle["objects"]
    defined = {o["id"] for o in objects if o["type"] == "marking-definition"}
    for obj in objects:
        assert set(obj.get("object_marking_refs", [])) <= defined, obj["id"]


def test_a_red_creator_identity_stays_out_of_a_green_stix_bundle(cert_in: Agency) -> None:
    secret = {
        **identity(FR_IDENTITY, "CERT-FR duty officer"),
        "contact_information": "duty officer, direct line",
        "object_marking_refs": [Tlp.RED.marking_id],
    }
    put(cert_in, [secret, indicator("green.example", tlp="green")])
    assert cert_in.run("triage", "accept", "green.example").exit_code == 0
    for args in ((), ("--i-understand-tlp",)):
        bundle = _bundle(cert_in, *args)
        ids = [o["id"] for o in bundle["objects"]]
        assert FR_IDENTITY not in ids and Tlp.RED.marking_id not in ids
        _check_markings_resolve(bundle)


def test_a_creator_identity_as_strict_as_the_values_is_kept_with_its_marking(cert_in: Agency) -> None:
    amber = {**identity(FR_IDENTITY, "CERT-FR"), "object_marking_refs": [Tlp.AMBER.marking_id]}
    put(cert_in, [amber, indicator("amber.example", tlp="amber"), indicator("green.example", tlp="green")])
    assert cert_in.run("triage", "accept", "amber.example", "green.example").exit_code == 0
    bundle = _bundle(cert_in)
    ids = [o["id"] for o in bundle["objects"]]
    assert FR_IDENTITY in ids
    _check_markings_resolve(bundle)
    # Without the amber value the bundle is green, and the amber identity stays out.
    green_only = _bundle(cert_in, "--max-tlp", "green")
    assert FR_IDENTITY not in [o["id"] for o in green_only["objects"]]
    _check_markings_resolve(green_only)


def test_a_statement_marking_the_indicators_reference_travels_with_them(cert_in: Agency) -> None:
    statement = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--4d7b1ba6-52c4-4d6f-a1b3-6a8d5d7d2f11",
        "created": "2026-01-10T10:00:00.000Z",
        "created_by_ref": FR_IDENTITY,
        "definition_type": "statement",
        "definition": {"statement": "Copyright 2026 CERT-FR"},
    }
    marked = indicator("marked.example", tlp="green")
    marked["object_marking_refs"] = [*marked["object_marking_refs"], statement["id"]]
    # A marking the store never received stays a reference only: nothing to add, no error
    # (the store counts content marked in a way it cannot read as TLP:RED).
    unknown = "marking-definition--0a0a0a0a-0000-4000-8000-000000000001"
    elsewhere = indicator("elsewhere.example", tlp="green")
    elsewhere["object_marking_refs"] = [*elsewhere["object_marking_refs"], unknown]
    put(cert_in, [statement, marked, elsewhere, indicator("plain.example", tlp="green")])
    assert (
        cert_in.run("triage", "accept", "marked.example", "elsewhere.example", "plain.example").exit_code == 0
    )
    bundle = _bundle(cert_in, "--i-understand-tlp")
    by_id = {o["id"]: o for o in bundle["objects"]}
    assert by_id[statement["id"]] == statement
    assert [o["id"] for o in bundle["objects"]].count(statement["id"]) == 1
    assert unknown not in by_id and by_id[elsewhere["id"]]["object_marking_refs"][-1] == unknown
    results = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert results.is_valid, [str(e) for e in results.errors]
    # Not exported, it is not added.
    alone = _bundle(cert_in, "--search", "plain.example")
    assert statement["id"] not in {o["id"] for o in alone["objects"]}
