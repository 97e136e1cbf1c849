"""A partner's channel that went back (found on a walkthrough): CERT-FR restored its store from
an older backup (as `doctor` advises for a damaged store), so its next envelope to CERT-In
reused a sequence number CERT-In had accepted (`sequence-reorder`, refused for good) and the
ones after it failed `chain-mismatch` or waited behind a gap that could never fill;
`quarantine accept-gap` refused them and doctor advised it all the same. Once CERT-FR confirms
the restore, `quarantine accept-restart` takes the first envelope it sent since as the
channel's new start, and the others follow: nothing is lost. Through the CLI, with the real
TAXII server; the restore is a copy of CERT-FR's store.sqlite put back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from cti_exchange.store.store import Store
from tests.conftest import Agency
from tests.envelope.test_cli_envelope import bundle_file, seal, tampered_copy
from tests.exchange.conftest import Exchange, received_values, store_rows, write_iocs

ANALYST = {"CTI_EXCHANGE_ANALYST": "a.dupont"}


def _push(fr: Agency, tmp_path: Path, name: str, start: int) -> list[str]:
    """Pushes two indicators to CERT-In; their values."""
    path = write_iocs(tmp_path / f"{name}.csv", 2, start=start)
    result = fr.run("push", str(path), "--to", "cert-in")
    assert result.exit_code == 0, result.stderr
    return [line.split(",")[0] for line in path.read_text().splitlines()[1:]]


def _back_up(agency: Agency, to: Path) -> None:
    """`sqlite3 store.sqlite ".backup FILE"`: a consistent copy, the WAL included."""
    source = sqlite3.connect(agency.home / "store.sqlite")
    target = sqlite3.connect(to)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def _restore(agency: Agency, backup: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (agency.home / f"store.sqlite{suffix}").unlink(missing_ok=True)
    (agency.home / "store.sqlite").write_bytes(backup.read_bytes())
    (agency.home / "store.sqlite").chmod(0o600)


def _records(agency: Agency) -> list[dict[str, Any]]:
    result = agency.run("quarantine", "list", "--json")
    assert result.exit_code == 0, result.stderr
    return list(result.json())


def _quarantine_check(agency: Agency) -> dict[str, Any]:
    doctor = agency.run("doctor", "--offline", "--json")
    return next(c for c in doctor.json()["checks"] if c["name"] == "quarantine")


def test_a_partner_that_restored_its_store_is_accepted_again_and_nothing_is_lost(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    sent = _push(fr, tmp_path, "a", 0)  # sequence 1
    assert india.run("pull").exit_code == 0
    _back_up(fr, tmp_path / "fr-store.backup")
    sent += _push(fr, tmp_path, "b", 10) + _push(fr, tmp_path, "c", 20)  # 2 and 3
    assert india.run("pull").exit_code == 0
    assert store_rows(india, "SELECT sequence FROM channels_in WHERE sender = 'cert-fr'") == [(3,)]

    _restore(fr, tmp_path / "fr-store.backup")  # CERT-FR's channel to us is back at 1
    sent += _push(fr, tmp_path, "d", 30) + _push(fr, tmp_path, "e", 40) + _push(fr, tmp_path, "f", 50)
    pulled = india.run("pull", "--json")
    assert pulled.exit_code == 4
    refused = _records(india)
    assert [r["reason"] for r in refused] == ["sequence-reorder", "sequence-reorder", "chain-mismatch"]
    first, second, third = (r["id"] for r in refused)
    assert all("accept-restart ID" in r["detail"] and "restored its store" in r["detail"] for r in refused)
    # The errors of the pull name each record, as a gap's names `accept-gap N`.
    assert f"`cti-exchange quarantine accept-restart {first}`" in pulled.stderr
    details = [q["detail"] for q in pulled.json()["partners"][0]["quarantined"]]
    assert [f"accept-restart {n}`" in d for n, d in zip((first, second, third), details, strict=True)] == [
        True,
        True,
        True,
    ]
    assert not any("accept-restart ID" in d for d in details)
    shown = india.run("quarantine", "show", str(third))
    assert f"`cti-exchange quarantine accept-restart {third}`" in " ".join(shown.stderr.split())

    # Not a gap: accept-gap refuses it and says what to run; doctor no longer advises accept-gap.
    gap = india.run("quarantine", "accept-gap", str(third))
    assert gap.exit_code == 2 and f"quarantine accept-restart {third}" in " ".join(gap.stderr.split())
    check = _quarantine_check(india)
    assert "accept-restart" in check["fix"] and "accept-gap" not in check["fix"]

    sent += _push(fr, tmp_path, "g", 60)  # 5: waits behind a gap that cannot fill (4 was refused)
    assert india.run("pull").exit_code == 4
    held = _records(india)[-1]
    assert held["reason"] == "sequence-gap"

    # The new start is the first envelope sent since the restore: a later one is refused.
    later = india.run("quarantine", "accept-restart", str(second))
    assert later.exit_code == 2 and f"accept-restart {first}" in " ".join(later.stderr.split())
    assert len(_records(india)) == 4  # nothing accepted

    result = india.run(
        "quarantine",
        "accept-restart",
        str(first),
        "--note",
        "CERT-FR restored a backup",
        "--json",
        env=ANALYST,
    )
    assert result.exit_code == 0, result.stderr
    restart = result.json()
    assert restart["restarted"] is True and restart["sequence"] == 2
    assert restart["previous_position"]["sequence"] == 3
    assert len(restart["released_envelopes"]) == 3 and restart["still_open"] == []
    assert _records(india) == []
    assert sorted(received_values(india)) == sorted(sent)
    assert store_rows(india, "SELECT sequence FROM channels_in WHERE sender = 'cert-fr'") == [(5,)]
    (audit,) = store_rows(india, "SELECT actor, details FROM audit_log WHERE action = 'channel-restart'")
    details = json.loads(audit[1])
    assert audit[0] == "a.dupont" and details["analyst"] == "a.dupont"
    assert details["previous_position"]["sequence"] == 3 and details["new_position"]["sequence"] == 2
    assert details["note"] == "CERT-FR restored a backup" and details["quarantine_id"] == first

    # The channel goes on from there.
    sent += _push(fr, tmp_path, "h", 70)
    assert india.run("pull").exit_code == 0
    assert sorted(received_values(india)) == sorted(sent)
    assert india.run("audit", "verify").exit_code == 0


def test_what_is_no_restart_is_refused(partnered: tuple[Agency, Agency], tmp_path: Path) -> None:
    """Envelopes as files (the same channels and quarantine): a record refused for another
    reason, and an envelope passed over by an accepted gap that arrives late (a restart taken
    on it would have everything the partner sent since refused)."""
    fr, india = partnered
    bundle = bundle_file(tmp_path)
    one, two, three = (seal(fr, bundle, "cert-in", name=f"{n}.json") for n in (1, 2, 3))
    assert india.run("open", str(one)).exit_code == 0
    assert india.run("open", str(tampered_copy(two))).exit_code == 4
    (tampered,) = _records(india)
    refused = india.run("quarantine", "accept-restart", str(tampered["id"]))
    assert refused.exit_code == 2, refused.stderr
    assert f"refused for {tampered['reason']}, not for where it stands" in " ".join(refused.stderr.split())
    assert "Traceback" not in refused.stderr
    assert india.run("quarantine", "resolve", str(tampered["id"])).exit_code == 0

    assert india.run("open", str(three), "--accept-gap").exit_code == 0  # 2 given up for lost
    assert india.run("open", str(two)).exit_code == 4  # then it arrives: sequence-reorder
    (late,) = _records(india)
    assert late["reason"] == "sequence-reorder"
    refused = india.run("quarantine", "accept-restart", str(late["id"]))
    assert refused.exit_code == 2 and "passed over when a gap was accepted" in " ".join(
        refused.stderr.split()
    )
    assert store_rows(india, "SELECT sequence FROM channels_in WHERE sender = 'cert-fr'") == [(3,)]
    missing = india.run("quarantine", "accept-restart", "999")
    assert missing.exit_code == 2 and "no quarantine record 999" in missing.stderr


def test_a_gap_record_is_not_a_restart(cert_in: Agency) -> None:
    """Found on a review: accept-restart took a sequence-gap record, moving the channel forward
    past envelopes held in the gap (an unknown-key one was then lost) without accept-gap's
    safeguards. A channel ahead of ours is not one that went back: refused, pointing to
    accept-gap."""
    store = Store(cert_in.home / "store.sqlite")
    with store, store.db.transaction() as conn:
        conn.execute(
            "INSERT INTO quarantine (partner, sender, envelope_id, reason, detail, received_at, artifact) "
            "VALUES ('cert-fr', 'cert-fr', 'envelope--1', 'sequence-gap', 'missing 2', 't', '{}')"
        )
    refused = cert_in.run("quarantine", "accept-restart", "1")
    assert refused.exit_code == 2
    assert "held behind a gap: its channel is ahead of ours, not back" in refused.stderr
    assert "quarantine accept-gap 1" in refused.stderr
