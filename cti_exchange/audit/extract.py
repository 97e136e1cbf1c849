"""Signed audit extracts: the records of a period, as chain-of-custody evidence a third party
can check with any JOSE library and our public key (format: docs/AUDIT.md).

The extract is a compact JWS (RFC 7515 section 7.1, EdDSA over Ed25519, RFC 8037) whose
payload is one JSON document holding:

- the records of the period, whole, with the `prev` hash the first of them links to, so the
  hash chain can be recomputed from the records alone;
- the earliest signed head that covers them and the few records between the period's end and
  that head (`continuation`): the head was signed when those records were written, long before
  anyone asked for an extract, which is what makes the extract evidence rather than a claim;
- our public key ring (JWK Set with key status), the signing key id and its RFC 7638
  thumbprint, to compare with the fingerprint the reader obtained out of band.

The period selects the first and last record whose `at` falls in [since, until]; everything in
between is included, so the chain stays contiguous even if the clock stepped back meanwhile.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cti_exchange.audit.chain import (
    EXTRACT_TYPE,
    GENESIS,
    AuditRecord,
    SignedHead,
    chain_problem,
    head_problem,
    parse_strict_json,
    sign_extract,
    sign_head,
)
from cti_exchange.audit.verification import (
    EXPORT_ACTION,
    HEAD_WITH_RECORD,
    check_trail,
    head_payload_problem,
    open_existing_store,
    read_trail,
    sign_verified_head,
)
from cti_exchange.clock import parse_timestamp, stix_timestamp, utc_now
from cti_exchange.envelope.jose_framing import jws_payload, jws_split, jws_verify
from cti_exchange.envelope.reasons import EnvelopeRejected
from cti_exchange.errors import InputError, IntegrityError, KeyStoreError, UsageError
from cti_exchange.home.analyst import current_analyst
from cti_exchange.home.lock import lock_held
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.home.safe_files import check_output_target, write_output_file
from cti_exchange.keys.model import KeyInfo, Keyring, KeyUse
from cti_exchange.store.audit_log import append_audit, insert_signed_head

EXTRACT_FORMAT = "cti-exchange-audit-extract/1"


@dataclass(frozen=True)
class AuditExtract:
    jws: str
    document: dict[str, Any]

    @property
    def first_seq(self) -> int:
        return int(self.document["first_seq"])

    @property
    def last_seq(self) -> int:
        return int(self.document["last_seq"])

    @property
    def record_count(self) -> int:
        return len(self.document["records"])

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.jws.encode()).hexdigest()


def build_audit_extract(
    home: ProfileHome, *, since: datetime, until: datetime, now: datetime | None = None
) -> AuditExtract:
    """Verifies the whole trail, then signs an extract of [since, until]. Refuses a trail that
    fails verification: signing it would lend our signature to the tampering."""
    moment = now or utc_now()
    profile = home.load_profile()
    keyring = home.keyring()
    signing = keyring.current(KeyUse.SIG)
    if signing.expires <= moment:  # an extract signed by an expired key verifies nowhere
        raise KeyStoreError(
            f"our signing key {signing.kid} expired at {stix_timestamp(signing.expires)}",
            hint="run `cti-exchange keys rotate --use sig`, then export again",
        )
    with open_existing_store(home) as store:
        records, heads = read_trail(store)
        report = check_trail(records, heads, keyring, profile.agency_id, command_running=lock_held(home.root))
        if not report.ok:
            first = report.problems[0]
            raise IntegrityError(
                f"the audit trail fails verification ({first.describe()}); no extract was written",
                hint="run `cti-exchange audit verify` and investigate before exporting evidence",
            )
        if report.warnings:
            # The export signs a head over the whole trail: that must not vouch for a trail
            # whose heads may have been deleted.
            raise IntegrityError(
                f"the audit trail needs a look before we sign evidence ({report.warnings[0].describe()}); "
                "no extract was written",
                hint="run `cti-exchange audit verify`; once you know why that record has no signed "
                "head, `cti-exchange audit verify --sign-anyway`, then export again",
            )
        chosen = [r for r in records if since <= parse_timestamp(r.at) <= until]
        if not chosen:
            raise InputError(
                f"no audit record between {stix_timestamp(since)} and {stix_timestamp(until)}",
                hint="widen --since/--until; `cti-exchange audit show` lists what there is",
            )
        first_seq, last_seq = chosen[0].seq, chosen[-1].seq
        covering = next((h for h in sorted(heads, key=lambda h: h.seq) if h.seq >= last_seq), None)
        if covering is None:
            # The period reaches into the unsigned tail: sign the verified head now.
            covering = sign_verified_head(home, store, report, moment)
            assert covering is not None  # the trail is intact and its tail unsigned
    period = [r for r in records if first_seq <= r.seq <= last_seq]
    continuation = [r for r in records if last_seq < r.seq <= covering.seq]
    document = {
        "format": EXTRACT_FORMAT,
        "agency": keyring.agency.to_dict(),
        "exported_at": stix_timestamp(moment),
        "exported_by": current_analyst(),
        "period": {"since": stix_timestamp(since), "until": stix_timestamp(until)},
        "first_seq": first_seq,
        "last_seq": last_seq,
        "prev": period[0].prev,
        "records": [r.to_dict() for r in period],
        "continuation": [r.to_dict() for r in continuation],
        "signed_head": {
            "seq": covering.seq,
            "hash": covering.hash,
            "signed_at": covering.signed_at,
            "kid": covering.kid,
            "jws": covering.jws,
        },
        "signing_kid": signing.kid,
        "signing_key_thumbprint": signing.thumbprint,
        "keys": keyring.to_document(),
    }
    return AuditExtract(jws=sign_extract(document, home.private_keys()[signing.kid]), document=document)


def export_audit_extract(
    home: ProfileHome,
    output: Path,
    *,
    since: datetime,
    until: datetime,
    now: datetime | None = None,
    overwrite: bool = False,
) -> AuditExtract:
    """Writes the signed extract to `output` and records the export in the trail itself.
    Refuses an existing file unless `overwrite`: an extract already handed over is evidence."""
    if not overwrite:
        refuse_existing_extract(output)
    extract = build_audit_extract(home, since=since, until=until, now=now)
    if not overwrite:
        refuse_existing_extract(output)  # again: one may have been written meanwhile
    write_output_file(output, (extract.jws + "\n").encode(), 0o600)
    details = {
        "since": extract.document["period"]["since"],
        "until": extract.document["period"]["until"],
        "first_seq": extract.first_seq,
        "last_seq": extract.last_seq,
        "records": extract.record_count,
        "sha256": extract.sha256,
        "file": str(output.absolute()),
        HEAD_WITH_RECORD: True,
    }
    _record_export(home, details, now or utc_now())
    return extract


def _record_export(home: ProfileHome, details: dict[str, Any], moment: datetime) -> None:
    """The export's record and a head over it, in one transaction: otherwise the record of
    this export could be cut off the trail's unsigned tail without a trace, and a trail holding
    it with no head over it can only mean the heads were deleted (`missing-head`)."""
    profile = home.load_profile()
    signing_key = home.private_keys()[home.keyring().current(KeyUse.SIG).kid]
    with open_existing_store(home) as store, store.db.transaction() as conn:
        record = append_audit(
            conn, at=stix_timestamp(moment), actor=store.actor, action=EXPORT_ACTION, details=details
        )
        insert_signed_head(conn, sign_head(profile.agency_id, record.seq, record.hash, signing_key, moment))


def refuse_existing_extract(output: Path) -> None:
    """UsageError (exit 2) if `output` exists: checked before anything is signed."""
    check_output_target(output)
    if output.exists() or output.is_symlink():
        raise UsageError(
            f"{output} exists: audit export does not overwrite a file (an extract is evidence)",
            hint="give a new file name, or --force to replace it",
        )


# -- checking an extract (anyone, with the exporting agency's public keys) ----------------


@dataclass(frozen=True)
class VerifiedExtract:
    agency_id: str
    exported_at: str
    signer_kid: str
    records: tuple[AuditRecord, ...]
    signed_head: SignedHead
    document: dict[str, Any]
    continuation: tuple[AuditRecord, ...] = ()  # after the period, up to the signed head


def _record(data: Any) -> AuditRecord:
    if not isinstance(data, dict):
        raise IntegrityError("the extract holds a record that is not a JSON object")
    try:
        return AuditRecord(
            seq=int(data["seq"]),
            at=str(data["at"]),
            actor=str(data["actor"]),
            action=str(data["action"]),
            partner=data["partner"],
            details=dict(data["details"]),
            prev=str(data["prev"]),
            hash=str(data["hash"]),
        )
    except (KeyError, TypeError, ValueError):
        raise IntegrityError("the extract holds a malformed record") from None


def _unsigned_document(jws_text: str) -> tuple[dict[str, Any], bytes, bytes, dict[str, Any]]:
    try:
        header, signing_input, signature = jws_split(jws_text.strip().encode())
        payload = jws_payload(signing_input)
    except (EnvelopeRejected, ValueError, UnicodeDecodeError):
        raise IntegrityError("this is not a signed audit extract (a compact JWS)") from None
    try:
        document = parse_strict_json(payload)
    except (ValueError, RecursionError) as exc:  # NaN and Infinity included: not JSON
        raise IntegrityError(f"the extract's payload is not JSON (RFC 8259): {exc}") from None
    if not isinstance(document, dict) or document.get("format") != EXTRACT_FORMAT:
        raise IntegrityError(f"the signed document is not a {EXTRACT_FORMAT}")
    return header, signing_input, signature, document


def embedded_keyring(jws_text: str) -> Keyring:
    """The key ring the extract carries, NOT yet trusted: compare its signing key thumbprint
    with one obtained out of band before passing it to `verify_extract`."""
    document = _unsigned_document(jws_text)[3]
    return Keyring.from_document(document.get("keys"), source="the extract's key ring")


def _signer_problem(kid: str, key: KeyInfo, document: dict[str, Any]) -> str | None:
    """The signer the document names is the key that signed it: a reader compares
    `signing_key_thumbprint` with the fingerprint obtained out of band (docs/AUDIT.md, step
    1), so a holder of another of our keys (an old one) must not borrow the current one's."""
    named = document.get("signing_kid")
    if named != kid:
        return f"signing_kid names key {named}, but the extract is signed with key {kid}"
    thumbprint = document.get("signing_key_thumbprint")
    if thumbprint != key.thumbprint:
        return f"signing_key_thumbprint {thumbprint} is not the thumbprint of key {kid}, which signed it"
    return None


def _start_problem(prev: str, first: AuditRecord) -> str | None:
    """Where the records start in the trail: `audit verify` walks it from GENESIS at record 1,
    so record 1 links to GENESIS and no other record does."""
    if first.seq < 1:
        return f"record {first.seq}: the trail's records are numbered from 1"
    if first.seq == 1 and prev != GENESIS:
        return f"record 1: prev must be GENESIS (the start of the trail), not {prev}"
    if first.seq > 1 and prev == GENESIS:
        return f"record {first.seq}: prev is GENESIS, which only record 1 links to"
    return None


def _period_problem(document: dict[str, Any], records: list[AuditRecord]) -> str | None:
    """The records fit the period the extract claims: every time readable, the first and last
    record inside [since, until]. Records between them may lie outside it if the clock stepped
    back meanwhile (the export includes them to keep the chain whole, module docstring)."""
    period: Any = document.get("period")
    try:
        since = parse_timestamp(str(period["since"]))
        until = parse_timestamp(str(period["until"]))
    except (KeyError, TypeError, ValueError):
        return "the extract has no readable period (since, until)"
    if until < since:
        return f"its period ends at {stix_timestamp(until)}, before it starts at {stix_timestamp(since)}"
    times: dict[int, datetime] = {}
    for record in records:
        try:
            times[record.seq] = parse_timestamp(record.at)
        except ValueError:
            return f"record {record.seq}: its time {record.at!r} is not a time"
    for record in (records[0], records[-1]):
        if not since <= times[record.seq] <= until:
            return (
                f"record {record.seq}: its time {record.at} lies outside the extract's period "
                f"({stix_timestamp(since)} to {stix_timestamp(until)})"
            )
    return None


def _signed_after_revocation(
    kid: str,
    exported_at: datetime,
    head: SignedHead,
    records: list[AuditRecord],
    keyring: Keyring,
) -> str | None:
    """A signature says when it was made (`exported_at`, the head's `signed_at`), and that is
    only a claim: the thief of a key revoked since can date what it signs back to before the
    revocation. What the extract holds cannot have been written after it was signed, so a key
    must not have been revoked by the latest time the extract shows (a record's `at`, the
    head's `signed_at`): otherwise an extract signed with a revoked key could vouch for records,
    the revocation itself included, written after its revocation. (Only revocation: a record
    dated ahead by a wrong clock must not make an honest extract fail as signed by an expired
    key.)"""
    newest = max(parse_timestamp(record.at) for record in records)  # _period_problem read them
    head_signed = parse_timestamp(head.signed_at)  # head_problem read it
    head_time = max(head_signed, newest)
    for signer, claimed, moment, what in (
        (kid, exported_at, max(exported_at, head_time), "the extract"),
        (head.kid, head_signed, head_time, f"the signed head {head.seq}"),
    ):
        key = keyring.find(signer)
        if key is None or key.revoked_at is None or moment < key.revoked_at:
            continue
        return (
            f"{what} says it was signed at {stix_timestamp(claimed)} with key {signer}, but it "
            f"holds what was written at {stix_timestamp(moment)}, when that key could not sign: "
            f"it was revoked at {stix_timestamp(key.revoked_at)}"
        )
    return None


def verify_extract(jws_text: str, public_keyring: Keyring) -> VerifiedExtract:
    """Checks an extract against the exporting agency's public keys (e.g. the ring a partner
    pinned): the JWS signature and the signer the document names, the hash chain of the
    records from `prev` (from GENESIS at record 1), their times against the period, and the
    signed head that covers them. Raises IntegrityError naming the first thing that fails."""
    header, signing_input, signature, document = _unsigned_document(jws_text)
    if header.get("typ") != EXTRACT_TYPE or header.get("alg") != "EdDSA":
        raise IntegrityError(f"the JWS header must say typ {EXTRACT_TYPE} and alg EdDSA")
    kid = str(header.get("kid"))
    try:
        exported_at = parse_timestamp(str(document["exported_at"]))
    except (KeyError, ValueError):
        raise IntegrityError("the extract has no readable exported_at") from None
    key = public_keyring.signing_key(kid, at=exported_at)  # unknown, revoked, expired: raises
    if not jws_verify(signing_input, signature, key.public_jwk):
        raise IntegrityError(f"the extract's signature does not verify with key {kid}")
    why = _signer_problem(kid, key, document)
    if why is not None:
        raise IntegrityError(why)
    agency = document.get("agency")
    named = agency.get("id") if isinstance(agency, dict) else None
    if named != public_keyring.agency.id:
        raise IntegrityError(f"the extract names agency {named}, the keys are {public_keyring.agency.id}'s")
    records = [_record(r) for r in document.get("records") or []]
    continuation = [_record(r) for r in document.get("continuation") or []]
    if not records:
        raise IntegrityError("the extract holds no record")
    if records[0].seq != document.get("first_seq") or records[-1].seq != document.get("last_seq"):
        raise IntegrityError("first_seq/last_seq do not match the records")
    prev = str(document.get("prev"))
    why = _start_problem(prev, records[0])
    if why is not None:
        raise IntegrityError(why)
    problem = chain_problem(records + continuation, start_prev=prev, start_seq=records[0].seq)
    if problem is not None:
        raise IntegrityError(f"record {problem[0]}: {problem[1]}")
    why = _period_problem(document, records)
    if why is not None:
        raise IntegrityError(why)
    try:
        raw_head = document["signed_head"]
        head = SignedHead(
            seq=int(raw_head["seq"]),
            hash=str(raw_head["hash"]),
            signed_at=str(raw_head["signed_at"]),
            kid=str(raw_head["kid"]),
            jws=str(raw_head["jws"]),
        )
    except (KeyError, TypeError, ValueError):
        raise IntegrityError("the extract has no readable signed_head") from None
    why = head_problem(head, public_keyring) or head_payload_problem(head, public_keyring.agency.id)
    if why is not None:
        raise IntegrityError(why)
    last = (records + continuation)[-1]
    if head.seq != last.seq or head.hash != last.hash:
        raise IntegrityError(
            f"the signed head covers record {head.seq}, but the records end at {last.seq} "
            "with a different hash"
        )
    why = _signed_after_revocation(kid, exported_at, head, records + continuation, public_keyring)
    if why is not None:
        raise IntegrityError(
            why,
            hint="a key cannot vouch for what was written after its revocation: "
            "do not trust this extract; ask the agency for one signed with its current key",
        )
    return VerifiedExtract(
        agency_id=public_keyring.agency.id,
        exported_at=str(document["exported_at"]),
        signer_kid=kid,
        records=tuple(records),
        signed_head=head,
        document=document,
        continuation=tuple(continuation),
    )
