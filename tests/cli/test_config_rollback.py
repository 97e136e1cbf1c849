"""config.toml as cti-exchange writes it stays readable by the release before: a setting that
release does not know is written only when the operator set it (upgrade walkthrough, stop 28:
any command rewriting config.toml added `store_wait_seconds = 30`, and the previous release
then refused the file, exit 2, until it was edited by hand)."""

from __future__ import annotations

import tomllib

from tests.conftest import Agency, set_store_wait


def _operations(agency: Agency) -> dict[str, object]:
    return dict(tomllib.loads((agency.home / "config.toml").read_text())["operations"])


def test_later_settings_are_written_only_when_set(partnered: tuple[Agency, Agency]) -> None:
    cert_fr, _ = partnered
    api_root = ("--api-root", "https://taxii.example/api/")
    assert cert_fr.run("partners", "set", "cert-in", *api_root, "--timeout", "20").exit_code == 0
    assert _operations(cert_fr) == {"undelivered_after_hours": 24, "key_lifetime_days": 365}

    set_store_wait(cert_fr, 5)  # the operator's choice is kept through the next rewrite
    assert cert_fr.run("partners", "set", "cert-in", "--timeout", "25").exit_code == 0
    assert _operations(cert_fr)["store_wait_seconds"] == 5
    assert "max_objects_per_run" not in _operations(cert_fr)


def test_a_field_this_release_does_not_know_says_a_later_release_may_have_written_it(
    cert_fr: Agency,
) -> None:
    config = cert_fr.home / "config.toml"
    config.write_text(config.read_text().replace("[operations]\n", "[operations]\nretention_days = 90\n"))
    result = cert_fr.run("status")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{config}: operations: " in result.stderr
    assert "a field a later cti-exchange writes is not known to this one: remove it" in result.stderr
