"""A push run again after part of it failed posts what waits, whichever partners' parts
finished: it is never reported as already shared while an envelope of it is unposted. Real
server; a partner's server "down" is a closed port on loopback. (Review of 0279266, which
records a push per partner.)"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Agency
from tests.exchange.conftest import Exchange, received_values, store_rows
from tests.exchange.serve_process import closed_port_url


def test_a_rerun_posts_to_the_partner_that_was_down_though_the_other_part_finished(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    exchange, de = trio
    india = exchange.india
    good = exchange.server.api_root_url
    down = india.run("partners", "set", "cert-de", "--api-root", closed_port_url(), "--retry-budget", "1")
    assert down.exit_code == 0, down.stderr
    iocs = tmp_path / "h1.csv"
    iocs.write_text("value,type,tlp\nevil-one.example,domain-name,green\n")
    assert india.run("push", str(iocs), "--to", "cert-fr", "--to", "cert-de").exit_code != 0

    assert india.run("partners", "set", "cert-de", "--api-root", good, "--retry-budget", "5").exit_code == 0
    again = india.run("push", str(iocs), "--to", "cert-fr", "--to", "cert-de", "--json")
    assert again.exit_code == 0, again.stderr
    report = again.json()
    assert report["already_shared_at"] is None and report["resumed"] is True
    plans = {p["partner"]: p for p in report["partners"]}
    assert plans["cert-fr"]["already_shared_at"] is not None
    assert plans["cert-de"]["already_shared_at"] is None
    assert sorted(store_rows(india, "SELECT partner, status FROM deliveries")) == [
        ("cert-de", "posted"),
        ("cert-fr", "posted"),
    ]
    assert de.run("pull").exit_code == 0
    assert received_values(de) == ["evil-one.example"]
    # Both parts finished now: a third run sends nothing, and says so.
    third = india.run("push", str(iocs), "--to", "cert-fr", "--to", "cert-de", "--json")
    assert third.exit_code == 0 and third.json()["already_shared_at"] is not None


def test_a_finished_push_that_seals_more_later_is_resumed_until_that_is_posted(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    good = exchange.server.api_root_url
    assert fr.run("partners", "set", "cert-in", "--max-tlp", "green").exit_code == 0
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("value,type,tlp\na-one.example,domain-name,amber\ng-one.example,domain-name,green\n")
    assert fr.run("push", str(mixed), "--to", "cert-in", "--skip-refused").exit_code == 0
    # The partner's entry now allows AMBER: the same push seals the object refused then, but
    # the server is down when it posts.
    assert fr.run("partners", "set", "cert-in", "--max-tlp", "amber").exit_code == 0
    down = fr.run("partners", "set", "cert-in", "--api-root", closed_port_url(), "--retry-budget", "1")
    assert down.exit_code == 0, down.stderr
    assert fr.run("push", str(mixed), "--to", "cert-in").exit_code != 0

    assert fr.run("partners", "set", "cert-in", "--api-root", good, "--retry-budget", "5").exit_code == 0
    third = fr.run("push", str(mixed), "--to", "cert-in", "--json")
    assert third.exit_code == 0, third.stderr
    assert third.json()["already_shared_at"] is None and third.json()["resumed"] is True
    assert india.run("pull").exit_code == 0
    assert sorted(received_values(india)) == ["a-one.example", "g-one.example"]
