"""Undo the defanging analysts apply to indicators so they cannot be clicked or resolved.

Advisories publish `hxxp://evil[.]example` instead of `http://evil.example`. Only the
markers that are unambiguous in practice are undone: `hxxp(s)`, `fxp`, the dot, at and colon
markers in square, round or curly brackets (`[.]`, `(.)`, `{.}`, `[dot]`, `[@]`, `[at]`, `[:]`),
`[://]` and `[/]`. Anything else in brackets is left alone, so a Windows path such as
`C:\\Users\\[username]\\AppData` keeps its `[username]`.

Refanging runs on every value of every input row, so the common case (nothing to refang) is a
single regular-expression search.
"""

from __future__ import annotations

import re

# One alternation, matched case-insensitively; each branch maps to its refanged text below.
_DEFANG = re.compile(
    r"""
      \b(?P<scheme>h[xX]{2}p(?P<tls>s?)|f[xX]p)(?=\[?:|://)   # hxxp:// hxxps:// fxp://
    | [\[({]\s*(?P<dot>\.|dot)\s*[\])}]                      # [.] (.) {.} [dot] (dot)
    | [\[({]\s*(?P<at>@|at)\s*[\])}]                         # [@] (@) [at] (at)
    | \[(?P<scheme_sep>://|:)\]                              # [://] [:]
    | \[(?P<slash>/)\]                                       # [/]
    """,
    re.IGNORECASE | re.VERBOSE,
)


def _replacement(match: re.Match[str]) -> str:
    if match.group("scheme") is not None:
        if match.group("scheme")[0] in "fF":
            return "ftp"
        return "https" if match.group("tls") else "http"
    if match.group("dot") is not None:
        return "."
    if match.group("at") is not None:
        return "@"
    if match.group("scheme_sep") is not None:
        return match.group("scheme_sep")
    return "/"


def _may_be_defanged(text: str) -> bool:
    # Every marker has a bracket or an "xx"; plain substring tests are far cheaper than the
    # regular expression, and most values have neither.
    return (
        "[" in text
        or "(" in text
        or "{" in text
        or "xx" in text
        or "XX" in text
        or "xX" in text
        or "Xx" in text
    )


def refang(text: str) -> str:
    """`text` with defanging markers undone: `hxxps://a[.]b[.]c` -> `https://a.b.c`."""
    if not _may_be_defanged(text) or _DEFANG.search(text) is None:
        return text
    return _DEFANG.sub(_replacement, text)


def is_defanged(text: str) -> bool:
    """True when `text` carries at least one defanging marker."""
    return _may_be_defanged(text) and _DEFANG.search(text) is not None
