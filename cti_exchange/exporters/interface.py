"""The exporter interface: one small abstract base, one module per output format.

An export streams `ExportItem`s (one per indicator value, already de-duplicated across
partners and filtered) through an exporter into a body file, then puts `header()` in front of
it. The header is written last because it states what only the whole pass knows: the strictest
TLP of what was written, how many values of each type, what was skipped and why. Formats that
carry TLP inside the data (STIX markings, MISP tags) write it in `end()` instead and return no
header.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import ClassVar, TextIO

from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.export_queries import ExportGroup as ExportItem
from cti_exchange.store.export_queries import MispStamps
from cti_exchange.store.triage_queries import TriageFilter
from cti_exchange.untrusted_text import describe_value, escape_controls

__all__ = [
    "MAX_LISTED_REFUSALS",
    "TLP_MEANING",
    "ExportContext",
    "ExportItem",
    "ExportSummary",
    "Exporter",
    "RefusedValue",
    "SidAndRev",
    "SkippedValue",
]

# What each TLP 2.0 level allows the recipient (FIRST TLP 2.0, "TLP:..." definitions).
TLP_MEANING = {
    Tlp.CLEAR: "recipients can spread this to the world, there is no limit on disclosure",
    Tlp.GREEN: "limited disclosure, recipients can spread this within their community",
    Tlp.AMBER: "limited disclosure, recipients can only spread this on a need-to-know basis "
    "within their organization and its clients",
    Tlp.AMBER_STRICT: "limited disclosure, restricted to the recipient's organization only",
    Tlp.RED: "for the eyes and ears of individual recipients only, no further disclosure",
}

# (rule key, digest of the rule's text without its rev) -> its stable signature id and the
# rev of that text (exporters/sids.py)
SidAndRev = Callable[[str, bytes], tuple[int, int]]


def shown(value: str) -> str:
    """A partner's value as a file's head quotes it: one line (control, invisible and line
    separator characters escaped), cut when long."""
    return describe_value(value, 120)


@dataclass(frozen=True)
class ExportContext:
    """What an exporter may need besides the items."""

    generated_at: str  # STIX timestamp
    producer: str  # our agency id
    producer_identity: dict[str, object]  # our STIX identity object
    sid_and_rev: SidAndRev | None = None  # IDS formats
    # (ids, strictest TLP allowed) -> stored JSON texts of those identities no stricter than it
    identities: Callable[[list[str], Tlp | None], list[str]] | None = None
    # (marking-definition ids, strictest TLP allowed) -> stored JSON texts of those the store
    # holds no stricter than it (STIX), as identities
    markings: Callable[[list[str], Tlp | None], list[str]] | None = None
    # What the export selected (selection_of its filter): the same text for the same choice
    selection: str = ""
    # (MISP event UUID, the export's moment in epoch seconds) -> the attribute timestamps
    # kept for that event in the store (MISP)
    misp_stamps: Callable[[str, int], MispStamps] | None = None

    @staticmethod
    def selection_of(filters: TriageFilter) -> str:
        """The filter in a canonical form: every choice, lists sorted and de-duplicated,
        without `now` (the moment of the run, which `expired` compares with)."""
        choices = {
            name: sorted(set(value)) if isinstance(value, tuple) else value
            for name, value in asdict(filters).items()
            if name != "now"
        }
        return json.dumps(choices, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


MAX_LISTED_REFUSALS = 100  # refused values listed per file (all are counted)


@dataclass(frozen=True)
class RefusedValue:
    """A value left out because it is invalid or overly broad (exporters/safety.py)."""

    ioc_type: str
    value: str
    code: str
    reason: str
    broad: bool  # --allow-broad would write it
    tlp: str | None
    object_id: str

    def to_dict(self) -> dict[str, object]:
        return {
            "type": self.ioc_type,
            "value": self.value,
            "code": self.code,
            "reason": self.reason,
            "broad": self.broad,
            "tlp": self.tlp,
            "stix_id": self.object_id,
        }


@dataclass(frozen=True)
class SkippedValue:
    """A value of a type the format writes, left out for a reason of its own (an IDS rule
    longer than the engines load), where every other value of its type is written."""

    ioc_type: str
    value: str
    reason: str  # the same for every value it leaves out: the head counts values by it
    detail: str  # this value's own part of it (`rule of 9,214 bytes`)
    tlp: str | None
    object_id: str


@dataclass
class ExportSummary:
    values: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    by_tlp: Counter[str] = field(default_factory=Counter)  # "unmarked" for no TLP
    skipped: Counter[str] = field(default_factory=Counter)  # IOC type -> values not written
    skip_reasons: dict[str, str] = field(default_factory=dict)
    rules: int = 0  # IDS formats: rules written (a domain gives two in Suricata)
    refused: Counter[str] = field(default_factory=Counter)  # IOC type -> invalid or broad values
    merged: int = 0  # values stored in another spelling of one written (canonical_values)
    # IOC type -> values not written because a spelling of them is false-positive or rejected
    withheld: Counter[str] = field(default_factory=Counter)
    refused_listed: list[RefusedValue] = field(default_factory=list)  # the first ones
    head_lists_refused: bool = True  # False: the format has no head (JSON) to list them in
    # Of the `skipped` values, those left out for a reason of their own (SkippedValue):
    # (IOC type, reason) -> values, and the first ones, listed in the head as refused ones are
    skipped_for: Counter[tuple[str, str]] = field(default_factory=Counter)
    skipped_listed: list[SkippedValue] = field(default_factory=list)
    # IOC type -> values written as withdrawn (Exporter.withdraw: MISP), and their TLPs
    withdrawn: Counter[str] = field(default_factory=Counter)
    withdrawn_tlp: Counter[str] = field(default_factory=Counter)
    # IOC type -> values written without parts no tool they go to sees (a URL's #fragment
    # and user:password@, export.py blocklist_url)
    trimmed: Counter[str] = field(default_factory=Counter)
    # IOC type -> values none of whose objects was marked: written at the profile's default TLP
    unmarked: Counter[str] = field(default_factory=Counter)

    def refuse(self, value: RefusedValue) -> None:
        self.refused[value.ioc_type] += 1
        if len(self.refused_listed) < MAX_LISTED_REFUSALS:
            self.refused_listed.append(value)

    def set_aside(self, value: SkippedValue) -> None:
        """Notes a value `Exporter.write` leaves out (returning False) for a reason of its own;
        the export counts it in `skipped` as every value not written."""
        self.skipped_for[value.ioc_type, value.reason] += 1
        if len(self.skipped_listed) < MAX_LISTED_REFUSALS:
            self.skipped_listed.append(value)

    @property
    def strictest(self) -> Tlp | None:
        """The strictest TLP of what the file holds: the values written, and the refused
        and skipped values its head lists."""
        levels = [Tlp(value) for value in self.by_tlp if value != "unmarked"]
        levels += [Tlp(value) for value in self.withdrawn_tlp]
        if self.head_lists_refused:
            levels += [Tlp(r.tlp) for r in self.refused_listed if r.tlp is not None]
            levels += [Tlp(s.tlp) for s in self.skipped_listed if s.tlp is not None]
        return Tlp.strictest(levels) if levels else None


class Exporter(ABC):
    name: ClassVar[str]
    extension: ClassVar[str]
    comment: ClassVar[str | None] = "#"  # None: the format has no comments (JSON)
    # True: values are written in canonical form (lists that tools match as text); IDS rules
    # put each part where the traffic carries it themselves, STIX keeps the source's object.
    canonical_values: ClassVar[bool] = False
    # True: writing the format keeps records in the store as it goes (IDS signature ids, MISP
    # attribute timestamps), so the export holds the store's write lock while it runs; the
    # others read a snapshot and write only their audit record, after.
    keeps_records: ClassVar[bool] = False

    def __init__(self, context: ExportContext) -> None:
        self.context = context

    def begin(self, out: TextIO) -> None:  # noqa: B027 - optional hook
        """Writes what comes before the first item (JSON openers)."""

    @abstractmethod
    def write(self, item: ExportItem, out: TextIO, summary: ExportSummary) -> bool:
        """Writes one item; False when this format cannot express its type (see skip_reason)."""

    def skip_reason(self, ioc_type: str) -> str:
        return f"{self.name} has no form for {ioc_type}"

    # True: the format can tell its reader to remove a value an earlier export of the same
    # selection wrote (MISP, whose event updates never remove attributes on their own).
    withdraws: ClassVar[bool] = False

    def may_hold(self, item: ExportItem) -> bool:
        """Whether the reader may hold `item`'s value from an earlier export, so that `withdraw`
        should write it: asked first, so that the TLP gate judges only what the file holds."""
        return False

    def withdraw(self, item: ExportItem, out: TextIO, summary: ExportSummary) -> bool:
        """Writes that `item`'s value, written by earlier exports of this selection, is now
        decided against (false-positive, rejected) or revoked by its source; False when the
        format has no such form (a list simply no longer holds the value). Called, when
        `withdraws`, after every `write`, for values of the selection no spelling of which was
        written and that the reader `may_hold`."""
        return False

    def end(self, out: TextIO, summary: ExportSummary) -> None:  # noqa: B027 - optional hook
        """Writes what comes after the last item (JSON closers, TLP markings)."""

    def head_quote(self, text: str) -> str:
        """Partner-derived text (a refused value, a reason quoting it) as the head writes it,
        already on one line; a format whose readers parse comment lines too escapes more."""
        return text

    def header(self, summary: ExportSummary) -> str:
        """Comment lines for the head of the file: the TLP first, then what is in it."""
        if self.comment is None:
            return ""
        c = self.comment
        level = summary.strictest
        tlp = f"{level.label} — {TLP_MEANING[level]}" if level else "no TLP marking"
        lines = [
            f"{c} {tlp}",
            f"{c} cti-exchange {self.name} export by {self.context.producer} at "
            f"{self.context.generated_at}: {summary.values:,} value{'' if summary.values == 1 else 's'}",
        ]
        if summary.by_type:
            lines.append(f"{c} types: " + ", ".join(f"{t} {n:,}" for t, n in sorted(summary.by_type.items())))
        for ioc_type, count in sorted(summary.trimmed.items()):
            lines.append(
                f"{c} written without their #fragment and user:password@ (neither reaches a proxy): "
                f"{count:,} {ioc_type}"
            )
        if len(summary.by_tlp) > 1:
            lines.append(f"{c} TLP: " + ", ".join(f"{t} {n:,}" for t, n in sorted(summary.by_tlp.items())))
        for ioc_type, count in sorted(summary.skipped.items()):
            own = sorted((reason, n) for (kind, reason), n in summary.skipped_for.items() if kind == ioc_type)
            if rest := count - sum(n for _, n in own):
                lines.append(f"{c} not written: {rest:,} {ioc_type}: {summary.skip_reasons[ioc_type]}")
            for reason, n in own:
                lines.append(f"{c} not written: {n:,} {ioc_type}: {reason} (listed below)")
        for ioc_type, count in sorted(summary.withheld.items()):
            lines.append(
                f"{c} not written: {count:,} {ioc_type}: marked false-positive or rejected in a spelling"
            )
        for ioc_type, count in sorted(summary.refused.items()):
            lines.append(f"{c} not written: {count:,} {ioc_type}: invalid or overly broad (listed below)")
        if summary.refused:
            lines.append(f"{c} not written, invalid or overly broad (--allow-broad writes the [broad] ones):")
        for refused in summary.refused_listed:
            note = " [broad]" if refused.broad else ""
            lines.append(
                f'{c}   {refused.ioc_type} "{self.head_quote(shown(refused.value))}": {refused.code}{note}: '
                f"{self.head_quote(escape_controls(refused.reason))}"
            )
        unlisted = sum(summary.refused.values()) - len(summary.refused_listed)
        if unlisted > 0:
            lines.append(f"{c}   ... and {unlisted:,} more")
        if summary.skipped_listed:
            lines.append(f"{c} not written, for a reason of their own (counted above):")
        for skipped in summary.skipped_listed:
            lines.append(
                f'{c}   {skipped.ioc_type} "{self.head_quote(shown(skipped.value))}": {skipped.detail}'
            )
        unlisted = sum(summary.skipped_for.values()) - len(summary.skipped_listed)
        if unlisted > 0:
            lines.append(f"{c}   ... and {unlisted:,} more")
        return "\n".join(lines) + "\n"
