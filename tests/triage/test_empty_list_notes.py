"""What `triage list` says when nothing matches, found on a walkthrough: it always advised
`pull`, also when the store was full and a filter (or a revocation) left nothing."""

from __future__ import annotations

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put


def test_empty_list_says_why(cert_in: Agency) -> None:
    empty = cert_in.run("triage", "list")
    assert empty.exit_code == 0 and "`cti-exchange pull` fetches" in empty.stderr
    put(
        cert_in,
        [
            identity(FR_IDENTITY, "CERT-FR"),
            indicator("kept.example"),
            indicator("gone.example", revoked=True),
        ],
    )
    revoked = cert_in.run("triage", "list", "--search", "gone")
    assert revoked.exit_code == 0 and revoked.stdout == ""
    assert "add --include-revoked" in revoked.stderr and "pull" not in revoked.stderr
    assert "gone.example" in cert_in.run("triage", "list", "--search", "gone", "--include-revoked").stdout
    filtered = cert_in.run("triage", "list", "--status", "accepted")
    assert "nothing matches these filters" in filtered.stderr and "pull" not in filtered.stderr
