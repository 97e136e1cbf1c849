"""The `cti-exchange` console entry point.

jsonschema imports the optional format-checking libraries it finds at import time, and one of
them, rfc3987-syntax (pulled in by stix2-validator in the test environment), spends about a
second building a grammar. cti-exchange never asserts JSON Schema formats, so the command line
tells jsonschema that library is absent. Library users who import cti_exchange directly are not
affected.
"""

from __future__ import annotations

import sys


def main() -> None:
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    from cti_exchange.cli.app import main as app_main

    app_main()
