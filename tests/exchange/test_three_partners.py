"""Three agencies on one real TAXII server: what one partner sends cannot overwrite what
another shared (store/objects.py: only the partner that shared an object, or its creator,
moves it to a newer version)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Agency
from tests.exchange.conftest import Exchange, one_indicator_bundle

OBJECT_ID = "indicator--3f1d2c4b-5a69-4e7f-8a9b-0c1d2e3f4a5b"
LATER = "2026-11-21T10:00:00.000Z"  # after the first version (one_indicator_bundle)


def _bundle(path: Path, **changes: Any) -> Path:
    return one_indicator_bundle(path, OBJECT_ID, "203.0.113.88", **changes)


def test_a_partner_cannot_revoke_what_another_partner_shared(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    exchange, de = trio
    fr, india = exchange.fr, exchange.india
    pushed = fr.run("push", str(_bundle(tmp_path / "fr.json")), "--to", "cert-in", "--tlp", "green")
    assert pushed.exit_code == 0, pushed.stderr
    first = india.run("pull", "--json")
    assert first.exit_code == 0, first.stderr

    revoked = _bundle(tmp_path / "de.json", modified=LATER, revoked=True)
    pushed = de.run("push", str(revoked), "--to", "cert-in", "--tlp", "green")
    assert pushed.exit_code == 0, pushed.stderr
    pulled = india.run("pull", "--json")
    assert pulled.exit_code == 0, pulled.stderr  # a valid envelope: accepted, only not applied
    by_partner = {p["partner"]: p for p in pulled.json()["partners"]}
    (held,) = by_partner["cert-de"]["versions_not_applied"]
    assert held["object_id"] == OBJECT_ID and held["owner"] == "cert-fr"

    listed = india.run("triage", "list", "--json").json()["items"]
    (item,) = [i for i in listed if i["id"] == OBJECT_ID]
    assert item["partners"] == ["cert-fr"] and not item["revoked"]
    assert india.run("export", "--format", "plain", "--any-status").stdout.count("203.0.113.88") == 1

    # In plain output the analyst is told, in one line, and cron's log gets the same line.
    again = _bundle(tmp_path / "de2.json", modified="2026-11-22T10:00:00.000Z", description="rewritten")
    assert de.run("push", str(again), "--to", "cert-in", "--tlp", "green").exit_code == 0
    text = india.run("sync")
    assert text.exit_code == 0, text.stderr
    log = "\n".join(p.read_text() for p in (india.home / "logs").glob("*.log*"))
    assert "cert-de sent 1 newer version(s) of objects shared by cert-fr: kept, not applied" in log
