"""Plain-text IOC lists, as pasted from an advisory: one indicator per line.

Line by line:
- blank lines are skipped; `#` lines are comments, and a comment that is a title naming an
  indicator type (`# Domain`, `# IP Address`, `# Sample`, `# URL`) types the lines below it,
  until the next such comment (Unit 42's Gamaredon list); an AsciiDoc or Markdown heading does
  the same (`=== Filenames`), and a heading that names no type ends the section. A comment is
  not a title when it quotes something (`"..."`), and of a `Label: text` comment only the label
  is (`# Note: the domains below are sinkholed` names no type): our exports' heads list values
  not written (`#   ipv4-addr "10.0.0.1": private-ip [broad]: ...`) and name the export
  (`# cti-exchange suricata export by ...`), which type nothing. Their `# types: mutex 2` line
  types the lines below when it names one type (an address type excepted: its values may be
  ranges, read by their shape);
- the file's head, its lines before the first value (title lines and prose included), may
  state a TLP (`# TLP:RED`, or a line that is a marking, decorated or not: `TLP:AMBER`,
  `[TLP:RED]`, `// TLP:RED`, `TLP:RED - do not share`, `Traffic Light Protocol: RED`;
  file_head.py): ingest applies it. Any other line naming a level (`TLP:X`, `TLP X`,
  `Traffic Light Protocol: X`) anywhere in the file (a marking below the first value, a
  level in prose or beside a value) refuses the whole file (`TlpNotMarking`), before any of it
  is read: a level the reader does not take as the file's marking must never let its values
  go out under a weaker one. Rule lines carry their own TLP (`metadata: tlp ...`), and our
  exports' head lines that list values not written or tally levels state none;
- a Snort or Suricata rule on a line (`alert dns ... (msg:...; sid:1;)`, as a `.rules` file
  holds them) is one rule indicator, the whole line, continued on the next lines when it ends
  with `\\` (as the engines read it); its own TLP is the `tlp <level>` of its `metadata`, as
  our rule exports write it;
- list bullets (`-`, `*`, `+`, `•`, `1.`), surrounding backticks or quotes, and the AsciiDoc
  escape `\\https://` are removed; `Label: value` takes the value;
- the first field (up to a tab, else up to a space) is the indicator, refanged; the rest of the
  line is its description (`185.178.209[.]193<TAB>Cobalt Strike C2`), unless the rest is itself
  only indicators (`evil[.]com - 1.2.3[.]4`), which are then read too. A registry key (a line
  starting with a hive, `HKLM\\...`) runs to the tab or the end of the line: key names hold
  spaces (ESET's `...\\services\\Bonjoiur Host Controller\\`); in a section of e-mail subjects
  (`# E-mail subjects`) the whole line up to a tab is one subject;
- defanged tokens are indicators wherever they are on a line: the author marked them. On a
  line whose first word is not an indicator (`Jan 21, 2014 | hxxp://...`, `Seen on
  evil[.]com`) they are read with the whole line as their description;
- a line whose first word is not an indicator and that holds nothing defanged is prose and
  skipped: such lines are counted in one warning per file, as are titles ending with a colon
  (`Domains:`). A single word that is not an indicator is rejected;
- a bare (not defanged) name is a domain only when its last label is a top-level domain (the
  IANA list in `cti_exchange/data/tlds-alpha-by-domain.txt`, the special-use names of RFC 2606
  and 6761, internal names the guardrails flag, `.onion`, `.i2p`, `.bit`, `.alt`): `b.src` and
  `b.style.display`, from code, are not; nor is `this._hrefs` a file name;
- source code blocks (AsciiDoc `[source,...]` blocks, Markdown fences naming a language such
  as ```` ```javascript ````) are code, not indicator lists: they are not read, and their lines
  are counted in a warning;
- tables (AsciiDoc `|===` blocks, Markdown `| a | b |` rows) are read by their title and
  header (text_tables.py): a table of victims or targets never, a table with an indicator
  column as CSV, any other for its defanged values; rows not read are counted in warnings.
  Document markup (`:toc:`, `[options=...]`, `----`) is skipped silently.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from functools import cache
from importlib import resources
from pathlib import Path

import idna

from cti_exchange.readers.file_head import (
    FileHead,
    HeadConflict,
    HeadStates,
    floor_finding,
    floored,
    is_export_bookkeeping,
    may_name_tlp,
    named_levels,
    stated_levels,
    tallied_levels,
)
from cti_exchange.readers.interface import Finding, Reader, ReadItem, Rejection
from cti_exchange.readers.lines import LineSource
from cti_exchange.readers.text_tables import (
    TableSkip,
    TextTable,
    is_asciidoc_delimiter,
    is_markdown_separator,
)
from cti_exchange.stix.candidate import IndicatorCandidate
from cti_exchange.stix.guardrails import DOCUMENTATION_SUFFIXES, INTERNAL_SUFFIXES
from cti_exchange.stix.ioc_types import IocType, detect_ioc_type, detect_rule_type, is_hash_shaped
from cti_exchange.stix.refang import is_defanged, refang
from cti_exchange.stix.tlp import Tlp
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
_QUOTES = frozenset("`\"'")
_SEPARATORS = frozenset({"-", "\u2013", "\u2014", "|", ",", ";", "and", "/", "=>", "->"})
# Runs of consecutive line numbers named in a summary warning (`lines 8-12, 21, ...`); the
# lines after them are counted (`and 225 more`).
MAX_SHOWN_RUNS = 8
# AsciiDoc source blocks: `[source]`, `[source,javascript]`, `[source%linenums, js]`, and the
# shorthand `[,ruby]`; the listing (`----`) or literal (`....`) block below holds code.
_SOURCE_ATTRIBUTE = re.compile(r"\[(?:source\b|,)[^\]]*\]", re.IGNORECASE)
_CODE_DELIMITER = re.compile(r"-{4,}|\.{4,}|```.*")
# Markdown fences whose info string names no programming language: their lines are read.
_PLAIN_FENCES = frozenset({"", "text", "txt", "plain", "plaintext", "none", "ioc", "iocs", "csv", "tsv"})
# Types whose value is, or starts with, a host name.
_NAMED_HOSTS = frozenset({IocType.DOMAIN, IocType.DOMAIN_PORT, IocType.URL})
# Top-level names that are not in the IANA root zone but do name hosts in indicator lists:
# Tor (RFC 7686), I2P, Namecoin, RFC 9476's `.alt`; and the documentation and internal names
# the guardrails know (`.test`, `.example`, `.local`, `.corp`: warned about, not dropped).
_SPECIAL_USE_TLDS = frozenset(
    {"onion", "i2p", "bit", "alt"}
    | {s for s in (*DOCUMENTATION_SUFFIXES, *INTERNAL_SUFFIXES) if "." not in s}
)
# `this._hrefs`, `self._cache`: a member access in code, not a file's extension.
_MEMBER_ACCESS = re.compile(r"\._\w*\Z")
# Snort and Suricata rule actions: a line starting with one may be a rule (detect_rule_type).
_RULE_ACTIONS = frozenset("alert drop reject pass log sdrop rejectsrc rejectdst rejectboth".split())
_IDS_RULES = frozenset({IocType.SNORT, IocType.SURICATA})
_SNORT, _SURICATA = IocType.SNORT, IocType.SURICATA
# One option of a rule, `keyword;` or `keyword:value;`, the value's quoted strings and `\;`
# escapes read as the engines read them (a `msg:"...; metadata: tlp clear"` is no metadata).
_RULE_OPTION = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*(?::((?:"(?:[^"\\]|\\.)*"|[^;"\\]|\\.)*))?;')
# Our exports' `# types: domain-name 2, url 1` head line (exporters/interface.py), and the one
# naming the export (`# cti-exchange suricata export by cert-in at ...`: no section of rules).
_TYPES_TALLY = re.compile(r"types: ([a-z0-9-]+) \d[\d,]*((?:, [a-z0-9-]+ \d[\d,]*)*)")
_EXPORT_LINE = re.compile(r"cti-exchange [a-z0-9-]+ export by ")
# Store types whose values include ranges (`ipv4-addr` holds 10.0.0.0/8 too): no section.
_TALLIED_WITH_RANGES = frozenset({"ipv4-addr", "ipv6-addr"})


class TlpNotMarking(HeadConflict):
    """A line naming a TLP level that is not the file's marking: the file is refused."""


def _not_marking(number: int, levels: set[Tlp], first_value: int | None) -> TlpNotMarking:
    named = " and ".join(level.label for level in sorted(levels))
    if first_value is not None and number > first_value:
        what = f"{named} below the first value (line {first_value}) marks nothing"
    else:
        what = f"this line names {named} but is not a marking (a line of its own before the first value)"
    return TlpNotMarking(
        f"{what}: the file is not read, so that its values cannot go out under a weaker TLP",
        line=number,
        hint="put the marking on a line of its own before the first value (such as "
        f"'{max(levels).label}', which marks every value without a TLP of its own) and remove "
        "or reword this line, or use a CSV file with a tlp column to mark values differently",
    )


def _unwrap(token: str) -> str:
    token = token.strip().rstrip(",;")
    for _ in range(2):
        for opening, closing in _WRAPPERS:
            if len(token) >= 2 and token[0] == opening and token[-1] == closing:
                token = token[1:-1].strip()
    # A quote opened before the value and closed after more words (`"evil[.]com, see below"`)
    # or the other way round: no indicator holds a quote mark.
    if token[:1] in _QUOTES and token[0] not in token[1:]:
        token = token[1:]
    if token[-1:] in _QUOTES and token[-1] not in token[:-1]:
        token = token[:-1]
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


def _comment_section(title: str) -> str | None:
    """The type a `#` comment's text names when the comment is a section title, else None
    (see the module docstring): not a comment quoting something, and only the label of a
    `Label: text` comment; our exports' `types:` line when it names one type."""
    if not title or '"' in title or _EXPORT_LINE.match(title):
        return None
    tally = _TYPES_TALLY.fullmatch(title)
    if tally is not None:
        if tally[2] or tally[1] in _TALLIED_WITH_RANGES:
            return None
        return _section_type(tally[1])
    label, separator, rest = title.partition(": ")
    if separator and rest.strip():
        title = label
    return _section_type(title)


class TextReader(Reader):
    format_name = "text"

    _scanned: tuple[Path, FileHead, frozenset[int]] | None = None

    def head(self, path: Path) -> FileHead:
        """The head: the lines before the first value (which only the reading itself finds,
        so it reads up to there), and the TLP they state. Raises TlpNotMarking when a line
        anywhere in the file names a TLP level that is not the file's marking (after the first
        value, one quick test per line), HeadConflict when the head states two."""
        if self._scanned is not None and self._scanned[0] == path:
            return self._scanned[1]
        states = HeadStates()
        markings: set[int] = set()
        first_value: int | None = None
        items = self._items(path, states, markings)
        try:
            for item in items:
                if isinstance(item, IndicatorCandidate):
                    first_value = item.line
                    break
        finally:
            items.close()
        end = first_value if first_value is not None else self._last_line + 1
        if first_value is not None:
            self._check_below(path, first_value)
        head = states.head(end)
        self._scanned = (path, head, frozenset(markings))
        return head

    def _check_below(self, path: Path, first_value: int) -> None:
        """TlpNotMarking for the first line from `first_value` on that names a TLP level,
        other than a rule's (a rule holds its own, `metadata: tlp amber`)."""
        source = LineSource(path, self.limits, str(path))
        lines = iter(source)
        in_rule = False
        try:
            for raw in lines:
                number = source.line_number
                if number < first_value:
                    continue
                line = raw.strip()
                continued, in_rule = in_rule, False
                if line.endswith("\\") and (continued or line.split(None, 1)[0] in _RULE_ACTIONS):
                    in_rule = True
                if continued or not may_name_tlp(line):
                    continue
                levels = named_levels(line)
                if levels and detect_rule_type(line) not in _IDS_RULES:
                    raise _not_marking(number, levels, first_value)
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()

    def read(self, path: Path) -> Iterator[ReadItem]:
        head = self.head(path)
        label = str(path)
        for item in self._items(path, HeadStates(), set()):
            if isinstance(item, IndicatorCandidate) and item.tlp is not None:
                tlp, raised = floored(item.tlp, head)
                if raised is not None:
                    item.tlp = tlp
                    yield floor_finding(label, item.line, raised, head)
            yield item

    _last_line = 0

    def _items(self, path: Path, states: HeadStates, markings: set[int]) -> Generator[ReadItem, None, None]:
        """The reading: `states` and `markings` collect the head's markings (and their lines)
        up to the first value; a line naming a level otherwise raises TlpNotMarking."""
        label = str(path)
        skipped = self._scanned[2] if self._scanned is not None and self._scanned[0] == path else frozenset()
        first_value: int | None = None
        source = LineSource(path, self.limits, label)
        lines = self._lines = iter(source)
        section: str | None = None
        prose = _LineTally()
        table_rows = {reason: _LineTally() for reason in TableSkip}
        table: TextTable | None = None
        heading_title = ""
        block_title: str | None = None  # an AsciiDoc `.Title` line: the next block's title
        code = _LineTally()
        code_block = _CodeBlock()
        for raw_line in lines:
            if source.remarks:
                yield from source.drain()
            number = self._last_line = source.line_number
            line = raw_line.strip()
            if number in skipped:
                continue  # the head's marking
            if may_name_tlp(line) and first_value is None:
                stated = stated_levels(line)
                if is_export_bookkeeping(line):
                    states.tallied |= tallied_levels(line)
                elif stated:
                    states.add(stated, number)
                    markings.add(number)
                    if line[0] != "#":
                        continue  # a marking line, decorated or not; a comment may title a section
                else:
                    levels = named_levels(line)
                    if levels and detect_rule_type(line) not in _IDS_RULES:
                        raise _not_marking(number, levels, None)
            if code_block.takes(line):
                code.add(number)
                continue
            if table is not None and not table.asciidoc and not line.startswith("|"):
                table = None  # a Markdown table ends at its first line that is not a row
            if not line:
                continue
            if len(line) > MAX_TEXT_LINE:
                yield Rejection(
                    label,
                    f"line longer than {MAX_TEXT_LINE:,} characters: not an indicator list line",
                    line=number,
                    code="line-too-long",
                )
                continue
            if is_asciidoc_delimiter(line):
                opened = table is None or not table.asciidoc
                table = TextTable(f"{heading_title} {block_title or ''}", asciidoc=True) if opened else None
                block_title = None
                continue
            if line.startswith("|") or (table is not None and table.asciidoc):
                if table is None:
                    table = TextTable(heading_title, asciidoc=False)
                    block_title = None
                if not line.startswith("|"):
                    table_rows[TableSkip.MISALIGNED].add(number)  # a cell continued on this line
                    continue
                if table.rows == 1 and not table.asciidoc and is_markdown_separator(line):
                    continue
                for found in table.row(line, number):
                    if isinstance(found, TableSkip):
                        table_rows[found].add(number)
                        continue
                    if first_value is None:
                        first_value = number
                    yield found
                continue
            heading = _HEADING.match(line)
            if heading is not None and (line[0] == "#" or " " in line):
                title = line[heading.end() :].rstrip("#= \t")
                heading_title, block_title = title, None
                if line[0] == "=":
                    section = _section_type(title) if title else None
                else:
                    section = _comment_section(title) or section
                continue
            if _is_markup(line):
                if line[0] == ".":
                    block_title = line[1:]
                continue
            block_title = None
            for item in self._line(label, number, line, section, prose):
                if first_value is None and isinstance(item, IndicatorCandidate):
                    first_value = number
                yield item
        yield from source.drain()
        if prose.count:
            yield prose.summary(
                label,
                "lines were skipped as prose (the first word is not an indicator and nothing "
                "on the line is defanged)",
                "prose",
            )
        for reason, rows in table_rows.items():
            if rows.count:
                yield rows.summary(label, f"table rows were not read ({reason.value})", "table-rows")
        if code.count:
            yield code.summary(
                label,
                "lines of source code blocks were not read (code, not an indicator list)",
                "code-block",
            )

    def _line(
        self, label: str, number: int, line: str, section: str | None, prose: _LineTally
    ) -> Iterator[ReadItem]:
        while (bullet := _BULLET.match(line)) is not None:
            line = line[bullet.end() :]
        if section is not None and _whole_line(section):
            # An e-mail subject holds spaces and colons (`Re: Invoice overdue`): the whole
            # line up to a tab, quotes around it removed, is the value.
            value, _, description = line.partition("\t")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
                value = value[1:-1]
            yield IndicatorCandidate(
                value, line=number, type_hint=section, description=description.strip() or None
            )
            return
        if section is not None and _as_numbers(section):
            line = _AS_SPACED.sub(r"\1", line)  # `AS 15169`, as whois writes it: one value
        hint = section
        extra: list[str] = []
        labelled = _LABEL.fullmatch(line)
        rest = ""
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
            rest = description
            extra, only_indicators = self._more_indicators(description)
            if only_indicators:
                description = ""
        if _is_link_markup(first):
            prose.add(number)
            return
        tokens = [first, *extra]
        kind = _kind(first)
        if kind is None:
            if first in _RULE_ACTIONS and (rule := self._rule(line, number)) is not None:
                yield rule
                return
            # Prose: words before an indicator, or a title such as "Domains:" or "IP addresses:".
            if (rest or description or first.endswith(":")) and not is_defanged(first):
                # Its defanged tokens were marked as indicators by the author (`Jan 21, 2014 |
                # hxxp://...`, `Seen on evil[.]com`): read, with the line as their context.
                marked = [t for t in extra if is_defanged(t)]
                if not marked:
                    prose.add(number)
                    return
                tokens, description = marked, line
            elif hint is None:
                yield Rejection(
                    label,
                    _unrecognised(first),
                    line=number,
                    value=describe_value(first),
                    code="unrecognised",
                )
                return
        elif (kind is _SURICATA or kind is _SNORT) and (rule := self._rule(line, number)) is not None:
            yield rule  # a rule holding a tab, read up to it as the first field
            return
        for token in tokens:
            yield IndicatorCandidate(
                _unwrap(token),
                line=number,
                type_hint=hint,
                description=description or None,
            )

    def _rule(self, line: str, number: int) -> IndicatorCandidate | None:
        """A Snort or Suricata rule on the line (joined with the next ones while it ends with
        a backslash, as the engines read it), or None when the line is not one."""
        if detect_rule_type(line) not in _IDS_RULES:
            return None
        while line.endswith("\\"):
            more = next(self._lines, None)
            if more is None:
                break
            line = line[:-1] + more.rstrip()
        line = line.strip()
        return IndicatorCandidate(line, line=number, tlp=_rule_tlp(line))

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
    """The indicator type of a token (refanged, unwrapped), "hash" for a hash-shaped one.

    A bare (not defanged) name must end in a top-level domain (`b.style.display`, from code, is
    not a domain), and `this._hrefs` is a member access, not a file name."""
    written = _unwrap(token)
    value = refang(written)
    detected = detect_ioc_type(value)
    if detected is None:
        return "hash" if is_hash_shaped(value) else None
    if detected in _NAMED_HOSTS and value == written and _unknown_tld(detected, value) is not None:
        return None
    if detected is IocType.FILE_NAME and _MEMBER_ACCESS.search(value) is not None:
        return None
    return detected


def _rule_tlp(rule: str) -> str | None:
    """The TLP a rule's `metadata` option gives it (`metadata:stix_id ..., tlp amber, ...;`, as
    our rule exports write it; `tlp none` is none), or None. Only the options are read, one by
    one: a quoted `msg` holds partner text."""
    position = rule.find("(") + 1
    while (option := _RULE_OPTION.match(rule, position)) is not None:
        position = option.end()
        if option[1].lower() != "metadata" or not option[2]:
            continue
        for entry in option[2].split(","):
            key, _, value = entry.strip().partition(" ")
            if key.lower() == "tlp" and value.strip() and value.strip().lower() != "none":
                return value.strip()
    return None


_AS_SPACED = re.compile(r"\b(AS)\s+(?=\d)", re.IGNORECASE)


@cache
def _as_numbers(section: str) -> bool:
    """Whether a section lists autonomous systems (`# ASNs`)."""
    return parse_type_hint(section) == {IocType.AUTONOMOUS_SYSTEM}


@cache
def _whole_line(section: str) -> bool:
    """Whether a section's lines are each one value, spaces and all (`# Email subjects`)."""
    return parse_type_hint(section) == {IocType.EMAIL_SUBJECT}


def _unrecognised(token: str) -> str:
    """Why a token that is not an indicator was rejected."""
    written = _unwrap(token)
    value = refang(written)
    detected = detect_ioc_type(value)
    if detected in _NAMED_HOSTS and value == written:
        tld = _unknown_tld(detected, value)
        if tld is not None:
            return f"not a recognised indicator: .{describe_value(tld)} is not a top-level domain"
    return "not a recognised indicator"


def _unknown_tld(kind: IocType, value: str) -> str | None:
    """The last label of the host name of `value` (of type `kind`) when it is not a top-level
    domain; None when it is one, or when the host is an address (`1.2.3.4/x`), or when the
    value has a scheme (`http://` says it is a URL)."""
    host = value
    if kind is not IocType.DOMAIN:
        if "://" in value:
            return None
        host = value.split("/", 1)[0]
        host = host.rpartition(":")[0] if host.count(":") == 1 else host
        if detect_ioc_type(host) is not IocType.DOMAIN:
            return None
    label = host.rstrip(".").rsplit(".", 1)[-1]
    return None if is_top_level_domain(label) else label


def is_top_level_domain(label: str) -> bool:
    """True when `label` (any case, Unicode or punycode) is a top-level domain: delegated in
    the root zone (IANA's list, `cti_exchange/data/tlds-alpha-by-domain.txt`) or special-use
    (`_SPECIAL_USE_TLDS`)."""
    name = label.lower()
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return True  # not a valid label: normalise says why
    return name in _top_level_domains()


@cache
def _top_level_domains() -> frozenset[str]:
    """IANA's list of top-level domains (`# Version ...` first line, one upper-case label a
    line; from https://data.iana.org/TLD/tlds-alpha-by-domain.txt, copied unchanged), and the
    special-use names."""
    text = resources.files("cti_exchange").joinpath("data", "tlds-alpha-by-domain.txt")
    listed = (line.strip().lower() for line in text.read_text(encoding="ascii").splitlines())
    return frozenset(name for name in listed if name and not name.startswith("#")) | _SPECIAL_USE_TLDS


def _is_link_markup(token: str) -> bool:
    """AsciiDoc link macros (`link:...[text]`, `https://...[text]`) cite sources."""
    if _MACRO.match(token):
        return True
    refanged = refang(_unwrap(token))
    return "://" in refanged and "[" in refanged.split("://", 1)[1].lstrip("[")


class _LineTally:
    """Line numbers for one summary warning: all counted, the first runs of consecutive lines
    kept (memory stays bounded whatever the file)."""

    __slots__ = ("count", "runs")

    def __init__(self) -> None:
        self.count = 0
        self.runs: list[list[int]] = []  # [first, last]; one more than shown, to extend

    def add(self, number: int) -> None:
        self.count += 1
        if self.runs and self.runs[-1][1] == number - 1:
            self.runs[-1][1] = number
        elif len(self.runs) <= MAX_SHOWN_RUNS:
            self.runs.append([number, number])

    def summary(self, label: str, what: str, code: str) -> Finding:
        """`233 <what>: lines 8-12, 21, ... and 225 more`."""
        runs = self.runs[:MAX_SHOWN_RUNS]
        shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
        hidden = self.count - sum(b - a + 1 for a, b in runs)
        more = f" and {hidden:,} more" if hidden else ""
        if self.count == 1:  # `1 line was skipped as prose ...: line 4`
            return Finding(label, f"1 {_one_line(what)}: line {shown}", code=code, skipped_lines=1)
        return Finding(
            label, f"{self.count:,} {what}: lines {shown}{more}", code=code, skipped_lines=self.count
        )


def _one_line(what: str) -> str:
    """`lines were skipped ...` said of one line."""
    for many, one in (("lines were", "line was"), ("rows were", "row was"), ("lines of", "line of")):
        what = what.replace(many, one, 1)
    return what


class _CodeBlock:
    """Follows source code blocks: `takes(line)` is true for the lines of one (its attribute
    line, delimiters and content), which are not read.

    AsciiDoc: a `[source,...]` line, then a delimited block (`----`, `....`) up to the same
    delimiter, or else the paragraph below it (up to a blank line). Markdown: a fence naming a
    language (```` ```javascript ````) up to the closing fence; plain fences are read."""

    __slots__ = ("closing", "pending")

    def __init__(self) -> None:
        self.pending = False  # a `[source]` line was seen; its block has not started
        self.closing: str | None = None  # what ends the open block ("" for a blank line)

    def takes(self, line: str) -> bool:
        if self.closing == "":  # a source paragraph, up to a blank line
            if not line:
                self.closing = None
            return bool(line)
        if self.closing is not None:
            if line == self.closing or (self.closing == "```" and line.startswith("```")):
                self.closing = None
            return True
        if not line:
            return self.pending
        if self.pending:
            if line[0] == "[" or (line[0] == "." and line[1:2] not in ("", ".", " ")):
                return True  # another attribute line, or a block title
            self.pending = False
            delimiter = _CODE_DELIMITER.fullmatch(line)
            self.closing = ("```" if line.startswith("```") else line) if delimiter else ""
            return True
        if line[0] == "[" and _SOURCE_ATTRIBUTE.fullmatch(line) is not None:
            self.pending = True
            return True
        if line.startswith("```") and line[3:].strip().split(" ", 1)[0].lower() not in _PLAIN_FENCES:
            self.closing = "```"
            return True
        return False
