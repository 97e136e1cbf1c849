"""A pull that cannot unlock our keys (a wrong passphrase, a passphrase file that is not UTF-8)
fails before anything is read or recorded. It used to write its `pull` record, then fail to
sign a head over it (signing needs the same keys): `audit verify` and `doctor` then warned of
an interrupted run or deleted heads, and `audit export` refused with exit 4, an integrity
alert, until the next good pull (error-hunt walkthrough M5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_exchange.errors import ExitCode
from tests.conftest import Agency
from tests.exchange.conftest import Exchange, received_values, write_iocs


def _passphrase_file(tmp_path: Path, content: bytes) -> dict[str, str]:
    path = tmp_path / "passphrase"
    path.write_bytes(content)
    path.chmod(0o600)
    return {"CTI_EXCHANGE_PASSPHRASE_FILE": str(path)}


def _pull_records(agency: Agency) -> int:
    records = agency.run("audit", "show", "--action", "pull", "--json").json()
    return len(records if isinstance(records, list) else records["records"])


@pytest.mark.parametrize(
    ("content", "said"),
    [(b"not the passphrase at all\n", "passphrase"), (b"\xff\xfe caf\xe9\n", "UTF-8")],
    ids=["wrong", "not-utf8"],
)
def test_a_pull_that_cannot_unlock_our_keys_leaves_the_trail_clean(
    exchange: Exchange, tmp_path: Path, content: bytes, said: str
) -> None:
    india = exchange.india
    pulls_before = _pull_records(india)
    failed = india.run("pull", env=_passphrase_file(tmp_path, content))
    assert failed.exit_code in (ExitCode.AUTH, ExitCode.USAGE), failed.stderr
    assert said in failed.stderr
    assert _pull_records(india) == pulls_before  # nothing was done: nothing is recorded

    verified = india.run("audit", "verify")
    assert verified.exit_code == 0, verified.stderr
    assert "warning" not in verified.stderr and "interrupted" not in verified.stderr
    exported = india.run("audit", "export", "--since", "1d", "-o", str(tmp_path / "evidence.jws"))
    assert exported.exit_code == 0, exported.stderr  # was 4, "the audit trail needs a look"

    # The right passphrase: the pull goes ahead, and is recorded as ever.
    write_iocs(tmp_path / "iocs.csv", 1)
    assert exchange.fr.run("push", str(tmp_path / "iocs.csv"), "--to", "cert-in").exit_code == 0
    pulled = india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    assert received_values(india) == ["203.0.0.0"]
    assert _pull_records(india) == pulls_before + 1
