"""Suricata rules (6.0 and later), one or two per value, each with a stable sid (sids.py).

- IPv4 / IPv6 addresses and CIDRs: `alert ip` between $HOME_NET and the address, both ways.
- Domains: a DNS query rule and a TLS SNI rule, each matching the name and any name under it
  (`dotprefix; content:".evil.example"; endswith`), without case.
- URLs: an HTTP rule on the exact Host and the exact URI (path and query, `startswith;
  endswith`). An https URL only matches where TLS is decrypted before Suricata.
- Not written, with the reason in the file's head: e-mail addresses and file names (no
  keyword matches them reliably across Suricata versions and protocols), file hashes (matched
  against hash list files, not inline), CVEs (not a network pattern).
"""

from __future__ import annotations

from typing import TextIO

from cti_exchange.exporters.ids_rules import (
    SKIP_REASONS,
    address,
    content,
    rule_options,
    url_parts,
    write_rule,
)
from cti_exchange.exporters.interface import Exporter, ExportItem, ExportSummary
from cti_exchange.exporters.sids import rule_key


class SuricataExporter(Exporter):
    name = "suricata"
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
            name = content("." + item.value.rstrip(".").lower())
            match = ["dotprefix;", f'content:"{name}";', "nocase;", "endswith;"]
            write_rule(
                out,
                summary,
                "alert dns $HOME_NET any -> any any",
                self._options(item, "dns", ["dns.query;", *match]),
            )
            write_rule(
                out,
                summary,
                "alert tls $HOME_NET any -> any any",
                self._options(item, "tls", ["tls.sni;", *match]),
            )
            return True
        if kind == "url":
            parts = url_parts(item.value)
            if parts is None:
                return False
            host, uri = parts
            detection = [
                "flow:established,to_server;",
                "http.host;",
                f'content:"{content(host)}";',
                "startswith;",
                "endswith;",
                "http.uri;",
                f'content:"{content(uri)}";',
                "startswith;",
                "endswith;",
            ]
            write_rule(
                out,
                summary,
                "alert http $HOME_NET any -> any any",
                self._options(item, "http", detection),
            )
            return True
        return False

    def skip_reason(self, ioc_type: str) -> str:
        return SKIP_REASONS.get(ioc_type, "not an http(s) URL or an address a rule can hold")
