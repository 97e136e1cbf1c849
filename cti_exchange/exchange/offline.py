"""Offline exchange: sealing a bundle to a file and opening an envelope file (e-mail, removable
media, or when TAXII is down). The same channels, sequence numbers, replay protection and
quarantine apply as over TAXII."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.envelope.artifact import is_envelope_artifact
from cti_exchange.envelope.open import OpenedEnvelope, open_envelope
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.envelope.seal import SealedEnvelope, seal_bundle
from cti_exchange.errors import InputError, IntegrityError
from cti_exchange.exchange.held import too_old_hint
from cti_exchange.exchange.parties import (
    receiver_context,
    recipient_key,
    sender_keys,
)
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.partnership import get_partner
from cti_exchange.policy.sharing import decide_sharing, refusal_error
from cti_exchange.readers.json_input import parse_json
from cti_exchange.stix.tlp import Tlp
from cti_exchange.stix.validate import validate_bundle
from cti_exchange.store.objects import NotApplied, StoredObjects
from cti_exchange.store.outbound import EXPORTED
from cti_exchange.store.store import open_store

# STIX 2.1 section 8: a bundle has these and no other properties.
_BUNDLE_PROPERTIES = frozenset({"type", "id", "objects"})


def parse_bundle(bundle_bytes: bytes, *, source: str) -> dict[str, Any]:
    """The bundle `seal` sends as is, byte for byte: so what the sharing policy reads must be
    all the bytes say. A key given twice in one object (the policy would read only the last
    one, while the bytes carry both) and properties outside the bundle's objects (which no
    marking covers) are refused."""
    bundle = parse_json(bundle_bytes, source)
    if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
        raise InputError(
            f"{source} is not a STIX 2.1 bundle",
            hint="use `cti-exchange convert` to turn other inputs into a bundle",
        )
    extra = sorted(set(bundle) - _BUNDLE_PROPERTIES)
    if extra:
        raise InputError(
            f"{source}: the bundle has properties besides type, id and objects: {', '.join(extra)[:120]}",
            hint="remove them: no TLP marking covers them, and the file is sealed byte for byte",
        )
    problems = validate_bundle(bundle)
    if problems:
        raise InputError(f"{source}: {problems[0]}", hint="fix the bundle or re-create it with convert")
    return bundle


def seal_bundle_for(
    home: ProfileHome,
    bundle_bytes: bytes,
    partner_names: list[str],
    *,
    source: str,
    allow_red: bool = False,
    now: datetime | None = None,
) -> SealedEnvelope:
    """Seals the exact bytes of a bundle file to the named partners (and to ourselves)."""
    bundle = parse_bundle(bundle_bytes, source=source)
    objects = bundle["objects"]
    partners = [get_partner(home, name) for name in dict.fromkeys(partner_names)]
    decision = decide_sharing(objects, partners, allow_red=allow_red)
    if decision.refusals:
        raise refusal_error(
            decision.refusals,
            outcome="",
            hint="a sealed file carries the bundle as is; remove those objects or change the recipients",
        )
    levels = [lvl for lvl in decision.strictest.values() if lvl is not None]
    with open_store(home) as store:
        sealed = seal_bundle(
            bundle_bytes,
            bundle_id=bundle["id"],
            object_count=len(objects),
            sender=sender_keys(home),
            recipients=[recipient_key(home, p) for p in partners],
            channels=store.outbound.next_positions([p.agency_id for p in partners]),
            now=now or utc_now(),
        )
        store.outbound.record_sealed(
            sealed,
            partners={p.agency_id: p.name for p in partners},
            tlp=Tlp.strictest(levels).value if levels else None,
            objects=[o for o in objects if o.get("type") not in ("marking-definition", "identity")],
            status=EXPORTED,
        )
    return sealed


@dataclass(frozen=True)
class OpenVerdict:
    opened: OpenedEnvelope
    partner: str | None  # None: our own copy
    new_versions: int
    stored: bool
    not_applied: list[NotApplied] = field(default_factory=list)


def envelope_from_document(document: Any, *, source: str) -> dict[str, Any]:
    """An envelope file is the artifact itself, or a bundle holding one envelope artifact."""
    if is_envelope_artifact(document):
        return document  # type: ignore[no-any-return, unused-ignore]
    if isinstance(document, dict) and isinstance(document.get("objects"), list):
        found = [o for o in document["objects"] if is_envelope_artifact(o)]
        if len(found) == 1:
            return found[0]  # type: ignore[no-any-return, unused-ignore]
        if len(found) > 1:
            raise InputError(f"{source} holds {len(found)} envelopes; open them one at a time")
    raise InputError(
        f"{source} is not a cti-exchange envelope",
        hint="expected the file written by `cti-exchange seal` (an artifact object)",
    )


def open_envelope_file(
    home: ProfileHome,
    artifact: dict[str, Any],
    *,
    store_result: bool = True,
    accept_gap: bool = False,
    now: datetime | None = None,
) -> OpenVerdict:
    profile = home.load_profile()
    moment = now or utc_now()
    with open_store(home) as store:
        ctx = receiver_context(home, store, moment)
        try:
            opened = open_envelope(artifact, ctx, accept_gap=accept_gap)
        except EnvelopeRejected as rejected:
            partner = profile.partner_by_agency(rejected.sender) if rejected.sender else None
            record_id = None
            if store_result:
                record_id = store.inbound.quarantine(
                    artifact,
                    rejected,
                    partner=partner.name if partner else None,
                    received_at=stix_timestamp(moment),
                )
            hint = None
            if rejected.reason is RejectReason.TOO_OLD and accept_gap and partner is not None:
                # As `quarantine accept-gap` says it: which envelope can take the gap instead.
                again = (
                    f"run `cti-exchange quarantine accept-gap {record_id}`"
                    if record_id is not None
                    else "open it again with --accept-gap"
                )
                hint = too_old_hint(store, ctx, partner, rejected.sender, besides=record_id, again=again)
            raise EnvelopeRefused(rejected, quarantined=store_result, hint=hint) from None
        if opened.header.sender == profile.agency_id:
            return OpenVerdict(opened=opened, partner=None, new_versions=0, stored=False)
        partner = profile.partner_by_agency(opened.header.sender)
        assert partner is not None  # the signature check found its pinned keys
        stored = StoredObjects()
        if store_result:
            stored = store.inbound.accept(
                opened,
                partner=partner.name,
                received_at=stix_timestamp(moment),
                artifact_id=artifact.get("id"),
                partner_identity=partner.identity_id,
            )
        return OpenVerdict(
            opened=opened,
            partner=partner.name,
            new_versions=stored.new_versions,
            stored=store_result,
            not_applied=stored.not_applied,
        )


class EnvelopeRefused(IntegrityError):
    """An envelope failed a check; carries the named reason for output and exit codes."""

    def __init__(self, rejected: EnvelopeRejected, *, quarantined: bool, hint: str | None = None) -> None:
        where = " (kept in quarantine)" if quarantined else ""
        super().__init__(
            f"envelope rejected: {rejected.reason.value}: {rejected.detail}{where}",
            hint=hint
            or (
                "nothing from it was accepted; see `cti-exchange quarantine list`"
                if quarantined
                else "nothing from it was accepted"
            ),
        )
        self.rejected = rejected
