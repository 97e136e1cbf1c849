"""Suricata rules (6.0 and later), one or two per value, each with a stable sid (sids.py).

- IPv4 / IPv6 addresses and CIDRs: `alert ip` between $HOME_NET and the address, both ways.
- Domains: a DNS query rule and a TLS SNI rule, each matching the name and any name under it
  (`dotprefix; content:".evil.example"; endswith`), without case.
- URLs: an HTTP rule on the exact host name and the exact URI (path and query, `startswith;
  endswith`); a port in the URL is the rule header's destination port, since `http.host`
  holds the name without it. An https URL only matches where TLS is decrypted before
  Suricata. `http.uri` is normalised (%-escapes decoded), so a path or query written with a
  `%` is matched as written in `http.uri.raw` instead, where it would otherwise never match.
- X.509 certificate SHA-1 fingerprints: a TLS rule on the certificate the server sends
  (`tls.cert_fingerprint`, lower-case hex pairs joined by colons, as Suricata writes it). TLS
  1.3 encrypts the certificate: only TLS 1.2 and older handshakes show it.
- Not written, with the reason in the file's head: e-mail addresses and file names (no
  keyword matches them reliably across Suricata versions and protocols), file hashes (matched
  against hash list files, not inline), CVEs (not a network pattern), and the other types
  ids_rules.SKIP_REASONS names.
"""

from __future__ import annotations

from cti_exchange.exporters.ids_rules import IdsRuleExporter, Rule, content, raw_uri, split_host_header


class SuricataExporter(IdsRuleExporter):
    name = "suricata"

    def domain_rules(self, domain: str) -> list[Rule]:
        name = content("." + domain.rstrip(".").lower())
        match = ["dotprefix;", f'content:"{name}";', "nocase;", "endswith;"]
        return [
            ("alert dns $HOME_NET any -> any any", "dns", ["dns.query;", *match]),
            ("alert tls $HOME_NET any -> any any", "tls", ["tls.sni;", *match]),
        ]

    def url_rules(self, host: str, uri: str) -> list[Rule]:
        # `http.host` is libhtp's normalised host name: lower case and without the port, which
        # it keeps apart. A port in the URL goes into the rule header (the flow's destination
        # port) instead: written into `http.host`, the rule would never match.
        name, port = split_host_header(host)
        detection = [
            "flow:established,to_server;",
            "http.host;",
            f'content:"{content(name.lower())}";',
            "startswith;",
            "endswith;",
            "http.uri.raw;" if raw_uri(uri) else "http.uri;",
            f'content:"{content(uri)}";',
            "startswith;",
            "endswith;",
        ]
        return [(f"alert http $HOME_NET any -> any {port or 'any'}", "http", detection)]

    def certificate_rules(self, fingerprint: str) -> list[Rule]:
        # The server sends its certificate: traffic to our networks' clients. `fingerprint` is
        # hex digits and colons only (ids_rules._rules builds it), nothing to escape.
        detection = ["flow:established,to_client;", "tls.cert_fingerprint;", f'content:"{fingerprint}";']
        return [("alert tls any any -> $HOME_NET any", "tls-cert", detection)]
