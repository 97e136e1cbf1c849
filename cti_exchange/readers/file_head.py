"""The head of a text list or CSV file, and the TLP it states.

The head is the lines before the first value (text list) or the header row (CSV): blank lines,
`#` comments, an Excel `sep=;` line, and a line that is a TLP marking and nothing else
(`TLP:AMBER`, `Classification: TLP:RED`). Our exports start with one
(`# TLP:RED — for the eyes and ears of individual recipients only, ...`, see
exporters/interface.py `Exporter.header`), and analysts write one in many ways: `# TLP:RED`,
`# TLP: AMBER+STRICT`, `# tlp amber strict`, `# Classification: TLP:RED`, `# TLP:WHITE` (CLEAR
in TLP 2.0). The level is read with `Tlp.parse`, as everywhere else.

In a `#` comment of the head, every `TLP:<level>` counts, wherever it stands on the line, except:
- text in double quotes (a value quoted, not a statement);
- the lines of our exports that list values not written (`#   ipv4-addr "10.0.0.1": ...`):
  partner text, which must never be able to mark a file;
- our exports' tally of levels (`# TLP: amber 1, green 1, red 2`): how many values of each, of
  which the first head line states the strictest.
A head stating two different levels is refused (`HeadConflict`): which one applies is for a
person to say. Only the head is read: this costs one short read per file, nothing per row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cti_exchange.errors import InputError
from cti_exchange.readers.interface import Finding, ReadLimits
from cti_exchange.readers.lines import LineSource
from cti_exchange.stix.tlp import Tlp

_LEVEL = r"(amber[\s_+-]*strict|amber|red|green|clear|white)"
# `TLP` or `Traffic Light Protocol` (`Traffic Light Protocol (TLP)`), an optional version
# (`TLP 2.0:`), a separator, a level; not inside a word or a name (`xtlp:red`,
# `tlp-red.example`), nor followed by more of one (`TLP:REDACTED`).
_NAME = r"(?:tlp|traffic[\s_-]*light[\s_-]*protocol(?:\s*\(tlp\))?)"
_MARK = rf"(?<![\w.-]){_NAME}(?:\s*v?[12](?:\.0)?)?[\s:=-]+{_LEVEL}(?![\w+]|[.-]\w)"
# ASCII only: with Unicode case folding, a long s or a dotless i would match `s` or `i`
# (`TLP:wh\u0131te`), and the level then fail to parse.
_FLAGS = re.IGNORECASE | re.ASCII
_MENTION = re.compile(_MARK, _FLAGS)
# A label before the marking: `Classification: TLP:RED`, `Distribution - TLP:GREEN`.
_LABEL = r"(?:[a-z][a-z ]{0,30}[:=-]\s*)?"
# A whole line that is a marking (outside a comment: `TLP:AMBER`), as analysts decorate one:
# comment markers, bullets, brackets and emphasis around it (`// TLP:RED`, `- TLP:RED`,
# `[TLP:RED]`, `**TLP:RED**`), and after it, text set off by a separator (`TLP:RED - do not
# share`, `TLP: RED (internal)`, `TLP:RED // internal`). Not a line where a value may follow
# the level (`TLP:RED evil.example`, `TLP:RED,evil[.]com`: a space or a CSV delimiter).
_OPENING = r"[\s/#;>*+_`~\[(\u2022\u2013\u2014-]*"
_CLOSING = r"[\])*_`~]*\s*[.!]?"
_TRAILER = r"(?:\s*(?:\(|\[|//|:\s|[\u2013\u2014])|\s+[-|]\s)"
_BARE = re.compile(rf"{_OPENING}{_LABEL}{_MARK}{_CLOSING}(?:{_TRAILER}.*)?\s*", _FLAGS)
_QUOTED = re.compile(r'"[^"\n]*"')
# Our exports' head: the list of values not written, and the tally of levels.
_REFUSED_LISTED = re.compile(r"#\s{3}[a-z0-9-]+ \"")
_TALLY = re.compile(
    r"#\s*TLP:\s*(?:(?:clear|green|amber\+strict|amber|red|unmarked)\s+\d[\d,]*(?:,\s*|\s*\Z))+",
    _FLAGS,
)
_SEP_LINE = re.compile(r"\s*sep=.\s*", re.IGNORECASE)


@dataclass(frozen=True)
class StatedTlp:
    """A TLP a file's head states, and the line that states it."""

    tlp: Tlp
    line: int


@dataclass(frozen=True)
class FileHead:
    """What the head of a file says: the TLP it states (None when it states none), and the
    number of the first line after it (the first value or header row)."""

    tlp: StatedTlp | None
    end: int
    # The levels our exports' tally (`# TLP: amber 1, red 2`) lists: a file of several levels,
    # whose first head line states the strictest and whose values carry their own.
    tallied: frozenset[Tlp] = frozenset()


class HeadConflict(InputError):
    """A head that states two different TLPs."""

    def __init__(self, message: str, *, line: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.line = line


def _level(text: str) -> Tlp:
    """A level as `_LEVEL` matched it (`amber strict`, `AMBER+STRICT`, `white`)."""
    return Tlp.parse(re.sub(r"[\s_+-]+", "+", text))


def is_marking_line(stripped: str) -> bool:
    """Whether a line (stripped, not a comment) is a TLP marking and nothing else."""
    return _BARE.fullmatch(stripped) is not None


def is_head_line(stripped: str) -> bool:
    """Whether a line (stripped) can be part of a head: blank, a comment, `sep=`, a marking."""
    return (
        not stripped
        or stripped[0] == "#"
        or _SEP_LINE.fullmatch(stripped) is not None
        or is_marking_line(stripped)
    )


def stated_levels(stripped: str) -> set[Tlp]:
    """The levels a head line (stripped) states: see the module docstring."""
    if stripped[:1] == "#":
        if _REFUSED_LISTED.match(stripped) or _TALLY.fullmatch(stripped):
            return set()
        text = _QUOTED.sub(" ", stripped[1:])
        return {_level(found[1]) for found in _MENTION.finditer(text)}
    found = _BARE.fullmatch(stripped)
    return {_level(found[1])} if found is not None else set()


def may_name_tlp(text: str) -> bool:
    """A quick test before the regular expressions: whether `text` may name a TLP level."""
    lowered = text.lower()
    return "tlp" in lowered or "traffic" in lowered


def named_levels(text: str) -> set[Tlp]:
    """Every level `text` names (`TLP:RED`, `tlp amber`, `Traffic Light Protocol: GREEN`),
    wherever it stands, quoted or not: what a line that is not the file's marking must not
    name (text_reader.py refuses such a file rather than let its values go out weaker)."""
    if not may_name_tlp(text):
        return set()
    return {_level(found[1]) for found in _MENTION.finditer(text)}


def is_export_bookkeeping(stripped: str) -> bool:
    """Our exports' head lines that name levels without stating one: the list of values not
    written (partner text) and the tally of levels."""
    return _REFUSED_LISTED.match(stripped) is not None or _TALLY.fullmatch(stripped) is not None


def tallied_levels(stripped: str) -> frozenset[Tlp]:
    """The levels our exports' tally line (`# TLP: amber 1, green 1, red 2`) lists."""
    if _TALLY.fullmatch(stripped) is None:
        return frozenset()
    found = re.findall(r"(clear|green|amber\+strict|amber|red)\s+\d", stripped, _FLAGS)
    return frozenset(Tlp.parse(level) for level in found)


class HeadStates:
    """The levels a head states, line by line: HeadConflict at a second, different level."""

    def __init__(self) -> None:
        self.stated: StatedTlp | None = None
        self.tallied: frozenset[Tlp] = frozenset()

    def add(self, levels: Iterable[Tlp], number: int) -> None:
        for level in sorted(levels):
            if self.stated is None:
                self.stated = StatedTlp(level, number)
            elif level is not self.stated.tlp:
                stated = self.stated
                where = f"line {stated.line}" if stated.line != number else "the same line"
                raise HeadConflict(
                    f"the file's head states two TLPs, {stated.tlp.label} ({where}) and "
                    f"{level.label} (line {number})",
                    line=number,
                    hint="keep the one that applies to the file's values (a CSV file can mark "
                    "rows differently in a tlp column)",
                )

    def head(self, end: int) -> FileHead:
        return FileHead(self.stated, end, self.tallied)


def read_head(lines: Iterable[str], titles: frozenset[int] = frozenset()) -> FileHead:
    """The head of a file given as its lines (numbered from 1); HeadConflict when it states
    two different TLPs. The lines numbered in `titles` (a CSV file's title lines above its
    header row, which name no TLP: csv_reader.title_lines) are part of the head."""
    states = HeadStates()
    number = 0
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if number in titles:
            continue
        if not is_head_line(stripped):
            return states.head(number)
        if not stripped or not may_name_tlp(stripped):
            continue
        states.tallied |= tallied_levels(stripped)
        states.add(stated_levels(stripped), number)
    return states.head(number + 1)


def floored(cell: str | None, head: FileHead) -> tuple[str | None, Tlp | None]:
    """(the TLP a value carrying `cell` takes, the cell's level when the head raised it).

    The head's TLP is a floor: a value's own TLP (a tlp cell, a rule's `metadata: tlp`) may be
    stricter, never weaker; a weaker one is raised to the head's (docs/INGEST.md). Except in
    our exports' heads with a tally of levels (`# TLP: amber 1, red 2`), whose first line
    states the strictest of several: a level the tally lists stands. A cell that is no TLP is
    left for the conversion to reject (`invalid-tlp`)."""
    stated = head.tlp
    if cell is None or stated is None:
        return cell, None
    try:
        own = Tlp.parse(cell)
    except ValueError:
        return cell, None
    if own >= stated.tlp or own in head.tallied:
        return cell, None
    return stated.tlp.value, own


def scan_head(path: Path, limits: ReadLimits, titles: frozenset[int] = frozenset()) -> FileHead:
    """`read_head` of the file at `path`: only its head is read. InputError when the file
    cannot be read, HeadConflict when its head states two TLPs."""
    source = LineSource(path, limits, str(path))
    lines = iter(source)
    try:
        return read_head(lines, titles)
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()


def floor_finding(label: str, line: int | None, own: Tlp, head: FileHead) -> Finding:
    """The warning for a value whose own TLP the head raised (`floored`)."""
    assert head.tlp is not None
    stated = head.tlp
    return Finding(
        label,
        f"its own TLP, {own.label}, is weaker than the file's head ({stated.tlp.label}, line "
        f"{stated.line}): marked {stated.tlp.label}, as the head is a floor (to share it at "
        f"{own.label}, lower the head, and mark the stricter values in their own TLP)",
        line=line,
        code="head-tlp-floor",
    )
