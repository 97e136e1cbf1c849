"""How triage lines and objects are shown: a table per page, a detail view per object.

Partner data is untrusted: every value shown goes through `describe_value` (control and
bidirectional characters escaped) and JSON is shown ASCII-escaped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from cti_exchange.cli.output import Output
from cti_exchange.triage import ObjectDetail, TriageLine
from cti_exchange.untrusted_text import describe_value, escape_controls


def table(
    out: Output, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    """`out.table` with control characters escaped in every cell: besides the values and names
    (already cut by `describe_value`), ids, versions, timestamps, relationship types and key ids
    come from partners too, and a cell must not reach the terminal as an escape sequence."""
    out.table(
        columns,
        [["" if cell is None else escape_controls(str(cell)) for cell in row] for row in rows],
        title=title,
    )


def short_time(timestamp: str | None) -> str:
    return timestamp[:16].replace("T", " ") if timestamp else ""


def _label(line: TriageLine, limit: int) -> str:
    o = line.object
    return describe_value(o.value if o.value is not None else (o.name or ""), limit)


def _short_id(object_id: str) -> str:
    kind, _, rest = object_id.partition("--")
    return f"{kind}--{rest[:8]}"


def _tlp(value: str | None) -> str:
    return "TLP:" + value.upper() if value else "-"


def _status(line: TriageLine) -> str:
    o = line.object
    flags = [o.status] + (["expired"] if line.expired else []) + (["revoked"] if o.revoked else [])
    return ", ".join(flags)


def render_lines(out: Output, lines: list[TriageLine]) -> None:
    terminal = out.is_terminal
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
                _short_id(line.object.object_id) if terminal else line.object.object_id,
                line.object.ioc_type or line.object.type,
                _label(line, 60 if terminal else 100_000),
                _tlp(line.strictest_tlp),
                "" if line.object.confidence is None else str(line.object.confidence),
                _status(line),
                " ".join(line.partners),
                " ".join(k[:16] for k in line.signers) if terminal else " ".join(line.signers),
                short_time(line.object.received_at),
                short_time(line.object.valid_until),
            ]
            for line in lines
        ],
    )


def ascii_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True)


def render_detail(out: Output, detail: ObjectDetail) -> None:
    o = detail.line.object
    facts = [
        ("id", o.object_id),
        ("type", o.type + (f" ({o.ioc_type})" if o.ioc_type else "")),
        ("value", describe_value(o.value or "", 500)),
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
        (
            "valid",
            f"{o.valid_from or '?'} to {o.valid_until or 'no end'}"
            + (" (expired)" if detail.line.expired else ""),
        ),
        (
            "status",
            o.status
            + (f" by {o.status_by} at {o.status_at}" if o.status_by else "")
            + (f": {describe_value(o.status_note, 300)}" if o.status_note else ""),
        ),
        ("revoked", "yes" if o.revoked else "no"),
        ("sources", " ".join(detail.line.partners)),
    ]
    table(out, ["field", "value"], facts, title="Object")
    table(
        out,
        ["partner", "envelope", "received", "TLP", "signer key", "signer thumbprint"],
        [
            [
                s.partner,
                s.envelope_id,
                s.received_at,
                _tlp(s.tlp),
                s.signer_kid or "?",
                s.signer_thumbprint or "?",
            ]
            for s in detail.sources
        ],
        title="Sources and signatures",
    )
    if detail.same_value:
        table(
            out,
            ["id", "partner", "TLP", "conf", "status", "received"],
            [
                [
                    s.object.object_id,
                    s.object.partner,
                    _tlp(s.object.tlp),
                    str(s.object.confidence or ""),
                    s.object.status,
                    s.object.received_at,
                ]
                for s in detail.same_value
            ],
            title="Same value from other sources",
        )
    table(
        out,
        ["version", "current", "revoked", "partner", "envelope", "received"],
        [
            [
                v.version,
                "yes" if v.is_current else "",
                "yes" if v.revoked else "",
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
            ["relationship", "type", "name", "id", "via"],
            [
                [
                    ("-> " if r.direction == "to" else "<- ") + r.relationship_type,
                    r.type or "(not stored)",
                    describe_value(r.name or "", 80),
                    r.object_id,
                    r.via or "",
                ]
                for r in detail.related
            ],
            title="Related objects",
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
    out.line("STIX object:")
    out.line(ascii_json(detail.stix))
