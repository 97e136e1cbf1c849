"""Snort 2.9 rules (also what Snort 3's snort2lua converts), one per value, stable sids.

- IPv4 / IPv6 addresses and CIDRs: `alert ip` between $HOME_NET and the address, both ways.
- Domains: DNS queries to port 53 that hold the name in wire form (`|04|evil|07|example|00|`),
  which matches the name and every name under it; one rule over UDP and one over TCP (large
  answers, resolvers retrying after truncation, and malware that talks DNS over TCP on
  purpose; the two-byte length prefix does not disturb a content match). Snort 2.9 has no TLS
  SNI buffer, so there is no rule on the TLS handshake as in Suricata.
- URLs: HTTP requests whose normalised URI holds the path and query and whose Host header is
  exactly the URL's host (`Host|3A| evil.example|0D 0A|` in http_header). `http_uri` is
  normalised (%-escapes decoded), so a path or query written with a `%` is matched as written
  with `http_raw_uri` instead, where it would otherwise never match.
- Not written, with the reason in the file's head: e-mail addresses, file names, file hashes,
  CVEs (ids_rules.SKIP_REASONS says why).
"""

from __future__ import annotations

from cti_exchange.exporters.ids_rules import IdsRuleExporter, Rule, content, dns_labels, raw_uri


class SnortExporter(IdsRuleExporter):
    name = "snort"

    def domain_rules(self, domain: str) -> list[Rule]:
        wire = dns_labels(domain.lower())
        if wire is None:
            return []
        detection = [f'content:"{wire}";', "nocase;", "fast_pattern:only;"]
        return [
            ("alert udp $HOME_NET any -> any 53", "dns", detection),
            ("alert tcp $HOME_NET any -> any 53", "dns-tcp", ["flow:to_server,established;", *detection]),
        ]

    def url_rules(self, host: str, uri: str) -> list[Rule]:
        detection = [
            "flow:to_server,established;",
            f'content:"{content(uri)}";',
            "http_raw_uri;" if raw_uri(uri) else "http_uri;",
            f'content:"Host|3A| {content(host)}|0D 0A|";',
            "http_header;",
            "nocase;",
        ]
        return [("alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS", "http", detection)]

    def skip_reason(self, ioc_type: str) -> str:
        if ioc_type == "domain-name":
            return "a label of the name is empty or longer than 63 bytes"
        return super().skip_reason(ioc_type)
