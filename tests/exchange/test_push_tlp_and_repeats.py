"""What a later push does to what was shared before, through the CLI against the real server.

- An indicator shared at TLP:AMBER and listed again in a file pushed with `--tlp green` (or
  with the profile's default) keeps TLP:AMBER: a later list must not downgrade what partners
  hold. `--lower-tlp` lowers it on purpose.
- Running the same push again with an option that changed nothing (`--strict` with nothing
  flagged, `--skip-refused` with nothing refused, the default TLP spelled out) is the same
  push: nothing is sent again as new versions.
- A push whose partner's server is down seals what it would send and keeps it in the outbox,
  as it says: the next `sync` posts it.
- A TLP:RED refusal names only the permission that is missing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cti_exchange.stix.tlp import Tlp
from tests.exchange.conftest import Exchange, received_values, write_iocs
from tests.exchange.serve_process import closed_port_url


def _tlp_of_value(agency_home: Path, value: str) -> str | None:
    conn = sqlite3.connect(agency_home / "store.sqlite")
    try:
        row = conn.execute("SELECT tlp FROM objects WHERE value = ? AND is_current = 1", (value,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def _first_then_later(tmp_path: Path) -> tuple[Path, Path]:
    first = tmp_path / "first.csv"
    first.write_text("value,type,tlp,confidence\nc2-one.example,domain-name,amber,90\n")
    later = tmp_path / "later.txt"
    later.write_text("c2-one.example\nother-c2.example\n")
    return first, later


def test_a_later_push_does_not_lower_the_tlp_of_what_was_shared(exchange: Exchange, tmp_path: Path) -> None:
    first, later = _first_then_later(tmp_path)
    assert exchange.fr.run("push", str(first), "--to", "cert-in").exit_code == 0

    pushed = exchange.fr.run("push", str(later), "--to", "cert-in", "--tlp", "green")
    assert pushed.exit_code == 0, pushed.stderr
    assert (
        "warning: 1 object(s) shared before at a stricter TLP keep it (TLP:AMBER 1), though this "
        "input marks them lower; to lower their TLP on purpose, run the push with --lower-tlp"
    ) in pushed.stderr
    assert exchange.india.run("pull").exit_code == 0
    assert _tlp_of_value(exchange.india.home, "c2-one.example") == Tlp.AMBER.value
    assert _tlp_of_value(exchange.india.home, "other-c2.example") == Tlp.GREEN.value


def test_the_dry_run_shows_the_tlp_kept(exchange: Exchange, tmp_path: Path) -> None:
    first, later = _first_then_later(tmp_path)
    assert exchange.fr.run("push", str(first), "--to", "cert-in").exit_code == 0
    dry = exchange.fr.run("push", str(later), "--to", "cert-in", "--tlp", "green", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    report = dry.json()
    # Keyed by TLP value, as `sight`, `triage`, `export` and `partners` give a TLP in --json.
    assert report["tlp_kept"] == {"amber": 1} and report["tlp_lowered"] == {}
    assert report["partners"][0]["by_tlp"] == {"amber": 1, "green": 1}
    table = exchange.fr.run("push", str(later), "--to", "cert-in", "--tlp", "green", "--dry-run")
    assert "TLP:AMBER 1, TLP:GREEN 1" in table.stdout  # the table says it as TLP 2.0 writes it


def test_lower_tlp_lowers_it_on_purpose(exchange: Exchange, tmp_path: Path) -> None:
    first, later = _first_then_later(tmp_path)
    assert exchange.fr.run("push", str(first), "--to", "cert-in").exit_code == 0
    pushed = exchange.fr.run("push", str(later), "--to", "cert-in", "--tlp", "green", "--lower-tlp")
    assert pushed.exit_code == 0, pushed.stderr
    assert (
        "1 object(s) shared before at a stricter TLP (TLP:AMBER 1) go out at the lower TLP" in pushed.stderr
    )
    assert exchange.india.run("pull").exit_code == 0
    assert _tlp_of_value(exchange.india.home, "c2-one.example") == Tlp.GREEN.value


def test_an_option_that_changed_nothing_makes_no_new_push(exchange: Exchange, tmp_path: Path) -> None:
    iocs = write_iocs(tmp_path / "iocs.csv", 4)  # every row has its TLP: no default applies
    assert exchange.fr.run("push", str(iocs), "--to", "cert-in").exit_code == 0
    for options in (["--strict"], ["--skip-refused"], ["--tlp", "green"], ["--format", "csv"]):
        again = exchange.fr.run("push", str(iocs), "--to", "cert-in", *options)
        assert again.exit_code == 0, again.stderr
        assert "Already shared by the same push on" in again.stdout, options
    exchange.india.run("pull")
    conn = sqlite3.connect(exchange.india.home / "store.sqlite")
    try:
        versions = conn.execute("SELECT count(*) FROM objects WHERE type = 'indicator'").fetchone()[0]
    finally:
        conn.close()
    assert versions == 4  # one version each: nothing was shared again


def test_an_option_that_changes_what_is_shared_makes_a_new_push(exchange: Exchange, tmp_path: Path) -> None:
    bare = tmp_path / "bare.txt"
    bare.write_text("c2-one.example\n")
    assert exchange.fr.run("push", str(bare), "--to", "cert-in").exit_code == 0
    # The profile's default is TLP:AMBER: spelled out, it changes nothing.
    same = exchange.fr.run("push", str(bare), "--to", "cert-in", "--tlp", "amber")
    assert "Already shared" in same.stdout, same.stderr
    clear = exchange.fr.run("push", str(bare), "--to", "cert-in", "--tlp", "red", "--json")
    assert clear.exit_code == 8, clear.stderr  # a new push, which the TLP:RED policy refuses


def test_already_shared_with_rejected_rows_says_so(exchange: Exchange, tmp_path: Path) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("value,type\nc2-one.example,domain-name\nnot a value,domain-name\n")
    first = exchange.fr.run("push", str(odd), "--to", "cert-in")
    assert first.exit_code == 1 and "the rest was sent" in first.stderr
    again = exchange.fr.run("push", str(odd), "--to", "cert-in")
    assert again.exit_code == 1
    assert "Already shared by the same push" in again.stdout
    assert "1 input row(s) were rejected; the rest was shared already, on " in again.stderr
    assert "the rest was sent" not in again.stderr
    assert "rejected: " in again.stderr and "warning: rejected" not in again.stderr


def test_a_push_to_a_server_that_is_down_is_kept_for_sync(exchange: Exchange, tmp_path: Path) -> None:
    real = exchange.server.api_root_url
    set_down = exchange.fr.run(
        "partners", "set", "cert-in", "--api-root", closed_port_url(), "--retry-budget", "1"
    )
    assert set_down.exit_code == 0, set_down.stderr
    iocs = write_iocs(tmp_path / "iocs.csv", 3)
    pushed = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--json")
    assert pushed.exit_code == 7, pushed.stderr
    plan = pushed.json()["partners"][0]
    assert len(plan["envelopes"]) == 1 and list(plan["failed"]) == plan["envelopes"]
    assert "kept in the outbox and are posted again by the next push or sync" in pushed.stderr

    assert exchange.fr.run("partners", "set", "cert-in", "--api-root", real).exit_code == 0
    synced = exchange.fr.run("sync", "--json")
    assert synced.exit_code == 0, synced.stderr
    assert exchange.india.run("pull").exit_code == 0
    assert len(received_values(exchange.india)) == 3


def test_a_red_refusal_names_only_what_is_missing(exchange: Exchange, tmp_path: Path) -> None:
    red = tmp_path / "red.csv"
    red.write_text("value,tlp\nred-1.example,red\n")
    neither = exchange.fr.run("push", str(red), "--to", "cert-in")
    assert "`cti-exchange partners set cert-in --allow-red` and --allow-red here" in neither.stderr

    flag_only = exchange.fr.run("push", str(red), "--to", "cert-in", "--allow-red")
    assert flag_only.exit_code == 8
    assert "for TLP:RED, `cti-exchange partners set cert-in --allow-red`" in flag_only.stderr
    assert "--allow-red here" not in flag_only.stderr

    assert exchange.fr.run("partners", "set", "cert-in", "--allow-red").exit_code == 0
    entry_only = exchange.fr.run("push", str(red), "--to", "cert-in")
    assert entry_only.exit_code == 8
    assert "for TLP:RED, --allow-red here" in entry_only.stderr
    assert "partners set cert-in --allow-red" not in entry_only.stderr
    dry = exchange.fr.run("push", str(red), "--to", "cert-in", "--dry-run")
    assert dry.exit_code == 8 and "for TLP:RED, --allow-red here" in dry.stderr
