"""Offline exchange: sealing a bundle to a file and opening an envelope file (e-mail, removable
media, or when TAXII is down). The same channels, sequence numbers, replay protection and
quarantine apply as over TAXII."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.envelope.artifact import is_envelope_artifact, routing_hints
from cti_exchange.envelope.header import MAX_RECIPIENTS
from cti_exchange.envelope.open import OpenedEnvelope, naming_record, open_envelope
from cti_exchange.envelope.readdress import has_usable_entry, readdressing, recipient_kids
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.envelope.seal import SealedEnvelope, seal_bundle
from cti_exchange.errors import InputError, IntegrityError, PolicyError, UsageError
from cti_exchange.exchange.held import (
    Released,
    describe_gap,
    describe_held_gaps,
    retry_held_envelopes,
    too_old_hint,
)
from cti_exchange.exchange.learned_values import decide_with_learned_values
from cti_exchange.exchange.parties import (
    all_keyrings,
    receiver_context,
    recipient_key,
    sender_keys,
)
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import Keyring, KeyUse
from cti_exchange.partnership import get_partner
from cti_exchange.policy.sharing import (
    RULE_UNMARKED,
    delivery_refusal,
    onward_hint,
    refusal_error,
)
from cti_exchange.profile.model import Profile
from cti_exchange.readers.json_input import parse_json
from cti_exchange.stix.tlp import Tlp
from cti_exchange.stix.validate import validate_bundle
from cti_exchange.store.inbound import HELD_REASONS
from cti_exchange.store.objects import NotApplied, StoredObjects
from cti_exchange.store.outbound import EXPORTED, FAILED, POSTED, RECEIVED, SEALED, DeliveryRecord
from cti_exchange.store.store import Store, open_store

# STIX 2.1 section 8: a bundle has these and no other properties.
_BUNDLE_PROPERTIES = frozenset({"type", "id", "objects"})


def refuse_personal_data(home: ProfileHome, path: Path, *, source: str) -> None:
    """`seal` sends a bundle byte for byte, so it cannot withhold values or scrub text as
    `convert` and `push` do (docs/INGEST.md, "Guardrails and personal data"): a bundle in
    which they would find an individual's e-mail address, a phone number or a URL holding a
    password is refused (exit 8), naming the first and how many."""
    from cti_exchange.ingest import ingest_files
    from cti_exchange.ingest_settings import IngestContext, IngestOptions

    context = IngestContext.for_profile(home.load_profile(), utc_now())
    result = ingest_files([path], context, IngestOptions(format="stix", labels={str(path): source}))
    count = result.warnings_by_code.get("personal-data", 0)
    if not count:
        return
    first = next((str(w) for w in result.warnings if w.code == "personal-data"), "")
    first = first.removeprefix(f"{source}, ").removeprefix(f"{source}: ")
    raise PolicyError(
        f"{source}: {count} object(s) or text(s) hold personal data (GDPR, DPDP Act), and a sealed "
        f"file carries the bundle as is" + (f"; first: {first}" if first else ""),
        hint=f"`cti-exchange convert {shlex.quote(source)} -o clean.json` withholds and scrubs it; "
        "seal that, or pass --keep-personal-data to seal it as it is",
    )


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
    observed_by_us: bool = False,
) -> SealedEnvelope:
    """Seals the exact bytes of a bundle file to the named partners (and to ourselves). The
    sharing policy is push's, values learned from partners included (learned_values.py)
    unless `observed_by_us`."""
    names = list(dict.fromkeys(partner_names))
    if len(names) >= MAX_RECIPIENTS:  # the JWE holds one entry each, and one for our own copy
        raise UsageError(
            f"{len(names)} partners named with --to: one sealed file holds at most "
            f"{MAX_RECIPIENTS - 1} (partners refuse an envelope with more)",
            hint="seal the bundle in several files, each for fewer partners",
        )
    bundle = parse_bundle(bundle_bytes, source=source)
    objects = bundle["objects"]
    partners = [get_partner(home, name) for name in names]
    decision = decide_with_learned_values(
        home, objects, partners, allow_red=allow_red, observed_by_us=observed_by_us
    )
    if decision.refusals:
        hint = "a sealed file carries the bundle as is; remove those objects or change the recipients"
        if onward := onward_hint(decision.refusals):
            hint += f"; {onward}"
        if any(r.rule == RULE_UNMARKED for r in decision.refusals):
            # A third party's bundle often carries no TLP: `convert` marks it (and attributes it).
            hint = (
                f"a sealed file carries the bundle as is: mark it first, `cti-exchange convert "
                f"{shlex.quote(source)} --tlp amber -o marked.json` (or the level it deserves), "
                "then seal that"
            )
        raise refusal_error(decision.refusals, outcome="", hint=hint)
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
class ReaddressedFile:
    envelope_id: str
    artifact: dict[str, Any]  # the same signed envelope, wrapped for current keys
    partners: list[str]  # whom the new file is for
    sequences: dict[str, int]  # its position on each of their channels, by partner name
    removed: list[str]  # revoked key ids whose entries are gone
    added: list[str]  # key ids it is now wrapped for as well
    again: bool = False  # re-addressed before: the file written then, written again


def readdress_exported(
    home: ProfileHome,
    envelope_id: str,
    partner_names: list[str] | None = None,
    *,
    now: datetime | None = None,
) -> ReaddressedFile:
    """An envelope we sealed to a file (`seal`) that a partner cannot open because it revoked
    the encryption key the file is wrapped for, and has not acknowledged: the same signed
    envelope (id, sequence, digest) wrapped for its current key (envelope/readdress.py), to
    hand over in place of the first file. The store keeps the new artifact (the sent log notes
    it), so the file can be written again if it is lost. `partner_names`: only these of its
    recipients (each must need it); by default, every one that needs it.

    UsageError (exit 2) for an envelope that is not ours, not exported to the partner,
    acknowledged by it, or not wrapped for a key it revoked; PolicyError (exit 8) if it holds a
    TLP the partner's entry no longer allows."""
    profile = home.load_profile()
    with open_store(home) as store:
        copy = store.outbound.sent_copy(envelope_id)
        if copy is None:
            raise UsageError(
                f"cannot re-address envelope {envelope_id}: it is not one we sealed",
                hint="`cti-exchange sent` lists ours (files have status `exported`); an envelope a "
                "partner sealed is re-addressed by that partner",
            )
        by_partner = {d.partner: d for d in copy.deliveries}
        if partner_names:
            unknown = [name for name in partner_names if name not in by_partner]
            if unknown:
                raise UsageError(
                    f"cannot re-address envelope {envelope_id}: it was not sealed for {unknown[0]}",
                    hint=f"it was sealed for {', '.join(by_partner)}; leave out --to to re-address "
                    "it for whichever of them needs it",
                )
            targets = [by_partner[name] for name in dict.fromkeys(partner_names)]
        else:
            targets = copy.deliveries
        rings = all_keyrings(home)
        kids = recipient_kids(copy.artifact)
        refusals = [(d, _readdress_refusal(envelope_id, d, profile, rings, kids)) for d in targets]
        refused = [error for _, error in refusals if error is not None]
        if refused and (partner_names or len(refused) == len(targets)):
            raise refused[0]
        chosen = [d.partner for d, error in refusals if error is None]
        partners = [get_partner(home, name) for name in chosen]
        if copy.tlp is not None:
            for partner in partners:
                if delivery_refusal(Tlp(copy.tlp), partner) is not None:
                    raise PolicyError(
                        f"cannot re-address envelope {envelope_id}: it holds {Tlp(copy.tlp).label}, "
                        f"which {partner.name}'s entry no longer allows (max_tlp or allow_red "
                        "changed since it was sealed)",
                        hint=f"seal what {partner.name} may receive again (`cti-exchange seal`); "
                        "it then accepts the gap the first file leaves (`quarantine accept-gap`)",
                    )
        hints = routing_hints(copy.artifact)
        sequences = {p.name: hints.sequences[p.agency_id] for p in partners if p.agency_id in hints.sequences}
        if all(has_usable_entry(kids, rings[p.agency_id]) for p in partners):
            # Re-addressed before (`_readdress_refusal` lets it through for that alone): the
            # file written then is lost; the stored artifact is that file, byte for byte.
            return ReaddressedFile(envelope_id, copy.artifact, chosen, sequences, [], [], again=True)
        # Only the chosen partners' entries (and ours) change: another recipient's stays as it
        # was, with nothing recorded for it, until it is re-addressed for in its turn.
        wanted = {p.agency_id for p in partners} | {profile.agency_id}
        readdressed, _ = readdressing(
            copy.artifact,
            {agency: ring for agency, ring in rings.items() if agency in wanted},
            home.private_keys,
        )
        if readdressed is None:  # a target has no usable entry and a current key: not reached
            raise IntegrityError(f"envelope {envelope_id} could not be re-addressed")
        store.outbound.readdress_exported(
            envelope_id,
            chosen,
            readdressed.artifact,
            {"removed": readdressed.removed, "added": readdressed.added},
            stix_timestamp(now or utc_now()),
        )
    return ReaddressedFile(
        envelope_id, readdressed.artifact, chosen, sequences, readdressed.removed, readdressed.added
    )


def exported_again(home: ProfileHome, envelope_id: str) -> ReaddressedFile:
    """An envelope we sealed to a file, as it was last written (`seal --again`): for a file lost
    or overwritten before a partner it is for opened it. The same bytes: id, sequence,
    signature and wrapping; a partner that opened the first file refuses this one as a replay,
    so nothing is accepted twice. UsageError (exit 2) for an envelope that is not ours, goes by
    TAXII, or that every partner it is for acknowledged (a receipt: it opened it)."""
    profile = home.load_profile()
    with open_store(home) as store:
        copy = store.outbound.sent_copy(envelope_id)
    if copy is None:
        raise UsageError(
            f"cannot write envelope {envelope_id} again: it is not one we sealed",
            hint="`cti-exchange sent` lists ours (files have status `exported`)",
        )
    files = [d for d in copy.deliveries if d.status in (EXPORTED, RECEIVED)]
    if not files:
        raise UsageError(
            f"cannot write envelope {envelope_id} again: it goes by TAXII, not as a file",
            hint="`cti-exchange sync` posts what is still in the outbox",
        )
    waiting = [d for d in files if d.status == EXPORTED]
    if not waiting:
        raise UsageError(
            f"cannot write envelope {envelope_id} again: "
            + ", ".join(f"{d.partner} acknowledged it on {d.received_at}" for d in files),
            hint="its partners opened it already; `cti-exchange sent` lists what we sent",
        )
    hints = routing_hints(copy.artifact)
    sequences = {
        d.partner: hints.sequences[entry.agency_id]
        for d in waiting
        if (entry := profile.partners.get(d.partner)) is not None and entry.agency_id in hints.sequences
    }
    return ReaddressedFile(
        envelope_id, copy.artifact, [d.partner for d in waiting], sequences, [], [], again=True
    )


def _readdress_refusal(
    envelope_id: str,
    delivery: DeliveryRecord,
    profile: Profile,
    rings: dict[str, Keyring],
    kids: list[str],
) -> UsageError | None:
    """Why this partner's copy of a sent envelope is not one to re-address to a file, or None."""
    name = delivery.partner
    sent_log = "`cti-exchange sent` lists what we sent and its status"

    def refused(why: str, hint: str = sent_log) -> UsageError:
        return UsageError(f"cannot re-address envelope {envelope_id}: {why}", hint=hint)

    partner = profile.partners.get(name)
    if partner is None:
        return refused(f"{name} is no longer a partner")
    if delivery.status == RECEIVED:
        return refused(f"{name} acknowledged it already (receipt of {delivery.received_at}): it opened it")
    if delivery.status in (SEALED, POSTED, FAILED):
        return refused(
            f"it goes to {name} by TAXII, not as a file ({delivery.status})",
            hint=f"`cti-exchange partners update-keys {name}` re-addresses what it has not read by itself",
        )
    if delivery.status != EXPORTED:
        return refused(f"it was never delivered to {name} ({delivery.status})")
    ring = rings[partner.agency_id]
    if has_usable_entry(kids, ring):
        if delivery.last_error is not None:  # our note (store/outbound.py): re-addressed before
            return None
        theirs = next((kid for kid in kids if ring.find(kid) is not None), "?")
        return refused(
            f"it is wrapped for {name}'s key {theirs}, which is not revoked: {name} opens the file as it is",
            hint=f"if {name} revoked that key since, pin its new key file first "
            f"(`cti-exchange partners update-keys {name} --jwks FILE`); if the file is lost, "
            f"`cti-exchange seal --again {envelope_id} -o FILE` writes it again",
        )
    if ring.current_or_none(KeyUse.ENC) is None:
        return refused(
            f"{name} revoked the key it is wrapped for, and no current key of {name} is pinned",
            hint=f"ask {name} for a fresh `keys export`, then "
            f"`cti-exchange partners update-keys {name} --jwks FILE`",
        )
    return None


@dataclass(frozen=True)
class OpenVerdict:
    opened: OpenedEnvelope
    partner: str | None  # None: our own copy
    new_versions: int
    stored: bool
    not_applied: list[NotApplied] = field(default_factory=list)
    revoked_accepted: list[str] = field(default_factory=list)  # accepted objects it revoked
    withheld_erased: list[str] = field(default_factory=list)  # erased on request: not stored
    # The partner's held envelopes accepted once this one was (opened again, as a pull does:
    # this one may have been the missing one they waited for), or closed as refused for good.
    released: Released = field(default_factory=Released)
    # Quarantine records of envelopes from the same partner still held behind a gap after
    # that, lowest sequence first: another envelope is missing before them.
    still_held: list[int] = field(default_factory=list)


@dataclass
class AlreadyOpened:
    """The envelope is exactly one we accepted before (signature checked): nothing to do."""

    envelope_id: str
    sender: str
    partner: str | None
    accepted_at: str


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
    received: bytes | None = None,
) -> OpenVerdict | AlreadyOpened:
    """`received`: the file's bytes when they are the artifact itself, kept as received if
    it is quarantined."""
    profile = home.load_profile()
    moment = now or utc_now()
    with open_store(home) as store:
        ctx = receiver_context(home, store, moment)
        try:
            opened = open_envelope(artifact, ctx, accept_gap=accept_gap)
        except EnvelopeRejected as rejected:
            partner = profile.partner_by_agency(rejected.sender) if rejected.sender else None
            if (accepted_at := store.inbound.copy_of_accepted(rejected)) is not None:
                # The same file opened again (a script going over a folder): nothing new, and
                # nothing to alert about, as pull treats a copy of an accepted envelope.
                return AlreadyOpened(
                    envelope_id=rejected.envelope_id or "",
                    sender=rejected.sender or "",
                    partner=partner.name if partner else None,
                    accepted_at=accepted_at,
                )
            describe_gap(store, ctx, rejected, artifact, partner.name if partner else None)
            record_id = None
            held_before = None
            if store_result:
                held_before = store.inbound.open_record_holding(artifact, rejected)
                if held_before is not None:
                    # The same file opened again: one record for it, saying why it is refused
                    # now (a held one may be held for another reason by now).
                    if held_before.reason in HELD_REASONS and rejected.reason.value in HELD_REASONS:
                        store.inbound.note_held_again(held_before, rejected)
                    record_id = held_before.id
                else:
                    record_id = store.inbound.quarantine(
                        artifact,
                        rejected,
                        partner=partner.name if partner else None,
                        received_at=stix_timestamp(moment),
                        received=received,
                    )
                if partner is not None and partner.name in store.inbound.newly_held:
                    describe_held_gaps(store, ctx.agency_id, partner.name)  # read out of order
            hint = _refusal_hint(rejected, record_id, partner.name if partner else None)
            if rejected.reason is RejectReason.TOO_OLD and accept_gap and partner is not None:
                # As `quarantine accept-gap` says it: which envelope can take the gap instead.
                again = (
                    f"run `cti-exchange quarantine accept-gap {record_id}`"
                    if record_id is not None
                    else "open it again with --accept-gap"
                )
                hint = too_old_hint(store, ctx, partner, rejected.sender, besides=record_id, again=again)
            raise EnvelopeRefused(
                rejected,
                quarantined=store_result,
                hint=hint,
                record_id=record_id,
                recorded_before=held_before is not None,
            ) from None
        if opened.header.sender == profile.agency_id:
            return OpenVerdict(opened=opened, partner=None, new_versions=0, stored=False)
        partner = profile.partner_by_agency(opened.header.sender)
        assert partner is not None  # the signature check found its pinned keys
        stored = StoredObjects()
        released = Released()
        still_held: list[int] = []
        if store_result:
            stored = store.inbound.accept(
                opened,
                partner=partner.name,
                received_at=stix_timestamp(moment),
                artifact_id=artifact.get("id"),
                partner_identity=partner.identity_id,
            )
            # A partner reached only by files has no pull to open its held envelopes again:
            # the ones that waited for this one go through now, each in its own transaction.
            released = retry_held_envelopes(store, ctx, partner)
            still_held = _held_behind_gaps(store, partner.name, profile.agency_id)
        return OpenVerdict(
            opened=opened,
            partner=partner.name,
            new_versions=stored.new_versions,
            stored=store_result,
            not_applied=stored.not_applied,
            revoked_accepted=stored.revoked_accepted,
            withheld_erased=stored.withheld_erased,
            released=released,
            still_held=still_held,
        )


def _held_behind_gaps(store: Store, partner: str, us: str) -> list[int]:
    """Open `sequence-gap` records of this partner, in channel order (their routing hints
    equal the signed header: a held envelope passed that check)."""
    held = [
        (store.inbound.hinted_sequence(record.id, us), record.id)
        for record in store.inbound.held_records(partner)
        if record.reason == RejectReason.SEQUENCE_GAP.value
    ]
    return [record_id for _, record_id in sorted(held)]


def _refusal_hint(rejected: EnvelopeRejected, record_id: int | None, partner: str | None) -> str | None:
    """What to do next, for the refusals an operator exchanging files meets most."""
    reason = rejected.reason
    kept = record_id is not None
    if reason is RejectReason.SEQUENCE_GAP:
        if not kept:
            return (
                "nothing from it was accepted; open the missing envelopes first, or, if the sender "
                "confirms they are lost, open it with --accept-gap"
            )
        return (
            "nothing from it was accepted; open the missing envelopes first (this one then "
            "follows); if the sender confirms they are lost, "
            f"`cti-exchange quarantine accept-gap {record_id}`"
        )
    if reason is RejectReason.UNKNOWN_KEY and partner is not None:
        return (
            f"nothing from it was accepted; if {partner} rotated its keys, pin its new key file "
            f"(`cti-exchange partners update-keys {partner} --jwks FILE`), then open the file again"
            + (" (a pull also retries what is held)" if kept else "")
        )
    if reason is RejectReason.UNKNOWN_SENDER:
        return (
            "nothing from it was accepted; if the sender is a partner, pin its keys first "
            "(`cti-exchange partners add NAME --jwks FILE --fingerprint ...`), then open the file again"
        )
    if reason is RejectReason.REPLAYED and kept:
        return (
            "nothing from it was accepted; it is not the envelope accepted under that id before "
            "(a copy of that one would be 'already opened'): ask the sender which one it sent, "
            f"then close the record: `cti-exchange quarantine resolve {record_id} --note ...`"
        )
    if reason is RejectReason.ENCRYPTED_TO_REVOKED_KEY and partner is not None:
        return (
            f"nothing from it was accepted; once {partner} has pinned our current keys, a copy it "
            "sends by TAXII is re-addressed by itself; for a file, ask it for the same envelope "
            f"re-addressed (`cti-exchange seal --readdress {rejected.envelope_id or 'ENVELOPE_ID'} "
            "-o FILE`) and open that file: it takes this one's place, with no gap"
        )
    return None


class EnvelopeRefused(IntegrityError):
    """An envelope failed a check; carries the named reason for output and exit codes."""

    def __init__(
        self,
        rejected: EnvelopeRejected,
        *,
        quarantined: bool,
        hint: str | None = None,
        record_id: int | None = None,
        recorded_before: bool = False,
    ) -> None:
        if recorded_before:
            where = f" (already in quarantine as record {record_id}: not recorded twice)"
        else:
            where = " (kept in quarantine)" if quarantined else ""
        super().__init__(
            f"envelope rejected: {rejected.reason.value}: {naming_record(rejected.detail, record_id)}{where}",
            hint=hint
            or (
                "nothing from it was accepted; see `cti-exchange quarantine list`"
                if quarantined
                else "nothing from it was accepted"
            ),
        )
        self.rejected = rejected
        self.record_id = record_id
        self.recorded_before = recorded_before  # the same file was refused before: no new record
