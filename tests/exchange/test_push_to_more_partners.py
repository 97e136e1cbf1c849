"""The same push run again with one more partner sends to that partner only, over a real TAXII
server: cert-in pushes a file to cert-fr, cert-de joins, and cert-in pushes the same file to
both. cert-fr, which holds the same content from cert-in already, gets nothing (no second
version, its `valid_until` not moved on) and is reported as already shared; cert-de gets it.

Before, "already shared by the same push" was keyed on the input and the whole set of `--to`
partners (and `--skip-refused`): every new combination sealed every object again for every
partner named. "The same content" is the same input bytes read the same way: a file whose
values, TLP or confidence changed is shared again, as new versions (exchange/push.py
`push_request_ids`)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Agency
from tests.exchange.conftest import Exchange, received_values, store_rows

GREEN = "evil-one.example"
AMBER = "45.77.10.10"


def _versions(agency: Agency, value: str) -> list[tuple[str, str]]:
    """(version, valid_until) of every version stored of the indicator of `value`."""
    return [
        (str(version), str(until))
        for version, until in store_rows(
            agency, "SELECT version, valid_until FROM objects WHERE value = ? ORDER BY version", value
        )
    ]


def test_a_push_to_one_more_partner_sends_to_that_partner_only(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    exchange, de = trio
    fr, india = exchange.fr, exchange.india
    h1 = tmp_path / "h1.csv"
    h1.write_text(f"value,type,tlp\n{GREEN},domain-name,green\n{AMBER},ipv4-addr,amber\n")
    first = india.run("push", str(h1), "--to", "cert-fr")
    assert first.exit_code == 0, first.stderr
    assert fr.run("pull").exit_code == 0
    before = _versions(fr, GREEN)
    assert len(before) == 1

    # cert-de joins with a max TLP of GREEN: the AMBER address is refused for it.
    assert india.run("partners", "set", "cert-de", "--max-tlp", "green").exit_code == 0
    wider = india.run("push", str(h1), "--to", "cert-fr", "--to", "cert-de", "--skip-refused", "--json")
    assert wider.exit_code == 0, wider.stderr
    report = wider.json()
    assert report["already_shared_at"] is None  # something was sent: to cert-de
    by_partner = {p["partner"]: p for p in report["partners"]}
    assert by_partner["cert-fr"]["already_shared_at"] and by_partner["cert-fr"]["to_seal"] == 0
    assert by_partner["cert-fr"]["envelopes"] == first_envelopes(india, "cert-fr")
    assert by_partner["cert-fr"]["delivered"] == []
    assert by_partner["cert-de"]["already_shared_at"] is None
    assert by_partner["cert-de"]["objects"] == 1 and len(by_partner["cert-de"]["delivered"]) == 1

    pulled = fr.run("pull", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    assert pulled.json()["partners"][0]["accepted_envelopes"] == []  # nothing new for cert-fr
    assert _versions(fr, GREEN) == before and len(_versions(fr, AMBER)) == 1
    assert de.run("pull").exit_code == 0
    assert received_values(de) == [GREEN]

    # In plain output: one line for the partner that had it, the table for the one sent to.
    again = india.run("push", str(h1), "--to", "cert-fr", "--to", "cert-de", "--skip-refused")
    assert again.exit_code == 0, again.stderr
    assert "Already shared by the same push on" in again.stdout  # both have it now
    third = tmp_path / "h1-copy.csv"
    third.write_bytes(h1.read_bytes())  # the same bytes under another name: the same push
    assert india.run("partners", "set", "cert-de", "--max-tlp", "amber").exit_code == 0
    more = india.run("push", str(third), "--to", "cert-fr", "--to", "cert-de")
    assert more.exit_code == 0, more.stderr
    assert "cert-fr: already shared by the same push on " in more.stdout, more.stdout
    assert "cert-de\t1\tTLP:AMBER 1" in more.stdout, more.stdout  # only what it was refused before
    assert de.run("pull").exit_code == 0
    assert sorted(received_values(de)) == sorted([GREEN, AMBER])
    assert len(_versions(de, GREEN)) == 1


def first_envelopes(agency: Agency, partner: str) -> list[str]:
    return [
        str(row[0])
        for row in store_rows(
            agency,
            "SELECT envelope_id FROM deliveries WHERE partner = ? ORDER BY envelope_id",
            partner,
        )
    ]


def test_changed_content_goes_again_as_new_versions(trio: tuple[Exchange, Agency], tmp_path: Path) -> None:
    """An analyst pushing the file again with a value's TLP or confidence changed shares the
    change, with the partners that had the first version too."""
    exchange, de = trio
    fr, india = exchange.fr, exchange.india
    h1 = tmp_path / "h1.csv"
    h1.write_text(f"value,type,tlp,confidence\n{GREEN},domain-name,green,50\n")
    assert india.run("push", str(h1), "--to", "cert-fr").exit_code == 0
    h1.write_text(f"value,type,tlp,confidence\n{GREEN},domain-name,green,90\n")
    changed = india.run("push", str(h1), "--to", "cert-fr", "--to", "cert-de", "--json")
    assert changed.exit_code == 0, changed.stderr
    for plan in changed.json()["partners"]:
        assert plan["already_shared_at"] is None and plan["objects"] == 1, plan
    assert fr.run("pull").exit_code == 0
    confidences = store_rows(fr, "SELECT confidence FROM objects WHERE value = ? ORDER BY version", GREEN)
    assert confidences == [(50,), (90,)]
    assert de.run("pull").exit_code == 0
    assert store_rows(de, "SELECT confidence FROM objects WHERE value = ?", GREEN) == [(90,)]
