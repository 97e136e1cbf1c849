"""A partner's TLP:AMBER values do not go on to a third agency as ours (policy/sharing.py
RULE_LEARNED): cert-fr shares values with cert-in at each level; a cert-in analyst copies them
into a CSV of cert-in's own (even marked GREEN) and pushes it to cert-de. Before, the creator
rule no longer saw cert-fr in them and everything went to cert-de."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Agency
from tests.exchange.conftest import Exchange, received_values

RULE_LEARNED = "partner-value-no-onward-sharing"
FR_VALUES = {
    "amber": "fr-amber.evil.example",
    "amber+strict": "fr-strict.evil.example",
    "red": "fr-red.evil.example",
    "green": "fr-green.evil.example",
}
EARLY = "in-early.evil.example"  # cert-in shared it with cert-de before cert-fr sent it


def _csv(path: Path, values: list[str]) -> Path:
    path.write_text("value,type,tlp\n" + "".join(f"{v},domain-name,green\n" for v in values))
    return path


def _fr_shares_with_india(exchange: Exchange, tmp_path: Path, values: list[tuple[str, str]]) -> None:
    """cert-fr pushes each (TLP, value) to cert-in, which pulls them."""
    fr, india = exchange.fr, exchange.india
    assert fr.run("partners", "set", "cert-in", "--allow-red", "--max-tlp", "red").exit_code == 0
    for number, (tlp, value) in enumerate(values):
        csv = tmp_path / f"fr-{number}.csv"
        csv.write_text(f"value,type,tlp\n{value},domain-name,{tlp}\n")
        pushed = fr.run("push", str(csv), "--to", "cert-in", "--allow-red")
        assert pushed.exit_code == 0, pushed.stderr
    pulled = india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr


def test_values_a_partner_sent_at_amber_or_red_go_only_back_to_it(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    exchange, de = trio
    fr, india = exchange.fr, exchange.india
    early = india.run("push", str(_csv(tmp_path / "early.csv", [EARLY])), "--to", "cert-de")
    assert early.exit_code == 0, early.stderr
    _fr_shares_with_india(exchange, tmp_path, [*FR_VALUES.items(), ("amber", EARLY)])
    ours = _csv(tmp_path / "ours.csv", [*FR_VALUES.values(), EARLY, "in-own.evil.example"])

    refused = india.run("push", str(ours), "--to", "cert-de")
    assert refused.exit_code == 8, (refused.stdout, refused.stderr)
    assert RULE_LEARNED in refused.stderr
    assert "cert-fr shared this value with us at TLP:AMBER: it goes on only from cert-fr" in refused.stderr
    assert "ask cert-fr to share it directly" in refused.stderr
    assert "--observed-by-us" in refused.stderr

    sent = india.run("push", str(ours), "--to", "cert-de", "--skip-refused", "--json")
    assert sent.exit_code == 0, sent.stderr
    refusals = sent.json()["refused"]
    assert len(refusals) == 3, refusals
    for tlp in ("amber", "amber+strict", "red"):
        (line,) = [r for r in refusals if FR_VALUES[tlp] in r]
        assert (
            f"(TLP:GREEN) to cert-de: {RULE_LEARNED} (cert-fr shared this value with us at TLP:{tlp.upper()}"
            in line
        )
    assert de.run("pull").exit_code == 0
    # GREEN from cert-fr is shareable; ours before cert-fr sent it stays ours; our own goes.
    assert sorted(received_values(de)) == sorted([FR_VALUES["green"], EARLY, "in-own.evil.example"])

    # Back to the partner that sent them: allowed.
    assert india.run("partners", "set", "cert-fr", "--max-tlp", "red").exit_code == 0
    back = india.run("push", str(ours), "--to", "cert-fr")
    assert back.exit_code == 0, back.stderr
    assert fr.run("pull").exit_code == 0


def test_observed_by_us_lifts_the_rule(trio: tuple[Exchange, Agency], tmp_path: Path) -> None:
    exchange, de = trio
    india = exchange.india
    _fr_shares_with_india(exchange, tmp_path, [("amber", FR_VALUES["amber"])])
    ours = _csv(tmp_path / "ours.csv", [FR_VALUES["amber"]])
    sent = india.run("push", str(ours), "--to", "cert-de", "--observed-by-us")
    assert sent.exit_code == 0, sent.stderr
    assert de.run("pull").exit_code == 0
    assert received_values(de) == [FR_VALUES["amber"]]


def test_seal_and_a_third_partys_creator_are_held_to_it_too(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    """The same values sealed to a file (seal), or in a STIX bundle created by a third party
    (our own MISP's export keeps its identity as creator)."""
    exchange, _ = trio
    india = exchange.india
    _fr_shares_with_india(exchange, tmp_path, [("amber", FR_VALUES["amber"])])
    bundle = tmp_path / "ours.json"
    converted = india.run(
        "convert", str(_csv(tmp_path / "ours.csv", [FR_VALUES["amber"]])), "-o", str(bundle)
    )
    assert converted.exit_code == 0, converted.stderr

    sealed = india.run("seal", str(bundle), "--to", "cert-de", "-o", str(tmp_path / "x.env"))
    assert sealed.exit_code == 8, (sealed.stdout, sealed.stderr)
    assert RULE_LEARNED in sealed.stderr and not (tmp_path / "x.env").exists()
    again = india.run(
        "seal", str(bundle), "--to", "cert-de", "-o", str(tmp_path / "y.env"), "--observed-by-us"
    )
    assert again.exit_code == 0, again.stderr

    misp = "identity--5d0e8a5c-0000-4000-8000-00000000beef"
    document = json.loads(bundle.read_text())
    for obj in document["objects"]:
        if obj["type"] == "indicator":
            obj["created_by_ref"] = misp
    document["objects"].append(
        {
            "type": "identity",
            "spec_version": "2.1",
            "id": misp,
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "name": "Our MISP",
            "identity_class": "system",
        }
    )
    theirs = tmp_path / "misp.json"
    theirs.write_text(json.dumps(document))
    pushed = india.run("push", str(theirs), "--to", "cert-de")
    assert pushed.exit_code == 8, (pushed.stdout, pushed.stderr)
    assert RULE_LEARNED in pushed.stderr
