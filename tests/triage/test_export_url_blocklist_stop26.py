"""URLs in blocklists (plain, CSV, MISP) without what never reaches a proxy (stop 26): a
fragment (`#frag;x`: never sent, so the entry never matched, and list readers that strip
inline `#` comments cut it to the site's root, blocking the whole site) and user information
(`user:password@`: a password handed to SOC tools). Two values that differ only there are
written once, with the strictest TLP of both. An empty query (`/?`) is kept, as clients send
it; a host's trailing dot is dropped, as proxies compare the name. Decisions and the stored
values are unchanged."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put

STORED = {
    "https://evil10.example/#frag;x": "green",
    "http://user:pa%22ss@evil11.example/": "green",
    "http://evil11.example/": "clear",  # the same as the one above, once its password is gone
    "http://evil12.example/x#one": "clear",
    "http://evil12.example/x#two": "amber",  # and both are http://evil12.example/x
    "http://evil37.example/?": "green",
    "http://evil38.example./x": "green",
    "http://evil39.example#top": "green",
}
WRITTEN = [
    "http://evil11.example/",
    "http://evil12.example/x",
    "http://evil37.example/?",
    "http://evil38.example/x",
    "http://evil39.example/",
    "https://evil10.example/",
]


def _store(agency: Agency) -> None:
    objects = [indicator(value, "url", tlp=tlp) for value, tlp in STORED.items()]
    put(agency, [identity(FR_IDENTITY, "CERT-FR"), *objects])
    assert agency.run("triage", "accept", *(o["id"] for o in objects)).exit_code == 0


def test_plain_and_csv_write_urls_as_a_proxy_compares_them(cert_in: Agency, tmp_path: Path) -> None:
    _store(cert_in)

    plain = cert_in.run("export", "--format", "plain", "-o", str(tmp_path / "urls.txt"), "--json")
    assert plain.exit_code == 0, plain.stderr
    text = (tmp_path / "urls.txt").read_text()
    lines = text.splitlines()
    assert sorted(line for line in lines if not line.startswith("#")) == WRITTEN
    assert "pa%22ss" not in text and "#frag;x" not in text and "#one" not in text
    assert lines[0].startswith("# TLP:AMBER")  # evil12.example/x#two, merged
    assert "# written without their #fragment and user:password@ (neither reaches a proxy): 4 url" in text
    (summary,) = plain.json()["files"]
    assert summary["trimmed"] == {"url": 4} and summary["values"] == len(WRITTEN)

    assert cert_in.run("export", "--format", "csv", "-o", str(tmp_path / "urls.csv")).exit_code == 0
    with (tmp_path / "urls.csv").open() as lines_in:
        rows = list(csv.DictReader(x for x in lines_in if not x.startswith("#")))
    assert sorted(r["value"] for r in rows) == WRITTEN
    tlp = {r["value"]: r["tlp"] for r in rows}
    assert tlp["http://evil11.example/"] == "green" and tlp["http://evil12.example/x"] == "amber"


def test_misp_writes_them_so_too_and_decisions_see_the_written_form(cert_in: Agency) -> None:
    _store(cert_in)
    exported = cert_in.run("export", "--format", "misp")
    assert exported.exit_code == 0, exported.stderr
    values = sorted(a["value"] for a in json.loads(exported.stdout)["Event"]["Attribute"])
    assert values == WRITTEN

    # The value a proxy compares is what an analyst decided on: marking one spelling a false
    # positive withholds what would be written for the others.
    stored = indicator("http://evil40.example/p#a", "url", tlp="green")
    other = indicator("http://evil40.example/p", "url", tlp="green")
    put(cert_in, [stored, other])
    assert cert_in.run("triage", "accept", other["id"]).exit_code == 0
    assert cert_in.run("triage", "false-positive", stored["id"], "--note", "a CDN").exit_code == 0
    plain = cert_in.run("export", "--format", "plain", "--type", "url")
    assert "http://evil40.example/p" not in plain.stdout
    # The stored values stay as the partner sent them.
    shown = cert_in.run("triage", "show", stored["id"], "--json")
    assert shown.exit_code == 0 and "http://evil40.example/p#a" in shown.stdout
