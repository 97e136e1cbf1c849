"""An export killed by SIGKILL (the OOM killer, a power cut) skips the `finally` that removes
its body file, `.cti-export-body.XXXXXXXX`: a partial, TLP-marked body beside the file an IDS
reads, one more per killed run (crash walkthrough, D2). The next export to that directory
removes those no live export holds (exporters/body_files.py), and `doctor` reports them in the
directories exports were recorded writing to."""

from __future__ import annotations

import os
from pathlib import Path

from cti_exchange.exporters.body_files import locked_body_file
from tests.conftest import Agency
from tests.exchange.conftest import run_in_own_process
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put

_EXPORT = ("export", "--format", "suricata", "--any-status", "-o")


def _bodies(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(".cti-export-body."))


def _leftovers_check(agency: Agency) -> dict[str, str]:
    result = agency.run("doctor", "--offline", "--json")
    return next(c for c in result.json()["checks"] if c["name"] == "export leftovers")


def _stored(agency: Agency, count: int) -> None:
    values = [indicator(f"host{i:04d}.evil-example.net", tlp="amber") for i in range(count)]
    put(agency, [identity(FR_IDENTITY, "CERT-FR"), *values])


def test_the_next_export_removes_the_body_a_killed_export_left(cert_in: Agency, tmp_path: Path) -> None:
    _stored(cert_in, 50)
    out = tmp_path / "ids"
    out.mkdir()
    target = out / "cti.rules"
    assert cert_in.run(*_EXPORT, str(target)).exit_code == 0
    installed = target.read_bytes()
    assert _leftovers_check(cert_in)["status"] == "ok"

    # Killed with every body written, before any is put in place: twice, as cron runs go on.
    # The second run removed the first one's body before it wrote its own: one is left.
    assert run_in_own_process(cert_in, *_EXPORT, str(target), failpoint="export-bodies-written:1") == -9
    [first] = _bodies(out)
    assert first.stat().st_mode & 0o777 == 0o600 and b"evil-example" in first.read_bytes()
    assert run_in_own_process(cert_in, *_EXPORT, str(target), failpoint="export-bodies-written:1") == -9
    [second] = _bodies(out)
    assert second != first
    assert target.read_bytes() == installed  # the target itself is never touched half-way

    check = _leftovers_check(cert_in)
    assert check["status"] == "warn"
    assert "1 partial export file(s)" in check["detail"] and str(second) in check["detail"]
    assert "run the export to that directory again" in check["fix"]

    assert cert_in.run(*_EXPORT, str(target)).exit_code == 0
    assert _bodies(out) == []
    assert _leftovers_check(cert_in)["status"] == "ok"


def test_a_body_a_live_export_holds_is_kept(cert_in: Agency, tmp_path: Path) -> None:
    """Two exports to one directory at once: the body the other is writing is locked, and
    stays; once its writer is gone (the lock released with its last descriptor), it goes."""
    _stored(cert_in, 5)
    out = tmp_path / "ids"
    out.mkdir()
    fd, live, lock = locked_body_file(out, out / "cti.rules")  # as a running export holds it
    os.write(fd, b"# partial\n")
    os.close(fd)
    unrelated = out / ".cti-export-body.notes.txt"  # not a name mkstemp makes
    unrelated.write_text("the operator's\n")
    try:
        assert cert_in.run(*_EXPORT, str(out / "cti.rules")).exit_code == 0
        assert live.read_bytes() == b"# partial\n"
        assert _leftovers_check(cert_in)["status"] == "ok"  # held: not a leftover
    finally:
        os.close(lock)
    assert _leftovers_check(cert_in)["status"] == "warn"
    assert cert_in.run(*_EXPORT, str(out / "cti.rules")).exit_code == 0
    assert not live.exists()
    assert unrelated.read_text() == "the operator's\n"
