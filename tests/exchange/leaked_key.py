"""A partner's key in the wrong hands: whoever holds a copy of an agency's key store and its
passphrase, and its TAXII credentials (a stolen laptop), seals envelopes in its name, signed
with a key of their choosing whatever its status (retired, revoked), and posts them to a
partner's collection.

Made with the product's own parts, none of them replaced: the agency's key store unlocked
(home/key_store.py), the bundle read and cut as `push` reads and cuts it (ingest.py,
exchange/sealing.py PartnerSealing, envelope/seal.py), the next position on the agency's
channel to the partner read from its store as `push` reads it, and the product's TAXII client
posting to the real server. Nothing is written to the agency's store: the thief's envelopes
are in no outbox of the agency's, as they would not be.
"""

from __future__ import annotations

from pathlib import Path

from cti_exchange.clock import utc_now
from cti_exchange.envelope.header import ChannelPosition
from cti_exchange.envelope.seal import SealedEnvelope, SenderKeys
from cti_exchange.exchange.delivery import taxii_client_for, wait_until_final
from cti_exchange.exchange.sealing import PartnerSealing
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.ingest import ingest_files
from cti_exchange.ingest_settings import IngestContext
from cti_exchange.keys.model import KeyUse
from cti_exchange.partnership import get_partner
from cti_exchange.stix.bundle import content_objects, travelling_definitions
from cti_exchange.store.store import open_store
from tests.conftest import PASSPHRASE, Agency


def post_signed_with(agency: Agency, partner: str, iocs: Path, kid: str) -> list[str]:
    """Seals what the CSV `iocs` holds for `partner` as the agency's `push --to PARTNER` would
    seal it now (cti_exchange.clock: a shifted clock applies), signed with the agency's key
    `kid`, at the next positions of its channel to the partner, and posts it to the partner's
    collection. The envelope ids, once the server has acknowledged every one."""
    home = ProfileHome(agency.home)
    profile = home.load_profile()
    target = get_partner(home, partner)
    assert target.taxii is not None and target.taxii.write_collection
    moment = utc_now()
    sender = SenderKeys(
        agency_id=profile.agency_id,
        signing_key=home.keys.unlock(PASSPHRASE)[kid],
        own_encryption_key=home.keyring().current(KeyUse.ENC).public_jwk,
    )
    objects = ingest_files([iocs], IngestContext.for_profile(profile, moment)).objects
    with open_store(home) as store:
        channel = store.outbound.next_positions([target.agency_id])
    sealed: list[SealedEnvelope] = []
    with taxii_client_for(home, target) as client:
        pieces = PartnerSealing(home, target, sender, moment).pieces(
            content_objects(objects),
            client.max_content_length(),
            lambda: dict(channel),
            travelling_definitions(objects),
        )
        for envelope, _ in pieces:
            sealed.append(envelope)
            # Where the agency's store would move its channel once the envelope is recorded.
            following = channel[target.agency_id].sequence + 1
            channel[target.agency_id] = ChannelPosition(sequence=following, previous=envelope.digest)
        status = client.post_objects(target.taxii.write_collection, [s.artifact for s in sealed])
        status = wait_until_final(client, status)
    assert status.status == "complete" and not status.failures, status
    return [s.header.envelope_id for s in sealed]
