"""Personal data in URLs (GDPR, DPDP Act): found on a walkthrough, where a victim's webmail
URL with its password (`https://jdupont:Hunter2pass@mail.victim-corp.fr/owa/`) and a URL
carrying an individual's e-mail address in its query were shared and exported with no word.
A URL cannot be scrubbed like a description without changing what it matches, so it is
withheld like an individual's e-mail address (stix/guardrails.py, url_personal_data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti_exchange.stix.guardrails import url_personal_data
from tests.conftest import Agency

WITHHELD = [
    "hxxps://jdupont:Hunter2pass@mail.victim-corp[.]fr/owa/",
    "ftp://user:secret@files.victim.example/upload/",
    "https://evil.example/track?token=1&email=ravi.kumar@gmail.com",
    "https://ravi.kumar@gmail.com@evil.example/",
    "https://evil.example/a#to=jean.dupont@orange.fr",
]
KEPT = [
    "https://evil.example/ok",
    "https://evil.example/@someone/path",  # a handle in a path, not an address
    "ftp://anonymous@evil.example/pub/",  # a user name without a password
    "https://evil.example/report?to=abuse@evil.example",  # a role mailbox
]


def _pattern_bundle(urls: list[str]) -> dict[str, object]:
    return {
        "type": "bundle",
        "id": "bundle--0b1f9a1e-7f57-4f53-9c2c-333333333333",
        "objects": [
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": f"indicator--4a2b9c9e-1111-4c1e-8a11-{n:012d}",
                "created": "2026-01-01T00:00:00Z",
                "modified": "2026-01-01T00:00:00Z",
                "pattern": f"[url:value = '{url}']",
                "pattern_type": "stix",
                "valid_from": "2026-01-01T00:00:00Z",
            }
            for n, url in enumerate(urls)
        ],
    }


def test_urls_with_a_password_or_an_address_are_withheld_from_a_list(cert_fr: Agency, tmp_path: Path) -> None:
    source = tmp_path / "urls.csv"
    source.write_text("value\n" + "".join(f"{url}\n" for url in WITHHELD + KEPT))
    out = tmp_path / "out.json"
    result = cert_fr.run("convert", str(source), "--tlp", "green", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    shared = out.read_text()
    assert "Hunter2pass" not in shared and "secret@" not in shared
    assert "ravi.kumar" not in shared and "jean.dupont" not in shared
    assert "evil.example/ok" in shared and "@someone" in shared and "anonymous@" in shared
    assert result.stderr.count("personal data") == len(WITHHELD)
    assert "a URL holding a password" in result.stderr and "--keep-personal-data" in result.stderr
    assert "Hunter2pass" in result.stderr  # the analyst's own terminal names the line's value

    kept = cert_fr.run("convert", str(source), "--tlp", "green", "-o", str(out), "--keep-personal-data")
    assert kept.exit_code == 0, kept.stderr
    assert "Hunter2pass" in out.read_text() and "ravi.kumar" in out.read_text()


def test_stix_patterns_comparing_such_urls_are_withheld(cert_fr: Agency, tmp_path: Path) -> None:
    refanged = [url.replace("hxxps", "https").replace("[.]", ".") for url in WITHHELD]
    source = tmp_path / "urls.json"
    source.write_text(json.dumps(_pattern_bundle(refanged + KEPT)))
    out = tmp_path / "out.json"
    result = cert_fr.run("convert", str(source), "--tlp", "green", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    patterns = [o["pattern"] for o in json.loads(out.read_text())["objects"] if o["type"] == "indicator"]
    assert len(patterns) == len(KEPT)
    assert not any("Hunter2pass" in p or "ravi.kumar" in p or "jean.dupont" in p for p in patterns)
    assert result.stderr.count("personal data") == len(WITHHELD)


@pytest.mark.parametrize(
    "url", WITHHELD[1:] + [u.replace("hxxps", "https").replace("[.]", ".") for u in WITHHELD[:1]]
)
def test_each_is_named_for_what_it_holds(url: str) -> None:
    assert url_personal_data(url) is not None


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-./?=&#%", max_size=60))
def test_a_url_without_an_at_sign_is_never_withheld(tail: str) -> None:
    assert url_personal_data(f"https://evil.example/{tail}") is None
