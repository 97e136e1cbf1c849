"""Tables of victims stay out, however the report words them (the stop's review: a table under
"Compromised organisations" with an `IP address` column was shared, since only "victim",
"target", "affected" and "infected" were known). A column naming who holds the address
(sector, country, organisation, owner) says the same; "Indicators of Compromise" above a hash
table does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Agency


@pytest.mark.parametrize(
    ("title", "header"),
    [
        ("Compromised organisations", "| IP address | Notes |"),
        ("Impacted networks", "| IP address | Notes |"),
        ("Breached entities", "| IP address | Notes |"),
        ("Customers notified", "| IP address | Notes |"),
        ("Hit list", "| IP address | Notes |"),
        ("Networks seen", "| IP address | Sector |"),
        ("Networks seen", "| Domain | Organisation |"),
        ("Networks seen", "| IP address | Country |"),
    ],
)
def test_a_table_of_victims_is_skipped_and_counted(
    cert_fr: Agency, tmp_path: Path, title: str, header: str
) -> None:
    report = tmp_path / "report.md"
    report.write_text(
        f"# Campaign\n\n## {title}\n\n{header}\n|---|---|\n| 203.0.113.0/24 | energy |\n"
        "| 198.51.100.7 | water |\n| victim-corp.example | water |\n"
    )
    result = cert_fr.run("validate", "--json", str(report))
    found = result.json()
    assert found["objects"] == 0, found
    skipped = [w for w in found["warnings"] if w["code"] == "table-rows" and "victims" in w["reason"]]
    assert len(skipped) == 1 and skipped[0]["skipped_lines"] == 3


def test_indicators_of_compromise_above_a_hash_table_are_read(cert_fr: Agency, tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    report.write_text(
        f"# Indicators of Compromise\n\n| SHA-256 | File name |\n|---|---|\n| {'ab' * 32} | a.dll |\n"
    )
    found = cert_fr.run("validate", "--json", str(report)).json()
    assert found["accepted_by_type"] == {"sha256": 1}
