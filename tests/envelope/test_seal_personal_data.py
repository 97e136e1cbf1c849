"""`seal` and personal data (found on a walkthrough): it sealed a bundle holding an
individual's e-mail address in a pattern and a description, which `convert` and `push` would
have withheld and scrubbed. A sealed file carries the bundle byte for byte, so such a bundle is
refused (exit 8) unless --keep-personal-data."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Agency

from .conftest import indicator, make_bundle

Pair = tuple[Agency, Agency]


def _bundle(tmp_path: Path, *, description: str) -> Path:
    objects = [indicator("198.51.100.7") | {"description": description}, indicator("198.51.100.8", seed=1)]
    path = tmp_path / "pd.json"
    path.write_bytes(make_bundle(objects).data)
    return path


def test_a_bundle_holding_personal_data_is_not_sealed(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    bundle = _bundle(tmp_path, description="reported by jean.dupont@gmail.com")
    out = tmp_path / "envelope.json"
    refused = cert_fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(out))
    assert refused.exit_code == 8 and refused.stderr.count("\n") == 1, refused.stderr
    assert "hold personal data" in refused.stderr and "convert" in refused.stderr
    assert not out.exists()

    kept = cert_fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(out), "--keep-personal-data")
    assert kept.exit_code == 0, kept.stderr
    opened = cert_in.run("open", str(out), "--json")
    assert opened.exit_code == 0, opened.stderr


def test_a_bundle_without_personal_data_seals_as_before(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, _ = partnered
    bundle = _bundle(tmp_path, description="C2 seen by abuse@registrar.example")  # a role mailbox
    sealed = cert_fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(tmp_path / "envelope.json"))
    assert sealed.exit_code == 0, sealed.stderr
