"""`cti-exchange serve` provisions from the profile; `cti-exchange demo` runs the whole exchange."""

from __future__ import annotations

import signal
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests

from cti_exchange.server.connection import DB_FILENAME
from cti_exchange.server.provisioning import collection_id_for
from tests.conftest import Agency, run_cli
from tests.exchange.serve_process import (
    TAXII,
    free_port,
    serve_command,
    serve_env,
    serving,
    start_on_port_zero,
)


def test_demo_delivers_every_indicator_verified() -> None:
    result = run_cli("demo", "--json")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert summary["all_arrived"] and summary["sent"] == summary["received"] == 16
    assert {i["ioc_type"] for i in summary["indicators"]} == {
        "ipv4-addr",
        "domain-name",
        "url",
        "sha256",
    }


def test_demo_exits_with_the_cause_of_a_failed_pull() -> None:
    """The demo's server dies as CERT-In reads its collection (a failpoint in the server
    process), after CERT-FR posted everything: the pull's network failure is exit 7, as for
    `pull`, not "only 0 of 16 indicators arrived verified" (4)."""
    result = run_cli("demo", "--json", env={"CTI_EXCHANGE_FAILPOINT": "server-get-objects:1"})
    assert result.exit_code == 7, result.stderr
    assert "pull failed for cert-fr" in result.stderr and "arrived verified" not in result.stderr
    assert "cert-fr: cert-fr:" not in result.stderr  # the partner named once
    assert "DIR/taxii-server/server.log" in result.stderr
    summary = result.json()
    assert not summary["all_arrived"] and summary["received"] == 0 and summary["failed"] == {}
    assert list(summary["pull_errors"]) == ["cert-fr"]


def test_demo_names_its_failed_deliveries_readably() -> None:
    """Step 4 showed the failed deliveries as a Python dict:
    "(FAILED: {'cert-in': {'3f0c...': 'cert-in: ...'}})"."""
    result = run_cli("demo", env={"CTI_EXCHANGE_FAILPOINT": "server-add-objects:1"})
    assert result.exit_code == 7, result.stderr
    (step,) = [line for line in result.stdout.splitlines() if line.startswith("4. ")]
    assert "but posting them to CERT-In's collection FAILED for cert-in: 1 envelope(s) (" in step, step
    assert "{'" not in step and "'}" not in step, step


def _password(agency: Agency) -> str:
    return (agency.home / "taxii-server" / "credentials" / f"{agency.agency_id}.secret").read_text().strip()


def test_serve_provisions_accounts_from_the_profile(partnered: tuple[Agency, Agency]) -> None:
    cert_fr, _ = partnered
    with serving(cert_fr) as url:
        credentials = cert_fr.home / "taxii-server" / "credentials"
        for agency in ("cert-fr", "cert-in"):
            secret = credentials / f"{agency}.secret"
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600
            password = secret.read_text().strip()
            ok = requests.get(url, auth=(agency, password), headers={"Accept": TAXII}, timeout=5)
            assert ok.status_code == 200, ok.text
            listed = requests.get(
                f"{url}collections/", auth=(agency, password), headers={"Accept": TAXII}, timeout=5
            ).json()["collections"]
            assert len(listed) == 2  # its inbound (read) and outbound (write) collection
        config = (cert_fr.home / "taxii-server").glob("*.json")
        assert not any(password in p.read_text() for p in config)  # only hashes are stored


def test_serve_busy_timeout_is_how_long_a_post_waits_for_the_write_lock(
    partnered: tuple[Agency, Agency],
) -> None:
    cert_fr, _ = partnered
    with serving(cert_fr, "--busy-timeout", "0.3") as url:
        auth = ("cert-fr", _password(cert_fr))
        headers = {"Accept": TAXII, "Content-Type": TAXII}
        listed = requests.get(f"{url}collections/", auth=auth, headers=headers, timeout=5).json()
        outbound = next(c for c in listed["collections"] if c["can_write"])
        indicator = {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--44af6c39-c09b-49c5-9de2-394224b04982",
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "pattern": "[ipv4-addr:value = '198.51.100.7']",
            "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z",
        }
        objects_url = f"{url}collections/{outbound['id']}/objects/"
        holder = sqlite3.connect(cert_fr.home / "taxii-server" / DB_FILENAME, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # another writer holding the lock
            started = time.monotonic()
            busy = requests.post(
                objects_url, json={"objects": [indicator]}, auth=auth, headers=headers, timeout=30
            )
            waited = time.monotonic() - started
        finally:
            holder.close()
        assert busy.status_code == 503, busy.text
        assert 0.3 <= waited < 5  # the default would wait 10 s


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "601"])
def test_serve_refuses_an_unusable_busy_timeout_before_provisioning(cert_fr: Agency, seconds: str) -> None:
    result = cert_fr.run("serve", "--busy-timeout", seconds)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "--busy-timeout" in result.stderr
    assert not (cert_fr.home / "taxii-server").exists()


def test_serve_refuses_a_public_address_without_consent(partnered: tuple[Agency, Agency]) -> None:
    cert_fr, _ = partnered
    result = cert_fr.run("serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert result.exit_code == 2 and "0.0.0.0" in result.stderr and "--public" in result.stderr
    # Refused before anything is provisioned: no accounts, no password files written.
    assert not (cert_fr.home / "taxii-server").exists()


def test_serve_never_gives_new_passwords_when_the_accounts_cannot_be_read(
    partnered: tuple[Agency, Agency],
) -> None:
    # Only a server never provisioned has no accounts: new passwords for every agency would
    # lock every partner out.
    cert_fr, _ = partnered
    data = cert_fr.home / "taxii-server"
    data.mkdir()
    (data / DB_FILENAME).write_bytes(b"not a SQLite database, but an existing file" * 100)
    result = cert_fr.run("serve", "--port", str(free_port()))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "file is not a database" in result.stderr
    assert not (data / "credentials").exists()


def test_serve_names_the_port_it_bound_and_each_collection_id(partnered: tuple[Agency, Agency]) -> None:
    """`serve --port 0` said "Serving 2 agencies on http://127.0.0.1:0/exchange/", and nothing
    said which collection ids `partners set --read-collection / --write-collection` take."""
    cert_fr, _ = partnered
    server, lines = start_on_port_zero(cert_fr)
    try:
        url = lines[-1].split(" on ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:") and ":0/" not in url, lines[-1]
        assert url.endswith("/exchange/")
        answer = requests.get(url, auth=("cert-fr", _password(cert_fr)), headers={"Accept": TAXII}, timeout=5)
        assert answer.status_code == 200, answer.text
        fr_to_in, in_to_fr = collection_id_for("cert-fr", "cert-in"), collection_id_for("cert-in", "cert-fr")
        said = "".join(lines)
        assert (
            f"Collection cert-fr -> cert-in: {fr_to_in} (cert-fr's --write-collection, cert-in's --read-collection)"
            in said
        )
        assert f"Collection cert-in -> cert-fr: {in_to_fr}" in said
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_serve_keeps_the_request_limit_it_was_given(partnered: tuple[Agency, Agency]) -> None:
    """Every start re-provisioned the API root with the default 10 MiB, so a limit set for a
    small server (and partners' envelopes cut to it) did not survive a restart."""
    cert_fr, _ = partnered

    def limit(url: str) -> int:
        auth = ("cert-fr", _password(cert_fr))
        answer = requests.get(url, auth=auth, headers={"Accept": TAXII}, timeout=5)
        assert answer.status_code == 200, answer.text
        return int(answer.json()["max_content_length"])

    with serving(cert_fr) as url:
        assert limit(url) == 10 * 1024 * 1024
    with serving(cert_fr, "--max-content-length", "65536") as url:
        assert limit(url) == 65536
    with serving(cert_fr) as url:  # restarted without the option: kept
        assert limit(url) == 65536
    refused = cert_fr.run("serve", "--max-content-length", "10")
    assert refused.exit_code == 2 and "1024" in refused.stderr


def test_demo_keep_leaves_profiles_that_can_be_used(tmp_path: Path) -> None:
    """Before, `demo --keep` kept profiles whose key passphrases were random and shown nowhere:
    nothing could be done with them. Now each passphrase is in a 0600 file beside its profile,
    and the output says how to use them and how to start the server again on its port."""
    keep = tmp_path / "kept"
    result = run_cli("demo", "--keep", str(keep), "--json")
    assert result.exit_code == 0, result.stderr
    kept = result.json()["kept"]
    passphrases = {agency: Path(path) for agency, path in kept["passphrase_files"].items()}
    assert set(passphrases) == {"cert-fr", "cert-in"}
    for path in passphrases.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fr = Agency("cert-fr", "CERT-FR", Path(kept["homes"]["cert-fr"]))
    india = Agency("cert-in", "CERT-In", Path(kept["homes"]["cert-in"]))

    def unlocked(agency: Agency) -> dict[str, str]:
        only_the_file = {
            "CTI_EXCHANGE_PASSPHRASE": None,
            "CTI_EXCHANGE_PASSPHRASE_FILE": str(passphrases[agency.agency_id]),
        }
        return only_the_file  # type: ignore[return-value]

    listed = india.run("triage", "list", "--json", env=unlocked(india))
    assert listed.exit_code == 0, listed.stderr
    assert len([o for o in listed.json()["items"] if o["type"] == "indicator"]) == 16

    # The server again, as the text output says: the same data, the port the profiles name.
    text = run_cli("demo", "--keep", str(tmp_path / "kept-too"))
    assert "CTI_EXCHANGE_PASSPHRASE_FILE=" in text.stdout and " serve --data " in text.stdout
    with serving(fr, "--data", kept["server_data"], port=int(kept["server_port"])):
        more = tmp_path / "more.csv"
        more.write_text("value,type\nkept-demo.example,domain\n")
        pushed = fr.run("push", str(more), "--to", "cert-in", env=unlocked(fr))
        assert pushed.exit_code == 0, pushed.stderr
        pulled = india.run("pull", env=unlocked(india))
        assert pulled.exit_code == 0, pulled.stderr
        found = india.run("triage", "list", "--search", "kept-demo", "--json", env=unlocked(india))
        assert [o["value"] for o in found.json()["items"]] == ["kept-demo.example"]


def test_a_serve_that_cannot_listen_changes_nothing(partnered: tuple[Agency, Agency]) -> None:
    """A second `serve` on the port of the running one, after `partners remove`, failed with
    "address already in use", but only after it had provisioned: the removed agency lost its
    access to the running server at once, before any restart."""
    cert_fr, cert_in = partnered
    with serving(cert_fr) as url:
        password = (cert_fr.home / "taxii-server" / "credentials" / "cert-in.secret").read_text().strip()
        port = url.split(":")[2].split("/")[0]
        assert cert_fr.run("partners", "remove", "cert-in", "--yes").exit_code == 0
        second = subprocess.run(
            serve_command(cert_fr, "--port", port),
            env=serve_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2, second.stderr  # our own port: a setting, not a network failure
        assert (
            f"cannot listen on 127.0.0.1:{port}" in second.stderr and "nothing was changed" in second.stderr
        )
        listed = requests.get(
            f"{url}collections/", auth=("cert-in", password), headers={"Accept": TAXII}, timeout=5
        )
        assert listed.status_code == 200 and len(listed.json()["collections"]) == 2
