"""Audit of `cti-exchange quarantine` and of held envelopes opened again (exchange/held.py):
each test is a fault an analyst or a cron run met, through the CLI, with real agencies, keys,
store files and (where pull is involved) a real TAXII server."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Agency, lock_held_by_another_run
from tests.envelope.conftest import indicator, make_bundle
from tests.envelope.test_cli_envelope import bundle_file, open_json, rows, seal
from tests.exchange.clock_shift import clock_shifter
from tests.exchange.conftest import Exchange, run_in_own_process, write_iocs

Pair = tuple[Agency, Agency]


def _records(agency: Agency, *args: str) -> list[dict[str, Any]]:
    result = agency.run("quarantine", "list", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return result.json()


def _envelopes(sender: Agency, tmp_path: Path, count: int) -> list[Path]:
    """`count` envelopes to cert-in, each with its own indicators (so each adds versions)."""
    paths = []
    for n in range(1, count + 1):
        bundle = make_bundle([indicator(f"198.51.{n}.{i}") for i in range(1, 3)])
        paths.append(
            seal(sender, bundle_file(tmp_path, f"bundle-{n}.json", bundle), "cert-in", name=f"{n}.json")
        )
    return paths


@pytest.mark.parametrize(
    "args",
    [
        ("show", "99999999999999999999"),
        ("show", "99999999999999999999", "--json"),
        ("resolve", "99999999999999999999", "--discard"),
        ("accept-gap", "99999999999999999999"),
    ],
)
def test_an_id_larger_than_sqlite_holds_is_an_unknown_record(partnered: Pair, args: tuple[str, ...]) -> None:
    """A mistyped id (a pasted timestamp) stopped show, resolve and accept-gap with an internal
    error (OverflowError binding it to SQLite), exit 70."""
    _, cert_in = partnered
    result = cert_in.run("quarantine", *args)
    assert result.exit_code == 2, result.stderr
    assert "no quarantine record 99999999999999999999" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "internal error" not in result.stderr


def test_accept_gap_releases_an_envelope_held_twice_once(partnered: Pair, tmp_path: Path) -> None:
    """Envelope 4 was held twice (another copy of it read from a file while waiting: the same
    file again keeps one record). Accepting the gap on 3 accepted 4 and closed its other copy's
    record with it; the retry then tried to close that copy again, "was resolved at the same
    time", exit 5 - although the gap was accepted."""
    cert_fr, cert_in = partnered
    envelopes = _envelopes(cert_fr, tmp_path, 5)
    copy = json.loads(envelopes[3].read_text())
    copy["id"] = "artifact--00000000-0000-4000-8000-000000000004"  # another TAXII object's id
    other_copy = tmp_path / "4-copy.json"
    other_copy.write_text(json.dumps(copy))
    assert open_json(cert_in, envelopes[0])[0] == 0
    for envelope in (envelopes[2], envelopes[3], other_copy, envelopes[4]):
        assert open_json(cert_in, envelope)[0] == 4
    assert len(_records(cert_in)) == 4
    gap = _records(cert_in)[0]

    result = cert_in.run("quarantine", "accept-gap", str(gap["id"]), "--json")
    assert result.exit_code == 0, result.stderr
    accepted = result.json()
    assert len(accepted["released_envelopes"]) == 2
    assert rows(cert_in, "SELECT sequence FROM channels_in") == [(5,)]
    assert rows(cert_in, "SELECT count(*) FROM envelopes_in") == [(4,)]
    assert _records(cert_in) == []
    assert rows(cert_in, "SELECT count(*) FROM audit_log WHERE action = 'accept'") == [(4,)]


def _held_behind_a_gap(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> dict[str, Any]:
    """Envelopes 1, 3 and 4 opened (2 lost): the quarantine record of 3, held for the gap."""
    envelopes = _envelopes(cert_fr, tmp_path, 4)
    assert open_json(cert_in, envelopes[0])[0] == 0
    assert open_json(cert_in, envelopes[2])[0] == 4
    assert open_json(cert_in, envelopes[3])[0] == 4
    return _records(cert_in)[0]


def test_accept_gap_json_carries_the_counts_the_text_shows(partnered: Pair, tmp_path: Path) -> None:
    """The text says how many new versions the envelopes held behind the gap brought; --json
    had no such field."""
    cert_fr, cert_in = partnered
    gap = _held_behind_a_gap(cert_fr, cert_in, tmp_path)

    accepted = cert_in.run("quarantine", "accept-gap", str(gap["id"]), "--json")
    assert accepted.exit_code == 0, accepted.stderr
    data = accepted.json()
    assert data["new_versions"] == 2 and data["released_objects"] == 2
    assert data["released_new_versions"] == 2


def _open_killed_once_stored(receiver: Agency, envelope: Path) -> None:
    """`open FILE` killed right after the envelope's transaction committed: it is accepted,
    and the envelopes held behind it were not opened again (a pull or the next `open` does)."""
    accepted = rows(receiver, "SELECT count(*) FROM envelopes_in")[0][0]
    assert run_in_own_process(receiver, "open", str(envelope), failpoint="commit-after:1") == -signal.SIGKILL
    assert rows(receiver, "SELECT count(*) FROM envelopes_in")[0][0] == accepted + 1


def test_accept_gap_once_the_gap_has_filled_does_not_claim_a_gap(partnered: Pair, tmp_path: Path) -> None:
    """The missing envelope arrived (`open`, killed once it was stored, before it opened
    again the one held behind it) before the analyst accepted the gap: the warning said
    "accepted despite missing sequence numbers []" and the record and audit trail said a gap
    was accepted."""
    cert_fr, cert_in = partnered
    envelopes = _envelopes(cert_fr, tmp_path, 3)
    assert open_json(cert_in, envelopes[0])[0] == 0
    assert open_json(cert_in, envelopes[2])[0] == 4
    _open_killed_once_stored(cert_in, envelopes[1])
    (gap,) = _records(cert_in)

    result = cert_in.run("quarantine", "accept-gap", str(gap["id"]), env={"CTI_EXCHANGE_ANALYST": "a.dupont"})
    assert result.exit_code == 0, result.stderr
    assert "missing sequence numbers" not in result.stderr and "warning" not in result.stderr
    assert "had arrived" in result.stderr
    (closed,) = _records(cert_in, "--all")
    assert not closed["resolution"].startswith("gap accepted")
    assert closed["resolution"].startswith("accepted by a.dupont")
    assert rows(cert_in, "SELECT sequence FROM channels_in") == [(3,)]


# -- through a TAXII server ----------------------------------------------------------------


def _pulled(exchange: Exchange) -> dict[str, Any]:
    result = exchange.india.run("pull", "--json")
    assert result.exit_code in (0, 4), result.stderr
    return result.json()["partners"][0]


def test_a_pull_releases_an_envelope_held_twice_once(exchange: Exchange, tmp_path: Path) -> None:
    """Envelope 2 was pulled and held behind a lost 1, and also opened from a file (a second
    held record). Once 1 arrived, the next pull accepted 2, then tried to close its second
    record again: `pull` ended with exit 5 ("another instance holds the lock" to cron)."""
    fr, india = exchange.fr, exchange.india
    (first,) = _envelopes(fr, tmp_path, 1)  # a file, not posted: missing from the collection
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in").exit_code == 0
    pulled = _pulled(exchange)
    assert [q["reason"] for q in pulled["quarantined"]] == ["sequence-gap"]
    (record,) = _records(india)

    shown = india.run("quarantine", "show", str(record["id"]), "--artifact")
    copy = tmp_path / "copy.json"
    other = json.loads(shown.stdout)  # another artifact of it (the same one keeps its one record)
    other["id"] = "artifact--00000000-0000-4000-8000-000000000002"
    copy.write_text(json.dumps(other))
    assert open_json(india, copy)[1]["reason"] == "sequence-gap"
    assert len(_records(india)) == 2
    _open_killed_once_stored(india, first)  # 1 arrived; 2 is left for the pull to retry

    result = india.run("pull", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["partners"][0]["accepted_envelopes"] == [record["envelope_id"]]
    assert _records(india) == []
    assert rows(india, "SELECT sequence FROM channels_in") == [(2,)]


def test_a_held_envelope_that_turns_out_to_be_behind_a_gap_can_be_accepted(
    exchange: Exchange, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CERT-FR's clock ran an hour ahead when it pushed envelope 2, and its envelope 1 was
    lost. Held as issued-in-future; once the clocks agree, the retry finds the gap, but the
    record kept saying issued-in-future, and `accept-gap` refused it as not a gap: the channel
    stayed blocked with no way for the analyst to unblock it."""
    fr, india = exchange.fr, exchange.india
    _envelopes(fr, tmp_path, 1)  # envelope 1, never posted
    shift = clock_shifter(monkeypatch)  # the process's clock (cti_exchange.clock), not a module's

    shift(timedelta(hours=1))
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in").exit_code == 0
    monkeypatch.undo()
    pulled = _pulled(exchange)
    assert [q["reason"] for q in pulled["quarantined"]] == ["issued-in-future"]

    # Two hours later on CERT-In's clock: envelope 2 is no longer in the future.
    shift(timedelta(hours=2))
    assert _pulled(exchange)["accepted_envelopes"] == []
    (record,) = _records(india)
    assert record["reason"] == "sequence-gap", record
    assert "missing sequence numbers 1" in record["detail"]

    result = india.run("quarantine", "accept-gap", str(record["id"]), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["missing"] == [1]
    assert _records(india) == []
    assert rows(india, "SELECT sequence FROM channels_in") == [(2,)]


def _second_held_third_as_a_file(exchange: Exchange, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """CERT-FR's envelope 1 lost (never posted), 2 pushed and pulled (held for the gap), 3
    sealed to a file: the quarantine record of 2 and the file of 3."""
    fr = exchange.fr
    _envelopes(fr, tmp_path, 1)
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in").exit_code == 0
    assert [q["reason"] for q in _pulled(exchange)["quarantined"]] == ["sequence-gap"]
    (second,) = _records(exchange.india)
    return second, seal(fr, bundle_file(tmp_path, "bundle-3.json"), "cert-in", name="3.json")


@pytest.mark.parametrize("command", [("pull",), ("pull", "--json"), ("sync",), ("sync", "--json")])
def test_pull_and_sync_report_held_envelopes_closed_for_good(
    exchange: Exchange, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Envelope 2 was pulled and held behind a lost 1; the analyst then opened 3 from a file
    with --accept-gap (killed once 3 was stored, before it opened 2 again). The next pull (or
    sync) opened 2 again, refused it for good (sequence-reorder) and closed its record, and
    said nothing about it: the held envelope left `quarantine list` unseen."""
    india = exchange.india
    second, third = _second_held_third_as_a_file(exchange, tmp_path)
    killed = run_in_own_process(india, "open", str(third), "--accept-gap", failpoint="commit-after:1")
    assert killed == -signal.SIGKILL
    assert rows(india, "SELECT sequence FROM channels_in") == [(3,)] and len(_records(india)) == 1

    result = india.run(*command)
    assert result.exit_code == 0, result.stderr
    assert _records(india) == []
    (closed,) = _records(india, "--all")
    assert closed["id"] == second["id"] and closed["resolution"] == "rejected again: sequence-reorder"
    if "--json" in command:
        partners = result.json()["partners" if command[0] == "pull" else "pulled"]
        (entry,) = partners[0]["closed_records"]
        assert entry["id"] == second["id"] and entry["envelope_id"] == second["envelope_id"]
        assert entry["reason"] == "sequence-reorder"
    elif command[0] == "pull":
        (line,) = [line for line in result.stderr.splitlines() if "closed" in line]
        assert "cert-fr: 1 held envelope(s) refused for good" in line
        assert f"{second['id']} (sequence-reorder)" in line
    else:
        assert "1 held envelope(s) refused for good" in result.stdout
        log = (india.home / "logs" / "cti-exchange.log").read_text()
        assert f"{second['id']} (sequence-reorder)" in log


@pytest.mark.parametrize("json_mode", [True, False])
def test_open_across_a_gap_closes_the_envelopes_held_before_it_and_says_so(
    exchange: Exchange, tmp_path: Path, json_mode: bool
) -> None:
    """Envelope 2 pulled and held behind a lost 1; 3 opened from a file with --accept-gap:
    `open` opens 2 again at once, refuses it for good (it would come after 3) and says so."""
    india = exchange.india
    second, third = _second_held_third_as_a_file(exchange, tmp_path)

    if json_mode:
        code, verdict, stderr = open_json(india, third, "--accept-gap")
        assert code == 0, stderr
        assert verdict["gap_accepted"] == [1, 2] and verdict["closed_records"] == [second["id"]]
        assert verdict["released_envelopes"] == [] and verdict["still_held"] == []
    else:
        result = india.run("open", str(third), "--accept-gap")
        assert result.exit_code == 0, result.stderr
        said = f"quarantine record(s) {second['id']} closed: opened again, refused for good"
        assert said in result.stderr and "Then " not in result.stdout
    assert _records(india) == []
    (closed,) = _records(india, "--all")
    assert closed["resolution"] == "rejected again: sequence-reorder"

    # The text says it too, and a pull afterwards has nothing left to close.
    fourth = seal(exchange.fr, bundle_file(tmp_path, "bundle-4.json"), "cert-in", name="4.json")
    result = india.run("open", str(fourth))
    assert result.exit_code == 0 and "closed" not in result.stderr, result.stderr
    assert india.run("pull", "--json").json()["partners"][0]["closed_records"] == []


def test_accept_gap_waits_for_a_sync_holding_the_profile_lock(partnered: Pair, tmp_path: Path) -> None:
    """accept-gap opens and accepts held envelopes as pull does, but did it without the lock
    pull and sync hold: a cron sync retrying the same envelopes meanwhile could accept one
    of them too, and one of the two then failed on the store's key (exit 70)."""
    cert_fr, cert_in = partnered
    gap = _held_behind_a_gap(cert_fr, cert_in, tmp_path)

    with lock_held_by_another_run(cert_in.home, 1.0):
        started = time.monotonic()
        result = cert_in.run("quarantine", "accept-gap", str(gap["id"]), "--json")
        waited = time.monotonic() - started
    assert result.exit_code == 0, result.stderr
    assert waited >= 0.9
    assert len(result.json()["released_envelopes"]) == 1


# -- an envelope past the maximum age behind a lost one ------------------------------------


def _days_later(monkeypatch: pytest.MonkeyPatch, days: int) -> None:
    """The process's clock, `days` from now: a receiver back from a long absence."""
    clock_shifter(monkeypatch)(timedelta(days=days))


def test_an_old_envelope_behind_a_lost_one_is_held_as_a_gap_and_the_gap_accepted_past_it(
    exchange: Exchange, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CERT-FR lost envelope 1; CERT-In pulled 2 and 3 forty days after they were sent (past
    the 30-day maximum age). Both were held as too-old, never as a gap: `accept-gap` refused
    them ("not for a sequence gap"), every pull opened them again for nothing, and the only way
    out was raising envelope.max_age_days. Now they are held for the gap; accepting it on one
    of them still applies the age limit (and says what to do), and accepting it on the first
    recent envelope closes the old ones for good and unblocks the channel."""
    fr, india = exchange.fr, exchange.india
    _envelopes(fr, tmp_path, 1)  # envelope 1, never posted
    for n in (2, 3):
        pushed = fr.run("push", str(write_iocs(tmp_path / f"{n}.csv", 2, start=10 * n)), "--to", "cert-in")
        assert pushed.exit_code == 0, pushed.stderr

    _days_later(monkeypatch, 40)
    pulled = _pulled(exchange)
    assert [q["reason"] for q in pulled["quarantined"]] == ["sequence-gap", "sequence-gap"]
    second, third = _records(india)
    assert "missing sequence numbers 1 " in second["detail"]

    refused = india.run("quarantine", "accept-gap", str(second["id"]))
    assert refused.exit_code == 4, refused.stderr
    assert "too-old" in refused.stderr and "max_age_days" in refused.stderr
    assert "ask cert-fr to send again what was lost" in refused.stderr and "Traceback" not in refused.stderr
    assert rows(india, "SELECT count(*) FROM envelopes_in") == [(0,)]
    assert len(_records(india)) == 2

    # CERT-FR sends again what it had; its envelope 4 is recent.
    pushed = fr.run("push", str(write_iocs(tmp_path / "4.csv", 2, start=40)), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr
    assert [q["reason"] for q in _pulled(exchange)["quarantined"]] == ["sequence-gap"]
    fourth = _records(india)[2]
    refused = india.run("quarantine", "accept-gap", str(second["id"]))
    assert refused.exit_code == 4 and f"quarantine accept-gap {fourth['id']}" in refused.stderr

    accepted = india.run("quarantine", "accept-gap", str(fourth["id"]), "--json")
    assert accepted.exit_code == 0, accepted.stderr
    assert accepted.json()["missing"] == [1, 2, 3]
    assert accepted.json()["closed_records"] == [second["id"], third["id"]]
    assert _records(india) == []
    closed = {r["id"]: r["resolution"] for r in _records(india, "--all")}
    assert closed[second["id"]] == closed[third["id"]] == "rejected again: sequence-reorder"
    assert rows(india, "SELECT sequence FROM channels_in") == [(4,)]
    assert rows(india, "SELECT count(*) FROM envelopes_in") == [(1,)]
    after = india.run("pull", "--json")
    assert after.exit_code == 0, after.stderr
    assert after.json()["partners"][0]["quarantined"] == []


def test_an_old_envelope_behind_a_lost_one_is_released_once_the_age_limit_allows_it(
    partnered: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Envelopes 3 and 4 opened forty days late, 2 lost. CERT-FR confirms it sent 3, and the
    analyst raises envelope.max_age_days for it: `accept-gap` on 3 accepts it, 4 (chained to
    3) follows, each stored once, and the channel stands at 4."""
    cert_fr, cert_in = partnered
    envelopes = _envelopes(cert_fr, tmp_path, 4)
    assert open_json(cert_in, envelopes[0])[0] == 0
    _days_later(monkeypatch, 40)
    assert open_json(cert_in, envelopes[2])[1]["reason"] == "sequence-gap"
    assert open_json(cert_in, envelopes[3])[1]["reason"] == "sequence-gap"
    third, _ = _records(cert_in)

    refused = cert_in.run("quarantine", "accept-gap", str(third["id"]))
    assert refused.exit_code == 4 and "too-old" in refused.stderr
    config = cert_in.home / "config.toml"
    config.write_text(config.read_text().replace("max_age_days = 30", "max_age_days = 60"))

    accepted = cert_in.run("quarantine", "accept-gap", str(third["id"]), "--json")
    assert accepted.exit_code == 0, accepted.stderr
    data = accepted.json()
    assert data["missing"] == [2] and len(data["released_envelopes"]) == 1
    assert _records(cert_in) == []
    assert rows(cert_in, "SELECT sequence FROM envelopes_in ORDER BY sequence") == [(1,), (3,), (4,)]
    assert rows(cert_in, "SELECT sequence FROM channels_in") == [(4,)]
    assert rows(cert_in, "SELECT count(*) FROM audit_log WHERE action = 'accept'") == [(3,)]


def test_accept_gap_takes_an_old_envelope_an_earlier_version_held_as_too_old(
    partnered: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written before the fix keeps such an envelope held as too-old: `accept-gap`
    opens it again, finds the gap and records it, instead of refusing it as not a gap."""
    cert_fr, cert_in = partnered
    envelopes = _envelopes(cert_fr, tmp_path, 3)
    assert open_json(cert_in, envelopes[0])[0] == 0
    _days_later(monkeypatch, 40)
    assert open_json(cert_in, envelopes[2])[0] == 4
    (record,) = _records(cert_in)
    with sqlite3.connect(cert_in.home / "store.sqlite") as db:  # as the earlier version wrote it
        db.execute("UPDATE quarantine SET reason = 'too-old', detail = 'older than 30 days'")
    config = cert_in.home / "config.toml"
    config.write_text(config.read_text().replace("max_age_days = 30", "max_age_days = 60"))

    accepted = cert_in.run("quarantine", "accept-gap", str(record["id"]), "--json")
    assert accepted.exit_code == 0, accepted.stderr
    assert accepted.json()["missing"] == [2]
    assert rows(cert_in, "SELECT sequence FROM channels_in") == [(3,)]
    (closed,) = _records(cert_in, "--all")
    assert closed["reason"] == "sequence-gap" and closed["resolution"].startswith("gap accepted")


def test_open_accept_gap_on_an_old_envelope_file_says_what_to_do(
    partnered: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`open FILE --accept-gap` on an envelope past the maximum age behind a lost one said
    only "too-old ... (accepting a gap does not lift the age limit)" and "see quarantine
    list", where `quarantine accept-gap` names the first envelope recent enough to take the
    gap, or says to ask the partner or raise max_age_days. The file case says the same, and
    following it unblocks the channel."""
    cert_fr, cert_in = partnered
    envelopes = _envelopes(cert_fr, tmp_path, 4)  # 2 is lost
    assert open_json(cert_in, envelopes[0])[0] == 0
    _days_later(monkeypatch, 40)

    refused = cert_in.run("open", str(envelopes[2]), "--accept-gap")
    assert refused.exit_code == 4, refused.stderr
    assert "too-old" in refused.stderr and "Traceback" not in refused.stderr
    assert "no envelope held from cert-fr is recent enough" in refused.stderr
    assert "ask cert-fr to send again what was lost" in refused.stderr
    (third,) = _records(cert_in)  # kept, as before: the hint names its record for later
    assert f"max_age_days in config.toml and run `cti-exchange quarantine accept-gap {third['id']}`" in (
        refused.stderr
    )

    # CERT-FR's next envelope is recent; it is held for the gap.
    recent = seal(cert_fr, bundle_file(tmp_path, "bundle-5.json"), "cert-in", name="5.json")
    assert open_json(cert_in, recent)[1]["reason"] == "sequence-gap"
    fifth = _records(cert_in)[1]
    dry = cert_in.run("open", str(envelopes[3]), "--accept-gap", "--dry-run")
    assert dry.exit_code == 4 and f"`cti-exchange quarantine accept-gap {fifth['id']}`" in dry.stderr
    assert "max_age_days in config.toml and open it again with --accept-gap" in dry.stderr
    refused = cert_in.run("open", str(envelopes[3]), "--accept-gap")
    assert refused.exit_code == 4 and f"`cti-exchange quarantine accept-gap {fifth['id']}`" in refused.stderr
    fourth = _records(cert_in)[2]

    accepted = cert_in.run("quarantine", "accept-gap", str(fifth["id"]), "--json")
    assert accepted.exit_code == 0, accepted.stderr
    assert accepted.json()["missing"] == [2, 3, 4]
    assert accepted.json()["closed_records"] == [third["id"], fourth["id"]]
    assert _records(cert_in) == []
    assert rows(cert_in, "SELECT sequence FROM channels_in") == [(5,)]
