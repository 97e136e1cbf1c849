"""IDS exports after a fresh-eyes review: URL paths as clients send them (percent-encoded),
one rule per detection whatever the number of stored spellings, Snort URL rules anchored as
Suricata's are. No Suricata or Snort binary runs here: the rules are checked as text against
what the engines' documentation says their keywords do."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put, store_path


def _pattern(pattern: str) -> dict[str, Any]:
    obj = indicator("x.example", tlp="green")
    obj["pattern"], obj["name"] = pattern, pattern[:40]
    return obj


def _export(agency: Agency, objects: list[dict[str, Any]], engine: str) -> list[str]:
    put(agency, [identity(FR_IDENTITY, "CERT-FR"), *objects])
    accepted = agency.run("triage", "accept", *(o["id"] for o in objects))
    assert accepted.exit_code == 0, accepted.stderr
    result = agency.run("export", "--format", engine)
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


def _rules(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("alert")]


def _detection(rule: str) -> str:
    """A rule without msg, sid and metadata: what it matches."""
    return re.sub(r'msg:"(?:[^"\\]|\\.)*"; |sid:\d+; |metadata:[^;]*;', "", rule)


def _sid(rule: str) -> int:
    found = re.search(r"sid:(\d+);", rule)
    assert found is not None
    return int(found.group(1))


MIXED_URL = "http://evil.example/Ü?a=ä%20"  # raw non-ASCII and a %-escape in one URL


def test_suricata_matches_a_url_path_as_clients_send_it(cert_in: Agency) -> None:
    rules = _rules(_export(cert_in, [indicator(MIXED_URL, "url", tlp="green")], "suricata"))
    assert len(rules) == 1
    # Browsers send `/%C3%9C?a=%C3%A4%20` (RFC 3987 3.1): the raw buffer holds that, never the
    # raw UTF-8 bytes next to a `%20`.
    assert 'http.uri.raw; content:"/%C3%9C?a=%C3%A4%20"; startswith; endswith;' in rules[0]
    assert "|C3 9C|" not in rules[0]


def test_snort_matches_a_url_path_as_clients_send_it(cert_in: Agency) -> None:
    rules = _rules(_export(cert_in, [indicator(MIXED_URL, "url", tlp="green")], "snort"))
    assert len(rules) == 1
    assert 'content:"/%C3%9C?a=%C3%A4%20"; http_raw_uri;' in rules[0]
    assert "|C3 9C|" not in rules[0]


def test_a_url_without_an_escape_stays_in_the_normalised_buffer(cert_in: Agency) -> None:
    rules = _rules(
        _export(cert_in, [indicator("http://evil.example/gate.php?id=7", "url", tlp="green")], "suricata")
    )
    assert 'http.uri; content:"/gate.php?id=7"; startswith; endswith;' in rules[0]


def test_snort_url_rules_match_the_whole_uri_not_a_substring(cert_in: Agency) -> None:
    urls = ["http://evil.example/x", "http://evil.example/a%20b"]
    rules = _rules(_export(cert_in, [indicator(u, "url", tlp="green") for u in urls], "snort"))
    plain = next(r for r in rules if 'content:"/x"' in r)
    # depth anchors `/x` at the start of the URI, urilen fixes its length: not /xyz, not /a/x.
    assert 'content:"/x"; http_uri; depth:2; urilen:2;' in plain
    escaped = next(r for r in rules if "/a%20b" in r)
    assert 'content:"/a%20b"; http_raw_uri; depth:6; urilen:6,raw;' in escaped


def test_spellings_of_one_domain_give_one_rule_per_kind(cert_in: Agency) -> None:
    spellings = ["EVIL.example", "evil.example", "evil.example."]
    objects = [indicator(s, tlp="green") for s in spellings]
    lines = _export(cert_in, objects, "suricata")
    rules = _rules(lines)
    assert len(rules) == 2  # one DNS and one TLS rule, not three of each
    assert {r.split(" ", 2)[1] for r in rules} == {"dns", "tls"}
    assert any("2 values stored in another spelling" in line for line in lines if line.startswith("#"))
    # The sid is the value's, keyed by its canonical spelling: whichever spellings are stored,
    # and in whatever order they arrive, the rule keeps it.
    conn = sqlite3.connect(store_path(cert_in))
    try:
        sids = dict(conn.execute("SELECT rule_key, sid FROM ids_sids").fetchall())
    finally:
        conn.close()
    dns = next(r for r in rules if r.startswith("alert dns"))
    assert _sid(dns) == sids["domain-name:evil.example:dns"]
    assert len(sids) == 2  # the merged spellings got no sid of their own
    # Stable across runs.
    again = _rules(cert_in.run("export", "--format", "suricata").stdout.splitlines())
    assert sorted(again) == sorted(rules)


def test_spellings_of_one_address_give_one_rule(cert_in: Agency) -> None:
    objects = [
        indicator("203.0.113.5", "ipv4-addr", tlp="green"),
        indicator("203.0.113.5/32", "ipv4-addr", tlp="green"),
        indicator("2001:0DB8::0005", "ipv6-addr", tlp="green"),
        indicator("2001:db8::5", "ipv6-addr", tlp="green"),
        _pattern("[network-traffic:dst_ref.value = '2001:db8::9' AND network-traffic:dst_port = 8443]"),
        _pattern("[network-traffic:dst_ref.value = '2001:0db8:0::9' AND network-traffic:dst_port = 8443]"),
    ]
    for engine in ("suricata", "snort"):
        rules = _rules(_export(cert_in, objects, engine) if engine == "suricata" else _rerun(cert_in, engine))
        detections = [_detection(r) for r in rules]
        assert len(detections) == len(set(detections)), detections
        assert len(rules) == 4  # one ip rule per address, tcp and udp for the address and port
        assert "alert ip $HOME_NET any <> 203.0.113.5 any" in " ".join(rules)
        assert "alert ip $HOME_NET any <> [2001:db8::5] any" in " ".join(rules)


def _rerun(agency: Agency, engine: str) -> list[str]:
    result = agency.run("export", "--format", engine)
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


def test_a_merged_spelling_still_counts_towards_the_files_tlp(cert_in: Agency) -> None:
    objects = [indicator("EVIL.example", tlp="green"), indicator("evil.example", tlp="amber")]
    lines = _export(cert_in, objects, "suricata")
    assert lines[0].startswith("# TLP:AMBER")
    assert len(_rules(lines)) == 2


def test_a_rule_carries_the_strictest_tlp_and_every_source_of_the_spellings_it_stands_for(
    cert_in: Agency,
) -> None:
    """CERT-FR sends c2.evil.example at TLP:RED, another partner C2.EVIL.example at TLP:CLEAR.
    The rule used to be the first spelling's (upper case sorts first): `TLP:CLEAR, from
    cert-de` in msg and metadata, what SIEM alerts and rule managers show, for a RED value."""
    put(cert_in, [indicator("c2.evil.example", tlp="red")], partner="cert-fr")
    put(cert_in, [indicator("C2.EVIL.example", tlp="clear")], partner="cert-de")
    assert cert_in.run("triage", "accept", "c2.evil.example").exit_code == 0
    for engine in ("suricata", "snort"):
        gated = cert_in.run("export", "--format", engine)
        assert gated.exit_code == 8, gated.stderr  # RED: the TLP gate stops it
        result = cert_in.run("export", "--format", engine, "--i-understand-tlp")
        assert result.exit_code == 0, result.stderr
        rules = _rules(result.stdout.splitlines())
        assert rules, result.stdout
        for rule in rules:
            assert "TLP:RED" in rule and "tlp red" in rule, rule
            assert "cert-fr" in rule and "cert-de" in rule, rule
            assert "c2.evil.example" in rule and "C2.EVIL" not in rule, rule
