"""Triage: what partners sent, looked at and decided on by analysts. The API behind `triage`.

An analyst lists what arrived (filters, sorting, pages) and opens one object with its
versions, sources, signatures and related objects; the decisions on them are in
triage_decisions.py.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cti_exchange.clock import parse_timestamp, stix_timestamp, time_ago, utc_now
from cti_exchange.errors import UsageError
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store import text_index
from cti_exchange.store.object_queries import (
    Source,
    current_object,
    find_objects,
    objects_with_value,
    same_form,
    sources_of,
    value_sources,
)
from cti_exchange.store.projection import shown_version
from cti_exchange.store.store import Store
from cti_exchange.store.triage_queries import (
    IOC_TYPES,
    SORTS,
    STATUSES,
    PageRequest,
    StoredObject,
    TriageFilter,
    count_matching,
    list_page,
)
from cti_exchange.untrusted_text import escape_controls

if TYPE_CHECKING:  # `triage show` and `--sighted` load the detail queries when they run
    from cti_exchange.store.triage_detail import Decision, ReceivedSighting, RelatedObject, StoredVersion

MAX_PAGE = 1000
_TYPE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,249}$")


def parse_since(text: str, now: datetime) -> str:
    """'24h', '7d', '30m', '2w' before now, or an RFC 3339 timestamp; as a STIX timestamp.
    An empty value is refused: in a script it is an unset variable, and taken for no filter
    it would list everything."""
    example = "e.g. --since 24h or --since 2026-11-23T08:00:00Z"
    if not text.strip():
        raise UsageError(
            "--since is empty (an unset shell variable?)",
            hint=f"give an age or a timestamp, {example}, or leave --since out for no limit",
        )
    try:
        moment = time_ago(text, now)
    except ValueError:
        raise UsageError(
            f"--since: {text!r} is a duration too large: it reaches back before year 1",
            hint=f"give a shorter one, {example}, or leave --since out for no limit",
        ) from None
    try:
        return stix_timestamp(moment if moment is not None else parse_timestamp(text))
    except (ValueError, OverflowError):
        raise UsageError(
            f"--since: {text!r} is neither a duration (24h, 7d) nor a timestamp",
            hint=example,
        ) from None


def build_filter(
    *,
    partners: Iterable[str] = (),
    types: Iterable[str] = (),
    tlps: Iterable[str] = (),
    max_tlp: str | None = None,
    min_confidence: int | None = None,
    since: str | None = None,
    statuses: Iterable[str] = (),
    text: str | None = None,
    expired: bool | None = None,
    include_revoked: bool = False,
    now: datetime | None = None,
) -> TriageFilter:
    """A TriageFilter from what a user typed; UsageError names the option that is wrong."""
    moment = now or utc_now()
    kinds = tuple(dict.fromkeys(t.strip().lower() for t in types))
    bad = [t for t in kinds if not _TYPE_NAME.match(t) or not _known_type(t)]
    if bad:
        # `--type domain` used to list nothing, as if nothing had come in.
        raise UsageError(
            f"--type: {bad[0]!r} is not an object or indicator type",
            hint=f"indicator types: {', '.join(IOC_TYPES)}; or a STIX 2.1 type (indicator, malware, ...)",
        )
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise UsageError(f"--status: {unknown[0]!r} is not one of {', '.join(STATUSES)}")
    if min_confidence is not None and not 0 <= min_confidence <= 100:
        raise UsageError("--min-confidence: give a number from 0 to 100")
    return TriageFilter(
        partners=tuple(dict.fromkeys(partners)),
        types=kinds,
        tlps=tuple(dict.fromkeys(_tlp(t, "--tlp").value for t in tlps)),
        max_tlp=_tlp(max_tlp, "--max-tlp").value if max_tlp else None,
        min_confidence=min_confidence,
        since=parse_since(since, moment) if since is not None else None,
        statuses=tuple(dict.fromkeys(statuses)),
        text=text or None,
        expired=expired,
        include_revoked=include_revoked,
        now=stix_timestamp(moment),
    )


def _known_type(name: str) -> bool:
    """An IOC type, a STIX 2.1 object type, or a custom one (`x-...`)."""
    if name in IOC_TYPES or name.startswith("x-"):
        return True
    from cti_exchange.stix.validate import META_TYPES, SCO_TYPES, SDO_TYPES, SRO_TYPES  # only then

    return name in SDO_TYPES | SRO_TYPES | SCO_TYPES | META_TYPES


def _tlp(text: str, option: str) -> Tlp:
    try:
        return Tlp.parse(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


# -- listing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TriageLine:
    """One line of the list: an object (one per indicator value) and every source of it."""

    object: StoredObject
    sources: list[Source]
    expired: bool

    @property
    def partners(self) -> list[str]:
        return list(dict.fromkeys(s.partner for s in self.sources)) or [self.object.partner]

    @property
    def signers(self) -> list[str]:
        return list(dict.fromkeys(s.signer_kid for s in self.sources if s.signer_kid))

    @property
    def strictest_tlp(self) -> str | None:
        """The strictest marking any source put on this value: what the line is shown as."""
        levels = [Tlp(s.tlp) for s in self.sources if s.tlp] + (
            [Tlp(self.object.tlp)] if self.object.tlp else []
        )
        return Tlp.strictest(levels).value if levels else None

    def to_dict(self) -> dict[str, Any]:
        o = self.object
        return {
            "id": o.object_id,
            "type": o.type,
            "ioc_type": o.ioc_type,
            "value": o.value,
            "name": o.name,
            "tlp": o.tlp,
            "strictest_tlp": self.strictest_tlp,
            "confidence": o.confidence,
            "status": o.status,
            "status_by": o.status_by,
            "status_at": o.status_at,
            "status_note": o.status_note,
            "received_at": o.received_at,
            "valid_from": o.valid_from,
            "valid_until": o.valid_until,
            "expired": self.expired,
            "revoked": bool(o.revoked),
            "partners": self.partners,
            "sources": [s.__dict__ for s in self.sources],
        }


@dataclass(frozen=True)
class TriagePage:
    lines: list[TriageLine]
    next_page: str | None  # pass as `after` for the next page; None: this was the last
    total: int | None  # only when asked for


# The largest offset or rowid a token may carry: SQLite binds 64-bit signed integers.
_MAX_POSITION = 2**63 - 1
SIGHTED_ORDER = "sighted"


def page_order(sort: str, descending: bool | None) -> str:
    """What a page token is for: the sort and its direction, e.g. "value:asc"."""
    if descending is None:
        descending = SORTS[sort][1]
    return f"{sort}:{'desc' if descending else 'asc'}"


def encode_position(position: tuple[str, int] | int | None, order: str) -> str | None:
    """A page token: a keyset position (received order) or an offset, with the order it is
    for, so that it is refused under another order instead of paging the wrong list."""
    if position is None:
        return None
    where: dict[str, object] = (
        {"key": list(position)} if isinstance(position, tuple) else {"offset": position}
    )
    raw = json.dumps({"order": order, **where}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_position(token: str, order: str) -> tuple[str, int] | int:
    """The position in `token`, which must be for `order`; UsageError names --after if not."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        raw = None
    position = _position(raw)
    if position is None:
        raise UsageError(
            f"--after: {token[:40]!r} is not a page token", hint="copy it from the previous page"
        )
    if raw["order"] != order:
        theirs = raw["order"]
        theirs = "--sighted" if theirs == SIGHTED_ORDER else f"--sort {theirs.replace(':', ' --')}"
        raise UsageError(
            f"--after: this token is for another order ({theirs})",
            hint="list with the same --sort and direction as the previous page, or drop --after",
        )
    return position


def _position(raw: object) -> tuple[str, int] | int | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("order"), str) or len(raw) != 2:
        return None
    offset, key = raw.get("offset"), raw.get("key")
    if type(offset) is int and 0 <= offset <= _MAX_POSITION:
        return offset
    if (
        isinstance(key, list)
        and len(key) == 2
        and isinstance(key[0], str)
        and type(key[1]) is int
        and abs(key[1]) <= _MAX_POSITION
    ):
        return key[0], key[1]
    return None


def _line(store: Store, obj: StoredObject, now: str) -> TriageLine:
    expired = obj.valid_until is not None and obj.valid_until < now
    return TriageLine(obj, value_sources(store.db.conn, obj), expired)


def search_index_to_build(store: Store, filters: TriageFilter) -> int:
    """How many stored rows `list_objects` will index for text search before it answers
    (0 when the index already serves it, or the filters search no text)."""
    conn = store.db.conn
    if not text_index.usable(filters.text) or text_index.serving(conn) is not None:
        return 0
    return text_index.behind(conn) if text_index.can_build(conn) else 0


def list_objects(
    store: Store,
    filters: TriageFilter,
    *,
    sort: str = "received",
    descending: bool | None = None,
    limit: int = 50,
    after: str | None = None,
    count: bool = False,
) -> TriagePage:
    if sort not in SORTS:
        raise UsageError(f"--sort: {sort!r} is not one of {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_PAGE:
        raise UsageError(f"--limit: give a number from 1 to {MAX_PAGE}")
    order = page_order(sort, descending)
    position = decode_position(after, order) if after else None
    request = PageRequest(sort=sort, descending=descending, limit=limit)
    if isinstance(position, int):
        request = replace(request, offset=position)
    elif position is not None:
        request = replace(request, after=position)
    conn = store.db.conn
    if text_index.usable(filters.text):
        text_index.prepare_for_search(conn, hooks=store.db)
    conn.execute("BEGIN")  # one snapshot for the page and its sources
    try:
        rows, following = list_page(conn, filters, request)
        lines = [_line(store, row, filters.now) for row in rows]
        total = count_matching(conn, filters) if count else None
    finally:
        conn.execute("COMMIT")
    return TriagePage(lines, encode_position(following, order), total)


def iter_queue(store: Store, filters: TriageFilter, *, page_size: int = 50) -> Iterator[TriageLine]:
    """Every matching line in received order, newest first, fetched a page at a time."""
    after: str | None = None
    while True:
        page = list_objects(store, filters, limit=page_size, after=after)
        yield from page.lines
        if page.next_page is None:
            return
        after = page.next_page


# -- one object --------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectDetail:
    line: TriageLine
    stix: dict[str, Any]
    versions: list[StoredVersion]
    sources: list[Source]  # of this object's current version
    same_value: list[TriageLine]  # other objects (other partners) holding the same value
    related: list[RelatedObject]
    sightings: list[ReceivedSighting]
    decisions: list[Decision]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.line.to_dict(),
            "object": self.stix,
            # The stored key as a STIX timestamp, as `modified` beside it is written.
            "versions": [v.__dict__ | {"version": shown_version(v.version)} for v in self.versions],
            "own_sources": [s.__dict__ for s in self.sources],
            "same_value": [line.to_dict() for line in self.same_value],
            "related": [r.__dict__ for r in self.related],
            "sightings": [s.__dict__ for s in self.sightings],
            "decisions": [d.__dict__ for d in self.decisions],
        }


_NAME_CANDIDATES_SHOWN = 3
_NAME_CANDIDATES_READ = 101


def resolve_reference(store: Store, reference: str, *, names: bool = False) -> str:
    """The one object id a reference (id, unique id prefix, indicator value) names; with
    `names`, also an object's exact name (a malware, a threat actor) when no id or value
    matches and one current object has it.

    A value is looked up as typed, then as `push` would have stored it (`value_spellings`):
    refanged and in canonical form, so a value pasted from a report (`185.178.209[.]193`,
    `BESTARG.COM`) finds the stored `185.178.209.193`, `bestarg.com`; then in any spelling a
    partner stored it in, so the canonical value an export wrote (`evil.example`) finds the
    `Evil.Example.` a partner sent."""
    text = reference.strip()
    conn = store.db.conn
    found = find_objects(conn, text)
    if len(found) > 1 and found[0].startswith(text):
        shown = ", ".join(escape_controls(object_id) for object_id in found[:3])
        more = ", ..." if len(found) > 3 else ""
        raise UsageError(f"{reference!r} names several objects: {shown}{more}", hint="give more of the id")
    if found:
        return found[0]
    spellings = value_spellings(text)
    for spelling in spellings:
        found = objects_with_value(conn, spelling)
        if found:
            return found[0]  # a value several partners sent: as for the value typed
    if (stored := _stored_in_another_spelling(store, text)) is not None:
        return stored
    if names and (named := _resolve_name(store, text)) is not None:
        return named
    searched = f" (searched for {' and '.join(repr(s) for s in spellings)})" if spellings else ""
    raise UsageError(
        f"no object {reference!r} in the store{searched}",
        hint="see `cti-exchange triage list`; give an id, a unique id prefix, a value"
        + (" or a name" if names else ""),
    )


_AS_NUMBER = re.compile(r"AS\s*[0-9]+(?:\.[0-9]+)?", re.IGNORECASE)


def value_spellings(text: str) -> list[str]:
    """The spellings other than `text` under which an indicator value pasted from a report
    may be stored, as `validate` and `push` turn a value into an indicator
    (stix/conversion.py): refanged (`hxxp://evil[.]example/A` -> `http://evil.example/A`),
    then in canonical form (stix/normalise.py: `BESTARG.COM` -> `bestarg.com`, an upper-case
    hash in lower case, `AS64496` -> `64496`). Empty when `text` is already canonical or not a
    value (a name, an id prefix)."""
    return [s for s in _pasted_value(text)[1] if s != text]


# Where the store files a value of these kinds: a range is listed with the addresses.
_STORED_AS = {"ipv4-cidr": "ipv4-addr", "ipv6-cidr": "ipv6-addr"}


def _pasted_value(text: str) -> tuple[str | None, list[str]]:
    """(the IOC type the store files `text` under, if it is a value; its spellings: refanged,
    then canonical, without repeats)."""
    from cti_exchange.stix.ioc_types import IocType, detect_ioc_type
    from cti_exchange.stix.normalise import normalise
    from cti_exchange.stix.refang import refang

    if not text:
        return None, []
    refanged = refang(text)
    kind = detect_ioc_type(refanged)
    if kind is IocType.WINDOWS_REGISTRY_KEY:
        refanged = text  # as push reads it: brackets in a key are part of its name
    elif kind is None and _AS_NUMBER.fullmatch(refanged):
        kind = IocType.AUTONOMOUS_SYSTEM
    spellings = [refanged]
    if kind is None or kind.is_rule or kind is IocType.STIX_PATTERN:
        return None, spellings
    try:
        spellings.append(normalise(kind, refanged))
    except ValueError:
        return None, spellings  # not a valid value of the type it looks like
    return _STORED_AS.get(kind.value, kind.value), list(dict.fromkeys(spellings))


def _stored_in_another_spelling(store: Store, text: str) -> str | None:
    """The first current object holding `text` in a spelling neither typed nor canonical: a
    partner's `Evil.Example.` for `evil.example`, the spelling exports write (the same
    canonical form as decisions and exports use, exporters/value_forms.py)."""
    from cti_exchange.exporters.value_forms import bundled_value_forms

    ioc_type, spellings = _pasted_value(text)
    if ioc_type is None or ioc_type not in IOC_TYPES:
        return None
    forms = bundled_value_forms()
    for holders in same_form(store.db.conn, forms, ioc_type, [spellings[-1]]).values():
        if holders:
            return holders[0][0]
    return None


def _resolve_name(store: Store, name: str) -> str | None:
    """The one current object named exactly `name`; None when none is; a usage error when
    several are."""
    from cti_exchange.store.triage_detail import objects_named

    named = objects_named(store.db.conn, name, _NAME_CANDIDATES_READ) if name else []
    if len(named) == 1:
        return named[0].object_id
    if not named:
        return None
    count = f"{len(named) - 1}+" if len(named) == _NAME_CANDIDATES_READ else str(len(named))
    shown = ", ".join(
        n.object_id + (" (revoked)" if n.revoked else "") for n in named[:_NAME_CANDIDATES_SHOWN]
    )
    more = f" and {len(named) - _NAME_CANDIDATES_SHOWN} more" if len(named) > _NAME_CANDIDATES_SHOWN else ""
    raise UsageError(
        f"{name!r} is the name of {count} objects: {shown}{more}",
        hint=f"give one of their ids, or see `cti-exchange triage list --search {shlex.quote(name)}`",
    )


def show_object(store: Store, reference: str, *, now: datetime | None = None) -> ObjectDetail:
    from cti_exchange.store.triage_detail import (
        decisions_of,
        object_json,
        related_objects,
        sightings_of,
        versions_of,
    )

    conn = store.db.conn
    object_id = resolve_reference(store, reference, names=True)
    moment = stix_timestamp(now or utc_now())
    obj = current_object(conn, object_id)
    assert obj is not None  # resolve_reference only returns current objects
    line = _line(store, obj, moment)
    siblings = [
        _line(store, other, moment)
        for s in line.sources
        if s.object_id != object_id and (other := current_object(conn, s.object_id)) is not None
    ]
    siblings += [
        _line(store, other, moment)
        for other_id in _other_spellings(store, obj)
        if other_id != object_id and (other := current_object(conn, other_id)) is not None
    ]
    return ObjectDetail(
        line=line,
        stix=object_json(conn, object_id) or {},
        versions=versions_of(conn, object_id),
        sources=sources_of(conn, obj.object_id, obj.version),
        same_value=list({s.object.object_id: s for s in siblings}.values()),
        related=related_objects(conn, object_id),
        sightings=sightings_of(conn, object_id),
        decisions=decisions_of(conn, object_id),
    )


def _other_spellings(store: Store, obj: StoredObject) -> list[str]:
    """Ids of the current objects holding the object's indicator value in another spelling
    (`Evil.Example.` for `evil.example`), which a decision on it covers too."""
    from cti_exchange.exporters.value_forms import bundled_value_forms
    from cti_exchange.store.object_queries import same_form

    if obj.ioc_type is None or obj.value is None:
        return []
    found = same_form(store.db.conn, bundled_value_forms(), obj.ioc_type, [obj.value])
    return [object_id for holders in found.values() for object_id, _ in holders]


# What `triage review` names around an object: who is behind it, what it belongs to.
REVIEW_RELATED_TYPES = ("malware", "threat-actor", "intrusion-set", "campaign")


@dataclass(frozen=True)
class ReviewContext:
    """What `triage review` shows besides the line, before asking: raw partner text, for the
    renderer to escape and cut."""

    description: str | None
    related: list[RelatedObject]  # malware, threat actors... one or two relationships away


def review_context(store: Store, line: TriageLine) -> ReviewContext:
    """The object's description and the malware and threat actors around it: its JSON and
    the relationship indexes, a few lookups per object reviewed."""
    from cti_exchange.store.triage_detail import object_json, related_objects

    conn = store.db.conn
    object_id = line.object.object_id
    description = (object_json(conn, object_id) or {}).get("description")
    related = [r for r in related_objects(conn, object_id) if r.type in REVIEW_RELATED_TYPES and r.name]
    return ReviewContext(description if isinstance(description, str) else None, related)


# Filters of the list that say nothing about a sighting (it has no status of its own to triage,
# no value or name of its own, no type but `sighting`, no validity period): refused with
# `--sighted` rather than ignored, so that a narrowed list is never taken for a narrowed one.
_NOT_FOR_SIGHTINGS = (
    ("types", "--type"),
    ("statuses", "--status"),
    ("text", "--search"),
)


def sightings_received(
    store: Store,
    filters: TriageFilter | None = None,
    *,
    limit: int = 50,
    after: str | None = None,
) -> tuple[list[ReceivedSighting], str | None]:
    """`triage list --sighted`: partners' sightings of indicators we shared with them, a page
    at a time (newest first). Of `filters`, --partner (the sighting's sender), --since,
    --tlp, --max-tlp and --min-confidence (the sighting's own marking and confidence) and
    --include-revoked apply; the others are a UsageError naming the option."""
    from cti_exchange.store.triage_detail import sightings_of_shared

    f = filters or TriageFilter()
    for field, option in _NOT_FOR_SIGHTINGS:
        if getattr(f, field):
            raise UsageError(
                f"{option} does not apply to --sighted (it filters by sender, time, TLP and confidence)"
            )
    if f.expired is not None:
        option = "--expired" if f.expired else "--not-expired"
        raise UsageError(f"{option} does not apply to --sighted (a sighting has no valid_until)")
    position = decode_position(after, SIGHTED_ORDER) if after else 0
    assert isinstance(position, int)  # decode_position refuses a keyset token for "sighted"
    rows, following = sightings_of_shared(
        store.db.conn,
        partners=f.partners,
        since=f.since,
        tlps=f.tlps,
        max_tlp=f.max_tlp,
        min_confidence=f.min_confidence,
        include_revoked=f.include_revoked,
        limit=limit,
        offset=position,
    )
    return rows, encode_position(following, SIGHTED_ORDER)
