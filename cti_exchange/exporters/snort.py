"""Snort 2.9 rules (also what Snort 3's snort2lua converts), one per value, stable sids.

- IPv4 / IPv6 addresses and CIDRs: `alert ip` between $HOME_NET and the address, both ways.
- Domains: DNS queries to port 53 that hold the name in wire form (`|04|evil|07|example|00|`),
  which matches the name and every name under it; one rule over UDP and one over TCP (large
  answers, resolvers retrying after truncation, and malware that talks DNS over TCP on
  purpose; the two-byte length prefix does not disturb a content match). Snort 2.9 has no TLS
  SNI buffer, so there is no rule on the TLS handshake as in Suricata.
- URLs: HTTP requests whose normalised URI is exactly the path and query (the content at
  `depth` its length, `urilen` that length: not a request for `/xyz` or `/a/x` when the URL's
  path is `/x`) and whose Host header is exactly the URL's host (`Host|3A| evil.example|0D 0A|`
  in http_header). The path and query are written as clients send them, percent-encoded
  (ids_rules); `http_uri` is normalised (%-escapes decoded), so one with a `%` escape is matched
  in `http_raw_uri` (and `urilen:N,raw`) instead, where it would otherwise never match.
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
        # Exactly the path and query, as Suricata's `startswith; endswith;`: `depth` anchors
        # the content at the start of the URI buffer, `urilen` (Snort 2.9 manual, "urilen":
        # `norm`, the default, or `raw` names the buffer) fixes the buffer's length to the
        # content's, so `/x` matches neither `/xyz` nor `/a/x`. snort2lua turns `urilen` into
        # Snort 3's `bufferlen` on the same buffer.
        size = len(uri.encode("utf-8"))
        raw = raw_uri(uri)
        detection = [
            "flow:to_server,established;",
            f'content:"{content(uri)}";',
            "http_raw_uri;" if raw else "http_uri;",
            f"depth:{size};",
            f"urilen:{size},raw;" if raw else f"urilen:{size};",
            f'content:"Host|3A| {content(host)}|0D 0A|";',
            "http_header;",
            "nocase;",
        ]
        return [("alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS", "http", detection)]

    def skip_reason(self, ioc_type: str) -> str:
        if ioc_type == "domain-name":
            return "a label of the name is empty or longer than 63 bytes"
        return super().skip_reason(ioc_type)
