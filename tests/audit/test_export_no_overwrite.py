"""`audit export` does not overwrite an extract already written (evidence) unless --force."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Agency, CliResult


def _export(agency: Agency, out: Path, *extra: str) -> CliResult:
    return agency.run(
        "audit", "export", "--since", "2030-01-03", "--until", "2030-01-04", "-o", str(out), *extra
    )


def _records(agency: Agency) -> int:
    return len(agency.run("audit", "show", "--json").json())


def test_an_existing_extract_is_not_overwritten_without_force(trail: Agency, tmp_path: Path) -> None:
    out = tmp_path / "evidence.jws"
    assert _export(trail, out).exit_code == 0
    first = out.read_bytes()
    records = _records(trail)

    refused = _export(trail, out)
    assert refused.exit_code == 2, refused.stdout + refused.stderr
    assert f"{out} exists: audit export does not overwrite a file" in refused.stderr
    assert "--force" in refused.stderr
    assert out.read_bytes() == first
    assert _records(trail) == records  # nothing recorded, nothing signed

    forced = _export(trail, out, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert out.read_bytes() != first
    assert trail.run("audit", "check-extract", str(out)).exit_code == 0


def test_a_dangling_link_in_its_place_is_refused_too(trail: Agency, tmp_path: Path) -> None:
    out = tmp_path / "evidence.jws"
    out.symlink_to(tmp_path / "elsewhere.jws")
    refused = _export(trail, out)
    assert refused.exit_code == 2 and "exists" in refused.stderr
    assert not (tmp_path / "elsewhere.jws").exists()
