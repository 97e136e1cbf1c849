"""Add Objects (TAXII 2.1 section 5.5), the part done before the write lock is taken: the
envelope's size in items, and every object described, checked and serialised.

The write lock covers the whole database, so everything that does not depend on what is
stored happens here, and other agencies' POSTs wait only for the inserts. What one POST may
cost is bounded:

* At most `max_envelope_items` items (10,000 with the default 10 MiB max_content_length):
  more is refused with 413, which TAXII 2.1 section 5.5 lists for a payload the server will
  not take, and which tells a client to split its POST. cti-exchange's own push cannot
  reach it: its POSTs are cut by bytes (exchange/delivery.py) and each item is one envelope
  artifact of at least about 3.7 KB, while the cap allows one item per 2 KiB of
  max_content_length.
* At most `MAX_MALFORMED_ITEMS` items that are not storable STIX objects: more and the whole
  envelope is refused with 422 and nothing is stored. Each malformed item would otherwise
  cost a row and a status entry for as little as two bytes of request
  (`{"objects":[0,0,...]}`).
* A failure names the object's id as posted, made UTF-8 encodable and cut to
  `MAX_REPORTED_ID_CHARS`, so a status never fails to store and never repeats a huge id.
"""

from __future__ import annotations

import json
from typing import Any

from cti_exchange.server.object_writer import PreparedObject, describe_object
from cti_exchange.server.statuses import StatusDetail

MIN_ENVELOPE_ITEMS = 10_000
# One item per this many bytes of max_content_length, when that allows more than the minimum:
# an envelope artifact is larger, so the cap never splits what a cti-exchange push sends.
BYTES_PER_ITEM = 2048
MAX_MALFORMED_ITEMS = 1_000
# A STIX id is at most 250 + 2 + 36 characters.
MAX_REPORTED_ID_CHARS = 300


class EnvelopeRefused(Exception):
    """The whole POST is refused (nothing stored) with an HTTP status and a description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def max_envelope_items(max_content_length: int) -> int:
    """How many items one POST to an API root with this max_content_length may carry."""
    return max(MIN_ENVELOPE_ITEMS, max_content_length // BYTES_PER_ITEM)


def envelope_objects(envelope: Any, *, max_items: int) -> list[Any]:
    """The `objects` list of a TAXII envelope (TAXII 2.1 section 3.7), within `max_items`."""
    items = envelope.get("objects") if isinstance(envelope, dict) else None
    if not isinstance(items, list):
        raise EnvelopeRefused(422, "The request body is not a TAXII envelope with an 'objects' list")
    if len(items) > max_items:
        raise EnvelopeRefused(
            413,
            f"The envelope holds {len(items):,} objects; this server takes at most {max_items:,} "
            "per request: split it into several POSTs",
        )
    return items


def prepare(items: list[Any]) -> list[PreparedObject | StatusDetail]:
    """Each item checked and serialised, or its failure; in the order posted.

    EnvelopeRefused (422) as soon as more than MAX_MALFORMED_ITEMS items are malformed.
    """
    prepared: list[PreparedObject | StatusDetail] = []
    malformed = 0
    for item in items:
        try:
            prepared.append(_prepare_one(item))
        except ValueError as exc:
            malformed += 1
            if malformed > MAX_MALFORMED_ITEMS:
                raise EnvelopeRefused(
                    422,
                    f"More than {MAX_MALFORMED_ITEMS:,} of the {len(items):,} items are not STIX objects "
                    f"this server can store (e.g. {exc}); nothing was stored",
                ) from None
            prepared.append(StatusDetail("failure", reported_id(item), "", str(exc)))
    return prepared


def _prepare_one(item: Any) -> PreparedObject:
    described = describe_object(item)
    try:
        # allow_nan=False: NaN and Infinity, which Python's parser accepts, are not JSON and
        # would be served to readers whose parsers reject them.
        body = json.dumps(item, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        # A lone surrogate ("\ud800" in the request) parses into a str that has no UTF-8
        # form; found here, it fails this object instead of the whole transaction.
        body.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not encodable as UTF-8 (a lone surrogate in a string)") from None
    except ValueError:
        raise ValueError("not valid JSON (NaN or Infinity)") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return PreparedObject(obj=item, described=described, body=body)


def reported_id(item: Any) -> str:
    """The id of a malformed item as a status may name it: "" if it has none, else the id made
    UTF-8 encodable (a lone surrogate becomes the text "\\ud800") and cut to a bounded length."""
    object_id = item.get("id") if isinstance(item, dict) else None
    if not isinstance(object_id, str):
        return ""
    text = object_id.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > MAX_REPORTED_ID_CHARS:
        text = text[: MAX_REPORTED_ID_CHARS - 1] + "…"
    return text
