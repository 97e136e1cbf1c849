"""`triage` and `quarantine` through the CLI, on an agency's real store."""

from __future__ import annotations

import json
import sqlite3

import pytest

from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.store.store import Store
from cti_exchange.triage import TriageLine
from cti_exchange.triage_decisions import DecisionResult, review_loop
from tests.conftest import Agency, run_cli
from tests.triage.conftest import indicator, put, review_on_a_terminal, store_path


@pytest.fixture
def analyst_store(cert_in: Agency) -> Agency:
    put(
        cert_in,
        [indicator(f"fr-{n}.example", confidence=50 + n) for n in range(5)]
        + [indicator("203.0.113.9", "ipv4-addr", tlp="red")],
        partner="cert-fr",
        received_at="2026-05-01T10:00:00.000Z",
    )
    put(
        cert_in,
        [indicator("fr-0.example", tlp="green"), indicator("in-only.example")],
        partner="cert-uk",
        received_at="2026-05-02T10:00:00.000Z",
    )
    return cert_in


def _rows(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.splitlines()]


def test_list_is_tsv_without_a_terminal_and_json_on_request(analyst_store: Agency) -> None:
    listed = analyst_store.run("triage", "list")
    assert listed.exit_code == 0, listed.stderr
    header, *rows = _rows(listed.stdout)
    assert header[:4] == ["id", "type", "value / name", "TLP"]
    assert len(rows) == 7  # 8 objects, fr-0.example from two partners on one line
    shared = next(r for r in rows if r[2] == "fr-0.example")
    assert shared[6] == "cert-fr cert-uk" and shared[0].startswith("indicator--")
    data = analyst_store.run("triage", "list", "--json").json()
    assert {i["value"] for i in data["items"]} >= {"fr-0.example", "in-only.example", "203.0.113.9"}
    assert data["next"] is None and data["total"] is None


def test_list_filters_sort_paging_and_count_through_the_cli(analyst_store: Agency) -> None:
    def values(*args: str) -> list[str]:
        result = analyst_store.run("triage", "list", "--json", *args)
        assert result.exit_code == 0, result.stderr
        return [i["value"] for i in result.json()["items"]]

    # Objects of one envelope share their received time: their order among themselves is free.
    assert sorted(values("--partner", "cert-uk")) == ["fr-0.example", "in-only.example"]
    assert values("--type", "ipv4-addr") == ["203.0.113.9"]
    assert values("--tlp", "red") == ["203.0.113.9"]
    assert "203.0.113.9" not in values("--max-tlp", "amber")
    assert values(
        "--min-confidence",
        "53",
        "--max-tlp",
        "amber",
        "--partner",
        "cert-fr",
        "--sort",
        "confidence",
    ) == ["fr-4.example", "fr-3.example"]
    assert set(values("--since", "2026-05-02T00:00:00Z")) == {"in-only.example", "fr-0.example"}
    assert values("--search", "ONLY") == ["in-only.example"]
    assert values("--status", "accepted") == []
    assert values("--expired") == [] and len(values("--not-expired")) == 7
    assert values("--sort", "value", "--asc", "--limit", "2") == ["203.0.113.9", "fr-0.example"]
    first = analyst_store.run("triage", "list", "--json", "--limit", "4", "--count").json()
    assert first["total"] == 7 and len(first["items"]) == 4 and first["next"]
    rest = values("--limit", "4", "--after", first["next"])
    assert len(rest) == 3 and not {i["value"] for i in first["items"]} & set(rest)
    text = analyst_store.run("triage", "list", "--limit", "4", "--count")
    assert "7 matching" in text.stderr and "--after" in text.stderr
    bad = analyst_store.run("triage", "list", "--status", "maybe")
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "--status" in bad.stderr


def test_decisions_record_analyst_time_note_and_audit(analyst_store: Agency) -> None:
    env = {"CTI_EXCHANGE_ANALYST": "amelie"}
    accepted = analyst_store.run(
        "triage",
        "accept",
        "fr-0.example",
        "fr-1.example",
        "--note",
        "seen in sandbox",
        "--json",
        env=env,
    )
    assert accepted.exit_code == 0, accepted.stderr
    result = accepted.json()
    assert result["analyst"] == "amelie" and result["decision"] == "accepted"
    assert len(result["object_ids"]) == 3  # fr-0.example from two partners
    ids = [i["id"] for i in analyst_store.run("triage", "list", "--json").json()["items"]]
    ip = next(i for i in analyst_store.run("triage", "list", "--json", "--type", "ipv4-addr").json()["items"])
    assert ip["id"] in ids
    assert analyst_store.run("triage", "reject", ip["id"][:24], env=env).exit_code == 0
    fp = analyst_store.run("triage", "false-positive", "fr-2.example", "--note", "CDN", env=env)
    assert fp.exit_code == 0 and "false-positive: 1 object(s) by amelie" in fp.stdout

    conn = sqlite3.connect(store_path(analyst_store))
    rows = conn.execute(
        "SELECT value, status, status_by, status_at, status_note FROM objects "
        "WHERE is_current = 1 AND status != 'new' ORDER BY value"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        ("203.0.113.9", "rejected"),
        ("fr-0.example", "accepted"),
        ("fr-0.example", "accepted"),
        ("fr-1.example", "accepted"),
        ("fr-2.example", "false-positive"),
    ]
    assert all(r[2] == "amelie" and r[3].endswith("Z") for r in rows)
    assert rows[1][4] == "seen in sandbox"
    assert conn.execute("SELECT count(*) FROM triage_log WHERE analyst = 'amelie'").fetchone()[0] == 5
    audits = [
        json.loads(r[1]) | {"actor": r[0]}
        for r in conn.execute("SELECT actor, details FROM audit_log WHERE action = 'triage' ORDER BY seq")
    ]
    assert [a["decision"] for a in audits] == ["accepted", "rejected", "false-positive"]
    assert audits[0]["actor"] == "amelie" and audits[0]["note"] == "seen in sandbox"
    conn.close()
    shown = analyst_store.run("triage", "show", "fr-2.example", "--json").json()
    assert shown["decisions"][0]["analyst"] == "amelie" and shown["status_note"] == "CDN"


def test_unknown_or_ambiguous_ids_change_nothing(analyst_store: Agency) -> None:
    refused = analyst_store.run("triage", "accept", "fr-3.example", "nope.example")
    assert refused.exit_code == 2 and "no object 'nope.example'" in refused.stderr
    ambiguous = analyst_store.run("triage", "show", "indicator--")
    assert ambiguous.exit_code == 2 and "several objects" in ambiguous.stderr
    assert analyst_store.run("triage", "list", "--json", "--status", "accepted").json()["items"] == []


def test_untrusted_values_are_shown_escaped(cert_in: Agency) -> None:
    put(cert_in, [indicator("invoice\u202egpj.exe", "file-name"), indicator("evil\x1b[31m.example")])
    text = cert_in.run("triage", "list").stdout
    assert "\u202e" not in text and "\x1b" not in text
    assert "\\u202e" in text and "\\x1b" in text


def test_json_output_stays_json_when_the_store_holds_nan(cert_in: Agency) -> None:
    """A store edited by hand can hold `NaN` in an object's JSON (Python's reader takes it):
    --json output must still be JSON that jq and strict parsers read."""
    put(cert_in, [indicator("nan.example")])
    with sqlite3.connect(store_path(cert_in)) as conn:
        conn.execute("UPDATE objects SET json = replace(json, '\"confidence\":70', '\"confidence\":NaN')")
    shown = cert_in.run("triage", "show", "nan.example", "--json")
    assert shown.exit_code == 0, shown.stderr
    strict = json.loads(shown.stdout, parse_constant=lambda name: pytest.fail(f"{name} in --json output"))
    assert strict["object"]["confidence"] == "NaN"


def test_review_needs_a_terminal(analyst_store: Agency) -> None:
    refused = analyst_store.run("triage", "review")
    assert refused.exit_code == 2
    assert "terminal" in refused.stderr and refused.stderr.count("\n") == 1


def test_review_loop_single_key_decisions(analyst_store: Agency) -> None:
    from cti_exchange.triage import build_filter, iter_queue
    from cti_exchange.triage_decisions import decide

    keys = iter(["x", "a", "s", "R", "f", "q"])
    shown: list[str] = []
    warnings: list[str] = []
    with Store(store_path(analyst_store), actor="ravi") as store:

        def apply(line: TriageLine, decision: str) -> DecisionResult:
            return decide(store, [line.object.object_id], decision)

        summary = review_loop(
            iter_queue(store, build_filter(statuses=["new"])),
            read_key=lambda: next(keys),
            present=lambda line, number: shown.append(line.object.value or ""),
            apply=apply,
            warn=warnings.append,
        )
        statuses = dict(
            store.db.conn.execute(
                "SELECT value, status FROM objects WHERE is_current = 1 AND status_by = 'ravi'"
            )
        )
    assert summary.quit and summary.skipped == 1 and summary.reviewed == 4
    assert len(warnings) == 1 and "unknown key 'x'" in warnings[0]
    assert shown[0] == "in-only.example"  # the newest envelope first
    assert statuses["in-only.example"] == "accepted"
    assert sorted(statuses.values()) == ["accepted", "false-positive", "rejected"]
    assert shown[1] not in statuses  # skipped


def test_review_on_a_pseudo_terminal(analyst_store: Agency) -> None:
    # One line matches: "a" decides it and the review ends.
    output, code = review_on_a_terminal(
        analyst_store, "--search", "in-only", keys=(b"a",), env={"CTI_EXCHANGE_ANALYST": "tty-user"}
    )
    assert code == 0, output.decode(errors="replace")
    assert b"-> accepted" in output  # the key's effect, said at once
    assert b"Reviewed 1: 1 accepted" in output
    conn = sqlite3.connect(store_path(analyst_store))
    assert conn.execute("SELECT value FROM objects WHERE status_by = 'tty-user'").fetchall() == [
        ("in-only.example",)
    ]
    conn.close()


def test_review_of_an_empty_selection_says_so(analyst_store: Agency) -> None:
    output, code = review_on_a_terminal(analyst_store, "--search", "no-such-value", keys=())
    assert code == 0, output.decode(errors="replace")
    assert b"Nothing new to review with these filters" in output and b"Reviewed 0" not in output


def test_quarantine_list_and_show(cert_in: Agency) -> None:
    assert "empty" in cert_in.run("quarantine", "list").stderr
    rejected = EnvelopeRejected(RejectReason.UNKNOWN_SENDER, "sender cert-xx is not pinned")
    rejected.envelope_id, rejected.sender = "envelope--q1", "cert-xx"
    with Store(store_path(cert_in)) as store:
        record_id = store.inbound.quarantine(
            {"id": "artifact--1", "protected": "eyJ9"},
            rejected,
            partner="cert-fr",
            received_at="2026-05-01T10:00:00.000Z",
        )
    listed = cert_in.run("quarantine", "list", "--json").json()
    assert listed[0]["reason"] == "unknown-sender" and listed[0]["envelope_id"] == "envelope--q1"
    assert "unknown-sender" in cert_in.run("quarantine", "list").stdout
    shown = cert_in.run("quarantine", "show", str(record_id), "--artifact")
    assert shown.exit_code == 0 and "sender cert-xx is not pinned" in shown.stderr
    assert json.loads(shown.stdout) == {"id": "artifact--1", "protected": "eyJ9"}  # the envelope alone
    table = cert_in.run("quarantine", "show", str(record_id))
    assert table.exit_code == 0 and "sender cert-xx is not pinned" in table.stdout
    assert cert_in.run("quarantine", "show", "99").exit_code == 2


def test_references_by_value_prefix_and_idn(cert_in: Agency) -> None:
    put(cert_in, [indicator("xn--80ak6aa92e.example"), indicator("plain.example")])
    idn = cert_in.run("triage", "show", "xn--80ak6aa92e.example", "--json")
    assert idn.exit_code == 0, idn.stderr  # "--" in a value is not an id prefix
    full_id = idn.json()["id"]
    assert cert_in.run("triage", "show", full_id[:18], "--json").json()["id"] == full_id
    assert cert_in.run("triage", "accept", full_id).exit_code == 0


def test_an_unknown_partner_is_named_when_nothing_matches(analyst_store: Agency) -> None:
    """`--partner cert-fn` (a typo) used to say only "nothing matches", as if nothing had come
    in; a partner whose objects are in the store (configured or not) is not a typo."""
    typo = analyst_store.run("triage", "list", "--partner", "cert-fn")
    assert typo.exit_code == 0 and "no partner named 'cert-fn'" in typo.stderr
    known = analyst_store.run("triage", "list", "--partner", "cert-uk", "--type", "url")
    assert known.exit_code == 0 and "no partner named" not in known.stderr
    assert "nothing matches" in known.stderr


def test_each_decision_has_an_example_note_that_fits_it() -> None:
    """The three decisions shared one example, so `triage false-positive --help` suggested
    --note 'seen in proxy logs': the reason to accept an indicator, not to call it benign."""
    notes = {}
    for decision in ("accept", "reject", "false-positive"):
        result = run_cli("triage", decision, "--help")
        assert result.exit_code == 0
        example = " ".join(result.stdout.split("Example:")[1].replace(" \\\n", " ").split())
        assert example.startswith(f"cti-exchange triage {decision} indicator--53fe3b22 --note '"), example
        notes[decision] = example.split("--note ")[1]
    assert len(set(notes.values())) == 3, notes


def test_review_says_how_many_are_left_and_echoes_a_skip(analyst_store: Agency) -> None:
    """An analyst on item 3 could not tell how many of the queue were left, and `s` echoed
    nothing where `a`, `r` and `f` did."""
    output, code = review_on_a_terminal(analyst_store, "--search", "fr-", keys=(b"s", b"q"))
    assert code == 0, output.decode(errors="replace")
    assert b"#1 of 5" in output and b"#2 of 5" in output
    assert b"-> skipped" in output and b"Reviewed 1: no decisions, 1 skipped." in output
