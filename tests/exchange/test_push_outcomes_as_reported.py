"""What `push`, `seal` and `demo` tell the analyst about the outcome: which input a TLP refusal
is about, what a dry run of a finished or interrupted push would do, and why a demo's delivery
failed."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency, run_cli
from tests.exchange.conftest import Exchange, run_in_own_process, running_exchange, store_dump, write_iocs

ROUGE = "malware--6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def _bundle(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.write_text(
        json.dumps(
            {"type": "bundle", "id": "bundle--0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5", "objects": objects}
        )
    )
    return path


def _red_malware(name: str) -> dict[str, Any]:
    return {
        "type": "malware",
        "spec_version": "2.1",
        "id": ROUGE,
        "created": "2026-11-23T10:00:00.000Z",
        "modified": "2026-11-23T10:00:00.000Z",
        "name": name,
        "is_family": True,
        "object_marking_refs": [Tlp.RED.marking_id],
    }


# -- 1. a refusal names the row it is about ------------------------------------------------


def test_a_tlp_refusal_names_the_indicators_value(partnered: tuple[Agency, Agency], tmp_path: Path) -> None:
    """An analyst pushing a CSV could not tell which row `indicator--<uuid>` was."""
    fr, _ = partnered
    csv = tmp_path / "mixed.csv"
    csv.write_text("value,tlp\nrouge.example,red\nok.example,amber\n")
    refused = fr.run("push", str(csv), "--to", "cert-in")
    assert refused.exit_code == 8, refused.stderr
    assert "[domain-name rouge.example] (TLP:RED) to cert-in" in refused.stderr
    assert "ok.example" not in refused.stderr

    dry = fr.run("push", str(csv), "--to", "cert-in", "--dry-run")
    assert dry.exit_code == 8, dry.stderr
    assert "not sent: indicator--" in dry.stderr and "[domain-name rouge.example] (TLP:RED)" in dry.stderr

    as_json = fr.run("push", str(csv), "--to", "cert-in", "--dry-run", "--json")
    assert as_json.exit_code == 8, as_json.stderr
    [shown] = as_json.json()["refused"]
    assert shown.startswith("indicator--") and "[domain-name rouge.example] (TLP:RED) to cert-in" in shown


def test_a_long_refusal_list_shows_twenty_then_counts_the_rest(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """`push --skip-refused` wrote one stderr line per withheld object (610 for one push)."""
    fr, _ = partnered
    csv = tmp_path / "many.csv"
    csv.write_text("value,tlp\n" + "".join(f"r{n}.example,red\n" for n in range(25)) + "ok.example,amber\n")
    dry = fr.run("push", str(csv), "--to", "cert-in", "--dry-run")
    assert dry.exit_code == 8, dry.stderr
    assert dry.stderr.count("not sent: indicator--") == 20
    assert "... and 5 more not sent (cert-in: 5 TLP:RED; see --json)" in dry.stderr
    assert len(fr.run("push", str(csv), "--to", "cert-in", "--dry-run", "--json").json()["refused"]) == 25


def test_a_refusal_names_an_object_by_its_name_escaped_and_cut(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """A name is untrusted input: no terminal escape or bidi override reaches the terminal or
    the --json refusals, and a long one is cut."""
    fr, _ = partnered
    hostile = "Rouge\x1b[2J\u202eware" + "x" * 300
    bundle = _bundle(tmp_path / "rouge.json", [_red_malware(hostile)])

    sealed = fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(tmp_path / "envelope.json"))
    assert sealed.exit_code == 8, sealed.stderr
    assert f"{ROUGE} [Rouge\\x1b[2J\\u202eware" in sealed.stderr
    assert "characters)] (TLP:RED) to cert-in" in sealed.stderr
    assert "x" * 200 not in sealed.stderr

    dry = fr.run("push", str(bundle), "--to", "cert-in", "--dry-run", "--json")
    assert dry.exit_code == 8, dry.stderr
    [shown] = dry.json()["refused"]
    assert shown.startswith(f"{ROUGE} [Rouge\\x1b[2J\\u202eware") and "(TLP:RED) to cert-in" in shown
    assert "\x1b" not in shown and "\u202e" not in shown and "x" * 200 not in shown


def _red_sco(kind: str, n: int, **properties: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "spec_version": "2.1",
        "id": f"{kind}--6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c{n:02d}",
        "object_marking_refs": [Tlp.RED.marking_id],
        **properties,
    }


SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_a_refusal_names_a_cyber_observable_by_its_value(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """Standalone SCOs are shared under the same TLP rules as indicators (marked, refused), but
    a refusal named them by their id only: `domain-name--6a1b...` says nothing to the analyst."""
    fr, _ = partnered
    observables = [
        _red_sco("domain-name", 1, value="rouge.example"),
        _red_sco("ipv4-addr", 2, value="203.0.113.66"),
        _red_sco("url", 3, value="https://rouge.example/payload"),
        _red_sco("email-addr", 4, value="abuse@rouge.example"),
        _red_sco("file", 5, name="dropper.exe", hashes={"MD5": "0" * 32, "SHA-256": SHA256}),
        _red_sco("file", 6, name="loader.dll"),
    ]
    bundle = _bundle(tmp_path / "observables.json", observables)
    expected = [
        "[domain-name rouge.example] (TLP:RED) to cert-in",
        "[ipv4-addr 203.0.113.66] (TLP:RED) to cert-in",
        "[url https://rouge.example/payload] (TLP:RED) to cert-in",
        "[email-addr abuse@rouge.example] (TLP:RED) to cert-in",
        f"[sha256 {SHA256}] (TLP:RED) to cert-in",  # whole: a hash cut short names nothing
        "[file-name loader.dll] (TLP:RED) to cert-in",
    ]

    dry = fr.run("push", str(bundle), "--to", "cert-in", "--dry-run", "--json")
    assert dry.exit_code == 8, dry.stderr
    refused = dry.json()["refused"]
    assert len(refused) == len(observables)
    for shown, obj, subject in zip(refused, observables, expected, strict=True):
        assert shown == f"{obj['id']} {subject}: tlp-red-needs-partner-and-flag"

    sealed = fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(tmp_path / "envelope.json"))
    assert sealed.exit_code == 8, sealed.stderr
    assert f"{observables[0]['id']} [domain-name rouge.example] (TLP:RED)" in sealed.stderr


def test_an_observables_value_is_escaped_and_cut_in_a_refusal(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """As an indicator's value or an object's name: no terminal escape or bidi override reaches
    the terminal, and a long value is cut."""
    fr, _ = partnered
    url = _red_sco("url", 7, value="https://rouge.example/\x1b[2J\u202e" + "x" * 300)
    # Hash algorithm names come from the input too: only the four known ones name a file.
    odd_hash = _red_sco("file", 8, hashes={"X-\x1b[2J": "abc"})
    bundle = _bundle(tmp_path / "hostile.json", [url, odd_hash])

    sealed = fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(tmp_path / "envelope.json"))
    assert sealed.exit_code == 8, sealed.stderr
    assert f"{url['id']} [url https://rouge.example/\\x1b[2J\\u202exxx" in sealed.stderr
    assert "characters)] (TLP:RED) to cert-in" in sealed.stderr
    assert "\x1b" not in sealed.stderr and "\u202e" not in sealed.stderr and "x" * 200 not in sealed.stderr
    assert f"{odd_hash['id']} (TLP:RED) to cert-in" in sealed.stderr


# -- 2. a dry run of a finished or interrupted push ----------------------------------------


def test_a_dry_run_of_a_finished_push_says_nothing_would_be_sent(exchange: Exchange, tmp_path: Path) -> None:
    """It said "would send" while the real run would send nothing (same request: shared once)."""
    iocs = write_iocs(tmp_path / "iocs.csv", 3)
    first = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--json")
    assert first.exit_code == 0, first.stderr
    again = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--json").json()
    assert again["already_shared_at"]

    dry = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would send" not in dry.stdout
    assert (
        f"Already shared by the same push on {again['already_shared_at']}; nothing would be sent"
        in dry.stdout
    )

    as_json = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--dry-run", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    data = as_json.json()
    assert data["dry_run"] and data["already_shared_at"] == again["already_shared_at"]
    assert data["partners"][0]["envelopes"] == first.json()["partners"][0]["envelopes"]

    # With --reshare the real run would share again: so would the dry run.
    reshare = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--dry-run", "--reshare", "--json").json()
    assert reshare["already_shared_at"] is None and reshare["partners"][0]["objects"] == 3


def test_a_dry_run_of_a_finished_push_with_skip_refused(exchange: Exchange, tmp_path: Path) -> None:
    csv = tmp_path / "mixed.csv"
    csv.write_text("value,tlp\nrouge.example,red\nok.example,amber\n")
    sent = exchange.fr.run("push", str(csv), "--to", "cert-in", "--skip-refused")
    assert sent.exit_code == 0, sent.stderr
    dry = exchange.fr.run("push", str(csv), "--to", "cert-in", "--skip-refused", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert dry.json()["already_shared_at"] and len(dry.json()["refused"]) == 1
    # Without --skip-refused it is the same request (the option only decides what the policy
    # lets through: push_request_ids), and what it allows went already; the real run refuses.
    refused = exchange.fr.run("push", str(csv), "--to", "cert-in", "--dry-run", "--json")
    assert refused.exit_code == 8 and refused.json()["already_shared_at"] == dry.json()["already_shared_at"]


def _killed(agency: Agency, *args: str, failpoint: str) -> None:
    assert run_in_own_process(agency, *args, failpoint=failpoint) == -signal.SIGKILL


def test_a_dry_run_of_an_interrupted_push_says_what_the_rerun_would_do(
    tmp_path: Path, partnered: tuple[Agency, Agency]
) -> None:
    """Killed after sealing its first envelope, a push resumes: it seals only the rest and posts
    the envelope waiting in the outbox. Its dry run showed the whole plan as if nothing had
    happened ("would send 600 objects", no envelope)."""
    fr, india = partnered
    # A small request limit: 600 indicators take two envelopes, sealed one after the other.
    with running_exchange(tmp_path, fr, india, max_content_length=48 * 1024):
        iocs = write_iocs(tmp_path / "iocs.csv", 600)
        # Store commits: the request starts, the server's limit is remembered, one envelope.
        _killed(fr, "push", str(iocs), "--to", "cert-in", failpoint="commit-after:3")
        conn = sqlite3.connect(fr.home / "store.sqlite")
        try:
            rows = conn.execute("SELECT envelope_id, object_ids FROM sent_envelopes").fetchall()
        finally:
            conn.close()
        waiting = [envelope for envelope, _ in rows]
        sealed = sum(len([i for i in json.loads(ids) if i.startswith("indicator--")]) for _, ids in rows)
        assert 0 < sealed < 600, "killed before the first envelope or after the last"
        before = store_dump(fr)

        dry = fr.run("push", str(iocs), "--to", "cert-in", "--dry-run")
        assert dry.exit_code == 0, dry.stderr
        assert "would send" not in dry.stdout
        assert "interrupted" in dry.stdout
        assert (
            f"cert-in: {len(waiting)} envelope(s) already sealed and waiting in the outbox would be posted; "
            f"{600 - sealed} of 600 object(s) still to seal, then posted"
        ) in dry.stdout

        as_json = fr.run("push", str(iocs), "--to", "cert-in", "--dry-run", "--json")
        assert as_json.exit_code == 0, as_json.stderr
        data = as_json.json()
        assert data["dry_run"] and data["resumed"] and data["already_shared_at"] is None
        [plan] = data["partners"]
        assert plan["objects"] == 600 and plan["to_seal"] == 600 - sealed
        assert plan["envelopes"] == plan["sealed_earlier"] == waiting
        assert plan["other_queued"] == 0
        # The rest in how many envelopes: cut to the server's limit as last read, an estimate.
        assert plan["envelopes_estimated"] and plan["max_request_bytes"] == 48 * 1024
        assert f"then posted (in {plan['envelopes_to_seal']} envelope(s), estimate)" in dry.stdout
        assert store_dump(fr) == before  # a dry run writes nothing

        # The real run does what the dry run said: seals the rest, posts both.
        real = fr.run("push", str(iocs), "--to", "cert-in", "--json")
        assert real.exit_code == 0, real.stderr
        assert real.json()["resumed"]
        [done] = real.json()["partners"]
        assert done["sealed_earlier"] == waiting and done["to_seal"] == 600 - sealed
        assert done["envelopes"][: len(waiting)] == waiting
        assert len(done["envelopes"]) - len(waiting) == done["envelopes_to_seal"] == plan["envelopes_to_seal"]
        assert set(done["delivered"]) == set(done["envelopes"])
        conn = sqlite3.connect(fr.home / "store.sqlite")
        try:
            fresh = [
                json.loads(ids)
                for envelope, ids in conn.execute("SELECT envelope_id, object_ids FROM sent_envelopes")
                if envelope not in waiting
            ]
        finally:
            conn.close()
        assert sum(len([i for i in ids if i.startswith("indicator--")]) for ids in fresh) == 600 - sealed


def test_a_dry_run_says_what_else_waits_in_the_outbox(exchange: Exchange, tmp_path: Path) -> None:
    """A push also posts what earlier pushes queued for the partner: so says its dry run."""
    queued = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr
    iocs = write_iocs(tmp_path / "b.csv", 3, start=10)

    dry = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would send" in dry.stdout and "would also post 1 envelope(s) queued earlier" in dry.stdout
    [plan] = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--dry-run", "--json").json()["partners"]
    assert plan["other_queued"] == 1 and plan["to_seal"] == 3 and plan["sealed_earlier"] == []

    # With --queue nothing is posted: nothing else either.
    as_queued = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--dry-run", "--queue")
    assert as_queued.exit_code == 0, as_queued.stderr
    assert "queued earlier" not in as_queued.stdout


# -- 3. the demo's delivery failure --------------------------------------------------------


def test_demo_exits_with_the_cause_of_a_failed_delivery() -> None:
    """The demo's server dies as CERT-FR posts (a failpoint in the server process): the network
    failure is exit 7, as for `push`, not "indicators did not arrive verified" (4)."""
    result = run_cli("demo", "--json", env={"CTI_EXCHANGE_FAILPOINT": "server-add-objects:1"})
    assert result.exit_code == 7, result.stderr
    assert "delivery failed for cert-in" in result.stderr and "arrived verified" not in result.stderr
    summary = result.json()
    assert not summary["all_arrived"] and summary["received"] == 0
    assert list(summary["failed"]) == ["cert-in"]
