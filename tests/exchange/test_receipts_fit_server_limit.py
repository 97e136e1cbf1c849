"""Receipts are cut to the partner server's request limit, as data envelopes are.

A receipt envelope holding a backlog's receipts in one object could be larger than the
partner's server takes: it could never be posted, and every later envelope to that partner
(its data too) waited behind it on the channel, at every sync, for good.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.conftest import Agency
from tests.exchange.conftest import received_values, running_exchange, write_iocs

# Small enough that the receipts of a few dozen envelopes do not fit one envelope.
LIMIT = 6000


def statuses(agency: Agency) -> Counter[str]:
    return Counter(d["status"] for d in agency.run("sent", "--json").json())


def test_receipts_for_a_backlog_go_in_envelopes_that_fit_the_partners_server(
    tmp_path: Path, partnered: tuple[Agency, Agency]
) -> None:
    fr, india = partnered
    with running_exchange(tmp_path, fr, india, max_content_length=LIMIT):
        pushed = fr.run("push", str(write_iocs(tmp_path / "a.csv", 150)), "--to", "cert-in")
        assert pushed.exit_code == 0, pushed.stderr
        backlog = sum(statuses(fr).values())
        assert backlog >= 25
        assert india.run("pull").exit_code == 0

        # cert-in never read cert-fr's server: its receipts were sealed for 1 MiB, in one
        # envelope too large for this server. It is sealed again in envelopes that fit, on the
        # same channel positions, and posted.
        synced = india.run("sync")
        assert synced.exit_code == 0, synced.stderr
        sent = india.run("sent", "--json").json()
        (replaced,) = [d for d in sent if d["status"] == "resealed"]
        new_ids = replaced["last_error"].removeprefix("sealed again as ").split(", ")
        assert len(new_ids) >= 2
        assert {d["envelope_id"] for d in sent if d["status"] == "posted"} == set(new_ids)

        # cert-fr takes them on an unbroken channel: every envelope of the backlog is confirmed.
        assert fr.run("sync").exit_code == 0
        assert statuses(fr) == Counter({"received": backlog})
        assert fr.run("quarantine", "list", "--json").json() == []

        # Now that cert-in knows the server's limit, the next receipts are cut to it when sealed.
        pushed = fr.run("push", str(write_iocs(tmp_path / "b.csv", 150, start=150)), "--to", "cert-in")
        assert pushed.exit_code == 0, pushed.stderr
        assert india.run("pull").exit_code == 0
        synced = india.run("sync")
        assert synced.exit_code == 0, synced.stderr
        after = statuses(india)
        assert after["resealed"] == 1 and after["posted"] >= len(new_ids) + 2
        assert fr.run("sync").exit_code == 0
        assert set(statuses(fr)) == {"received"}

        # cert-in's own data is not held behind its receipts, and arrives in order.
        one = tmp_path / "one.csv"
        one.write_text("value,type,tlp\n192.0.2.77,ipv4-addr,green\n")
        shared = india.run("push", str(one), "--to", "cert-fr")
        assert shared.exit_code == 0, shared.stderr
        assert fr.run("pull").exit_code == 0
        assert "192.0.2.77" in received_values(fr)
        assert fr.run("quarantine", "list", "--json").json() == []
    assert len(received_values(india)) == 300
