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


def test_an_unsafe_pinned_file_holds_up_only_what_goes_to_its_partner(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    # The posting side: an envelope for CERT-DE waits in CERT-In's outbox when CERT-DE's file
    # turns unsafe. CERT-In's push to CERT-FR goes on; what waits for CERT-DE stays in its
    # outbox with that file's error, and goes once the file is safe again.
    exchange, de = trio
    fr, india = exchange.fr, exchange.india
    for_de = write_iocs(tmp_path / "de.csv", 2, tlp="green", start=10)
    assert india.run("push", str(for_de), "--to", "cert-de", "--queue").exit_code == 0
    unsafe = india.home / "partners" / "cert-de.keys.json"
    unsafe.chmod(0o664)

    to_fr = india.run("push", str(write_iocs(tmp_path / "fr.csv", 2, tlp="green")), "--to", "cert-fr")
    assert to_fr.exit_code == 0, to_fr.stderr
    assert fr.run("pull").exit_code == 0
    assert sorted(received_values(fr)) == ["203.0.0.0", "c2-1.example"]

    synced = india.run("sync", "--json")
    assert synced.exit_code != 0
    failed = synced.json()["failed"]
    assert list(failed) == ["cert-de"], failed
    assert all("pinned keys of partner cert-de" in error for error in failed["cert-de"].values())
    assert received_values(de) == []

    unsafe.chmod(0o644)
    assert india.run("sync").exit_code == 0
    assert de.run("pull").exit_code == 0
    assert sorted(received_values(de)) == ["203.0.0.10", "c2-11.example"]
