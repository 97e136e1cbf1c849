"""`export` through the CLI: every format parsed back, defaults, de-duplication, TLP, sids."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest
from stix2validator import ValidationOptions, validate_instance

from cti_exchange.exporters import sids
from cti_exchange.exporters.ids_rules import content, message
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.store import Store
from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put, stix_object, store_path

URL = 'http://bad.example:8080/p/x.php?id=1;"q"'
SHA = "e" * 64
ACCEPTED = [
    "a.example",
    "203.0.113.7",
    "2001:db8::7",
    URL,
    SHA,
    "noreply@phish.example",
    "shared.example",
    "revoked.example",
    "expired.example",
]


@pytest.fixture
def soc(cert_in: Agency) -> Agency:
    put(
        cert_in,
        [
            identity(FR_IDENTITY, "CERT-FR"),
            indicator("a.example", tlp="green", confidence=90),
            indicator("203.0.113.7", "ipv4-addr"),
            indicator("2001:db8::7", "ipv6-addr"),
            indicator(URL, "url"),
            indicator(SHA, "sha256"),
            indicator("noreply@phish.example", "email-addr"),
            indicator("shared.example", tlp="green"),
            indicator("revoked.example"),
            indicator("expired.example", valid_until="2020-01-02T00:00:00.000Z"),
            indicator("new.example"),
        ],
        partner="cert-fr",
    )
    put(
        cert_in,
        [indicator("shared.example", tlp="amber", created_by="identity--x")],
        partner="cert-uk",
    )
    accepted = cert_in.run("triage", "accept", *ACCEPTED)
    assert accepted.exit_code == 0, accepted.stderr
    revoked_id = cert_in.run("triage", "show", "revoked.example", "--json").json()["object"]
    put(
        cert_in,
        [dict(revoked_id, revoked=True, modified="2026-02-01T00:00:00.000Z")],
        partner="cert-fr",
    )
    return cert_in


EXPECTED = {
    "a.example",
    "203.0.113.7",
    "2001:db8::7",
    URL,
    SHA,
    "noreply@phish.example",
    "shared.example",
}


def _export(agency: Agency, *args: str) -> str:
    result = agency.run("export", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _body(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_plain_default_is_accepted_not_expired_not_revoked_each_value_once(soc: Agency) -> None:
    text = _export(soc, "--format", "plain")
    assert text.startswith("# TLP:AMBER — limited disclosure")
    assert sorted(_body(text)) == sorted(EXPECTED)
    assert "7 values" in text.splitlines()[1]
    assert set(_body(_export(soc, "--any-status"))) == EXPECTED | {"new.example"}
    assert set(_body(_export(soc, "--include-expired"))) == EXPECTED | {"expired.example"}
    assert "revoked.example" in _body(_export(soc, "--include-revoked"))
    assert _body(_export(soc, "--type", "ipv6-addr")) == ["2001:db8::7"]
    assert _body(_export(soc, "--partner", "cert-uk")) == ["shared.example"]
    # cert-fr marked shared.example GREEN: at most GREEN, it is exported as cert-fr marked it.
    assert set(_body(_export(soc, "--max-tlp", "green"))) == {"a.example", "shared.example"}
    assert _body(_export(soc, "--search", "PHISH")) == ["noreply@phish.example"]
    assert _body(_export(soc, "--min-confidence", "80")) == ["a.example"]
    assert _body(_export(soc, "--since", "2026-01-10T12:00:00Z", "--tlp", "green")) == [
        "a.example",
        "shared.example",
    ]
    assert _body(_export(soc, "--since", "2030-01-01T00:00:00Z")) == []


def test_dash_as_output_is_stdout(soc: Agency, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`export -o -` (as `keys export -o -`) wrote a file named `-` in the current directory
    and printed nothing."""
    monkeypatch.chdir(tmp_path)
    assert sorted(_body(_export(soc, "-o", "-"))) == sorted(EXPECTED)
    assert not (tmp_path / "-").exists()


def test_plain_into_a_directory_gives_one_file_per_type(soc: Agency, tmp_path: Path) -> None:
    out = tmp_path / "lists"
    out.mkdir()
    result = soc.run("export", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    assert _body((out / "domain-name.txt").read_text()) == ["a.example", "shared.example"]
    assert _body((out / "ipv6-addr.txt").read_text()) == ["2001:db8::7"]
    assert (out / "ipv6-addr.txt").read_text().startswith("# TLP:AMBER")
    assert _body((out / "md5.txt").read_text()) == []
    files = {Path(f["path"]).name: f for f in result.json()["files"]}
    assert files["sha256.txt"]["values"] == 1 and len(files) == 23
    assert (out / "url.txt").stat().st_mode & 0o777 == 0o640

    # On a terminal or in a log: a line per file with values, one line for the empty ones.
    said = soc.run("export", "-o", str(out)).stdout.splitlines()  # the report: stdout, as sync's
    written = [line for line in said if line.startswith("wrote ")]
    with_values = sum(1 for f in files.values() if f["values"])
    assert len(written) == with_values + 1, said
    assert written[-1].startswith(f"wrote 0 values to {23 - with_values} other files in {out} (one per type")


def test_csv(soc: Agency) -> None:
    lines = _export(soc, "--format", "csv").splitlines()
    assert lines[0].startswith("# TLP:AMBER")
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert {r["value"] for r in rows} == EXPECTED
    shared = next(r for r in rows if r["value"] == "shared.example")
    assert shared["sources"] == "cert-fr cert-uk" and shared["tlp"] == "amber"
    assert next(r for r in rows if r["value"] == "a.example")["confidence"] == "90"
    assert next(r for r in rows if r["value"] == URL)["type"] == "url"


def test_csv_export_is_a_push_input(soc: Agency, tmp_path: Path) -> None:
    exported = tmp_path / "export.csv"
    exported.write_text(_export(soc, "--format", "csv"))
    converted = soc.run("convert", str(exported), "-o", str(tmp_path / "bundle.json"), "--json")
    # Its stix_id column is an identifier, not a column of STIX patterns (every row was refused).
    assert converted.exit_code == 0, converted.stdout
    assert sum(converted.json()["accepted_by_type"].values()) == len(EXPECTED)


def test_csv_cells_never_start_a_formula(cert_in: Agency) -> None:
    put(cert_in, [indicator("=cmd|' /C calc'!A0.exe", "file-name")])
    cert_in.run("triage", "accept", "=cmd|' /C calc'!A0.exe")
    rows = list(csv.reader(_body(_export(cert_in, "--format", "csv"))))
    assert rows[1][0] == "'=cmd|' /C calc'!A0.exe"


# Full-width and small-form signs that spreadsheet apps may fold into the ASCII ones.
LOOKALIKES = ["\uff1d", "\uff0b", "\uff0d", "\uff20", "\ufe66"]


def test_csv_cells_never_start_a_formula_with_a_lookalike_sign(cert_in: Agency) -> None:
    values = [f"{sign}cmd|' /C calc'!A0.exe" for sign in LOOKALIKES]
    put(cert_in, [indicator(value, "file-name") for value in values])
    assert cert_in.run("triage", "accept", *values).exit_code == 0
    rows = list(csv.reader(_body(_export(cert_in, "--format", "csv"))))
    assert sorted(row[0] for row in rows[1:]) == sorted("'" + value for value in values)


def test_stix_bundle_is_valid_and_keeps_markings(soc: Agency) -> None:
    bundle = json.loads(_export(soc, "--format", "stix"))
    results = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert results.is_valid, [str(e) for e in results.errors][:5]
    indicators = [o for o in bundle["objects"] if o["type"] == "indicator"]
    assert len(indicators) == len(EXPECTED)
    types = {o["type"] for o in bundle["objects"]}
    assert {"identity", "marking-definition"} <= types
    ids = {o["id"] for o in bundle["objects"]}
    assert FR_IDENTITY in ids  # the source's identity comes along
    for obj in indicators:
        assert set(obj["object_marking_refs"]) <= ids


def test_misp_event(soc: Agency) -> None:
    event = json.loads(_export(soc, "--format", "misp"))["Event"]
    assert event["distribution"] == "0" and event["Tag"] == [{"name": "tlp:amber"}]
    by_value = {a["value"]: a for a in event["Attribute"]}
    assert set(by_value) == EXPECTED
    assert by_value["203.0.113.7"]["type"] == "ip-dst" and by_value[SHA]["type"] == "sha256"
    assert by_value["a.example"]["type"] == "domain" and by_value["a.example"]["Tag"] == [
        {"name": "tlp:green"}
    ]
    assert by_value["noreply@phish.example"]["category"] == "Payload delivery"
    assert all(a["to_ids"] is True for a in event["Attribute"])
    # The same selection is the same MISP event, with the same attribute UUIDs: a later
    # export updates it.
    again = json.loads(_export(soc, "--format", "misp"))["Event"]
    assert again["uuid"] == event["uuid"]
    assert {a["uuid"] for a in again["Attribute"]} == {a["uuid"] for a in event["Attribute"]}
    # Another selection is another event, and never reuses an attribute UUID (MISP wants them
    # unique across the instance), even for the values both hold.
    uuids = {a["uuid"] for a in event["Attribute"]}
    for args in (
        ("--partner", "cert-fr"),
        ("--type", "domain-name"),
        ("--partner", "cert-fr", "--type", "url"),
    ):
        other = json.loads(_export(soc, "--format", "misp", *args))["Event"]
        assert other["Attribute"] and {a["value"] for a in other["Attribute"]} <= EXPECTED
        assert other["uuid"] != event["uuid"]
        assert not uuids & {a["uuid"] for a in other["Attribute"]}
    # The order the options come in does not make another selection.
    swapped = json.loads(_export(soc, "--format", "misp", "--type", "url", "--partner", "cert-fr"))["Event"]
    assert swapped["uuid"] == other["uuid"]


_RULE = re.compile(
    r"^alert (ip|dns|tls|http|udp|tcp) (\$HOME_NET) (any) (->|<>) (\S+) (\S+) "
    r'\((msg:"(?:[^"\\]|\\.)*";'
    r"(?: [a-z_.]+(?::(?:\"(?:[^\"\\]|\\.)*\"|[^;\"]+))?;)+)\)$"
)


def _rules(text: str) -> list[re.Match[str]]:
    lines = _body(text)
    matches = [_RULE.match(line) for line in lines]
    assert all(matches), [line for line, m in zip(lines, matches, strict=True) if not m]
    return [m for m in matches if m]


def _sids(text: str) -> dict[str, str]:
    return {re.search(r" sid:(\d+);", line)[1]: line for line in _body(text)}  # type: ignore[index]


def test_suricata_rules(soc: Agency) -> None:
    text = _export(soc, "--format", "suricata")
    rules = _rules(text)
    protocols = sorted(m[1] for m in rules)
    assert protocols == ["dns", "dns", "http", "ip", "ip", "tls", "tls"]
    body = "\n".join(_body(text))
    assert "alert ip $HOME_NET any <> 203.0.113.7 any" in body
    assert "alert ip $HOME_NET any <> [2001:db8::7] any" in body
    assert 'dns.query; dotprefix; content:".a.example"; nocase; endswith;' in body
    assert 'tls.sni; dotprefix; content:".shared.example"' in body
    # The URL's `;` and `"` are hex in content, escaped in msg.
    assert 'http.host; content:"bad.example"; startswith; endswith;' in body  # port: rule header
    assert 'http.uri; content:"/p/x.php?id=1|3B 22|q|22|"; startswith; endswith;' in body
    assert '\\;\\"q\\"' in body
    assert "not written: 1 sha256: file hashes" in text and "not written: 1 email-addr" in text
    sid_map = _sids(text)
    assert len(sid_map) == 7 and all(sids.SID_BASE <= int(s) < sids.SID_BASE + sids.SID_SPAN for s in sid_map)
    assert _sids(_export(soc, "--format", "suricata")).keys() == sid_map.keys()  # stable


def test_snort_rules_and_sids_kept_whatever_else_is_exported(soc: Agency) -> None:
    full = _export(soc, "--format", "snort")
    rules = _rules(full)
    # two addresses; one URL; two domains, each over UDP and TCP
    assert sorted(m[1] for m in rules) == ["ip", "ip", "tcp", "tcp", "tcp", "udp", "udp"]
    body = "\n".join(_body(full))
    assert "alert udp $HOME_NET any -> any 53 (msg:" in body
    assert 'content:"|01|a|07|example|00|"; nocase; fast_pattern:only;' in body
    tcp_dns = next(line for line in _body(full) if line.startswith("alert tcp $HOME_NET any -> any 53 "))
    assert 'flow:to_server,established; content:"|' in tcp_dns and "fast_pattern:only;" in tcp_dns
    assert 'content:"Host|3A| bad.example|3A|8080|0D 0A|"; http_header; nocase;' in body
    dns_sid = next(s for s, line in _sids(full).items() if "|01|a|07|example" in line)
    only_domains = _sids(_export(soc, "--format", "snort", "--type", "domain-name"))
    assert dns_sid in only_domains
    suricata_dns = next(
        s
        for s, line in _sids(_export(soc, "--format", "suricata")).items()
        if 'dns.query; dotprefix; content:".a.example"' in line
    )
    assert suricata_dns == dns_sid  # one key, one sid, in both engines


def test_sid_collisions_are_resolved_and_remembered(store_file: Path) -> None:
    text = sids.text_digest("a rule")
    with Store(store_file) as store, store.db.transaction() as conn:
        registry = sids.SidRegistry(
            conn, assigned_at="2026-01-01T00:00:00.000Z", candidate=lambda key: sids.SID_BASE + 5
        )
        first, second = registry.sid_and_rev("a", text), registry.sid_and_rev("b", text)
        assert (first, second) == ((sids.SID_BASE + 5, 1), (sids.SID_BASE + 6, 1))
        assert registry.collisions == 1
    with Store(store_file) as store, store.db.transaction() as conn:
        registry = sids.SidRegistry(
            conn, assigned_at="2026-01-02T00:00:00.000Z", candidate=lambda key: sids.SID_BASE + 6
        )
        assert registry.sid_and_rev("b", text) == (sids.SID_BASE + 6, 1)  # remembered
        assert registry.sid_and_rev("c", text) == (sids.SID_BASE + 7, 1)
        assert registry.sid_and_rev("a", text) == (sids.SID_BASE + 5, 1)


def test_rule_escaping() -> None:
    assert content('a;b"c\\d|e:f g') == "a|3B|b|22|c|5C|d|7C|e|3A|f g"
    assert content("é\x00") == "|C3 A9 00|"
    assert message('x;"y"\\\x07z') == 'x\\;\\"y\\"\\\\z'


def test_the_tlp_gate_names_red_when_amber_strict_comes_first(cert_in: Agency) -> None:
    """Values come in type order: the gate named the AMBER+STRICT domain it met first and not
    the TLP:RED hash after it, while --i-understand-tlp lets both out."""
    put(cert_in, [indicator("strict.example", tlp="amber+strict"), indicator("f" * 64, "sha256", tlp="red")])
    refused = cert_in.run("export", "--any-status")
    assert refused.exit_code == 8
    assert "the export holds TLP:AMBER+STRICT and TLP:RED content" in refused.stderr


@pytest.mark.parametrize("level", ["red", "amber+strict"])
def test_tlp_gate_on_export(cert_in: Agency, tmp_path: Path, level: str) -> None:
    put(cert_in, [indicator("secret.example", tlp=level), indicator("open.example", tlp="clear")])
    cert_in.run("triage", "accept", "secret.example", "open.example")
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "list.txt"
    refused = cert_in.run("export", "-o", str(target))
    assert refused.exit_code == 8 and f"TLP:{level.upper()}" in refused.stderr
    assert "--i-understand-tlp" in refused.stderr and not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary file left behind
    allowed = cert_in.run("export", "-o", str(target), "--i-understand-tlp", "--json")
    assert allowed.exit_code == 0, allowed.stderr
    assert target.read_text().startswith(f"# TLP:{level.upper()} — ")
    assert _body(_export(cert_in, "--max-tlp", "amber")) == ["open.example"]
    # The export is in the audit trail, with the file's digest.
    conn = sqlite3.connect(store_path(cert_in))
    details = [
        json.loads(r[0])
        for r in conn.execute("SELECT details FROM audit_log WHERE action = 'export' ORDER BY seq")
    ]
    conn.close()
    written = next(d for d in details if d["files"][0]["path"] == str(target))
    assert written["files"][0]["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert written["i_understand_tlp"] is True


def test_stix_and_misp_exports_are_gated_too(cert_in: Agency) -> None:
    put(cert_in, [indicator("secret.example", tlp="red")])
    cert_in.run("triage", "accept", "secret.example")
    for fmt in ("stix", "misp", "suricata"):
        assert cert_in.run("export", "--format", fmt).exit_code == 8
    event = json.loads(_export(cert_in, "--format", "misp", "--i-understand-tlp"))["Event"]
    assert event["Tag"] == [{"name": "tlp:red"}]


def test_export_usage_errors(soc: Agency, tmp_path: Path) -> None:
    bad = soc.run("export", "--format", "pdf")
    assert bad.exit_code == 2 and "--format" in bad.stderr
    missing = soc.run("export", "-o", str(tmp_path / "no" / "such" / "dir.txt"))
    assert missing.exit_code == 2
    assert soc.run("export", "--json").exit_code == 2
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    assert soc.run("export", "--format", "suricata", "-o", str(rules_dir)).exit_code == 0
    assert (rules_dir / "cti-exchange.rules").read_text().startswith("# TLP:AMBER")
    empty = soc.run("export", "--status", "rejected")
    assert empty.exit_code == 0 and "nothing matched" in empty.stderr


def test_an_export_into_a_directory_that_is_not_there_writes_no_file(soc: Agency, tmp_path: Path) -> None:
    """`-o rules/` (a directory meant, not yet made) wrote one file named `rules`: Path()
    drops the trailing slash."""
    target = tmp_path / "rules"
    result = soc.run("export", "-o", f"{target}/")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and f"mkdir {target}/" in result.stderr
    assert not target.exists()
    target.mkdir()
    assert soc.run("export", "-o", f"{target}/").exit_code == 0
    assert (target / "domain-name.txt").is_file()


def test_an_export_into_a_missing_parent_says_how_to_fix_it(soc: Agency, tmp_path: Path) -> None:
    result = soc.run("export", "-o", str(tmp_path / "nodir" / "x.csv"))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "is not a directory; create it first" in result.stderr


def test_nothing_matched_names_the_expiry_filter_too(soc: Agency) -> None:
    """Only accepted indicators that have not expired are exported: the warning named only the
    first condition, so an analyst who had accepted an expired indicator was told to accept it."""
    expired = soc.run("export", "--search", "expired.example")
    assert expired.exit_code == 0 and "nothing matched" in expired.stderr
    assert "--include-expired" in expired.stderr
    shown = soc.run("export", "--search", "expired.example", "--include-expired")
    assert "expired.example" in shown.stdout


CUSTOM_RED = "marking-definition--3a1f0c5e-2b1d-4c7a-9f3e-0d6c1b2a7e11"
CUSTOM_STATEMENT = "marking-definition--7c2e9b44-1f0a-4d3b-8e6f-5a9d2c3b1e20"
CUSTOM_SAYS_RED = "marking-definition--9d3f0b55-2a1b-4c6d-8e7f-6b0a1c2d3e40"


def _custom(value: str, *refs: str) -> dict[str, object]:
    return {**indicator(value), "object_marking_refs": list(refs)}


def test_a_tlp_stated_by_a_custom_marking_or_an_unknown_marking_gates_the_export(cert_in: Agency) -> None:
    """A partner's own marking-definition saying TLP:RED (in this envelope or an earlier one),
    or a marking nobody defined, must not leave our store as if it carried no TLP."""
    red = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": CUSTOM_RED,
        "created": "2026-01-01T00:00:00.000Z",
        "definition_type": "tlp",
        "definition": {"tlp": "red"},
    }
    statement = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": CUSTOM_STATEMENT,
        "created": "2026-01-01T00:00:00.000Z",
        "definition_type": "statement",
        "definition": {"statement": "Copyright CERT-FR"},
    }
    put(cert_in, [red, statement, _custom("same-bundle.example", CUSTOM_RED)])
    put(cert_in, [_custom("earlier-bundle.example", CUSTOM_RED, CUSTOM_STATEMENT)])
    undefined = "marking-definition--00000000-0000-4000-8000-000000000001"
    put(cert_in, [_custom("undefined-marking.example", undefined)])
    put(cert_in, [_custom("statement-only.example", CUSTOM_STATEMENT, Tlp.GREEN.marking_id)])
    said_red = {**statement, "id": CUSTOM_SAYS_RED, "definition": {"statement": "TLP:RED, do not forward"}}
    put(cert_in, [said_red, _custom("statement-says-red.example", CUSTOM_SAYS_RED, Tlp.GREEN.marking_id)])
    conn = sqlite3.connect(store_path(cert_in))
    levels = dict(conn.execute("SELECT value, tlp FROM objects WHERE type = 'indicator'").fetchall())
    conn.close()
    assert levels == {
        "same-bundle.example": "red",
        "earlier-bundle.example": "red",
        "undefined-marking.example": "red",
        "statement-only.example": "green",
        "statement-says-red.example": "red",
    }
    cert_in.run("triage", "accept", *levels)
    refused = cert_in.run("export")
    assert refused.exit_code == 8 and "TLP:RED" in refused.stderr
    assert _body(_export(cert_in, "--max-tlp", "amber")) == ["statement-only.example"]


def test_a_directory_export_keeps_a_filter_naming_stix_types(cert_in: Agency, tmp_path: Path) -> None:
    """`export --type vulnerability -o DIR` wrote every accepted value of every IOC type (each
    file's filter replaced the STIX types by its IOC type), while `-o FILE` wrote the CVE
    alone; `--type indicator` put vulnerabilities into `cve.txt` (filters walkthrough, stop 28)."""
    cve = stix_object(
        "vulnerability",
        "vulnerability--0b9f4c8e-6a1d-4d8e-9f3a-2c1b0a9e8d7c",
        name="CVE-2021-44228",
        object_marking_refs=[Tlp.AMBER.marking_id],
    )
    domain = indicator("bad-domain.example")
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), cve, domain])
    assert cert_in.run("triage", "accept", cve["id"], domain["id"]).exit_code == 0
    for kind, expected in (
        ("vulnerability", {"cve.txt": ["CVE-2021-44228"]}),
        ("indicator", {"domain-name.txt": ["bad-domain.example"]}),
        ("malware", {}),
    ):
        out = tmp_path / kind
        out.mkdir()
        result = cert_in.run("export", "--type", kind, "-o", str(out))
        assert result.exit_code == 0, result.stderr
        written = {p.name: _body(p.read_text()) for p in sorted(out.iterdir())}
        assert {name: body for name, body in written.items() if body} == expected, kind
    # An IOC type named beside a STIX type: every value of it, whatever object holds it.
    both = tmp_path / "both"
    both.mkdir()
    assert cert_in.run("export", "--type", "malware", "--type", "cve", "-o", str(both)).exit_code == 0
    assert _body((both / "cve.txt").read_text()) == ["CVE-2021-44228"]
    assert _body((both / "domain-name.txt").read_text()) == []


def test_a_value_one_source_gives_no_end_is_exported_without_one(cert_in: Agency) -> None:
    """Two partners send a value, one without valid_until (valid until revoked), one with a
    date; and another value in two spellings, likewise: the merged CSV row carried the date,
    and a SIEM honouring it would drop the indicator then (filters walkthrough, stop 28)."""
    put(
        cert_in,
        [indicator("forever.example", valid_until=None), indicator("spelt.example", valid_until=None)],
    )
    later = [
        indicator("forever.example", valid_until="2099-12-31T00:00:00.000Z"),
        indicator("Spelt.Example", valid_until="2099-12-31T00:00:00.000Z"),
    ]
    put(cert_in, later, partner="cert-uk", received_at="2026-01-11T12:00:00.000Z")
    assert cert_in.run("triage", "accept", "forever.example", "spelt.example").exit_code == 0
    result = cert_in.run("export", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(line for line in result.stdout.splitlines() if not line.startswith("#")))
    assert {row["value"]: row["valid_until"] for row in rows} == {"forever.example": "", "spelt.example": ""}
