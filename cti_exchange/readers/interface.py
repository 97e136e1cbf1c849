"""The reader interface: one small abstract base, one module per input format.

A reader turns one file into a stream of items:
- `IndicatorCandidate`: a value to become an indicator (CSV, text, MISP);
- `StixInput`: the objects of a STIX bundle or a bare object, to be passed through;
- `Rejection`: something in the file that cannot be used, with where and why;
- `Finding`: something usable but worth a warning.

Readers stream: memory stays bounded by the longest line they accept (`ReadLimits`), not by
the file, except for JSON, which is read whole up to `max_json_bytes`. A reader raises only
`InputError`, for problems with the whole file (binary, too big, not JSON, not its format);
everything else is reported as items.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cti_exchange.stix.candidate import IndicatorCandidate
from cti_exchange.untrusted_text import escape_controls

if TYPE_CHECKING:
    from cti_exchange.readers.file_head import FileHead


@dataclass(frozen=True, slots=True)
class _InputRemark:
    """Where in an input something was found, and what."""

    file: str
    reason: str
    line: int | None = None
    where: str | None = None  # when there are no lines: "objects[3] indicator--...", a MISP uuid
    field: str | None = None
    value: str | None = None  # already cut and escaped (describe_value)
    code: str = "remark"
    # How many lines of input a warning says were not read (table rows, code, prose): the
    # report counts them beside the verdict, so that "all accepted" hides nothing.
    skipped_lines: int | None = None

    def location(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.where:
            parts.append(self.where)
        return ", ".join(parts)

    def __str__(self) -> str:
        field_text = f"{self.field}: " if self.field else ""
        value_text = f" [{self.value}]" if self.value is not None else ""
        # Where, field and reason may quote the input (a MISP uuid, a STIX id): escaped here,
        # once for every reader.
        return escape_controls(f"{self.location()}: {field_text}{self.reason}{value_text}")

    def to_dict(self) -> dict[str, Any]:
        return {
            key: getattr(self, key)
            for key in ("file", "line", "where", "field", "value", "code", "reason", "skipped_lines")
            if getattr(self, key) is not None
        }


@dataclass(frozen=True, slots=True)
class Rejection(_InputRemark):
    """Something in an input that was not used, and why."""

    code: str = "rejected"


@dataclass(frozen=True, slots=True)
class Finding(_InputRemark):
    """Something usable but worth a warning (a likely false positive, a default applied)."""

    code: str = "warning"


@dataclass(slots=True)
class StixInput:
    """The objects of one STIX file, and whether the file is STIX 2.0."""

    objects: list[Any]
    stix20: bool = False


ReadItem = IndicatorCandidate | StixInput | Rejection | Finding


@dataclass(frozen=True)
class ReadLimits:
    """Bounds that keep memory and time in check whatever the input."""

    max_line_bytes: int = 1024 * 1024
    max_json_bytes: int = 64 * 1024 * 1024


@dataclass
class ReadResult:
    """Everything one reader produced for one file, collected (see `Reader.read_all`)."""

    candidates: list[IndicatorCandidate] = field(default_factory=list)
    stix_inputs: list[StixInput] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


class Reader(ABC):
    """Reads one input format. Subclasses set `format_name` and implement `read`."""

    format_name: ClassVar[str]

    def __init__(self, limits: ReadLimits | None = None) -> None:
        self.limits = limits or ReadLimits()

    @abstractmethod
    def read(self, path: Path) -> Iterator[ReadItem]:
        """The items of the file at `path`, in file order. Raises InputError only."""

    def head(self, path: Path) -> FileHead | None:
        """What the head of the file says (file_head.py): the TLP it states for the values
        that carry none, which the caller applies; None for formats that carry TLP otherwise
        (STIX markings, MISP tags). Raises InputError only."""
        return None

    def read_all(self, path: Path) -> ReadResult:
        """`read`, collected into lists: convenient for small files and tests."""
        result = ReadResult()
        for item in self.read(path):
            if isinstance(item, IndicatorCandidate):
                result.candidates.append(item)
            elif isinstance(item, StixInput):
                result.stix_inputs.append(item)
            elif isinstance(item, Finding):
                result.findings.append(item)
            else:
                result.rejections.append(item)
        return result


class RemarkLog:
    """Rejections and warnings of a run: the first `limit` of each kept in full, all counted.

    The bound keeps reports (and memory) small on hostile input with millions of bad rows.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rejections: list[Rejection] = []
        self.warnings: list[Finding] = []
        self.rejection_codes: Counter[str] = Counter()
        self.warning_codes: Counter[str] = Counter()
        self.skipped_lines: Counter[str] = Counter()  # by warning code

    def add(self, remark: Rejection | Finding) -> None:
        if isinstance(remark, Finding):
            self.warning_codes[remark.code] += 1
            if remark.skipped_lines:
                self.skipped_lines[remark.code] += remark.skipped_lines
            if len(self.warnings) < self.limit:
                self.warnings.append(remark)
        else:
            self.rejection_codes[remark.code] += 1
            if len(self.rejections) < self.limit:
                self.rejections.append(remark)

    def absorb(self, other: RemarkLog) -> None:
        """Add another log's remarks after ours, with its exact counts."""
        for remark in self._kept(other):
            if isinstance(remark, Finding):
                if len(self.warnings) < self.limit:
                    self.warnings.append(remark)
            elif len(self.rejections) < self.limit:
                self.rejections.append(remark)
        self.rejection_codes.update(other.rejection_codes)
        self.warning_codes.update(other.warning_codes)
        self.skipped_lines.update(other.skipped_lines)

    @staticmethod
    def _kept(other: RemarkLog) -> Iterable[Rejection | Finding]:
        yield from other.rejections
        yield from other.warnings
