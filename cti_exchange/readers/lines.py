"""Reading the lines of a text input with bounded memory, whatever its encoding.

- A byte-order mark selects UTF-8, UTF-16 or UTF-32 (Excel writes "Unicode text" as UTF-16 LE
  with a BOM, and "CSV UTF-8" with a UTF-8 BOM).
- Without a BOM the text is UTF-8; a line that is not valid UTF-8 is read as Windows-1252 (what
  Excel writes for "CSV" on Western-European Windows), with one warning per file.
- A file with NUL bytes and no UTF-16/32 BOM is binary and refused; when every other byte is
  NUL and the rest ASCII, it is named as UTF-16 without a BOM, with how to save it.
- A line longer than `max_line_bytes` is skipped, without ever being held in memory whole,
  and reported.

Line endings (LF, CRLF, mixed) are kept on each line, so the csv module can tell a line break
inside a quoted field from the end of a record. A file whose lines end with CR alone (classic
Mac OS; Excel's "Macintosh" CSV) has no LF at all: its CRs are read as LFs.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cti_exchange.errors import InputError
from cti_exchange.readers.interface import Finding, ReadLimits, Rejection

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SNIFF_BYTES = 8192
_SKIP_CHUNK = 64 * 1024


def sniff_encoding(head: bytes) -> tuple[str | None, int]:
    """(encoding named by a BOM, BOM length) or (None, 0)."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    return None, 0


def unify_line_breaks(text: str) -> str:
    """`text` with CRLF and lone CR line breaks as LF: a multi-line cell or comment written on
    Windows (or by a browser form) keeps its lines, and its CRs do not read as control
    characters."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def looks_binary(head: bytes) -> bool:
    """NUL bytes without a UTF-16/32 BOM: not text."""
    return b"\x00" in head and sniff_encoding(head)[0] in (None, "utf-8")


_UTF16_SAMPLE = 1024


def _utf16_without_bom(head: bytes) -> str | None:
    """'little-endian' or 'big-endian' when `head` reads as ASCII text in UTF-16 without a
    BOM (every other byte NUL, the others printable ASCII or line breaks); None otherwise."""
    sample = head[:_UTF16_SAMPLE]
    sample = sample[: len(sample) - len(sample) % 2]
    if len(sample) < 4:
        return None
    for nul_at, name in ((1, "little-endian"), (0, "big-endian")):
        nuls, chars = sample[nul_at::2], sample[1 - nul_at :: 2]
        if nuls.count(0) == len(nuls) and all(32 <= c < 127 or c in (9, 10, 13) for c in chars):
            return name
    return None


def binary_file_error(label: str, head: bytes) -> InputError:
    """The error for a file `looks_binary` refuses: UTF-16 text without a BOM (Windows tools,
    PowerShell's `Out-File`) is named as such, with how to save it; anything else is binary."""
    if (order := _utf16_without_bom(head)) is not None:
        return InputError(
            f"{label} looks like UTF-16 ({order}) text without a byte-order mark (every other byte is NUL)",
            hint="save it as UTF-8, or as UTF-16 with a byte-order mark (BOM)",
        )
    return InputError(
        f"{label} looks like a binary file (it contains NUL bytes)",
        hint="give a text, CSV, STIX or MISP JSON file",
    )


class LineSource:
    """Iterates the decoded lines of a file; remarks about skipped lines collect in `remarks`.

    `line_number` is the number of the last line read; `row_start` is set to the number of the
    first line read after the caller clears it (to locate a CSV record spanning lines);
    `exhausted` turns true once a read found no more lines (a CSV record returned after that
    was cut by the end of the file: an unterminated quoted field).
    """

    def __init__(
        self,
        path: Path,
        limits: ReadLimits,
        label: str,
        *,
        byte_range: tuple[int, int] | None = None,
        first_line: int = 1,
    ) -> None:
        self.path = path
        self.limits = limits
        self.label = label
        # A part of a UTF-8 file cut at line starts (parallel reading): [start, end) bytes.
        self.byte_range = byte_range
        self.line_number = first_line - 1
        self.offset = 0  # bytes consumed, for the caller to find where the data starts
        self.line_offset = 0  # where the last line read starts (UTF-8 files; 0 for UTF-16/32)
        self.row_start: int | None = None
        self.remarks: list[Rejection | Finding] = []
        self.exhausted = False
        self._fallback_announced = False

    def __iter__(self) -> Iterator[str]:
        try:
            stream = self.path.open("rb")
        except OSError as error:
            raise InputError(f"cannot read {self.label}: {error.strerror or error}") from None
        with stream:
            if self.byte_range is not None:
                start, end = self.byte_range
                stream.seek(start)
                yield from self._byte_lines(stream, end - start)
                self.exhausted = True
                return
            head = stream.read(_SNIFF_BYTES)
            encoding, bom_length = sniff_encoding(head)
            if looks_binary(head):
                raise binary_file_error(self.label, head)
            stream.seek(bom_length)
            self.offset = bom_length
            if encoding is None or encoding == "utf-8":
                if b"\r" in head and b"\n" not in head:
                    yield from self._byte_lines(_CarriageReturnLines(stream))
                else:
                    yield from self._byte_lines(stream)
            else:
                yield from self._wide_lines(stream, encoding)
            self.exhausted = True

    def drain(self) -> Iterator[Rejection | Finding]:
        """The remarks collected so far, emptied as they are handed over."""
        while self.remarks:
            yield self.remarks.pop(0)

    def _started(self) -> None:
        self.line_number += 1
        if self.row_start is None:
            self.row_start = self.line_number

    def _too_long(self, unit: str) -> None:
        self.remarks.append(
            Rejection(
                self.label,
                f"line longer than {self.limits.max_line_bytes:,} {unit}; skipped",
                line=self.line_number,
                code="line-too-long",
            )
        )

    def _byte_lines(
        self, stream: BinaryIO | _CarriageReturnLines, budget: int | None = None
    ) -> Iterator[str]:
        limit = self.limits.max_line_bytes
        while True:
            if budget is not None and self.offset >= budget:
                return
            raw = stream.readline(limit + 1)
            if not raw:
                return
            self.line_offset = self.offset
            self.offset += len(raw)
            if len(raw) > limit and not raw.endswith(b"\n"):
                self.line_number += 1
                self._too_long("bytes")
                while raw and not raw.endswith(b"\n"):  # skip the rest, chunk by chunk
                    raw = stream.readline(_SKIP_CHUNK)
                    self.offset += len(raw)
                continue
            self._started()
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                yield self._legacy(raw)

    def _legacy(self, raw: bytes) -> str:
        if not self._fallback_announced:
            self._fallback_announced = True
            self.remarks.append(
                Finding(
                    self.label,
                    "not UTF-8: read as Windows-1252 from here on where UTF-8 fails; "
                    "save the file as UTF-8 to be sure of the characters",
                    line=self.line_number,
                    code="not-utf8",
                )
            )
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
            return raw.decode("latin-1")

    def _wide_lines(self, stream: BinaryIO, encoding: str) -> Iterator[str]:
        limit = self.limits.max_line_bytes
        text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")
        try:
            while True:
                line = text.readline(limit + 1)
                if not line:
                    return
                if len(line) > limit and not line.endswith("\n"):
                    self.line_number += 1
                    self._too_long("characters")
                    while line and not line.endswith("\n"):
                        line = text.readline(_SKIP_CHUNK)
                    continue
                self._started()
                yield line
        except UnicodeDecodeError as error:
            raise InputError(
                f"{self.label} is not valid {encoding.upper()} after line {self.line_number}: {error.reason}"
            ) from None
        finally:
            text.detach()


class _CarriageReturnLines:
    """The lines of a binary stream that ends them with CR alone, each ending with LF instead
    (same length, so byte offsets stay exact); `readline` as on a binary file."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buffer = b""
        self._position = 0

    def readline(self, size: int) -> bytes:
        while True:
            start = self._position
            end = self._buffer.find(b"\r", start, start + size)
            if end != -1:
                self._position = end + 1
                return self._buffer[start:end] + b"\n"
            if len(self._buffer) - start >= size:
                self._position = start + size
                return self._buffer[start : start + size]
            chunk = self._stream.read(_SKIP_CHUNK)
            self._buffer = self._buffer[start:] + chunk
            self._position = 0
            if not chunk:
                line, self._buffer = self._buffer, b""
                return line
