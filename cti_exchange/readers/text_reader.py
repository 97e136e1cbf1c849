"""Plain-text IOC lists, as pasted from an advisory: one indicator per line.

Line by line:
- blank lines are skipped; `#` lines are comments, and a comment that names an indicator type
  (`# Domain`, `# IP Address`, `# Sample`, `# URL`) types the lines below it, until the next
  such comment (Unit 42's Gamaredon list); an AsciiDoc or Markdown heading does the same
  (`=== Filenames`), and a heading that names no type ends the section;
- list bullets (`-`, `*`, `+`, `•`, `1.`), surrounding backticks or quotes, and the AsciiDoc
  escape `\\https://` are removed; `Label: value` takes the value;
- the first field (up to a tab, else up to a space) is the indicator, refanged; the rest of the
  line is its description (`185.178.209[.]193<TAB>Cobalt Strike C2`), unless the rest is itself
  only indicators (`evil[.]com - 1.2.3[.]4`), which are then read too. A registry key (a line
  starting with a hive, `HKLM\\...`) runs to the tab or the end of the line: key names hold
  spaces (ESET's `...\\services\\Bonjoiur Host Controller\\`);
- a line whose first word is not an indicator is prose and skipped: such lines are counted in
  one warning per file, as are titles ending with a colon (`Domains:`). A single word that is
  not an indicator is rejected;
- table rows (`|...|`, as in AsciiDoc and Markdown) are skipped and counted in a warning: a
  table's columns say what its values are (ESET pages list victims' networks in tables), so
  export the table as CSV to share it. Document markup (`:toc:`, `[options=...]`, `----`) is
  skipped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cti_exchange.readers.interface import Finding, Reader, ReadItem, Rejection
from cti_exchange.readers.lines import LineSource
from cti_exchange.stix.candidate import IndicatorCandidate
from cti_exchange.stix.ioc_types import IocType, detect_ioc_type, is_hash_shaped
from cti_exchange.stix.refang import is_defanged, refang
from cti_exchange.stix.type_hints import parse_type_hint
from cti_exchange.untrusted_text import describe_value

_BULLET = re.compile(r"(?:[-*+\u2022\u2013]|\d{1,3}[.)])\s+")
_HEADING = re.compile(r"(#{1,6}|={1,6})[ \t]*")
_ATTRIBUTE = re.compile(r":[\w-]{1,60}:")
# Lines longer than this are not an indicator with a comment: they are rejected unread, which
# also keeps every regular expression below on short input.
MAX_TEXT_LINE = 16 * 1024
_LABEL = re.compile(r"([A-Za-z][\w ()/-]{0,40}):\s+(\S+)")
_MACRO = re.compile(r"(?:link|xref|image|include|mailto):")
_WRAPPERS = (("`", "`"), ('"', '"'), ("'", "'"), ("<", ">"), ("(", ")"))
_SEPARATORS = frozenset({"-", "\u2013", "\u2014", "|", ",", ";", "and", "/", "=>", "->"})
MAX_SHOWN_LINES = 8


def _unwrap(token: str) -> str:
    token = token.strip().rstrip(",;")
    for _ in range(2):
        for opening, closing in _WRAPPERS:
            if len(token) >= 2 and token[0] == opening and token[-1] == closing:
                token = token[1:-1].strip()
    if "://" in token:
        if token.startswith("\\"):
            token = token[1:]  # AsciiDoc's "do not link" escape: `\https://...`
        token = token.rstrip(".,;:!?")  # the end of the sentence, not of the URL
    return token


def _is_markup(line: str) -> bool:
    """AsciiDoc and Markdown markup: attributes (`:toc:`), block attributes (`[options=...]`),
    delimiters (`----`, `====`, `....`, `++++`, ``` ``` ```), block titles (`.APIHelper.dll`
    names the block below it)."""
    first = line[0]
    if first == ":":
        return _ATTRIBUTE.match(line) is not None
    if first == "[":
        return line[-1] == "]" and "=" in line and "://" not in line
    if first in "-=.+" and len(line) >= 3 and line == first * len(line):
        return first == "-" or len(line) >= 4
    if line.startswith("```"):
        return True
    return first == "." and len(line) > 1 and line[1] not in ". \t"


def _section_type(heading: str) -> str | None:
    """The heading text when it names an indicator type ("IP Address", "Domains"), else None."""
    try:
        parse_type_hint(heading)
    except ValueError:
        return None
    return heading


class TextReader(Reader):
    format_name = "text"

    def read(self, path: Path) -> Iterator[ReadItem]:
        label = str(path)
        source = LineSource(path, self.limits, label)
        section: str | None = None
        prose: list[int] = []
        table_rows: list[int] = []
        for raw_line in source:
            if source.remarks:
                yield from source.drain()
            number = source.line_number
            line = raw_line.strip()
            if not line:
                continue
            if line.startswith("|"):
                table_rows.append(number)
                continue
            if len(line) > MAX_TEXT_LINE:
                yield Rejection(
                    label,
                    f"line longer than {MAX_TEXT_LINE:,} characters: not an indicator list line",
                    line=number,
                    code="line-too-long",
                )
                continue
            heading = _HEADING.match(line)
            if heading is not None and (line[0] == "#" or " " in line):
                title = line[heading.end() :].rstrip("#= \t")
                named = _section_type(title) if title else None
                if named is not None or line[0] == "=":
                    section = named
                continue
            if _is_markup(line):
                continue
            yield from self._line(label, number, line, section, prose)
        yield from source.drain()
        if prose:
            yield _summary(label, prose, "lines without an indicator were skipped", "prose")
        if table_rows:
            yield _summary(
                label,
                table_rows,
                "table rows were not read (a table may list victims, not indicators: "
                "export it as CSV to share it)",
                "table-rows",
            )

    def _line(
        self, label: str, number: int, line: str, section: str | None, prose: list[int]
    ) -> Iterator[ReadItem]:
        while (bullet := _BULLET.match(line)) is not None:
            line = line[bullet.end() :]
        hint = section
        extra: list[str] = []
        labelled = _LABEL.fullmatch(line)
        if labelled is not None:
            first, description = labelled.group(2), labelled.group(1)
            hint = _section_type(description) or section
        else:
            if "\t" in line:
                fields = [f.strip() for f in line.split("\t")]
                first, description = fields[0], " ".join(f for f in fields[1:] if f)
            elif "\\" in line and _kind(line) is IocType.WINDOWS_REGISTRY_KEY:
                first, description = line, ""
            else:
                first, _, description = line.partition(" ")
                description = description.strip()
            extra, only_indicators = self._more_indicators(description)
            if only_indicators:
                description = ""
        if _is_link_markup(first):
            prose.append(number)
            return
        tokens = [first, *extra]
        if _kind(first) is None:
            # Prose: words before an indicator, or a title such as "Domains:" or "IP addresses:".
            if (description or first.endswith(":")) and not is_defanged(first):
                prose.append(number)
                return
            if hint is None:
                yield Rejection(
                    label,
                    "not a recognised indicator",
                    line=number,
                    value=describe_value(first),
                    code="unrecognised",
                )
                return
        for token in tokens:
            yield IndicatorCandidate(
                _unwrap(token),
                line=number,
                type_hint=hint,
                description=description or None,
            )

    @staticmethod
    def _more_indicators(rest: str) -> tuple[list[str], bool]:
        """(indicators in the rest of a line, whether the rest is only indicators).

        All of it is read when it is only indicators other than file names (a file name next
        to a hash is context); otherwise only the defanged tokens, which are indicators by
        the author's own marking."""
        tokens = [t for t in rest.split() if t not in _SEPARATORS]
        if not tokens:
            return [], False
        kinds = [_kind(t) for t in tokens]
        if all(k is not None and k is not IocType.FILE_NAME for k in kinds):
            return tokens, True
        defanged = [
            t
            for t, k in zip(tokens, kinds, strict=True)
            if k is not None and k is not IocType.FILE_NAME and is_defanged(t)
        ]
        return defanged, False


def _kind(token: str) -> IocType | str | None:
    """The indicator type of a token (refanged, unwrapped), "hash" for a hash-shaped one."""
    value = refang(_unwrap(token))
    detected = detect_ioc_type(value)
    if detected is None and is_hash_shaped(value):
        return "hash"
    return detected


def _is_link_markup(token: str) -> bool:
    """AsciiDoc link macros (`link:...[text]`, `https://...[text]`) cite sources."""
    if _MACRO.match(token):
        return True
    refanged = refang(_unwrap(token))
    return "://" in refanged and "[" in refanged.split("://", 1)[1].lstrip("[")


def _summary(label: str, lines: list[int], what: str, code: str) -> Finding:
    shown = ", ".join(str(n) for n in lines[:MAX_SHOWN_LINES])
    more = ", ..." if len(lines) > MAX_SHOWN_LINES else ""
    return Finding(label, f"{len(lines):,} {what}: lines {shown}{more}", code=code)
