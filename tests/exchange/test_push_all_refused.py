"""`push --skip-refused` when the TLP policy refused every object: it sent nothing, so it ends
as a refusal (exit 8, docs/OPERATIONS.md) with one line saying so, not as a push that sent
("0 objects sent", exit 0, which a cron wrapper takes for success). `--json` still prints its
report, which says it (`all_refused`). Run again once the partner's entry allows the TLP, the
same push sends: nothing was recorded as shared."""

from __future__ import annotations

from pathlib import Path

from tests.exchange.conftest import Exchange, received_values


def test_skip_refused_with_everything_refused_is_a_refusal(exchange: Exchange, tmp_path: Path) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("partners", "set", "cert-in", "--max-tlp", "green").exit_code == 0
    amber = tmp_path / "amber.csv"
    amber.write_text("value,type,tlp\na-one.example,domain-name,amber\na-two.example,domain-name,amber\n")

    pushed = fr.run("push", str(amber), "--to", "cert-in", "--skip-refused")
    assert pushed.exit_code == 8, (pushed.stdout, pushed.stderr)
    last = pushed.stderr.strip().splitlines()[-1]
    assert "nothing was sent: the TLP policy refused every object for cert-in" in last, last
    assert "(2 refusal(s): above-partner-max-tlp 2)" in last, last
    # What would get them through; --skip-refused, given already, is no way out.
    assert "cti-exchange partners set cert-in --max-tlp LEVEL" in last, last
    assert "send the rest with --skip-refused" not in last, last

    as_json = fr.run("push", str(amber), "--to", "cert-in", "--skip-refused", "--json")
    assert as_json.exit_code == 8, as_json.stderr
    report = as_json.json()
    assert report["all_refused"] is True and len(report["refused"]) == 2
    assert report["partners"][0]["objects"] == 0 and report["partners"][0]["envelopes"] == []

    dry = fr.run("push", str(amber), "--to", "cert-in", "--skip-refused", "--dry-run")
    assert dry.exit_code == 8, dry.stderr
    assert "nothing would be sent: the TLP policy refused every object for cert-in" in dry.stderr

    assert india.run("pull").exit_code == 0
    assert received_values(india) == []
    assert fr.run("partners", "set", "cert-in", "--max-tlp", "amber").exit_code == 0
    again = fr.run("push", str(amber), "--to", "cert-in", "--skip-refused", "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["all_refused"] is False and again.json()["partners"][0]["objects"] == 2
    assert india.run("pull").exit_code == 0
    assert sorted(received_values(india)) == ["a-one.example", "a-two.example"]


def test_some_sent_with_skip_refused_is_no_refusal(exchange: Exchange, tmp_path: Path) -> None:
    fr = exchange.fr
    assert fr.run("partners", "set", "cert-in", "--max-tlp", "green").exit_code == 0
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("value,type,tlp\na-one.example,domain-name,amber\ng-one.example,domain-name,green\n")
    pushed = fr.run("push", str(mixed), "--to", "cert-in", "--skip-refused", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    assert pushed.json()["all_refused"] is False and pushed.json()["partners"][0]["objects"] == 1
