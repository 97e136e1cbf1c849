"""Snort 2.9 rules (also what Snort 3's snort2lua converts), one per value, stable sids.

- IPv4 / IPv6 addresses and CIDRs: `alert ip` between $HOME_NET and the address, both ways.
- Domains: DNS queries over UDP to port 53 that hold the name in wire form
  (`|04|evil|07|example|00|`), which matches the name and every name under it. Snort 2.9 has
  no TLS SNI buffer, so there is no second rule as in Suricata.
- URLs: HTTP requests whose normalised URI holds the path and query and whose Host header is
  exactly the URL's host (`Host|3A| evil.example|0D 0A|` in http_header).
- Not written, with the reason in the file's head: e-mail addresses, file names, file hashes,
  CVEs (ids_rules.SKIP_REASONS says why).
"""

from __future__ import annotations

from typing import TextIO

from cti_exchange.exporters.ids_rules import (
    SKIP_REASONS,
    address,
    content,
    dns_labels,
    rule_options,
    url_parts,
    write_rule,
)
from cti_exchange.exporters.interface import Exporter, ExportItem, ExportSummary
from cti_exchange.exporters.sids import rule_key


class SnortExporter(Exporter):
    name = "snort"
    extension = "rules"

    def _options(self, item: ExportItem, kind: str, detection: list[str]) -> list[str]:
        assert self.context.sid_for is not None
        sid = self.context.sid_for(rule_key(item.ioc_type, item.value, kind))
        return rule_options(item, sid, detection)

    def write(self, item: ExportItem, out: TextIO, summary: ExportSummary) -> bool:
        kind = item.ioc_type
        if kind in ("ipv4-addr", "ipv6-addr"):
            target = address(item)
            if target is None:
                return False
            write_rule(
                out,
                summary,
                f"alert ip $HOME_NET any <> {target} any",
                self._options(item, "ip", []),
            )
            return True
        if kind == "domain-name":
            wire = dns_labels(item.value.lower())
            if wire is None:
                return False
            detection = [f'content:"{wire}";', "nocase;", "fast_pattern:only;"]
            write_rule(
                out,
                summary,
                "alert udp $HOME_NET any -> any 53",
                self._options(item, "dns", detection),
            )
            return True
        if kind == "url":
            parts = url_parts(item.value)
            if parts is None:
                return False
            host, uri = parts
            detection = [
                "flow:to_server,established;",
                f'content:"{content(uri)}";',
                "http_uri;",
                f'content:"Host|3A| {content(host)}|0D 0A|";',
                "http_header;",
                "nocase;",
            ]
            write_rule(
                out,
                summary,
                "alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS",
                self._options(item, "http", detection),
            )
            return True
        return False

    def skip_reason(self, ioc_type: str) -> str:
        if ioc_type == "domain-name":
            return "a label of the name is empty or longer than 63 bytes"
        return SKIP_REASONS.get(ioc_type, "not an http(s) URL or an address a rule can hold")
