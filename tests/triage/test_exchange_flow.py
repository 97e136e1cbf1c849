"""Triage on what really came over TAXII: signatures, related objects, sightings back."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.exchange.conftest import Exchange, write_iocs
from tests.triage.conftest import DATA


def _pull(exchange: Exchange, agency: str) -> None:
    who = exchange.india if agency == "cert-in" else exchange.fr
    pulled = who.run("pull", "--json")
    assert pulled.exit_code == 0, pulled.stderr


def test_show_has_sources_signer_versions_and_related_objects(exchange: Exchange, tmp_path: Path) -> None:
    bundle = shutil.copy(DATA / "oasis-indicators-for-C2-with-COA.json", tmp_path / "c2.json")
    pushed = exchange.fr.run("push", str(bundle), "--to", "cert-in", "--json")
    assert pushed.exit_code in (0, 1), pushed.stderr  # 10.0.0.0 may be refused as private
    _pull(exchange, "cert-in")
    fingerprint = exchange.fr.signing_fingerprint()

    listed = exchange.india.run("triage", "list", "--json").json()["items"]
    by_type = {item["type"]: item for item in listed}
    assert {"indicator", "malware", "course-of-action"} <= set(by_type)
    sha = next(i for i in listed if i["ioc_type"] == "sha256")
    assert sha["partners"] == ["cert-fr"] and sha["status"] == "new"

    shown = exchange.india.run("triage", "show", sha["id"], "--json")
    assert shown.exit_code == 0, shown.stderr
    detail = shown.json()
    source = detail["own_sources"][0]
    assert source["partner"] == "cert-fr"
    assert source["signer_thumbprint"] == fingerprint and source["signer_kid"]
    assert [v["is_current"] for v in detail["versions"]] == [True]
    related = {(r["relationship_type"], r["type"], r["via"] is not None) for r in detail["related"]}
    assert ("indicates", "malware", False) in related  # the indicator indicates Poison Ivy
    assert ("mitigates", "course-of-action", True) in related  # which a course of action mitigates
    assert detail["object"]["pattern"].startswith("[file:hashes.")

    # The same through the terminal rendering (TSV without a terminal).
    text = exchange.india.run("triage", "show", sha["id"][:20]).stdout
    assert fingerprint in text and "Poison Ivy" in text and "mitigates" in text


def test_sighting_goes_back_to_the_source(exchange: Exchange, tmp_path: Path) -> None:
    iocs = write_iocs(tmp_path / "iocs.csv", 4)
    assert exchange.fr.run("push", str(iocs), "--to", "cert-in").exit_code == 0
    _pull(exchange, "cert-in")
    item = exchange.india.run("triage", "list", "--type", "domain-name", "--json").json()["items"][0]

    sent = exchange.india.run(
        "sight",
        item["value"],
        "--count",
        "12",
        "--first-seen",
        "2026-11-20T08:00:00Z",
        "--last-seen",
        "2026-11-21T09:30:00Z",
        "--note",
        "outbound proxy logs",
        "--json",
        env={"CTI_EXCHANGE_ANALYST": "priya"},
    )
    assert sent.exit_code == 0, sent.stderr
    sighting = sent.json()["sightings"][0]
    assert sighting["partner"] == "cert-fr" and sighting["sighting_of_ref"] == item["id"]
    assert sighting["tlp"] == "amber" and sighting["delivered"]

    _pull(exchange, "cert-fr")
    seen = exchange.fr.run("triage", "list", "--sighted", "--json").json()["sightings"]
    assert len(seen) == 1
    assert seen[0]["value"] == item["value"] and seen[0]["sighting_of_ref"] == item["id"]
    assert seen[0]["partner"] == "cert-in" and seen[0]["count"] == 12
    assert seen[0]["first_seen"] == "2026-11-20T08:00:00.000Z"
    assert seen[0]["description"] == "outbound proxy logs"
    assert "cert-in" in exchange.fr.run("triage", "list", "--sighted").stdout

    # The sighting is in CERT-In's audit trail with the analyst, and in its sent log.
    conn = sqlite3.connect(exchange.india.home / "store.sqlite")
    actor, details = conn.execute("SELECT actor, details FROM audit_log WHERE action = 'sighting'").fetchone()
    assert actor == "priya" and json.loads(details)["sighting_of_ref"] == item["id"]
    assert conn.execute("SELECT count(*) FROM shared_objects WHERE type = 'sighting'").fetchone()[0] == 1
    conn.close()


def test_sighting_never_less_strict_than_the_indicator(exchange: Exchange, tmp_path: Path) -> None:
    iocs = write_iocs(tmp_path / "iocs.csv", 2)
    exchange.fr.run("push", str(iocs), "--to", "cert-in")
    _pull(exchange, "cert-in")
    value = exchange.india.run("triage", "list", "--json").json()["items"][0]["value"]
    refused = exchange.india.run("sight", value, "--tlp", "green")
    assert refused.exit_code == 2 and "less strict" in refused.stderr
    unknown = exchange.india.run("sight", "nothing-like-this.example")
    assert unknown.exit_code == 2 and "no object" in unknown.stderr
    ahead = exchange.india.run("sight", value, "--last-seen", "2099-01-01T00:00:00Z")
    assert ahead.exit_code == 2 and "--last-seen: 2099-01-01T00:00:00.000Z is in the future" in ahead.stderr
    swapped = exchange.india.run(
        "sight", value, "--first-seen", "2026-11-22T00:00:00Z", "--last-seen", "2026-11-21T00:00:00Z"
    )
    assert swapped.exit_code == 2 and "--first-seen is after --last-seen" in swapped.stderr

    # A TLP:RED indicator gets a TLP:RED sighting, which our partner entry must allow.
    red = tmp_path / "red.csv"
    red.write_text("value,tlp\nred-c2.example,red\n")
    assert exchange.fr.run("partners", "set", "cert-in", "--allow-red").exit_code == 0
    assert exchange.fr.run("push", str(red), "--to", "cert-in", "--allow-red").exit_code == 0
    _pull(exchange, "cert-in")
    refused = exchange.india.run("sight", "red-c2.example")
    assert refused.exit_code == 8 and "nothing was sent" in refused.stderr
    assert exchange.india.run("partners", "set", "cert-fr", "--allow-red").exit_code == 0
    sent = exchange.india.run("sight", "red-c2.example", "--allow-red", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert sent.json()["sightings"][0]["tlp"] == "red"


def test_one_value_from_two_partners_is_one_line_and_one_export_line(tmp_path: Path) -> None:
    """CERT-FR and a third agency both send the same domain to CERT-In over TAXII."""
    import secrets

    from cti_exchange.server.provisioning import plan_exchange, provision
    from cti_exchange.server.runner import ServerProcess
    from tests.conftest import make_agency, pin

    agencies = [
        make_agency(tmp_path, a, n)
        for a, n in (("cert-fr", "CERT-FR"), ("cert-in", "CERT-In"), ("cert-uk", "NCSC-UK"))
    ]
    fr, india, uk = agencies
    passwords = {a.agency_id: secrets.token_urlsafe(16) for a in agencies}
    provision(
        tmp_path / "taxii",
        plan_exchange([(a.agency_id, a.name) for a in agencies]),
        passwords=passwords,
    )
    for sender in (fr, uk):
        pin(india, sender, tmp_path)
        pin(sender, india, tmp_path)
    server = ServerProcess(tmp_path / "taxii").start()
    try:
        for sender in (fr, uk):
            wiring = Exchange(sender, india, server, passwords)
            wiring.wire(sender, india)
            wiring.wire(india, sender)
            csv = tmp_path / f"{sender.agency_id}.csv"
            csv.write_text(
                f"value,type,tlp\nshared-c2.example,domain-name,green\n"
                f"only-{sender.agency_id}.example,domain-name,green\n"
            )
            assert sender.run("push", str(csv), "--to", "cert-in").exit_code == 0
        assert india.run("pull").exit_code == 0

        items = india.run("triage", "list", "--json").json()["items"]
        shared = [i for i in items if i["value"] == "shared-c2.example"]
        assert len(items) == 3 and len(shared) == 1
        assert sorted(shared[0]["partners"]) == ["cert-fr", "cert-uk"]
        signers = {s["partner"]: s["signer_thumbprint"] for s in shared[0]["sources"]}
        assert signers == {"cert-fr": fr.signing_fingerprint(), "cert-uk": uk.signing_fingerprint()}
        accepted = india.run("triage", "accept", "shared-c2.example", "--json").json()
        assert len(accepted["object_ids"]) == 2  # both partners' indicators
        exported = india.run("export").stdout.splitlines()
        assert [line for line in exported if not line.startswith("#")] == ["shared-c2.example"]

        # A sighting goes to each source, of its own indicator.
        sent = india.run("sight", "shared-c2.example", "--json")
        assert sent.exit_code == 0, sent.stderr
        by_partner = {s["partner"]: s["sighting_of_ref"] for s in sent.json()["sightings"]}
        assert set(by_partner) == {"cert-fr", "cert-uk"} and len(set(by_partner.values())) == 2
        assert uk.run("pull").exit_code == 0
        seen = uk.run("triage", "list", "--sighted", "--json").json()["sightings"]
        assert [s["sighting_of_ref"] for s in seen] == [by_partner["cert-uk"]]
    finally:
        server.stop()
