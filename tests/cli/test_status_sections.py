"""Piped or in cron's mail, `status` and `partners show` name their tables (found on a
walkthrough): two tab-separated tables one after the other, with no title, read as one."""

from __future__ import annotations

from tests.conftest import Agency


def test_piped_status_names_its_sections(cert_fr: Agency) -> None:
    result = cert_fr.run("status")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Partners:" and lines[1].startswith("partner\tlast pull")
    sent = lines.index("Sent envelopes:")
    assert lines[sent - 1] == "" and lines[sent + 1].startswith("partner\tsealed\tposted")
    assert "Partners:" not in cert_fr.run("status", "--json").stdout


def test_piped_partners_show_names_the_pinned_keys(partnered: tuple[Agency, Agency]) -> None:
    cert_fr, _ = partnered
    lines = cert_fr.run("partners", "show", "cert-in").stdout.splitlines()
    keys = lines.index("Pinned keys:")
    assert lines[keys - 1] == "" and lines[keys + 1].startswith("kid\tuse\talg")
