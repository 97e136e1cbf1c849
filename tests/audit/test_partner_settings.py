"""`partners set` is recorded in the audit trail: what we may send a partner, and where we
push it, are sharing decisions. Before, `--allow-red`, `--max-tlp` and `--api-root` left no
record."""

from __future__ import annotations

from tests.conftest import Agency


def _records(agency: Agency) -> list[dict]:
    result = agency.run("audit", "show", "--action", "partner-settings", "--json")
    assert result.exit_code == 0, result.stderr
    return list(result.json())


def test_each_change_is_recorded_with_its_old_and_new_value(partnered: tuple[Agency, Agency]) -> None:
    fr, _ = partnered
    result = fr.run("partners", "set", "cert-in", "--max-tlp", "green", "--allow-red")
    assert result.exit_code == 0, result.stderr
    root = "https://taxii.cert-in.example/exchange/"
    assert fr.run("partners", "set", "cert-in", "--api-root", root).exit_code == 0

    first, second = _records(fr)
    assert first["partner"] == "cert-in"
    assert first["details"]["changed"] == {
        "allow_red": {"from": False, "to": True},
        "max_tlp": {"from": "amber", "to": "green"},
    }
    assert second["details"]["changed"]["api_root"]["to"] == root
    assert fr.run("audit", "verify", "--no-sign").exit_code == 0


def test_setting_what_is_already_set_records_nothing(partnered: tuple[Agency, Agency]) -> None:
    fr, _ = partnered
    assert fr.run("partners", "set", "cert-in", "--max-tlp", "green").exit_code == 0
    assert fr.run("partners", "set", "cert-in", "--max-tlp", "green").exit_code == 0
    assert len(_records(fr)) == 1
