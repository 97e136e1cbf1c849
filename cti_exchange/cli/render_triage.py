"""How triage lines and objects are shown: a table per page, a detail view per object.

Partner data is untrusted: every value shown goes through `describe_value` (control and
bidirectional characters escaped) and JSON is shown ASCII-escaped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from cti_exchange.cli.output import Output
from cti_exchange.triage import ObjectDetail, ReviewContext, TriageLine
from cti_exchange.untrusted_text import describe_value, escape_controls

if TYPE_CHECKING:  # loaded by `triage show` and `triage review` when they run
    from cti_exchange.store.object_queries import Source
    from cti_exchange.store.triage_detail import RelatedObject
    from cti_exchange.store.triage_queries import StoredObject


def table(
    out: Output,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    first: bool = False,
    optional: Sequence[str] = (),
) -> None:
    """`out.table` with control characters escaped in every cell: besides the values and names
    (already cut by `describe_value`), ids, versions, timestamps, relationship types and key ids
    come from partners too, and a cell must not reach the terminal as an escape sequence.

    Without a terminal the title is a line of its own ("Versions:") after a blank line (none
    before the `first` section), since plain output has no table titles."""
    if title:
        out.heading(title, first=first)
    out.table(
        columns,
        [["" if cell is None else escape_controls(str(cell)) for cell in row] for row in rows],
        title=title,
        optional=optional,
    )


def short_time(timestamp: str | None) -> str:
    return timestamp[:16].replace("T", " ") if timestamp else ""


# An indicator value is shown whole on a terminal, however long: a URL or a hash cut in the
# middle cannot be read out or pasted into `triage accept` (the table keeps words whole, leaving
# columns out first: cli/output.py). Up to this length; beyond it a value is no one's to read out.
_LONGEST_VALUE = 2048


def _label(line: TriageLine, limit: int) -> str:
    o = line.object
    if o.value is not None:
        return describe_value(o.value, max(limit, _LONGEST_VALUE))
    return describe_value(o.name or "", limit)


def _short_ids(object_ids: Iterable[str]) -> dict[str, str]:
    """Each id cut to its first 8 hex digits on a terminal, or longer where two ids shown
    together would read the same (`triage show PREFIX` takes what the list shows)."""
    ids = set(object_ids)
    for digits in (8, 13, 18):  # up to the first, second, third group of the UUID
        cut = {object_id: _cut_id(object_id, digits) for object_id in ids}
        if len(set(cut.values())) == len(ids):
            return cut
    return {object_id: object_id for object_id in ids}


def _cut_id(object_id: str, digits: int) -> str:
    kind, _, rest = object_id.partition("--")
    return f"{kind}--{rest[:digits]}"


def _tlp(value: str | None) -> str:
    return "TLP:" + value.upper() if value else "-"


def _status(line: TriageLine) -> str:
    o = line.object
    flags = [o.status] + (["expired"] if line.expired else []) + (["revoked"] if o.revoked else [])
    return ", ".join(flags)


def render_lines(out: Output, lines: list[TriageLine]) -> None:
    terminal = out.is_terminal
    short = _short_ids(line.object.object_id for line in lines) if terminal else {}
    table(
        out,
        [
            "id",
            "type",
            "value / name",
            "TLP",
            "conf",
            "status",
            "sources",
            "signed by",
            "received",
            "valid until",
        ],
        [
            [
                short.get(line.object.object_id, line.object.object_id),
                line.object.ioc_type or line.object.type,
                _label(line, 60 if terminal else 100_000),
                _tlp(line.strictest_tlp),
                "" if line.object.confidence is None else str(line.object.confidence),
                _status(line),
                " ".join(line.partners),
                " ".join(line.signers),  # whole: after a rotation, two keys share a first part
                short_time(line.object.received_at),
                short_time(line.object.valid_until),
            ]
            for line in lines
        ],
        # What `triage show` gives anyway, left out first on a narrow terminal: the table stays
        # a table, its ids and values whole.
        optional=("valid until", "received", "signed by", "sources", "conf", "type", "status"),
    )


def ascii_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True)


def shortest_time(version: str) -> str:
    """A stored version (2026-01-10T10:00:00.000000Z) without the zeros normalising added:
    2026-01-10T10:00:00Z, 2026-01-10T10:00:00.5Z; another text as it is."""
    head, dot, fraction = version.partition(".")
    if not dot or not fraction.endswith("Z"):
        return version
    digits = fraction[:-1].rstrip("0")
    return f"{head}.{digits}Z" if digits else f"{head}Z"


def _has_validity(o: StoredObject) -> bool:
    """Whether an object carries a validity (indicators do; malware, actors... do not)."""
    return o.valid_from is not None or o.valid_until is not None


def _validity(detail: ObjectDetail) -> list[tuple[str, str]]:
    """The validity row, for objects that carry a validity (indicators); none for the rest."""
    o = detail.line.object
    if not _has_validity(o):
        return []
    return [
        (
            "valid",
            f"{o.valid_from or '?'} to {o.valid_until or 'no end'}"
            + (" (expired)" if detail.line.expired else ""),
        )
    ]


def _value_sources(detail: ObjectDetail) -> list[Source]:
    """Every arrival of the value shown, each with the key that signed its envelope: the
    object's own first, then those of the other partners' objects of the value (in this or
    another spelling), as listed under "Same value from other sources". Once each."""
    found = [
        *detail.sources,
        *detail.line.sources,
        *(s for line in detail.same_value for s in line.sources),
    ]
    unique: dict[tuple[str, str, str], Source] = {}
    for source in found:
        unique.setdefault((source.object_id, source.partner, source.envelope_id), source)
    return list(unique.values())


def render_detail(out: Output, detail: ObjectDetail) -> None:
    from cti_exchange.store.triage_detail import observable_label

    o = detail.line.object
    # A cyber-observable (ipv4-addr, file) has no indicator value: its own value is shown.
    value = o.value if o.value is not None or o.name is not None else observable_label(detail.stix)
    facts = [
        ("id", o.object_id),
        ("type", o.type + (f" ({o.ioc_type})" if o.ioc_type else "")),
        ("value", describe_value(value or "", 500)),
        ("name", describe_value(o.name or "", 500)),
        (
            "TLP",
            _tlp(o.tlp)
            + (
                f" (strictest of all sources: {_tlp(detail.line.strictest_tlp)})"
                if detail.line.strictest_tlp != o.tlp
                else ""
            ),
        ),
        ("confidence", "" if o.confidence is None else str(o.confidence)),
        *_validity(detail),
        (
            "status",
            o.status
            + (f" by {o.status_by} at {o.status_at}" if o.status_by else "")
            + (f": {describe_value(o.status_note, 300)}" if o.status_note else ""),
        ),
        ("revoked", "yes" if o.revoked else "no"),
        ("sources", " ".join(detail.line.partners)),
    ]
    table(out, ["field", "value"], facts, title="Object", first=True)
    sources = _value_sources(detail)
    # Which object each arrival was (a row under "Same value from other sources", or this
    # one): on a terminal as `triage list` cuts ids, the object shown marked; plain, the id.
    shown_ids = (
        {
            object_id: cut + (" (this)" if object_id == o.object_id else "")
            for object_id, cut in _short_ids(s.object_id for s in sources).items()
        }
        if out.is_terminal
        else {s.object_id: s.object_id for s in sources}
    )
    table(
        out,
        ["partner", "envelope", "received", "TLP", "signer key", "signer thumbprint", "object"],
        [
            [
                s.partner,
                s.envelope_id,
                s.received_at,
                _tlp(s.tlp),
                s.signer_kid or "?",
                s.signer_thumbprint or "?",
                shown_ids[s.object_id],
            ]
            for s in sources
        ],
        title="Sources and signatures",
    )
    if detail.same_value:
        table(
            out,
            ["id", "partner", "value", "TLP", "conf", "status", "received"],
            [
                [
                    s.object.object_id,
                    s.object.partner,
                    describe_value(s.object.value or "", 80),
                    _tlp(s.object.tlp),
                    str(s.object.confidence or ""),
                    s.object.status,
                    s.object.received_at,
                ]
                for s in detail.same_value
            ],
            title="Same value from other sources",  # and in other spellings
        )
    table(
        out,
        ["version", "current", "revoked", "partner", "envelope", "received"],
        [
            [
                describe_value(v.modified, 40) if v.modified else shortest_time(v.version),
                "yes" if v.is_current else "no",
                "yes" if v.revoked else "no",
                v.partner,
                v.envelope_id,
                v.received_at,
            ]
            for v in detail.versions
        ],
        title="Versions",
    )
    if detail.related:
        table(
            out,
            ["relationship", "type", "name / value", "id", "via", "said by"],
            [
                [
                    ("-> " if r.direction == "to" else "<- ") + r.relationship_type,
                    r.type or "(not stored)",
                    describe_value(r.name or "", 80),
                    r.object_id,
                    r.via or "",
                    r.partner or "",
                ]
                for r in detail.related
            ],
            title="Related objects",
            optional=("via",),
        )
    if detail.sightings:
        table(
            out,
            ["sighting", "partner", "count", "first seen", "last seen", "received"],
            [
                [
                    s.sighting_id,
                    s.partner,
                    str(s.count or ""),
                    s.first_seen or "",
                    s.last_seen or "",
                    s.received_at,
                ]
                for s in detail.sightings
            ],
            title="Sightings",
        )
    if detail.decisions:
        table(
            out,
            ["decision", "analyst", "at", "note"],
            [
                [d.decision, d.analyst, d.decided_at, describe_value(d.note or "", 200)]
                for d in detail.decisions
            ],
            title="Decisions",
        )
    if not out.is_terminal:
        out.line("")
    out.line("STIX object:")
    out.line(ascii_json(detail.stix))


def _related_names(related: list[RelatedObject], limit: int = 5) -> str:
    names = [f"{r.type} {describe_value(r.name or '', 60)}" for r in related[:limit]]
    more = f" and {len(related) - limit} more" if len(related) > limit else ""
    return "; ".join(names) + more


def render_review_item(out: Output, line: TriageLine, context: ReviewContext, number: int) -> None:
    """One object of `triage review`: what it is and what is known around it, as labelled
    lines, before the keys are asked for. Partner text escaped and cut."""
    o = line.object
    value = o.value if o.value is not None else o.name
    facts = [
        ("type", (o.ioc_type or o.type) + (f" ({o.type})" if o.ioc_type else "")),
        ("value" if o.value is not None else "name", describe_value(value or "", 200)),
        *(
            [("name", describe_value(o.name, 200))]
            if o.value is not None and o.name not in (None, o.value)
            else []
        ),
        ("TLP", _tlp(line.strictest_tlp)),
        ("partner", escape_controls(" ".join(line.partners))),
        ("confidence", "-" if o.confidence is None else str(o.confidence)),
        *(
            [("valid until", (o.valid_until or "no end") + (" (expired)" if line.expired else ""))]
            if _has_validity(o)
            else []
        ),
        *([("revoked", "yes: by its source")] if o.revoked else []),
        (
            "description",
            describe_value(" ".join(context.description.split()), 300) if context.description else "-",
        ),
        *([("related", _related_names(context.related))] if context.related else []),
    ]
    out.line("")
    out.line(f"#{number}  {escape_controls(o.object_id)}", style="bold")
    width = max(len(label) for label, _ in facts)
    for label, text in facts:
        out.line(f"  {label:<{width}}  {escape_controls(text)}")
