"""`cti-exchange demo`: the whole exchange between CERT-FR and CERT-In on one machine.

Starts the embedded TAXII server on a free loopback port, creates both agencies in a temporary
directory, exchanges and pins their keys, pushes the sample indicators from CERT-FR to CERT-In,
pulls and verifies them as CERT-In, then stops the server and cleans up. Everything goes
through the same Python API the commands use.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cti_exchange.agency import export_key_document, init_agency
from cti_exchange.exchange.delivery import describe_failed
from cti_exchange.exchange.pull import PullResult, pull
from cti_exchange.exchange.push import PushRequest, PushResult, push
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.home.safe_files import create_exclusive
from cti_exchange.keys.model import KeyUse
from cti_exchange.partnership import add_partner, configure_partner
from cti_exchange.resources import examples_dir
from cti_exchange.server.provisioning import collection_id_for, plan_exchange, provision
from cti_exchange.server.runner import ServerProcess

AGENCIES = (("cert-fr", "CERT-FR"), ("cert-in", "CERT-In"))
# The demo's server is its own child on loopback: one that stops answering has died, and the
# default two minutes of retries (for the push, then again for the pull) would only delay
# saying so.
RETRY_SECONDS = 10.0


@dataclass
class ReceivedIndicator:
    value: str
    ioc_type: str
    tlp: str
    signer: str
    envelope_id: str


@dataclass
class DemoResult:
    sent: int = 0
    received: list[ReceivedIndicator] = field(default_factory=list)
    push: PushResult | None = None
    pull: PullResult | None = None
    server_url: str = ""
    server_port: int | None = None
    # Each agency's key passphrase file (0600, beside its profile home): what a kept profile
    # (`demo --keep`) is unlocked with.
    passphrase_files: dict[str, Path] = field(default_factory=dict)

    @property
    def all_arrived(self) -> bool:
        return self.sent > 0 and len(self.received) == self.sent


def sample_input() -> Path:
    return examples_dir() / "sample-iocs.csv"


@contextmanager
def loopback_without_proxy() -> Iterator[None]:
    """The demo's server is on 127.0.0.1: a proxy from the environment (http_proxy, common on
    agency workstations) cannot reach it, so loopback addresses bypass it meanwhile."""
    names = ("no_proxy", "NO_PROXY")
    saved = {name: os.environ.get(name) for name in names}
    current = [v for v in (saved["no_proxy"] or saved["NO_PROXY"] or "").split(",") if v.strip()]
    bypass = ",".join([*current, "127.0.0.1", "localhost", "::1"])
    try:
        for name in names:
            os.environ[name] = bypass
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_demo(
    work_dir: Path, *, say: Callable[[str], None] = lambda _: None, sample: Path | None = None
) -> DemoResult:
    with loopback_without_proxy():
        return _run_demo(work_dir, say, sample)


def _run_demo(work_dir: Path, say: Callable[[str], None], sample: Path | None) -> DemoResult:
    result = DemoResult()
    data_dir = work_dir / "taxii-server"
    passwords = {agency: secrets.token_urlsafe(24) for agency, _ in AGENCIES}
    provision(data_dir, plan_exchange(list(AGENCIES)), passwords=passwords)
    with ServerProcess(data_dir) as server:
        server.start()
        result.server_url = server.api_root_url
        result.server_port = server.port
        say(f"1. TAXII 2.1 server (medallion, SQLite backend) listening at {server.api_root_url}")

        homes = {agency: ProfileHome(work_dir / agency) for agency, _ in AGENCIES}
        for agency, name in AGENCIES:
            passphrase = secrets.token_urlsafe(24)
            passphrase_file = work_dir / f"{agency}.passphrase"
            create_exclusive(passphrase_file, passphrase.encode() + b"\n", 0o600)
            result.passphrase_files[agency] = passphrase_file
            init_agency(homes[agency], agency_id=agency, name=name, country=None, passphrase=passphrase)
        say("2. Created CERT-FR and CERT-In, each with Ed25519 signing and X25519 encryption keys")

        for agency, _ in AGENCIES:
            home = homes[agency]
            for other, _name in AGENCIES:
                if other == agency:
                    continue
                other_home = homes[other]
                document = export_key_document(other_home)
                fingerprint = other_home.keyring().current(KeyUse.SIG).thumbprint
                add_partner(home, other, document, fingerprint=fingerprint, source=f"{other}.keys.json")
                secret_file = home.root / f"taxii-{agency}.secret"
                if not secret_file.exists():
                    create_exclusive(secret_file, passwords[agency].encode(), 0o600)
                configure_partner(
                    home,
                    other,
                    taxii_changes={
                        "api_root": server.api_root_url,
                        "read_collection": collection_id_for(other, agency),
                        "write_collection": collection_id_for(agency, other),
                        "auth": "basic",
                        "username": agency,
                        "secret_file": secret_file.name,
                        "retry_budget_seconds": RETRY_SECONDS,
                    },
                )
        say("3. Exchanged public keys and pinned each other's signing key by RFC 7638 fingerprint")

        source = sample or sample_input()
        result.push = push(homes["cert-fr"], PushRequest(inputs=[source], partners=["cert-in"]))
        result.sent = sum(1 for o in result.push.ingest.objects if o.get("type") == "indicator")
        envelopes = sum(len(p.envelopes) for p in result.push.plans)
        failed = result.push.failed
        posted = (
            f", but posting them to CERT-In's collection FAILED for {describe_failed(failed)}"
            if failed
            else " and posted them to CERT-In's collection"
        )
        say(
            f"4. CERT-FR read {source.name}: {result.sent} indicators, signed and encrypted them "
            f"into {envelopes} envelope(s){posted}"
        )

        result.pull = pull(homes["cert-in"])
        partner = result.pull.partners[0]
        say(
            f"5. CERT-In pulled {len(partner.accepted)} envelope(s): decrypted, verified the "
            f"signature against the pinned CERT-FR key, checked header, sequence and STIX; "
            f"{partner.objects_received} objects accepted (the indicators, CERT-FR's identity "
            f"and the TLP marking definitions), {len(partner.quarantined)} rejected"
            + (f" (error: {partner.error})" if partner.error else "")
        )
        result.received = received_indicators(homes["cert-in"])
    say("6. Stopped the TAXII server")
    return result


def received_indicators(home: ProfileHome) -> list[ReceivedIndicator]:
    conn = sqlite3.connect(home.store_path())
    try:
        rows = conn.execute(
            "SELECT o.value, o.ioc_type, o.tlp, e.signer_kid, e.envelope_id FROM objects o "
            "JOIN envelopes_in e ON e.envelope_id = o.envelope_id AND e.partner = o.partner "
            "WHERE o.type = 'indicator' AND o.is_current = 1 ORDER BY o.ioc_type, o.value"
        ).fetchall()
    finally:
        conn.close()
    return [ReceivedIndicator(*(str(v or "") for v in row)) for row in rows]
