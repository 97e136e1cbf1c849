"""What `push` says before and after it runs: how many envelopes a dry run's real run would
seal, what the rest of a `--queue` push with rejected rows became, and its --json warnings read
as `validate --json` gives them."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency
from tests.exchange.conftest import running_exchange, store_dump, write_iocs

DEFAULT_LIMIT = 1024 * 1024  # push.QUEUED_MAX_CONTENT_LENGTH


def _row(stdout: str, partner: str) -> list[str]:
    """The table row of `partner` (tab-separated without a terminal)."""
    return next(line.split("\t") for line in stdout.splitlines() if line.startswith(partner + "\t"))


def test_a_dry_run_counts_the_envelopes_the_push_would_seal(
    tmp_path: Path, partnered: tuple[Agency, Agency]
) -> None:
    """The envelopes column of a dry run said 0 where the push sealed several. It says how many
    the push would seal, cut as the push cuts them to the server's limit as last read: an
    estimate, since the push reads the limit again (a dry run contacts no server); exact with
    --queue, which cuts to the limit last read too. The store is not written."""
    fr, india = partnered
    with running_exchange(tmp_path, fr, india, max_content_length=48 * 1024):
        # A first push reads the server's limit, which the store remembers.
        assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in").exit_code == 0
        iocs = write_iocs(tmp_path / "b.csv", 3000, start=2)
        before = store_dump(fr)

        text = fr.run("push", str(iocs), "--to", "cert-in", "--dry-run")
        assert text.exit_code == 0, text.stderr
        shown = _row(text.stdout, "cert-in")[3]
        assert shown.endswith(" (estimate)"), shown
        count = int(shown.removesuffix(" (estimate)"))
        assert count > 1
        assert "request limit of 49,152 bytes (as its server was last read)" in text.stderr

        dry = fr.run("push", str(iocs), "--to", "cert-in", "--dry-run", "--json")
        assert dry.exit_code == 0, dry.stderr
        [plan] = dry.json()["partners"]
        assert plan["envelopes_to_seal"] == count and plan["envelopes"] == []
        assert plan["envelopes_estimated"] is True
        assert plan["max_request_bytes"] == 48 * 1024 and plan["max_request_bytes_from"] == "last-read"

        queued = fr.run("push", str(iocs), "--to", "cert-in", "--dry-run", "--queue")
        assert queued.exit_code == 0, queued.stderr
        assert _row(queued.stdout, "cert-in")[3] == str(count)  # no estimate: the same limit
        assert "estimate" not in queued.stderr
        assert store_dump(fr) == before  # nothing written

        real = fr.run("push", str(iocs), "--to", "cert-in", "--json")
        assert real.exit_code == 0, real.stderr
        [sent] = real.json()["partners"]
        assert len(sent["envelopes"]) == sent["envelopes_to_seal"] == count
        assert sent["envelopes_estimated"] is False and sent["max_request_bytes_from"] == "server"


def test_a_dry_run_without_a_server_estimates_with_the_default_limit(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """No server was ever read (here none is even set up): a dry run counts with the limit a
    queued push uses, says so, and neither contacts a server nor writes to the store."""
    fr, _ = partnered
    iocs = write_iocs(tmp_path / "iocs.csv", 3)
    before = store_dump(fr)

    text = fr.run("push", str(iocs), "--to", "cert-in", "--dry-run")
    assert text.exit_code == 0, text.stderr
    assert _row(text.stdout, "cert-in")[3] == "1 (estimate)"
    assert "(a default: its server was never read)" in text.stderr

    [plan] = fr.run("push", str(iocs), "--to", "cert-in", "--dry-run", "--json").json()["partners"]
    assert plan["envelopes_to_seal"] == 1 and plan["envelopes_estimated"] is True
    assert plan["max_request_bytes"] == DEFAULT_LIMIT and plan["max_request_bytes_from"] == "default"
    assert store_dump(fr) == before


def test_a_dry_run_cannot_count_an_object_larger_than_the_limit_it_assumes(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """An object too large alone for the default limit: the server's may be larger, so the dry
    run says it cannot count rather than fail; with --queue, which cuts to that limit, it fails
    as the push would."""
    fr, _ = partnered
    big = {
        "type": "malware",
        "spec_version": "2.1",
        "id": "malware--6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "created": "2026-11-23T10:00:00.000Z",
        "modified": "2026-11-23T10:00:00.000Z",
        "name": "big",
        "is_family": True,
        "description": base64.b64encode(os.urandom(DEFAULT_LIMIT * 3 // 2)).decode(),
        "object_marking_refs": [Tlp.AMBER.marking_id],
    }
    bundle = tmp_path / "big.json"
    bundle.write_text(
        json.dumps({"type": "bundle", "id": "bundle--0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5", "objects": [big]})
    )

    dry = fr.run("push", str(bundle), "--to", "cert-in", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert _row(dry.stdout, "cert-in")[3] == "? (estimate)"
    assert "cert-in: cannot count the envelopes: an object alone is larger than" in dry.stderr

    queued = fr.run("push", str(bundle), "--to", "cert-in", "--dry-run", "--queue")
    assert queued.exit_code == 6, queued.stderr
    assert f"{big['id']} alone is larger than cert-in's server accepts (1,048,576 bytes)" in queued.stderr


def test_a_queued_push_with_rejected_rows_says_the_rest_was_queued(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """`push --queue` posts nothing: its error said "the rest was sent"."""
    fr, _ = partnered
    csv = tmp_path / "some-bad.csv"
    csv.write_text("value,tlp\nnot an indicator,amber\nok.example,amber\n")

    queued = fr.run("push", str(csv), "--to", "cert-in", "--queue")
    assert queued.exit_code == 1, queued.stderr
    assert "1 input row(s) were rejected; the rest was queued" in queued.stderr
    assert "was sent" not in queued.stderr
    # The hint points where the rejections were given: `rejected:` lines above, or the JSON.
    assert queued.stderr.startswith("rejected: ")
    assert queued.stderr.splitlines()[-1].endswith(
        "; see the rejections above, or run `cti-exchange validate` on the input"
    )

    dry = fr.run("push", str(csv), "--to", "cert-in", "--queue", "--dry-run")
    assert dry.exit_code == 1, dry.stderr
    # The same push finished (queued): its dry run says so, not that the rest was "checked".
    assert "1 input row(s) were rejected; the rest was shared already, on " in dry.stderr
    other = tmp_path / "other-bad.csv"
    other.write_text("value,tlp\nnot an indicator,amber\nother.example,amber\n")
    fresh = fr.run("push", str(other), "--to", "cert-in", "--queue", "--dry-run")
    assert fresh.exit_code == 1, fresh.stderr
    assert "1 input row(s) were rejected; the rest was checked" in fresh.stderr
    reported = fr.run("push", str(other), "--to", "cert-in", "--queue", "--dry-run", "--json")
    assert reported.exit_code == 1 and reported.json()["rejected_rows"] == 1
    assert reported.stderr.count("\n") == 1 and "above" not in reported.stderr, reported.stderr
    assert reported.stderr.endswith(
        "; see the rejections in the JSON report, or run `cti-exchange validate` on the input\n"
    )


def test_push_json_gives_the_warnings_as_validate_does(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """`push --json` had "warnings": a count; `validate --json` has the list there and the counts
    under "warnings_by_code" and "warning_count": a script reads both the same way now."""
    fr, _ = partnered
    csv = tmp_path / "warned.csv"
    csv.write_text("value,tlp\n10.1.2.3,amber\nprinter.local,amber\nok.example,amber\nbad value,amber\n")

    validated = fr.run("validate", str(csv), "--json")
    assert validated.exit_code == 1, validated.stderr
    expected = validated.json()
    assert {w["code"] for w in expected["warnings"]} >= {"private-ip", "internal-name"}

    pushed = fr.run("push", str(csv), "--to", "cert-in", "--dry-run", "--json")
    assert pushed.exit_code == 1, pushed.stderr
    data = pushed.json()
    for key in ("warnings", "warnings_by_code", "warning_count", "rejections_by_code", "rejections"):
        assert data[key] == expected[key], key
    assert data["rejected_rows"] == expected["rejected"] == 1


def test_push_shows_a_few_warnings_of_each_kind_as_validate_does(partnered: tuple[Agency, Agency]) -> None:
    """Unit 42's VenomRAT list warns once per 'C2 @ Pastebin URL' row: push printed all 14 where
    validate prints five and a count."""
    fr, _ = partnered
    venomrat = str(Path(__file__).parent.parent / "data" / "corpus" / "iocs" / "unit42-venomrat_iocs.csv")
    validated = fr.run("validate", venomrat)
    pushed = fr.run("push", venomrat, "--to", "cert-in", "--dry-run")
    weak = [line for line in pushed.stderr.splitlines() if "names url only inside a longer label" in line]
    assert len(weak) == 5, pushed.stderr
    assert "more 'weak-type-hint' warning(s) (see --json)" in pushed.stderr
    assert weak == [line for line in validated.stderr.splitlines() if "names url only inside" in line]
