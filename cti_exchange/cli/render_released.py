"""What `open` and `quarantine accept-gap` say of the held envelopes they opened again after
accepting one (exchange/held.py, `Released`): the same words and JSON keys for both."""

from __future__ import annotations

from typing import Any

from cti_exchange.cli.output import Output
from cti_exchange.exchange.held import Released


def released_json(released: Released) -> dict[str, Any]:
    return {
        "released_envelopes": released.envelope_ids,
        "released_objects": released.objects,
        "released_new_versions": released.new_versions,
        "closed_records": [closed.id for closed in released.closed],
    }


def show_released(out: Output, released: Released, partner: str | None) -> None:
    if released.envelope_ids:
        out.line(
            f"Then {len(released.envelope_ids)} envelope(s) from {partner} held behind it, "
            f"accepted: {released.objects} objects, {released.new_versions} new versions"
        )
    if released.closed:
        ids = ", ".join(str(closed.id) for closed in released.closed)
        out.warn(
            f"quarantine record(s) {ids} closed: opened again, refused for good "
            "(`cti-exchange quarantine list --all` says why)"
        )
