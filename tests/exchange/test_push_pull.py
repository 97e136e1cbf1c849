"""push and pull through the CLI against the real TAXII server."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from cti_exchange.server.runner import ServerProcess
from tests.conftest import Agency
from tests.exchange.conftest import Exchange, received_values, running_exchange, write_iocs


def test_push_then_pull_delivers_every_indicator_once(exchange: Exchange, tmp_path: Path) -> None:
    iocs = write_iocs(tmp_path / "iocs.csv", 50)
    pushed = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    plan = pushed.json()["partners"][0]
    assert plan["objects"] == 50 and len(plan["delivered"]) == len(plan["envelopes"]) == 1

    pulled = exchange.india.run("pull", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    summary = pulled.json()["partners"][0]
    assert summary["accepted_envelopes"] == plan["envelopes"]
    assert sorted(received_values(exchange.india)) == sorted(
        line.split(",")[0] for line in iocs.read_text().splitlines()[1:]
    )
    again = exchange.india.run("pull", "--json").json()["partners"][0]
    assert again["accepted_envelopes"] == [] and again["quarantined"] == []


def test_dry_run_sends_nothing(exchange: Exchange, tmp_path: Path) -> None:
    iocs = write_iocs(tmp_path / "iocs.csv", 10)
    dry = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would send" in dry.stdout and "cert-in" in dry.stdout
    assert exchange.india.run("pull", "--json").json()["partners"][0]["accepted_envelopes"] == []


def test_tlp_policy_refuses_red_and_names_objects(exchange: Exchange, tmp_path: Path) -> None:
    csv = tmp_path / "mixed.csv"
    csv.write_text("value,tlp\nred-1.example,red\nfine-1.example,amber\n")
    refused = exchange.fr.run("push", str(csv), "--to", "cert-in")
    assert refused.exit_code == 8
    assert "TLP:RED" in refused.stderr and "tlp-red-needs-partner-and-flag" in refused.stderr
    assert "nothing was sent" in refused.stderr

    # --allow-red alone is not enough: the partner entry must allow it too.
    assert exchange.fr.run("push", str(csv), "--to", "cert-in", "--allow-red").exit_code == 8

    sent = exchange.fr.run("push", str(csv), "--to", "cert-in", "--skip-refused", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert sent.json()["partners"][0]["objects"] == 1
    exchange.india.run("pull")
    assert received_values(exchange.india) == ["fine-1.example"]

    exchange.fr.run("partners", "set", "cert-in", "--allow-red")
    red = exchange.fr.run("push", str(csv), "--to", "cert-in", "--allow-red", "--json")
    assert red.exit_code == 0, red.stderr
    exchange.india.run("pull")
    assert sorted(received_values(exchange.india)) == ["fine-1.example", "red-1.example"]


def test_amber_strict_needs_a_single_partner(exchange: Exchange, tmp_path: Path) -> None:
    csv = tmp_path / "strict.csv"
    csv.write_text("value,tlp\nstrict-1.example,amber+strict\n")
    exchange.fr.run("partners", "set", "cert-in", "--max-tlp", "amber+strict")
    ok = exchange.fr.run("push", str(csv), "--to", "cert-in")
    assert ok.exit_code == 0, ok.stderr


def test_max_tlp_of_partner(exchange: Exchange, tmp_path: Path) -> None:
    exchange.fr.run("partners", "set", "cert-in", "--max-tlp", "green")
    csv = tmp_path / "amber.csv"
    csv.write_text("value,tlp\namber-1.example,amber\n")
    refused = exchange.fr.run("push", str(csv), "--to", "cert-in")
    assert refused.exit_code == 8 and "above-partner-max-tlp" in refused.stderr


def test_envelopes_split_under_max_content_length(tmp_path: Path, partnered: tuple[Agency, Agency]) -> None:
    fr, india = partnered
    with running_exchange(tmp_path, fr, india, max_content_length=48 * 1024) as wired:
        wired.wire(india, fr, page_size="3")
        iocs = write_iocs(tmp_path / "many.csv", 3000)
        pushed = fr.run("push", str(iocs), "--to", "cert-in", "--json")
        assert pushed.exit_code == 0, pushed.stderr
        envelopes = pushed.json()["partners"][0]["envelopes"]
        assert len(envelopes) > 1
        pulled = india.run("pull", "--json")
        assert pulled.exit_code == 0, pulled.stderr
        assert pulled.json()["partners"][0]["accepted_envelopes"] == envelopes  # in sequence
        values = received_values(india)
        assert len(values) == len(set(values)) == 3000


def test_queued_envelopes_share_one_date_added_and_small_pages(exchange: Exchange, tmp_path: Path) -> None:
    """Many envelopes in one POST get one date_added; read 2 per page, nothing lost or doubled."""
    for n in range(7):
        iocs = write_iocs(tmp_path / f"batch{n}.csv", 5, start=n * 5)
        queued = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--queue")
        assert queued.exit_code == 0, queued.stderr
    assert exchange.india.run("pull", "--json").json()["partners"][0]["accepted_envelopes"] == []
    flushed = exchange.fr.run(
        "push", str(write_iocs(tmp_path / "last.csv", 5, start=35)), "--to", "cert-in", "--json"
    )
    assert flushed.exit_code == 0, flushed.stderr
    assert len(flushed.json()["partners"][0]["delivered"]) == 8  # the queue went in one POST

    exchange.wire(exchange.india, exchange.fr, page_size="2")
    pulled = exchange.india.run("pull", "--json").json()["partners"][0]
    assert len(pulled["accepted_envelopes"]) == 8 and pulled["pages"] >= 4
    values = received_values(exchange.india)
    assert len(values) == len(set(values)) == 40


def test_pull_survives_a_server_restart_between_pages(exchange: Exchange, tmp_path: Path) -> None:
    for n in range(6):
        exchange.fr.run(
            "push",
            str(write_iocs(tmp_path / f"b{n}.csv", 3, start=n * 3)),
            "--to",
            "cert-in",
            "--queue",
        )
    exchange.fr.run("push", str(write_iocs(tmp_path / "b6.csv", 3, start=18)), "--to", "cert-in")
    exchange.wire(exchange.india, exchange.fr, page_size="2")

    from tests.fault_proxy import FaultProxy, FaultScript

    def restart_on_third(method: str, path: str, number: int) -> str | None:
        if number == 3:
            exchange.server.restart()
        return None

    with FaultProxy(exchange.server.url, FaultScript(rule=restart_on_third)) as proxy:
        exchange.wire(exchange.india, exchange.fr, f"{proxy.url}exchange/", page_size="2")
        pulled = exchange.india.run("pull", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    values = received_values(exchange.india)
    assert len(values) == len(set(values)) == 21


def test_plain_medallion_second_opinion(tmp_path: Path, partnered: tuple[Agency, Agency]) -> None:
    """The same push and pull against medallion's own memory backend."""
    import json
    import secrets

    from cti_exchange.server.provisioning import collection_id_for

    fr, india = partnered
    passwords = {"cert-fr": secrets.token_urlsafe(12), "cert-in": secrets.token_urlsafe(12)}
    fr_to_in = collection_id_for("cert-fr", "cert-in")
    data = {
        "/discovery": {"title": "medallion", "default": "/exchange/", "api_roots": ["/exchange/"]},
        "exchange": {
            "information": {
                "title": "exchange",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 10485760,
            },
            "status": [],
            "collections": [
                {
                    "id": fr_to_in,
                    "title": "fr-to-in",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": [],
                },
            ],
        },
    }
    (tmp_path / "medallion-data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module_class": "MemoryBackend",
            "module": "medallion.backends.memory_backend",
            "filename": str(tmp_path / "medallion-data.json"),
            "interop_requirements": True,
        },
        "users": passwords,
        "taxii": {"max_page_size": 100},
    }
    (tmp_path / "medallion.json").write_text(json.dumps(config))
    server = ServerProcess.plain_medallion(tmp_path / "medallion.json", tmp_path / "med", api_root="exchange")
    server.start()
    try:
        wired = Exchange(fr, india, server, passwords)
        for me, other in ((fr, india), (india, fr)):
            wired.wire(me, other)
            me.run(
                "partners",
                "set",
                other.agency_id,
                "--read-collection",
                fr_to_in,
                "--write-collection",
                fr_to_in,
            )
        pushed = fr.run("push", str(write_iocs(tmp_path / "i.csv", 20)), "--to", "cert-in")
        assert pushed.exit_code == 0, pushed.stderr
        pulled = india.run("pull", "--json")
        assert pulled.exit_code == 0, pulled.stderr
        assert len(received_values(india)) == 20
    finally:
        server.stop()


def test_pull_quarantines_and_alerts(exchange: Exchange, tmp_path: Path) -> None:
    """An envelope that fails verification: exit 4, quarantined, nothing stored."""
    exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 5)), "--to", "cert-in")
    # CERT-In forgets CERT-FR's keys and pins an impostor under the same name: the signature
    # no longer verifies against the pinned keys.
    from tests.conftest import make_agency, pin

    impostor = make_agency(tmp_path / "other", "cert-fr", "Impostor")
    exchange.india.run("partners", "remove", "cert-fr", "--yes")
    pin(exchange.india, impostor, tmp_path / "other")
    exchange.wire(exchange.india, exchange.fr)
    pulled = exchange.india.run("pull", "--json")
    assert pulled.exit_code == 4
    reasons = Counter(q["reason"] for q in pulled.json()["partners"][0]["quarantined"])
    assert reasons == {"unknown-key": 1}
    conn = sqlite3.connect(exchange.india.home / "store.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM objects").fetchone()[0] == 0
    assert conn.execute("SELECT reason FROM quarantine").fetchall() == [("unknown-key",)]


def test_same_push_twice_shares_once_unless_reshare(exchange: Exchange, tmp_path: Path) -> None:
    iocs = write_iocs(tmp_path / "iocs.csv", 4)
    assert exchange.fr.run("push", str(iocs), "--to", "cert-in").exit_code == 0
    again = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--json")
    assert again.exit_code == 0 and again.json()["already_shared_at"]
    text = exchange.fr.run("push", str(iocs), "--to", "cert-in")
    assert "Already shared" in text.stdout and "--reshare" in text.stdout
    exchange.india.run("pull")
    assert len(received_values(exchange.india)) == 4

    reshared = exchange.fr.run("push", str(iocs), "--to", "cert-in", "--reshare", "--json")
    assert reshared.exit_code == 0 and not reshared.json()["already_shared_at"]
    exchange.india.run("pull")
    conn = sqlite3.connect(exchange.india.home / "store.sqlite")
    versions = conn.execute(
        "SELECT object_id, COUNT(*), SUM(is_current) FROM objects WHERE type = 'indicator' GROUP BY object_id"
    ).fetchall()
    # Same STIX ids (deterministic), a newer version each, one of them current.
    assert len(versions) == 4 and all(n == 2 and cur == 1 for _, n, cur in versions)


def test_a_reshare_keeps_the_first_created(exchange: Exchange, tmp_path: Path) -> None:
    """STIX 2.1 section 3.6: versions of one object share `created`; `modified` moves on."""
    import json

    iocs = write_iocs(tmp_path / "iocs.csv", 2)
    exchange.fr.run("push", str(iocs), "--to", "cert-in")
    exchange.fr.run("push", str(iocs), "--to", "cert-in", "--reshare")
    exchange.india.run("pull")
    conn = sqlite3.connect(exchange.india.home / "store.sqlite")
    by_id: dict[str, list[dict[str, str]]] = {}
    for (text,) in conn.execute("SELECT json FROM objects WHERE type = 'indicator'"):
        obj = json.loads(text)
        by_id.setdefault(obj["id"], []).append(obj)
    assert len(by_id) == 2
    for versions in by_id.values():
        assert len(versions) == 2
        assert versions[0]["created"] == versions[1]["created"]
        assert versions[0]["modified"] != versions[1]["modified"]


def test_queued_envelopes_are_cut_to_the_servers_limit_as_last_read(
    tmp_path: Path, partnered: tuple[Agency, Agency]
) -> None:
    """Sealed while the server is out of reach, an envelope too large for it could never be
    posted, and every later one on the channel would wait behind it."""
    fr, india = partnered
    with running_exchange(tmp_path, fr, india, max_content_length=48 * 1024):
        assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in").exit_code == 0
        # The server is read once; a queued push is then cut to its 48 KiB.
        queued = fr.run(
            "push", str(write_iocs(tmp_path / "b.csv", 1500, start=2)), "--to", "cert-in", "--queue"
        )
        assert queued.exit_code == 0, queued.stderr
        synced = fr.run("sync")
        assert synced.exit_code == 0, synced.stderr
        assert india.run("pull").exit_code == 0
        assert len(received_values(india)) == 1502


def test_queued_envelopes_too_large_for_the_server_are_sealed_again(
    tmp_path: Path, partnered: tuple[Agency, Agency]
) -> None:
    """Queued before any contact, an envelope was cut to 1 MiB, more than the server takes:
    it could never be posted and every later one on the channel waited behind it. Its content
    is sealed again in envelopes that fit, with the queued envelope after it (its position
    moves), and the partner receives everything on an unbroken channel."""
    fr, india = partnered
    with running_exchange(tmp_path, fr, india, max_content_length=48 * 1024):
        for name, count, start in (("a.csv", 1500, 0), ("b.csv", 3, 1500)):
            queued = fr.run(
                "push", str(write_iocs(tmp_path / name, count, start=start)), "--to", "cert-in", "--queue"
            )
            assert queued.exit_code == 0, queued.stderr
        (big, small) = [d["envelope_id"] for d in fr.run("sent", "--json").json()]

        synced = fr.run("sync")
        assert synced.exit_code == 0, synced.stderr
        sent = {d["envelope_id"]: d for d in fr.run("sent", "--json").json()}
        assert sent[big]["status"] == sent[small]["status"] == "resealed"
        new_ids = [e for e, d in sent.items() if d["status"] == "posted"]
        assert len(new_ids) >= 3 and sent[big]["last_error"].startswith("sealed again as ")
        assert set(new_ids) == {
            e
            for old in (big, small)
            for e in sent[old]["last_error"].removeprefix("sealed again as ").split(", ")
        }
        with sqlite3.connect(fr.home / "store.sqlite") as db:
            audit = [
                json.loads(d) for (d,) in db.execute("SELECT details FROM audit_log WHERE action = 'reseal'")
            ]
        assert [a["envelope_id"] for a in audit] == [big, small]
        assert "more than cert-in's server accepts (49,152)" in audit[0]["reason"]

        pulled = india.run("pull", "--json")
        assert pulled.exit_code == 0, pulled.stderr
        assert len(received_values(india)) == 1503
        assert india.run("quarantine", "list", "--json").json() == []
        # The channel goes on from the last new envelope: a later push is not a gap.
        assert (
            fr.run("push", str(write_iocs(tmp_path / "c.csv", 2, start=1503)), "--to", "cert-in").exit_code
            == 0
        )
        assert india.run("pull").exit_code == 0
        assert len(received_values(india)) == 1505
        # The receipts confirm the new envelopes; the replaced ones stay as they are.
        assert india.run("sync").exit_code == 0 and fr.run("sync").exit_code == 0
        statuses = Counter(d["status"] for d in fr.run("sent", "--json").json())
        assert statuses == Counter({"received": len(new_ids) + 1, "resealed": 2})


def test_an_envelope_that_cannot_fit_even_sealed_again_is_named_as_such(
    tmp_path: Path, partnered: tuple[Agency, Agency]
) -> None:
    """A server taking less than one indicator's envelope: the sync says what is too large
    for whom, not "unreachable"; the envelope waits in the outbox as it was (sealing it again
    at every sync would only fill the sent log)."""
    fr, india = partnered
    with running_exchange(tmp_path, fr, india, max_content_length=2048):
        queued = fr.run("push", str(write_iocs(tmp_path / "a.csv", 1)), "--to", "cert-in", "--queue")
        assert queued.exit_code == 0, queued.stderr
        (envelope,) = fr.run("sent", "--json").json()
        for _ in range(2):
            synced = fr.run("sync")
            # The server answered: a failure of the work (1), not of the network (7).
            assert synced.exit_code == 1, synced.stderr
            assert "more than cert-in's server accepts (2,048): sealing it again failed" in synced.stderr
            assert "unreachable" not in synced.stdout + synced.stderr and "Traceback" not in synced.stderr
        (still,) = fr.run("sent", "--json").json()
        assert (still["envelope_id"], still["status"]) == (envelope["envelope_id"], "failed")


MISP_CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus" / "misp"


def test_a_misp_event_without_detection_attributes_is_pushed_with_include_non_ids(
    exchange: Exchange,
) -> None:
    """push had no --include-non-ids (validate and convert had): an event whose publisher
    never sets to_ids could only be shared by converting it to a bundle and pushing that. The
    "nothing usable" error now names the option, and the option shares them."""
    fr, india = exchange.fr, exchange.india
    bespin = MISP_CORPUS / "eset-sshdoor-bespin.misp.json"
    result = fr.run("push", str(bespin), "--to", "cert-in")
    assert result.exit_code == 6, result.stderr
    assert result.stderr.count("\n") == 1
    assert "3 MISP attribute(s) with to_ids false were skipped: --include-non-ids reads them" in result.stderr

    result = fr.run("push", str(bespin), "--to", "cert-in", "--include-non-ids", "--json")
    assert result.exit_code == 1, result.stderr  # its `text` attribute has no STIX indicator
    assert result.json()["partners"][0]["objects"] == 2
    assert india.run("pull").exit_code == 0
    assert len(received_values(india)) == 2


def _push(agency: Agency, *args: str) -> dict[str, Any]:
    result = agency.run("push", *args, "--to", "cert-in", "--queue", "--json")
    assert result.exit_code in (0, 1), result.stderr  # 1: the corpus events hold unmapped types
    return dict(result.json())


def test_include_non_ids_makes_another_push_only_where_it_changes_what_is_shared(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """push_request_id (the same push run twice shares once): --include-non-ids on a MISP event
    with to_ids false attributes shares more, so it is another push; on a CSV it changes
    nothing, and --workers and --max-json-mb (how the inputs are read) never do."""
    fr, _ = partnered
    event = str(MISP_CORPUS / "eset-cloudmensis.misp.json")
    first = _push(fr, event)
    assert not first["already_shared_at"] and first["partners"][0]["objects"] == 9
    with_non_ids = _push(fr, event, "--include-non-ids")
    assert not with_non_ids["already_shared_at"] and with_non_ids["partners"][0]["objects"] == 11
    assert _push(fr, event, "--include-non-ids", "--workers", "3", "--max-json-mb", "8")["already_shared_at"]
    assert _push(fr, event, "--workers", "1", "--max-json-mb", "100")["already_shared_at"]

    iocs = str(write_iocs(tmp_path / "iocs.csv", 4))
    assert not _push(fr, iocs)["already_shared_at"]
    assert _push(fr, iocs, "--include-non-ids", "--workers", "2")["already_shared_at"]
    assert [d["status"] for d in fr.run("sent", "--json").json()] == ["sealed"] * 3


def test_a_json_input_kept_out_by_max_json_mb_is_shared_once_read_with_a_larger_limit(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """--max-json-mb is not part of what makes the same push, but a file it kept out was not
    shared: pushed again with a limit that reads it, the push is not "already shared"."""
    fr, _ = partnered
    padded = tmp_path / "event.misp.json"  # the same event, past 1 MiB with trailing spaces
    padded.write_text((MISP_CORPUS / "eset-cloudmensis.misp.json").read_text() + " " * (1024 * 1024))
    iocs = str(write_iocs(tmp_path / "iocs.csv", 4))

    refused = _push(fr, str(padded), iocs, "--max-json-mb", "1")
    assert any(r["code"] == "unreadable-file" for r in refused["rejections"])
    assert refused["partners"][0]["objects"] == 4
    read = _push(fr, str(padded), iocs, "--max-json-mb", "2")
    assert not read["already_shared_at"] and read["partners"][0]["objects"] == 13
    assert _push(fr, str(padded), iocs, "--max-json-mb", "3")["already_shared_at"]


def test_a_refusal_says_what_would_let_each_refused_object_through(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """The hint was "change the TLP or the partner's max TLP" whatever refused what: for
    TLP:RED a higher max TLP changes nothing, the partner's entry must allow RED."""
    cert_fr, _ = partnered
    csv = tmp_path / "mixed.csv"
    csv.write_text("value,tlp\nred-1.example,red\nstrict-1.example,amber+strict\nfine-1.example,amber\n")
    refused = cert_fr.run("push", str(csv), "--to", "cert-in", "--allow-red")
    assert refused.exit_code == 8 and refused.stderr.count("\n") == 1, refused.stderr
    # --allow-red was given: only the partner's entry is missing (test_push_tlp_and_repeats.py).
    assert "for TLP:RED, `cti-exchange partners set cert-in --allow-red`;" in refused.stderr
    assert "--allow-red here" not in refused.stderr
    assert "above a max TLP, `cti-exchange partners set cert-in --max-tlp LEVEL`" in refused.stderr
    dry = cert_fr.run("push", str(csv), "--to", "cert-in", "--dry-run")
    assert dry.exit_code == 8 and "partners set cert-in --allow-red" in dry.stderr.splitlines()[-1]
    only_red = tmp_path / "red.csv"
    only_red.write_text("value,tlp\nred-2.example,red\n")
    red = cert_fr.run("push", str(only_red), "--to", "cert-in")
    assert red.exit_code == 8 and "--max-tlp" not in red.stderr, red.stderr
