"""One partner's pinned key file left unsafe (group-writable) stops only that partner's pull:
the others' envelopes are opened with their own pinned keys, which are safe, and the row of
each partner carries its own error, not another's."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Agency
from tests.exchange.conftest import Exchange, received_values, write_iocs


def test_an_unsafe_pinned_file_fails_only_its_partners_pull(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    exchange, de = trio
    fr, india = exchange.fr, exchange.india
    from_fr = write_iocs(tmp_path / "fr.csv", 2, tlp="green")
    from_de = write_iocs(tmp_path / "de.csv", 2, tlp="green", start=10)
    assert fr.run("push", str(from_fr), "--to", "cert-in").exit_code == 0
    assert de.run("push", str(from_de), "--to", "cert-in").exit_code == 0
    unsafe = india.home / "partners" / "cert-de.keys.json"
    unsafe.chmod(0o664)

    pulled = india.run("pull", "--json")
    assert pulled.exit_code == 1, pulled.stderr  # partial: cert-fr was pulled
    rows = {row["partner"]: row for row in pulled.json()["partners"]}
    assert rows["cert-fr"]["error"] is None
    assert len(rows["cert-fr"]["accepted_envelopes"]) == 1
    assert rows["cert-fr"]["quarantined"] == []
    error = rows["cert-de"]["error"]
    assert "pinned keys of partner cert-de" in error and "chmod" in error, error
    assert rows["cert-de"]["accepted_envelopes"] == []
    assert sorted(received_values(india)) == ["203.0.0.0", "c2-1.example"]
    assert "cert-de" in pulled.stderr and "pull failed for" in pulled.stderr

    # Made safe again, cert-de's envelope is read then, nothing of it lost or quarantined.
    unsafe.chmod(0o644)
    again = india.run("pull", "--json")
    assert again.exit_code == 0, again.stderr
    rows = {row["partner"]: row for row in again.json()["partners"]}
    assert len(rows["cert-de"]["accepted_envelopes"]) == 1 and rows["cert-de"]["quarantined"] == []
    assert len(received_values(india)) == 4
