"""TLP is enforced when an envelope leaves, not only when it is sealed: what was queued for a
partner before its entry was narrowed (`max_tlp` lowered, `allow_red` withdrawn) is withheld,
and the rest still arrives on an unbroken channel (exchange/reseal.py). Real server, real
stores."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.exchange.conftest import Exchange, received_values, write_iocs


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("value,type,tlp\n" + "".join(f"{v},domain-name,{t}\n" for v, t in rows))
    return path


def test_queued_content_the_partner_may_no_longer_receive_is_withheld(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("partners", "set", "cert-in", "--allow-red").exit_code == 0
    mixed = _csv(
        tmp_path / "mixed.csv", [("g1.example", "green"), ("a1.example", "amber"), ("g2.example", "green")]
    )
    red = _csv(tmp_path / "red.csv", [("r1.example", "red")])
    for args in (
        (str(mixed),),
        (str(red), "--allow-red"),
        (str(write_iocs(tmp_path / "later.csv", 2, tlp="green")),),
    ):
        queued = fr.run("push", *args, "--to", "cert-in", "--queue")
        assert queued.exit_code == 0, queued.stderr
    old = [d["envelope_id"] for d in fr.run("sent", "--json").json()]
    assert len(old) == 3

    # Narrowed after they were queued: amber and red may no longer go to CERT-In.
    assert fr.run("partners", "set", "cert-in", "--max-tlp", "green", "--no-allow-red").exit_code == 0
    synced = fr.run("sync", "--json")
    assert synced.exit_code == 0, synced.stderr
    assert synced.json()["withheld"] == {"cert-in": 2}
    assert "withheld by the sharing policy: 2 object(s) for cert-in" in synced.json()["summary"]

    assert india.run("pull").exit_code == 0
    got = set(received_values(india))
    assert {"g1.example", "g2.example"} <= got and len(got) == 4
    assert not {"a1.example", "r1.example"} & got
    assert india.run("quarantine", "list", "--json").json() == []

    sent = {d["envelope_id"]: d for d in fr.run("sent", "--json").json()}
    assert [sent[e]["status"] for e in old] == ["resealed"] * 3
    assert sent[old[1]]["last_error"] == "withheld: nothing in it may be sent now"
    table = fr.run("sent").stdout  # the note column says it too
    assert "withheld: nothing in it may be sent now" in table and "sealed again as" in table
    with sqlite3.connect(fr.home / "store.sqlite") as db:
        audit = [
            json.loads(d) for (d,) in db.execute("SELECT details FROM audit_log WHERE action = 'reseal'")
        ]
    assert [len(a["withheld"]) for a in audit] == [1, 1, 0]
    assert "holds TLP:AMBER, which cert-in's entry no longer allows" in audit[0]["reason"]

    # The channel goes on: a later push arrives, no gap.
    assert (
        fr.run(
            "push", str(_csv(tmp_path / "next.csv", [("g3.example", "green")])), "--to", "cert-in"
        ).exit_code
        == 0
    )
    assert india.run("pull").exit_code == 0
    assert "g3.example" in received_values(india)
    assert india.run("quarantine", "list", "--json").json() == []
