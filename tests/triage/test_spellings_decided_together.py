"""One value in several spellings is one value: to decisions, to `triage show` and to exports.

cert-fr sends `evil.example`, cert-uk `Evil.Example.`: a false positive typed in either
spelling covers both, an export never writes a value decided against in another spelling, and
a value written once for several spellings carries the strictest TLP and every source of them.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti_exchange.exporters.value_forms import bundled_value_forms
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.export_queries import plain_spelling_sql
from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put

UK_IDENTITY = "identity--33333333-3333-4333-8333-333333333333"
FR = [("evil.example", "domain-name"), ("203.0.113.7", "ipv4-addr"), ("http://bad.example/x", "url")]
UK = [("Evil.Example.", "domain-name"), ("203.0.113.7/32", "ipv4-addr"), ("HTTP://BAD.EXAMPLE:80/x", "url")]


def _ids(agency: Agency, *args: str) -> list[str]:
    listed = agency.run("triage", "list", "--json", "--limit", "1000", *args)
    assert listed.exit_code == 0, listed.stderr
    return [item["id"] for item in listed.json()["items"]]


def _statuses(agency: Agency) -> dict[str, str]:
    path = agency.home / "store.sqlite"
    with sqlite3.connect(path) as conn:
        return dict(
            conn.execute("SELECT value, status FROM objects WHERE ioc_type IS NOT NULL AND is_current = 1")
        )


def _values(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.fixture
def two_spellings(cert_in: Agency) -> Agency:
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *(indicator(v, t, tlp="green") for v, t in FR)])
    put(
        cert_in,
        [indicator(v, t, tlp="green", created_by=UK_IDENTITY) for v, t in UK],
        partner="cert-uk",
        received_at="2026-01-11T12:00:00.000Z",
    )
    accepted = cert_in.run("triage", "accept", *_ids(cert_in))
    assert accepted.exit_code == 0, accepted.stderr
    return cert_in


def test_a_false_positive_typed_in_one_spelling_covers_the_others(two_spellings: Agency) -> None:
    decided = two_spellings.run("triage", "false-positive", *(v for v, _ in FR), "--note", "sinkhole")
    assert decided.exit_code == 0, decided.stderr
    assert "6 object(s)" in decided.stdout
    assert set(_statuses(two_spellings).values()) == {"false-positive"}
    for fmt in ("plain", "misp", "csv"):
        exported = two_spellings.run("export", "--format", fmt)
        assert exported.exit_code == 0, exported.stderr
        for value, _ in FR + UK:
            assert value.lower().rstrip(".") not in exported.stdout.lower(), (fmt, value)
        assert "bad.example" not in exported.stdout.lower()


def test_a_decision_in_the_other_spelling_covers_the_first(two_spellings: Agency) -> None:
    decided = two_spellings.run("triage", "reject", "Evil.Example.", "HTTP://BAD.EXAMPLE:80/x")
    assert decided.exit_code == 0, decided.stderr
    statuses = _statuses(two_spellings)
    assert statuses["evil.example"] == statuses["http://bad.example/x"] == "rejected"
    assert statuses["203.0.113.7"] == statuses["203.0.113.7/32"] == "accepted"
    exported = two_spellings.run("export", "--format", "plain")
    assert _values(exported.stdout) == ["203.0.113.7"]


def test_show_lists_the_other_spellings_holders_with_their_status(two_spellings: Agency) -> None:
    assert two_spellings.run("triage", "false-positive", "203.0.113.7").exit_code == 0
    shown = two_spellings.run("triage", "show", "203.0.113.7")
    assert shown.exit_code == 0, shown.stderr
    section = shown.stdout.split("Same value from other sources:\n", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("\t") for line in section.splitlines()]
    assert rows[0] == ["id", "partner", "value", "TLP", "conf", "status", "received"]
    assert [(r[1], r[2], r[5]) for r in rows[1:]] == [("cert-uk", "203.0.113.7/32", "false-positive")]
    as_json = two_spellings.run("triage", "show", "Evil.Example.", "--json").json()
    assert [(s["value"], s["status"]) for s in as_json["same_value"]] == [("evil.example", "accepted")]


def test_an_export_withholds_a_value_decided_against_in_another_spelling(cert_in: Agency) -> None:
    put(cert_in, [indicator("evil.example", tlp="green"), indicator("kept.example", tlp="green")])
    assert cert_in.run("triage", "false-positive", "evil.example").exit_code == 0
    # The same value arrives later in other spellings: new, and not covered by the decision.
    put(
        cert_in,
        [indicator(v, tlp="green", created_by=UK_IDENTITY) for v in ("EVIL.EXAMPLE", "evil.example.")],
        partner="cert-uk",
        received_at="2026-01-12T12:00:00.000Z",
    )
    for fmt in ("plain", "csv", "misp", "suricata", "stix"):
        exported = cert_in.run("export", "--format", fmt, "--status", "new", "--status", "accepted")
        assert exported.exit_code == 0, exported.stderr
        assert "evil.example" not in exported.stdout.lower(), fmt
    head = cert_in.run("export", "--format", "plain", "--status", "new").stdout
    assert "# not written: 2 domain-name: marked false-positive or rejected in a spelling" in head
    listing = cert_in.home / "new.txt"
    described = cert_in.run("export", "--format", "plain", "--status", "new", "-o", str(listing), "--json")
    assert described.exit_code == 0, described.stderr
    assert described.json()["files"][0]["withheld"] == {"domain-name": 2}
    # Asked for by status, the analyst gets them.
    chosen = cert_in.run("export", "--format", "plain", "--status", "new", "--status", "false-positive")
    assert sorted(_values(chosen.stdout)) == ["evil.example", "kept.example"]


def test_a_value_in_several_spellings_takes_the_strictest_tlp_and_every_source(
    cert_in: Agency, tmp_path: Path
) -> None:
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), indicator("evil.example", tlp="green")])
    put(cert_in, [indicator("EVIL.EXAMPLE", tlp="red", created_by=UK_IDENTITY)], partner="cert-uk")
    # A spelling that sorts after the canonical one (a trailing dot, a one-address range).
    put(cert_in, [indicator("late.example", tlp="green"), indicator("203.0.113.9", "ipv4-addr", tlp="green")])
    put(
        cert_in,
        [
            indicator("late.example.", tlp="amber+strict", created_by=UK_IDENTITY, confidence=90),
            indicator("203.0.113.9/32", "ipv4-addr", tlp="red", created_by=UK_IDENTITY),
        ],
        partner="cert-jp",
    )
    assert cert_in.run("triage", "accept", *_ids(cert_in)).exit_code == 0

    exported = cert_in.run("export", "--format", "csv", "--i-understand-tlp")
    assert exported.exit_code == 0, exported.stderr
    assert exported.stdout.startswith("# TLP:RED")
    rows = {r["value"]: r for r in csv.DictReader(io.StringIO("\n".join(_values(exported.stdout))))}
    assert set(rows) == {"evil.example", "late.example", "203.0.113.9"}
    assert (rows["evil.example"]["tlp"], set(rows["evil.example"]["sources"].split())) == (
        "red",
        {"cert-fr", "cert-uk"},
    )
    assert (rows["late.example"]["tlp"], rows["late.example"]["confidence"]) == ("amber+strict", "90")
    assert set(rows["late.example"]["sources"].split()) == {"cert-fr", "cert-jp"}
    assert rows["203.0.113.9"]["tlp"] == "red"

    # The TLP gate sees the merged value, even exported alone.
    for value in ("evil", "late"):
        gated = cert_in.run("export", "--format", "csv", "--search", value)
        assert gated.exit_code == 8, (value, gated.stdout)
    out = tmp_path / "blocklist.txt"
    written = cert_in.run(
        "export", "--format", "plain", "--search", "evil", "--i-understand-tlp", "-o", str(out)
    )
    assert written.exit_code == 0, written.stderr
    assert out.read_text().startswith("# TLP:RED") and _values(out.read_text()) == ["evil.example"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    misp = cert_in.run("export", "--format", "misp", "--search", "evil", "--i-understand-tlp").stdout
    assert [t["name"] for t in json.loads(misp)["Event"]["Attribute"][0]["Tag"]] == ["tlp:red"]


def _statement(marked: Tlp) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--4d7b1ba6-52c4-4d6f-a1b3-6a8d5d7d2f11",
        "created": "2026-01-10T10:00:00.000Z",
        "created_by_ref": FR_IDENTITY,
        "definition_type": "statement",
        "definition": {"statement": "Source: HUMINT asset KINGFISHER inside APT-X"},
        "object_marking_refs": [marked.marking_id],
    }


@pytest.mark.parametrize("statement_tlp", [Tlp.RED, Tlp.GREEN])
def test_a_stix_export_keeps_markings_within_the_values_tlp(cert_in: Agency, statement_tlp: Tlp) -> None:
    statement = _statement(statement_tlp)
    marked = indicator("marked.example", tlp="green")
    marked["object_marking_refs"].append(statement["id"])
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), statement, marked])
    assert cert_in.run("triage", "accept", marked["id"]).exit_code == 0

    exported = cert_in.run("export", "--format", "stix", "--json", "-o", str(cert_in.home / "b.json"))
    assert exported.exit_code == 0, exported.stderr
    assert exported.json()["files"][0]["tlp"] == "green"
    bundle = json.loads((cert_in.home / "b.json").read_text())
    by_id = {o["id"]: o for o in bundle["objects"]}
    assert (statement["id"] in by_id) is (statement_tlp is Tlp.GREEN)
    assert "KINGFISHER" not in json.dumps(bundle) or statement_tlp is Tlp.GREEN
    assert Tlp.RED.marking_id not in by_id
    # Every TLP marking referenced by an object in the bundle is defined in it.
    referenced = {ref for o in bundle["objects"] for ref in o.get("object_marking_refs", ())}
    assert {r for r in referenced if Tlp.from_marking_id(r) is not None} <= set(by_id)


def test_a_tlp_red_bundle_carries_the_red_statement_past_the_gate(cert_in: Agency) -> None:
    statement = _statement(Tlp.RED)
    marked = indicator("marked.example", tlp="red")
    marked["object_marking_refs"].append(statement["id"])
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), statement, marked])
    assert cert_in.run("triage", "accept", marked["id"]).exit_code == 0
    assert cert_in.run("export", "--format", "stix").exit_code == 8
    exported = cert_in.run("export", "--format", "stix", "--i-understand-tlp")
    by_id = {o["id"]: o for o in json.loads(exported.stdout)["objects"]}
    assert statement["id"] in by_id and Tlp.RED.marking_id in by_id


# What export_queries.plain_spelling_sql vouches for must be canonical already: a wrong "yes"
# would write a value twice, once per spelling, with the TLP and sources of each.
_SPELLINGS = {
    "domain-name": [
        "evil.example",
        "Evil.Example.",
        "evil.example.",
        "xn--bcher-kva.example",
        "bücher.example",
        "_dmarc.example",
        "a..b",
        ".evil.example",
        "evil.example ",
        "EVIL.EXAMPLE",
    ],
    "url": [
        "http://bad.example/x",
        "HTTP://BAD.EXAMPLE:80/x",
        "http://bad.example:80/x",
        "http://bad.example",
        "http://bad.example./x",
        "https://bad.example:443/x",
        "http://bad.example?x=/",
        "http://u@bad.example/x",
        "http://[2001:DB8::1]/x",
        "http://bad.example/ü",
        "bad.example/x",
        "http://1.2.3.4/x",
        "http://BAD.example/x",
    ],
    "ipv4-addr": ["203.0.113.7", "203.0.113.7/32", "010.0.0.1", "203.0.113.07"],
    "email-addr": [
        "a@evil.example",
        "A@Evil.Example",
        "a@evil.example.",
        "a@b@evil.example",
        "Ab@evil.example",
    ],
    "sha256": ["ab" * 32, "AB" * 32],
    "x509-sha1": ["ab" * 20, ":".join(["AB"] * 20)],
}


_forms = functools.cache(bundled_value_forms)


def _vouched(ioc_type: str, value: str) -> bool:
    with sqlite3.connect(":memory:") as conn:
        return bool(conn.execute(f"SELECT {plain_spelling_sql(ioc_type, '?1')}", (value,)).fetchone()[0])


def _exported(ioc_type: str, value: str) -> bool:
    """Whether an export may write it (with --allow-broad): invalid values never merge."""
    refused = _forms().check.thorough(ioc_type, value)
    return refused is None or refused.broad


def test_sql_vouches_only_for_values_already_canonical() -> None:
    forms = _forms()
    for ioc_type, values in _SPELLINGS.items():
        for value in values:
            if _vouched(ioc_type, value) and _exported(ioc_type, value):
                assert forms.of(ioc_type, value) == value, (ioc_type, value)
    assert _vouched("domain-name", "evil.example") and _vouched("url", "http://bad.example/x")
    assert not _vouched("domain-name", "Evil.Example.") and not _vouched("url", "http://bad.example:80/x")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["domain-name", "url", "ipv4-addr", "email-addr", "sha256"]),
    st.text(alphabet="abcAB09.-_:/@?#%[]ü ", max_size=30),
)
def test_sql_vouches_only_for_canonical_text(ioc_type: str, tail: str) -> None:
    value = ("http://" + tail) if ioc_type == "url" and not tail.startswith("h") else tail
    if _vouched(ioc_type, value) and _exported(ioc_type, value):
        assert _forms().of(ioc_type, value) == value
