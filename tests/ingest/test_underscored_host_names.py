"""Host names with an underscore (found on a walkthrough): `evil_x[.]com` was shared as a
file name and `my_host.duckdns.org` rejected as "not a recognised indicator". DNS names may
hold underscores; a defanged value names a network indicator; a one-dot name with an
underscore that was not defanged (`Monlam_Grand_Tibetan_Dictionary_2018.zip`) stays a file."""

from __future__ import annotations

import json
from pathlib import Path

from cti_exchange.stix.ioc_types import IocType, detect_ioc_type
from tests.conftest import Agency


def _patterns(agency: Agency, tmp_path: Path, lines: list[str]) -> list[str]:
    source = tmp_path / "iocs.txt"
    source.write_text("".join(f"{line}\n" for line in lines))
    out = tmp_path / "out.json"
    result = agency.run("convert", str(source), "--tlp", "green", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    return sorted(o["pattern"] for o in json.loads(out.read_text())["objects"] if o["type"] == "indicator")


def test_defanged_and_multi_label_names_with_underscores_are_domains(cert_fr: Agency, tmp_path: Path) -> None:
    patterns = _patterns(
        cert_fr,
        tmp_path,
        [
            "evil_x[.]com",
            "evil_y[.]net",
            "a_b.evil.com",
            "my_host.duckdns.org",
            "Monlam_Grand_Tibetan_Dictionary_2018.zip",
        ],
    )
    assert patterns == [
        "[domain-name:value = 'a_b.evil.com']",
        "[domain-name:value = 'evil_x.com']",
        "[domain-name:value = 'evil_y.net']",
        "[domain-name:value = 'my_host.duckdns.org']",
        "[file:name = 'Monlam_Grand_Tibetan_Dictionary_2018.zip']",
    ]


def test_file_names_with_underscores_stay_file_names() -> None:
    for name in ("setup_x.exe", "my_file.tar.gz", "invoice_2026.docx", "report_v1.2.pdf"):
        assert detect_ioc_type(name) is IocType.FILE_NAME, name
    assert detect_ioc_type("a_b.evil.com:443") is IocType.DOMAIN_PORT
