"""An indicator as an input gives it, before it is checked: the hand-over from readers to core.

Readers (CSV, text, MISP) fill in the text they found; `conversion.py` decides what it is.
Every field except `value` is optional and kept as the input wrote it, so that the one place
that parses it can report exactly what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class IndicatorCandidate:
    """One value to turn into an indicator (or a vulnerability, for a CVE id)."""

    value: str
    # Where it came from, for reports: a line number, or a non-line location such as
    # "event 5be1... attribute 5be2..."; `field` names the column or attribute holding it.
    line: int | None = None
    where: str | None = None
    field: str | None = None
    # The type as the input names it ("IPV4:PORT", "ip-dst", a "# Domain" section), if any.
    type_hint: str | None = None
    tlp: str | None = None
    confidence: str | None = None
    description: str | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    indicator_types: str | None = None
    kill_chain_phases: str | None = None
    reference: str | None = None  # an external reference: a URL or a citation
    incident_id: str | None = None
    # Structured external references a reader built itself (MISP event links).
    external_references: tuple[dict[str, str], ...] = ()
    # The strictest TLP level the input names beside the value, outside its TLP field (a CSV
    # comment cell `TLP:RED do not share`): the value must not go out weaker than that.
    named_tlp: str | None = None
