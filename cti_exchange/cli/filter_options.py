"""The filter options `triage list` and `export` share, and the filter they build."""

from __future__ import annotations

from typing import Annotated

import typer

from cti_exchange.store.triage_queries import TriageFilter
from cti_exchange.triage import build_filter

PartnerOpt = Annotated[
    list[str] | None,
    typer.Option("--partner", metavar="PARTNER", help="Sent by this partner (repeatable)."),
]
TypeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--type",
        metavar="TYPE",
        help="IOC type (ipv4-addr, domain-name, url, sha256, ...) or STIX type (malware, ...); repeatable.",
    ),
]
TlpOpt = Annotated[
    list[str] | None,
    typer.Option("--tlp", metavar="TLP", help="Marked with this TLP (repeatable)."),
]
MaxTlpOpt = Annotated[
    str | None,
    typer.Option("--max-tlp", metavar="TLP", help="Marked at most this TLP (unmarked passes)."),
]
MinConfidenceOpt = Annotated[
    int | None,
    typer.Option("--min-confidence", metavar="N", help="Confidence at least this (0-100)."),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="WHEN",
        help="Received since: 24h, 7d, or a timestamp, UTC unless it has an offset (2026-11-23T08:00+05:30).",
    ),
]
StatusOpt = Annotated[
    list[str] | None,
    typer.Option("--status", metavar="STATUS", help="new, accepted, rejected, false-positive (repeatable)."),
]
SearchOpt = Annotated[
    str | None,
    typer.Option("--search", metavar="TEXT", help="Text in the value or the name (ASCII letters: any case)."),
]
ExpiredOpt = Annotated[
    bool | None,
    typer.Option(
        "--expired/--not-expired",
        help="Only expired (valid_until passed) / only still valid.",
        show_default=False,
    ),
]
RevokedOpt = Annotated[bool, typer.Option("--include-revoked", help="Also objects their source revoked.")]


def filters_from_options(
    *,
    partner: list[str] | None,
    type_: list[str] | None,
    tlp: list[str] | None,
    max_tlp: str | None,
    min_confidence: int | None,
    since: str | None,
    status: list[str] | None,
    search: str | None,
    expired: bool | None,
    include_revoked: bool,
) -> TriageFilter:
    return build_filter(
        partners=partner or (),
        types=type_ or (),
        tlps=tlp or (),
        max_tlp=max_tlp,
        min_confidence=min_confidence,
        since=since,
        statuses=status or (),
        text=search,
        expired=expired,
        include_revoked=include_revoked,
    )
