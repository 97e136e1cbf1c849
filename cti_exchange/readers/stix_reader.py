"""STIX 2.1 (and 2.0) JSON: a bundle, a bundle without `type`, a bare object, or an array.

The reader only finds the objects and the STIX version; checking and marking them is the core's
job (`cti_exchange.stix.passthrough`). A file that is a MISP event is refused with a hint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cti_exchange.errors import InputError
from cti_exchange.readers.interface import Finding, Reader, ReadItem, StixInput
from cti_exchange.readers.json_input import load_json


def is_misp_document(document: Any) -> bool:
    if isinstance(document, dict):
        return "Event" in document or isinstance(document.get("response"), list)
    return False


class StixReader(Reader):
    format_name = "stix"

    def read(self, path: Path) -> Iterator[ReadItem]:
        label = str(path)
        document = load_json(path, self.limits.max_json_bytes, label)
        if is_misp_document(document):
            raise InputError(f"{label} is a MISP event, not STIX", hint="use --format misp")
        if isinstance(document, list) and document and all(isinstance(item, str) for item in document):
            # `["1.2.3.4", "evil.com"]`: values, not objects. Not read as a list of values: a
            # text file is the documented way, and says which line a bad value is on.
            raise InputError(
                f"{label} is a JSON array of strings, not STIX objects",
                hint="put one value per line in a text file (jq -r '.[]' FILE > values.txt)",
            )
        if isinstance(document, list):
            yield Finding(label, "a JSON array of objects, not a bundle", code="not-a-bundle")
            objects, stix20 = document, False
        elif not isinstance(document, dict):
            raise InputError(f"{label} is not a STIX bundle or object")
        elif document.get("type") == "bundle" or (
            "type" not in document and isinstance(document.get("objects"), list)
        ):
            if document.get("type") != "bundle":
                yield Finding(label, "the bundle has no 'type'", code="not-a-bundle")
            objects = document.get("objects")  # type: ignore[assignment]
            if not isinstance(objects, list):
                raise InputError(f"{label}: the bundle's 'objects' is not a list")
            stix20 = document.get("spec_version") == "2.0"
        elif isinstance(document.get("type"), str) and "id" in document:
            objects, stix20 = [document], False
        else:
            raise InputError(f"{label} is not a STIX bundle or object (no 'type' and 'id')")
        if not objects:
            raise InputError(f"{label}: the bundle has no objects")
        yield StixInput(objects, stix20)
