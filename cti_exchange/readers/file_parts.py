"""Cutting a large line-based file into parts that can be read in parallel.

A CSV record may span lines when a quoted field holds a line break, so a file can only be cut
at line starts when it has no quotes at all; files with quotes are read in one piece. The
same pass counts lines, so that every part knows the number of its first line and reports
stay exact.
"""

from __future__ import annotations

from pathlib import Path

_CHUNK = 1024 * 1024


def split_at_lines(path: Path, start: int, parts: int, first_line: int) -> list[tuple[int, int, int]] | None:
    """[(start, end, first line number)] covering `start`..end of file in about equal parts
    cut at line starts; None when the file holds a double quote (or cannot be cut)."""
    size = path.stat().st_size
    if parts < 2 or size - start < parts:
        return None
    targets = [start + (size - start) * k // parts for k in range(1, parts)]
    cuts: list[tuple[int, int]] = []  # (offset, line number of the line starting there)
    line = first_line
    position = start
    with path.open("rb") as stream:
        stream.seek(start)
        pending = list(targets)
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            if b'"' in chunk:
                return None
            while pending and pending[0] < position + len(chunk):
                newline = chunk.find(b"\n", max(pending[0] - position, 0))
                if newline == -1:
                    pending[0] = position + len(chunk)  # cut in the next chunk
                    break
                cut = position + newline + 1
                cuts.append((cut, line + chunk.count(b"\n", 0, newline + 1)))
                pending.pop(0)
            line += chunk.count(b"\n")
            position += len(chunk)
    bounds = [(start, first_line), *cuts]
    ranges = []
    for index, (begin, number) in enumerate(bounds):
        end = bounds[index + 1][0] if index + 1 < len(bounds) else size
        if end > begin:
            ranges.append((begin, end, number))
    return ranges if len(ranges) > 1 else None
