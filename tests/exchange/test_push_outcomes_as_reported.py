"""What `push`, `seal` and `demo` tell the analyst about the outcome: which input a TLP refusal
is about, what a dry run of a finished push would do, and why a demo's delivery failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency, run_cli
from tests.exchange.conftest import Exchange, write_iocs

ROUGE = "malware--6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def _bundle(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.write_text(
        json.dumps(
            {"type": "bundle", "id": "bundle--0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5", "objects": objects}
        )
    )
    return path


def _red_malware(name: str) -> dict[str, Any]:
    return {
        "type": "malware",
        "spec_version": "2.1",
        "id": ROUGE,
        "created": "2026-11-23T10:00:00.000Z",
        "modified": "2026-11-23T10:00:00.000Z",
        "name": name,
        "is_family": True,
        "object_marking_refs": [Tlp.RED.marking_id],
    }


# -- 1. a refusal names the row it is about ------------------------------------------------


def test_a_tlp_refusal_names_the_indicators_value(partnered: tuple[Agency, Agency], tmp_path: Path) -> None:
    """An analyst pushing a CSV could not tell which row `indicator--<uuid>` was."""
    fr, _ = partnered
    csv = tmp_path / "mixed.csv"
    csv.write_text("value,tlp\nrouge.example,red\nok.example,amber\n")
    refused = fr.run("push", str(csv), "--to", "cert-in")
    assert refused.exit_code == 8, refused.stderr
    assert "[domain-name rouge.example] (TLP:RED) to cert-in" in refused.stderr
    assert "ok.example" not in refused.stderr

    dry = fr.run("push", str(csv), "--to", "cert-in", "--dry-run")
    assert dry.exit_code == 8, dry.stderr
    assert "not sent: indicator--" in dry.stderr and "[domain-name rouge.example] (TLP:RED)" in dry.stderr

    as_json = fr.run("push", str(csv), "--to", "cert-in", "--dry-run", "--json")
    assert as_json.exit_code == 8, as_json.stderr
    [shown] = as_json.json()["refused"]
    assert shown.startswith("indicator--") and "[domain-name rouge.example] (TLP:RED) to cert-in" in shown


def test_a_refusal_names_an_object_by_its_name_escaped_and_cut(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """A name is untrusted input: no terminal escape or bidi override reaches the terminal or
    the --json refusals, and a long one is cut."""
    fr, _ = partnered
    hostile = "Rouge\x1b[2J\u202eware" + "x" * 300
    bundle = _bundle(tmp_path / "rouge.json", [_red_malware(hostile)])

    sealed = fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(tmp_path / "envelope.json"))
    assert sealed.exit_code == 8, sealed.stderr
    assert f"{ROUGE} [Rouge\\x1b[2J\\u202eware" in sealed.stderr
    assert "characters)] (TLP:RED) to cert-in" in sealed.stderr
    assert "x" * 200 not in sealed.stderr

    dry = fr.run("push", str(bundle), "--to", "cert-in", "--dry-run", "--json")
    assert dry.exit_code == 8, dry.stderr
    [shown] = dry.json()["refused"]
    assert shown.startswith(f"{ROUGE} [Rouge\\x1b[2J\\u202eware") and "(TLP:RED) to cert-in" in shown
    assert "\x1b" not in shown and "\u202e" not in shown and "x" * 200 not in shown


# -- 2. a dry run of a finished push -------------------------------------------------------


def test_a_dry_run_of_a_finished_push_says_nothing_would_be_sent(exchange: Exchange, tmp_path: Path) -> None:
    """It said "would send" while the real run would send nothing (same request: shared once)."""
    iocs = write_iocs(tmp_path / "iocs.csv", 3)
    first = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--json")
    assert first.exit_code == 0, first.stderr
    again = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--json").json()
    assert again["already_shared_at"]

    dry = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would send" not in dry.stdout
    assert (
        f"Already shared by the same push on {again['already_shared_at']}; nothing would be sent"
        in dry.stdout
    )

    as_json = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--dry-run", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    data = as_json.json()
    assert data["dry_run"] and data["already_shared_at"] == again["already_shared_at"]
    assert data["partners"][0]["envelopes"] == first.json()["partners"][0]["envelopes"]

    # With --reshare the real run would share again: so would the dry run.
    reshare = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--dry-run", "--reshare", "--json").json()
    assert reshare["already_shared_at"] is None and reshare["partners"][0]["objects"] == 3


def test_a_dry_run_of_a_finished_push_with_skip_refused(exchange: Exchange, tmp_path: Path) -> None:
    csv = tmp_path / "mixed.csv"
    csv.write_text("value,tlp\nrouge.example,red\nok.example,amber\n")
    sent = exchange.fr.run("push", str(csv), "--to", "cert-in", "--skip-refused")
    assert sent.exit_code == 0, sent.stderr
    dry = exchange.fr.run("push", str(csv), "--to", "cert-in", "--skip-refused", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert dry.json()["already_shared_at"] and len(dry.json()["refused"]) == 1
    # Without --skip-refused it is another request, which the real run would refuse.
    refused = exchange.fr.run("push", str(csv), "--to", "cert-in", "--dry-run", "--json")
    assert refused.exit_code == 8 and refused.json()["already_shared_at"] is None


# -- 3. the demo's delivery failure --------------------------------------------------------


def test_demo_exits_with_the_cause_of_a_failed_delivery() -> None:
    """The demo's server dies as CERT-FR posts (a failpoint in the server process): the network
    failure is exit 7, as for `push`, not "indicators did not arrive verified" (4)."""
    result = run_cli("demo", "--json", env={"CTI_EXCHANGE_FAILPOINT": "server-add-objects:1"})
    assert result.exit_code == 7, result.stderr
    assert "delivery failed for cert-in" in result.stderr and "arrived verified" not in result.stderr
    summary = result.json()
    assert not summary["all_arrived"] and summary["received"] == 0
    assert list(summary["failed"]) == ["cert-in"]
