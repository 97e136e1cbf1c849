"""IDS rules for URLs with a port or an IPv6 host, found on a walkthrough: Suricata's
`http.host` is libhtp's host name without the port (a rule holding `host:8080` there never
matched), and an IPv6 host lost the brackets its Host header carries (`[2001:db8::5]:8080`)."""

from __future__ import annotations

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put

URLS = ["http://bad.example:8080/gate.php", "http://[2001:db8::5]:8443/p.php", "https://plain.example/x"]


def _rules(agency: Agency, engine: str) -> list[str]:
    put(agency, [identity(FR_IDENTITY, "CERT-FR"), *(indicator(u, "url", tlp="green") for u in URLS)])
    for url in URLS:
        assert agency.run("triage", "accept", url).exit_code == 0
    result = agency.run("export", "--format", engine)
    assert result.exit_code == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith("alert")]


def test_suricata_puts_the_port_in_the_header_not_in_http_host(cert_in: Agency) -> None:
    rules = _rules(cert_in, "suricata")
    by_host = {url: next(r for r in rules if url in r) for url in URLS}
    port_rule = by_host[URLS[0]]
    assert port_rule.startswith("alert http $HOME_NET any -> any 8080 (")
    assert 'http.host; content:"bad.example"; startswith; endswith;' in port_rule
    assert "|3A|8080" not in port_rule
    v6 = by_host[URLS[1]]
    assert v6.startswith("alert http $HOME_NET any -> any 8443 (")
    assert 'http.host; content:"[2001|3A|db8|3A 3A|5]"; startswith; endswith;' in v6
    assert by_host[URLS[2]].startswith("alert http $HOME_NET any -> any any (")
    assert 'http.host; content:"plain.example"; startswith; endswith;' in by_host[URLS[2]]


def test_snort_host_header_keeps_ipv6_brackets(cert_in: Agency) -> None:
    rules = _rules(cert_in, "snort")
    v6 = next(r for r in rules if URLS[1] in r)
    assert 'content:"Host|3A| [2001|3A|db8|3A 3A|5]|3A|8443|0D 0A|"; http_header; nocase;' in v6
    port_rule = next(r for r in rules if URLS[0] in r)
    assert 'content:"Host|3A| bad.example|3A|8080|0D 0A|"; http_header;' in port_rule
