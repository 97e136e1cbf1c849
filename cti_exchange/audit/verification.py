"""Checking the audit trail: the hash chain, and every signed head against our key ring.

`check_trail` works on plain data (records, signed heads, a key ring), so `audit verify`,
`audit export`, `doctor` and the tests share one judgement; `verify_audit_trail` reads that
data from the store. What each finding means:

- a record whose content no longer matches its hash, or whose stored details text is not
  exactly the canonical JSON the trail writes (a duplicate key, another escape), was EDITED;
- a record whose successor links to the record before it was INSERTED;
- a gap in the sequence numbers means records were DELETED;
- a signed head beyond the last record means the END of the trail was deleted;
- a signed head whose hash differs from the record it names means the chain was REWRITTEN
  (every hash recomputed) somewhere after the previous good head;
- a head whose signature does not verify with our key ring (a retired key still verifies the
  heads it signed; a key revoked before the head was signed does not) is FORGED;
- against an extract we exported earlier (`anchor_problems`), a record it holds that is gone
  was DELETED, one with another hash REWRITTEN, even with the chain and heads redone.

Records after the last signed head are the unsigned tail: the chain links them, but nothing
signed yet vouches for them, so cutting them off would go unnoticed until the next head.

Some records are always followed by a signed head, so one in the unsigned tail says the heads
were deleted (and the trail possibly rewritten after them), or that a command was interrupted:

- an `audit-export` record that says `head_signed_with_record` was written in one transaction
  with a head over it: without a head covering it, the heads were deleted (MISSING-HEAD);
- `push` and `pull` records (and `audit-export` records written before that), are covered by a
  head the command signs at its end, unless it was killed first or our signing key had
  expired: a WARNING, which stops `audit verify` from signing the head until someone checks
  (`--sign-anyway`), since signing over a rewritten trail would vouch for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from cti_exchange.audit.chain import (
    GENESIS,
    AuditRecord,
    SignedHead,
    head_problem,
    record_hash,
    sign_head,
)
from cti_exchange.clock import utc_now
from cti_exchange.envelope.jose_framing import jws_payload, jws_split
from cti_exchange.envelope.reasons import EnvelopeRejected
from cti_exchange.errors import ConfigError, IntegrityError
from cti_exchange.home.lock import lock_held
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import Keyring, KeyUse
from cti_exchange.store.store import Store, open_store
from cti_exchange.store.store_file import STORE_MARKER


@dataclass(frozen=True)
class AuditProblem:
    """One finding: the first record it concerns, a kind (a stable name for scripts and
    tests) and a sentence for people."""

    seq: int
    # edited | inserted | deleted | broken-link | rewritten | deleted-tail | bad-head |
    # missing-head; a warning: head-expected
    kind: str
    reason: str

    def describe(self) -> str:
        return f"record {self.seq}: {self.reason}"


@dataclass(frozen=True)
class TrailReport:
    records: int
    head_seq: int  # 0 for an empty trail
    head_hash: str
    signed_heads: int
    last_signed_seq: int  # highest seq a verified signed head vouches for, 0 if none
    problems: tuple[AuditProblem, ...]  # sorted by seq: the first is the first bad record
    # Not tampering for sure, but no head may be signed without a look (module docstring).
    warnings: tuple[AuditProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> AuditProblem | None:
        return self.problems[0] if self.problems else None

    @property
    def unsigned_tail(self) -> int:
        """Records after the last verified signed head."""
        return max(0, self.head_seq - self.last_signed_seq)

    @property
    def deleted_tail(self) -> bool:
        return any(p.kind == "deleted-tail" for p in self.problems)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "signed_heads": self.signed_heads,
            "last_signed_seq": self.last_signed_seq,
            "unsigned_tail": self.unsigned_tail,
            "deleted_tail": self.deleted_tail,
            "first_bad": None if self.first_bad is None else _problem_dict(self.first_bad),
            "problems": [_problem_dict(p) for p in self.problems],
            "warnings": [_problem_dict(p) for p in self.warnings],
        }


def _problem_dict(problem: AuditProblem) -> dict[str, object]:
    return {"seq": problem.seq, "kind": problem.kind, "reason": problem.reason}


# -- the judgement, on plain data ---------------------------------------------------------


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first} to {last}"


def first_chain_problem(
    records: list[AuditRecord], *, start_prev: str = GENESIS, start_seq: int = 1
) -> AuditProblem | None:
    """Walks the chain in seq order and explains the first break (None if it holds)."""
    prev, expected = start_prev, start_seq
    seen: dict[str, int] = {start_prev: start_seq - 1}  # hash -> seq, to recognise insertions
    for index, record in enumerate(records):
        if record.seq > expected:
            return AuditProblem(
                expected,
                "deleted",
                f"missing: record(s) {_span(expected, record.seq - 1)} were deleted "
                f"(record {record.seq} follows {expected - 1})",
            )
        if record.seq < expected:
            return AuditProblem(
                record.seq,
                "inserted",
                f"appears again after record {expected - 1}: inserted or reordered",
            )
        hash_matches = record_hash(record.body()) == record.hash
        hash_ok = hash_matches and record.details_as_written()
        if record.prev != prev:
            linked = seen.get(record.prev)
            if linked is not None:
                # It still links to an earlier record: what sits in between was added (a forger
                # renumbers the records after an insertion, which also breaks their hashes).
                first_inserted = linked + 1
                return AuditProblem(
                    first_inserted,
                    "inserted",
                    f"inserted: record {record.seq} links to record {linked}, so record(s) "
                    f"{_span(first_inserted, record.seq - 1)} were added in between",
                )
            if not hash_ok:
                return AuditProblem(
                    record.seq,
                    "edited",
                    "its content no longer matches its hash: edited (or a record before it was "
                    "deleted and the rest renumbered)",
                )
            if index == 0:
                return AuditProblem(record.seq, "broken-link", "does not link to the start of the trail")
            return AuditProblem(
                records[index - 1].seq,
                "broken-link",
                f"record {record.seq} does not link to it: it was replaced (edited and re-hashed)",
            )
        if not hash_ok:
            if hash_matches:  # the parsed details match; their stored text does not
                return AuditProblem(
                    record.seq,
                    "edited",
                    "its stored details are not the text the trail writes (a duplicate key, an "
                    "escape or spacing the writer never produces): edited, so what other readers "
                    "of that text see is not what its hash vouches for",
                )
            return AuditProblem(record.seq, "edited", "its content no longer matches its hash: edited")
        seen[record.hash] = record.seq
        prev, expected = record.hash, expected + 1
    return None


# Records always followed by a signed head (module docstring): the export's record, written in
# one transaction with its head (extract.py), and those signed at the end of push and pull.
HEAD_WITH_RECORD = "head_signed_with_record"
EXPORT_ACTION = "audit-export"
HEAD_AT_COMMAND_END = ("push", "pull", EXPORT_ACTION)


def missing_heads(
    records: list[AuditRecord], covered_to: int
) -> tuple[AuditProblem | None, AuditProblem | None]:
    """The first record after `covered_to` (the last good signed head) written with a head over
    it (a problem), and the first a command signs a head over when it ends (a warning)."""
    problem: AuditProblem | None = None
    expected: list[AuditRecord] = []
    for record in records:
        if record.seq <= covered_to:
            continue
        details = record.details if isinstance(record.details, dict) else {}
        if record.action == EXPORT_ACTION and details.get(HEAD_WITH_RECORD) is True:
            problem = problem or AuditProblem(
                record.seq,
                "missing-head",
                "this audit-export record was written in one transaction with a signed head over "
                "it, and no signed head covers it: the signed heads were deleted (the records "
                "after the last remaining one may have been rewritten)",
            )
        elif record.action in HEAD_AT_COMMAND_END:
            expected.append(record)
    if not expected:
        return problem, None
    first = expected[0]
    more = f" (and {len(expected) - 1} later such record(s))" if len(expected) > 1 else ""
    warning = AuditProblem(
        first.seq,
        "head-expected",
        f"no signed head covers this {first.action} record{more}, though the command that wrote "
        "it signs one when it ends: it was interrupted or our signing key had expired, or the "
        "signed heads were deleted; the head is not signed until you check (--sign-anyway)",
    )
    return problem, warning


def head_payload_problem(head: SignedHead, agency_id: str) -> str | None:
    """What `head_problem` leaves out: the signed payload names our agency and the same
    signing time as the stored row (the time decides whether a revoked key may vouch)."""
    try:
        _, signing_input, _ = jws_split(head.jws.encode())
        payload = json.loads(jws_payload(signing_input))
    except (EnvelopeRejected, ValueError):
        return "its signed payload is unreadable"
    signer = payload.get("agency") if isinstance(payload, dict) else None
    if signer != agency_id:
        return f"it was signed for agency {signer}, not {agency_id}"
    if payload.get("signed_at") != head.signed_at:
        return "its stored signing time differs from the signed one"
    return None


def check_trail(
    records: list[AuditRecord],
    heads: list[SignedHead],
    keyring: Keyring,
    agency_id: str,
    *,
    command_running: bool = False,
) -> TrailReport:
    """The whole trail judged: chain links, then each signed head (signature and position)."""
    problems: list[AuditProblem] = []
    chain = first_chain_problem(records)
    if chain is not None:
        problems.append(chain)
    by_seq = {record.seq: record for record in records}
    last_seq = records[-1].seq if records else 0
    last_good_head = 0
    for head in sorted(heads, key=lambda h: h.seq):
        why = head_problem(head, keyring) or head_payload_problem(head, agency_id)
        if why is not None:
            problems.append(
                AuditProblem(head.seq, "bad-head", f"the head signed over it cannot be trusted: {why}")
            )
            continue
        if head.seq > last_seq:
            problems.append(
                AuditProblem(
                    last_seq + 1,
                    "deleted-tail",
                    f"missing: record(s) {_span(last_seq + 1, head.seq)} were deleted from the end "
                    f"(a head signed at {head.signed_at} covers record {head.seq}; "
                    f"the trail ends at {last_seq})",
                )
            )
            continue
        record = by_seq.get(head.seq)
        if record is None or record.hash != head.hash:
            if chain is not None and last_good_head < chain.seq <= head.seq:
                # The chain already shows where the trail changed (a record inserted, deleted or
                # edited, the rest renumbered): the head no longer matching follows from that,
                # and the records before it that still link are not the first bad ones.
                reason = (
                    f"record {head.seq} no longer matches the head signed at {head.signed_at}: "
                    f"the trail changed from record {chain.seq} on (the {chain.kind} finding)"
                )
                problems.append(AuditProblem(chain.seq, "rewritten", reason))
                continue
            problems.append(
                AuditProblem(
                    last_good_head + 1,
                    "rewritten",
                    f"record(s) {_span(last_good_head + 1, head.seq)} were rewritten: record "
                    f"{head.seq} no longer matches the head signed at {head.signed_at}",
                )
            )
            continue
        last_good_head = head.seq
    missing, warning = missing_heads(records, last_good_head)
    if missing is not None:
        problems.append(missing)
    # In record order; at the same record, the chain's finding is named before a head's.
    problems.sort(key=lambda p: (p.seq, p is not chain, p.kind == "bad-head"))
    head_hash = records[-1].hash if records else GENESIS
    return TrailReport(
        records=len(records),
        head_seq=last_seq,
        head_hash=head_hash,
        signed_heads=len(heads),
        last_signed_seq=min(last_good_head, last_seq),
        problems=tuple(problems),
        # A push, pull or sync under way (the profile lock held) signs its head when it ends:
        # its records without one are not yet a reason to look (`head-expected`).
        warnings=() if warning is None or problems or command_running else (warning,),
    )


def anchor_problems(
    records: list[AuditRecord], anchor: Sequence[AuditRecord], name: str
) -> list[AuditProblem]:
    """The trail against an anchor: the records of an extract we exported earlier and kept
    off the machine (verified with our key ring first). Each must still be in the trail as it
    was, same `seq`, same hash: what catches a forger who rewrote the chain and the heads."""
    by_seq = {record.seq: record for record in records}
    gone = [kept.seq for kept in anchor if kept.seq not in by_seq]
    changed = [kept.seq for kept in anchor if kept.seq in by_seq and by_seq[kept.seq].hash != kept.hash]
    problems = []
    if gone:
        problems.append(
            AuditProblem(
                gone[0],
                "deleted",
                f"missing: {len(gone)} record(s) of extract {name} ({_span(gone[0], gone[-1])}) "
                "are no longer in the trail",
            )
        )
    if changed:
        problems.append(
            AuditProblem(
                changed[0],
                "rewritten",
                f"{len(changed)} record(s) differ from extract {name} ({_span(changed[0], changed[-1])}): "
                "the trail was rewritten since that extract was exported",
            )
        )
    return problems


# -- reading the store --------------------------------------------------------------------


def open_existing_store(home: ProfileHome) -> Store:
    """The store, refusing to create an empty one where the config says it is."""
    path = home.store_path()
    if not path.exists() and not (home.root / STORE_MARKER).exists():  # else open_store refuses
        raise ConfigError(
            f"the store {path} does not exist",
            hint="check [store] path in config.toml, or restore the store from backup",
        )
    return open_store(home)


@contextmanager
def _snapshot(store: Store) -> Iterator[None]:
    # One read transaction: records and heads come from the same state, even while a sync
    # appends (WAL readers see the snapshot taken at their first read).
    store.db.conn.execute("BEGIN")
    try:
        yield
    finally:
        store.db.conn.execute("COMMIT")


def read_trail(store: Store) -> tuple[list[AuditRecord], list[SignedHead]]:
    with _snapshot(store):
        return store.audit.records(), store.audit.signed_heads()


def verify_audit_trail(
    home: ProfileHome,
    store: Store | None = None,
    *,
    anchors: Sequence[tuple[str, Sequence[AuditRecord]]] = (),
) -> TrailReport:
    """Verifies the whole trail of the profile's store against our own key ring, and against
    `anchors` (a name, the records of a verified extract of ours: see `anchor_problems`)."""
    profile = home.load_profile()
    keyring = home.keyring()
    if store is None:
        with open_existing_store(home) as opened:
            records, heads = read_trail(opened)
    else:
        records, heads = read_trail(store)
    report = check_trail(records, heads, keyring, profile.agency_id, command_running=lock_held(home.root))
    found = [problem for name, anchor in anchors for problem in anchor_problems(records, anchor, name)]
    if not found:
        return report
    problems = sorted([*report.problems, *found], key=lambda p: p.seq)  # stable: the trail's first
    return replace(report, problems=tuple(problems), warnings=())


def sign_verified_head(
    home: ProfileHome,
    store: Store,
    report: TrailReport,
    now: datetime | None = None,
    *,
    despite_warnings: bool = False,
) -> SignedHead | None:
    """Signs the head that `report` verified (not whatever was appended since), and only if
    the trail is intact: signing a tampered chain would vouch for the tampering; nor, unless
    `despite_warnings`, while a record that should have a head has none (IntegrityError). None
    when there is nothing new to sign. Needs our unlocked private keys."""
    if not report.ok or report.head_seq == 0 or report.head_seq <= report.last_signed_seq:
        return None
    moment = now or utc_now()
    profile = home.load_profile()
    signing = home.keyring().current(KeyUse.SIG)
    signing.check_usable_for_signature_at(moment)  # an expired key would sign a head that fails
    if report.warnings and not despite_warnings:
        raise IntegrityError(
            f"record {report.warnings[0].seq} should have a signed head over it and has none",
            hint="once you know why (see the warning), run `cti-exchange audit verify --sign-anyway`",
        )
    head = sign_head(
        profile.agency_id,
        report.head_seq,
        report.head_hash,
        home.private_keys()[signing.kid],
        moment,
    )
    store.audit.add_signed_head(head)
    return head
