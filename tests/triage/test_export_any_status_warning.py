"""`export --any-status` writes values analysts marked false-positive or rejected too (found on
a walkthrough: a trap for a blocklist). It still does, as documented, and now says so."""

from __future__ import annotations

from tests.conftest import Agency
from tests.triage.conftest import indicator, put


def test_any_status_warns_of_values_judged_benign(cert_in: Agency) -> None:
    put(cert_in, [indicator("bad.example"), indicator("cdn.example"), indicator("fresh.example")])
    assert cert_in.run("triage", "accept", "bad.example").exit_code == 0
    assert cert_in.run("triage", "false-positive", "cdn.example", "--note", "our CDN").exit_code == 0

    everything = cert_in.run("export", "--any-status")
    assert everything.exit_code == 0, everything.stderr
    assert "cdn.example" in everything.stdout.splitlines()
    assert (
        "warning: --any-status: 1 object marked false-positive or rejected is in this export"
        in everything.stderr
    )
    assert "--any-status" not in cert_in.run("export").stderr  # accepted only: nothing to say
    chosen = cert_in.run("export", "--status", "new", "--status", "accepted")
    assert "cdn.example" not in chosen.stdout and "warning" not in chosen.stderr
