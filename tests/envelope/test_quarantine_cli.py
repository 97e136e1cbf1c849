"""`cti-exchange quarantine`: what was refused, closing records once reviewed, and accepting a
sequence gap that will never fill. Real agencies, keys and store files; envelopes travel as
files (`seal` / `open`), which use the same channels and quarantine as TAXII."""

from __future__ import annotations

import json
import os
import pty
import select
import sys
import time
from pathlib import Path
from typing import Any

from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.store.store import Store
from tests.conftest import PASSPHRASE, Agency

from .test_cli_envelope import Pair, bundle_file, open_json, rows, seal, tampered_copy

ANALYST = {"CTI_EXCHANGE_ANALYST": "a.dupont"}


def _records(agency: Agency, *args: str) -> list[dict[str, Any]]:
    result = agency.run("quarantine", "list", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return result.json()


def _five_envelopes(partnered: Pair, tmp_path: Path) -> list[Path]:
    cert_fr, _ = partnered
    bundle = bundle_file(tmp_path)
    return [seal(cert_fr, bundle, "cert-in", name=f"{n}.json") for n in range(1, 6)]


def test_a_gap_that_will_never_fill_is_accepted_from_quarantine(partnered: Pair, tmp_path: Path) -> None:
    """CERT-FR lost its envelope 2. 3, 4 and 5 wait behind the gap; the analyst accepts it on
    3 and the two others follow, with every other check made again."""
    _, cert_in = partnered
    envelopes = _five_envelopes(partnered, tmp_path)
    assert open_json(cert_in, envelopes[0])[0] == 0
    for envelope in envelopes[2:]:
        code, verdict, _ = open_json(cert_in, envelope)
        assert (code, verdict["reason"]) == (4, "sequence-gap")
    held = _records(cert_in)
    assert [r["reason"] for r in held] == ["sequence-gap"] * 3
    assert {r["partner"] for r in held} == {"cert-fr"}

    # Closing a held record is not how a gap is accepted.
    refused = cert_in.run("quarantine", "resolve", str(held[0]["id"]))
    assert refused.exit_code == 2 and "is held (sequence-gap)" in refused.stderr
    assert "accept-gap" in refused.stderr and "Traceback" not in refused.stderr

    result = cert_in.run(
        "quarantine", "accept-gap", str(held[0]["id"]), "--note", "CERT-FR lost it", "--json", env=ANALYST
    )
    assert result.exit_code == 0, result.stderr
    accepted = result.json()
    assert accepted["sequence"] == 3 and accepted["missing"] == [2] and accepted["partner"] == "cert-fr"
    assert accepted["released_envelopes"] == [held[1]["envelope_id"], held[2]["envelope_id"]]
    assert rows(cert_in, "SELECT sequence FROM channels_in") == [(5,)]
    assert rows(cert_in, "SELECT count(*) FROM envelopes_in") == [(4,)]

    assert _records(cert_in) == []
    closed = _records(cert_in, "--all")
    assert [r["resolution"] for r in closed] == [
        "gap accepted by a.dupont: CERT-FR lost it",
        "accepted when retried (held for sequence-gap)",
        "accepted when retried (held for sequence-gap)",
    ]
    (details,) = (
        json.loads(d)
        for (d,) in rows(cert_in, "SELECT details FROM audit_log WHERE action = 'accept'")
        if json.loads(d)["gap_accepted"]
    )
    assert details["sequence"] == 3 and details["gap_accepted"] == [2]

    # The lost envelope turning up afterwards cannot slip in behind the later ones.
    code, verdict, _ = open_json(cert_in, envelopes[1])
    assert (code, verdict["reason"]) == (4, "sequence-reorder")


def test_accept_gap_only_takes_an_open_gap_record(partnered: Pair, tmp_path: Path) -> None:
    _, cert_in = partnered
    envelopes = _five_envelopes(partnered, tmp_path)
    code, verdict, _ = open_json(cert_in, tampered_copy(envelopes[0]))
    assert code == 4 and verdict["reason"] != "sequence-gap"
    (tampered,) = _records(cert_in)

    result = cert_in.run("quarantine", "accept-gap", str(tampered["id"]))
    assert result.exit_code == 2 and "not for a sequence gap" in result.stderr
    assert rows(cert_in, "SELECT count(*) FROM envelopes_in") == [(0,)]

    result = cert_in.run("quarantine", "accept-gap", "999")
    assert result.exit_code == 2 and "no quarantine record 999" in result.stderr

    assert open_json(cert_in, envelopes[0])[0] == 0
    assert open_json(cert_in, envelopes[2])[0] == 4
    gap = next(r for r in _records(cert_in) if r["reason"] == "sequence-gap")
    assert cert_in.run("quarantine", "accept-gap", str(gap["id"])).exit_code == 0
    again = cert_in.run("quarantine", "accept-gap", str(gap["id"]))
    assert again.exit_code == 2 and "already resolved" in again.stderr
    assert "Traceback" not in again.stderr
    # `quarantine list` alone hides resolved records: the hint names the listing that shows it.
    assert again.stderr.rstrip().endswith("see `cti-exchange quarantine list --all`"), again.stderr


def test_an_analyst_closes_reviewed_records(partnered: Pair, tmp_path: Path) -> None:
    """Refusals are kept for the record: closing one takes it off the open list (and off
    `status`), with who, when and why, and an audit record; nothing is deleted."""
    _, cert_in = partnered
    envelopes = _five_envelopes(partnered, tmp_path)
    assert open_json(cert_in, tampered_copy(envelopes[0]))[0] == 4
    assert open_json(cert_in, envelopes[0])[0] == 0
    assert open_json(cert_in, envelopes[2])[0] == 4  # held: envelope 2 is missing
    tampered, gap = _records(cert_in)
    assert cert_in.run("status", "--json").json()["quarantined"] == 2

    result = cert_in.run(
        "quarantine", "resolve", str(tampered["id"]), "--note", "reported\x1b[2J to CERT-FR", env=ANALYST
    )
    assert result.exit_code == 0, result.stderr
    assert [r["id"] for r in _records(cert_in)] == [gap["id"]]
    assert cert_in.run("status", "--json").json()["quarantined"] == 1
    closed = next(r for r in _records(cert_in, "--all") if r["id"] == tampered["id"])
    assert closed["resolution"].startswith("resolved by a.dupont: reported")
    assert closed["resolved_at"]
    (audit,) = rows(cert_in, "SELECT actor, details FROM audit_log WHERE action = 'quarantine-resolve'")
    assert audit[0] == "a.dupont"
    assert json.loads(audit[1])["quarantine_id"] == tampered["id"]

    again = cert_in.run("quarantine", "resolve", str(tampered["id"]))
    assert again.exit_code == 2 and "already resolved" in again.stderr

    # All or none: an unknown id among them closes nothing.
    mixed = cert_in.run("quarantine", "resolve", str(gap["id"]), "999", "--discard")
    assert mixed.exit_code == 2 and "no quarantine record 999" in mixed.stderr
    assert [r["id"] for r in _records(cert_in)] == [gap["id"]]

    discarded = cert_in.run("quarantine", "resolve", str(gap["id"]), "--discard", env=ANALYST)
    assert discarded.exit_code == 0, discarded.stderr
    assert _records(cert_in) == []
    assert next(r for r in _records(cert_in, "--all") if r["id"] == gap["id"])["resolution"] == (
        "discarded by a.dupont"
    )


def test_the_artifact_printed_by_show_opens_and_closes_its_held_record(
    partnered: Pair, tmp_path: Path
) -> None:
    """`quarantine show ID --artifact > file` prints the envelope alone (it used to print the
    record's table too, so `open file` said "not JSON"); accepting that file with
    `open --accept-gap` closes the held record, which the next pull would otherwise retry and
    call a replay."""
    _, cert_in = partnered
    envelopes = _five_envelopes(partnered, tmp_path)
    assert open_json(cert_in, envelopes[0])[0] == 0
    assert open_json(cert_in, envelopes[2])[0] == 4
    (held,) = _records(cert_in)

    shown = cert_in.run("quarantine", "show", str(held["id"]), "--artifact")
    assert shown.exit_code == 0 and "sequence-gap" in shown.stderr
    saved = tmp_path / "held.json"
    saved.write_text(shown.stdout)
    assert json.loads(saved.read_text()) == json.loads(envelopes[2].read_text())

    code, verdict, _ = open_json(cert_in, saved, "--accept-gap")
    assert code == 0 and verdict["verdict"] == "accepted"
    assert _records(cert_in) == []
    (closed,) = _records(cert_in, "--all")
    assert closed["resolution"] == f"accepted: the same envelope, received again ({held['envelope_id']})"


# -- on a terminal -------------------------------------------------------------------------


def _run_on_terminal(agency: Agency, *args: str) -> tuple[int, str]:
    """The CLI in a pseudo-terminal: rich tables and colours, as an analyst sees them."""
    executable = Path(sys.executable).with_name("cti-exchange")
    env = dict(os.environ, CTI_EXCHANGE_PASSPHRASE=PASSPHRASE, COLUMNS="200", TERM="xterm")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with the pseudo-terminal as stdin, stdout and stderr
        os.execve(  # noqa: S606 - exec the CLI in the forked pseudo-terminal child
            str(executable), [str(executable), "--home", str(agency.home), *args], env
        )
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")


def test_partner_text_in_a_table_is_shown_as_text_not_markup(partnered: Pair) -> None:
    """Rich reads `[...]` in a table cell as markup: a refusal detail or a sender taken from an
    unsigned envelope holding `[/x]` stopped `quarantine list` on a terminal with an internal
    error, and `[red]...` changed what the analyst saw."""
    _, cert_in = partnered
    rejected = EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, "bad [/x] and [bold red]LOOK[/bold red]")
    rejected.envelope_id, rejected.sender = "envelope--[/y]", "[link=https://evil.example]cert-fr"
    with Store(cert_in.home / "store.sqlite") as store:
        store.inbound.quarantine(
            {"id": "artifact--1"}, rejected, partner="cert-fr", received_at="2026-05-01T10:00:00.000Z"
        )
    code, screen = _run_on_terminal(cert_in, "quarantine", "list")
    assert code == 0, screen
    for shown in ("[/x]", "[bold red]LOOK[/bold red]", "envelope--[/y]", "[link=https://evil.example]"):
        assert shown in screen, screen
    assert "Traceback" not in screen and "internal error" not in screen
