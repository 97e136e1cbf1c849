"""A third agency joins an exchange served by `cti-exchange serve`, then is removed: `serve`
withdraws its access at the next start. Through the CLI, with the real server in a child
process on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.conftest import Agency, make_agency, pin
from tests.exchange.serve_process import TAXII, serving


def _collection_titles(url: str, agency_id: str, password: str) -> set[str]:
    answer = requests.get(
        f"{url}collections/", auth=(agency_id, password), headers={"Accept": TAXII}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    return {str(c["title"]) for c in answer.json().get("collections", [])}


def _password(host: Agency, agency_id: str) -> str:
    return (host.home / "taxii-server" / "credentials" / f"{agency_id}.secret").read_text().strip()


def test_serve_withdraws_the_access_of_a_partner_removed_from_the_profile(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """cert-fr served cert-fr, cert-in and cert-de, removed cert-de (`partners remove`) and
    started `serve` again: it said "Serving 2 agencies", yet cert-de could still read and
    write its collections on the server."""
    cert_fr, _ = partnered
    cert_de = make_agency(tmp_path, "cert-de", "CERT-Bund")
    pin(cert_fr, cert_de, tmp_path)
    stderr: list[str] = []
    with serving(cert_fr, stderr=stderr) as url:
        de_password, in_password = _password(cert_fr, "cert-de"), _password(cert_fr, "cert-in")
        assert _collection_titles(url, "cert-de", de_password) == {
            "CERT-Bund to CERT-FR",
            "CERT-FR to CERT-Bund",
            "CERT-Bund to CERT-In",
            "CERT-In to CERT-Bund",
        }

    removed = cert_fr.run("partners", "remove", "cert-de", "--yes")
    assert removed.exit_code == 0, removed.stderr
    # It says what it leaves as it was: the data received, and the server until restarted.
    assert "What cert-de sent stays in the store" in removed.stderr, removed.stderr
    assert "restart `cti-exchange serve` to withdraw its access" in removed.stderr
    with serving(cert_fr, stderr=stderr) as url:
        assert _collection_titles(url, "cert-de", de_password) == set()
        # cert-in keeps its collections with cert-fr; those with cert-de are closed.
        assert _collection_titles(url, "cert-in", in_password) == {"CERT-FR to CERT-In", "CERT-In to CERT-FR"}
    assert "Serving 2 agencies" in stderr[-1]
    assert "Account cert-de: not a partner of cert-fr any more" in stderr[-1], stderr[-1]
    # cert-in loses its collections with cert-de too, without having done anything: said so.
    assert "with every agency served here, cert-in included: tell them" in stderr[-1], stderr[-1]

    pin(cert_fr, cert_de, tmp_path)  # pinned again: the same account and password
    with serving(cert_fr, stderr=stderr) as url:
        assert len(_collection_titles(url, "cert-de", de_password)) == 4
    assert "New account" not in stderr[-1] and "not a partner" not in stderr[-1]
