"""`audit verify` judges the details text the store holds, not what a JSON parser makes of it:
two texts that parse to the same value must not both pass, since SQLite's json_extract (and so
`status`'s last pull) reads a duplicate key's first value where Python keeps the last."""

from __future__ import annotations

import sqlite3

import pytest

from cti_exchange.audit.trail import record_event
from cti_exchange.home.profile_home import ProfileHome
from tests.conftest import Agency


@pytest.mark.parametrize(
    "forged",
    [
        '{"day":99,"day":3}',  # json_extract reads 99, the hash covers 3
        '{"d\\u0061y":3}',  # an escape the writer never writes
        '{"day": 3}',  # a space
    ],
)
def test_details_text_that_parses_to_the_hashed_value_is_still_an_edit(
    trail: Agency, store_sql: sqlite3.Connection, forged: str
) -> None:
    assert trail.run("audit", "verify").exit_code == 0  # signs head 6
    store_sql.execute("UPDATE audit_log SET details = ? WHERE seq = 3", (forged,))
    if "99" in forged:
        assert store_sql.execute(
            "SELECT json_extract(details, '$.day') FROM audit_log WHERE seq = 3"
        ).fetchone() == (99,)
    result = trail.run("audit", "verify")
    assert result.exit_code == 4, result.stdout + result.stderr
    assert "first bad record 3: its stored details are not the text the trail writes" in result.stderr
    report = trail.run("audit", "verify", "--json").json()
    assert report["first_bad"]["seq"] == 3 and report["first_bad"]["kind"] == "edited"
    assert report["signed_now"] is None


def test_every_form_the_writer_stores_still_verifies(trail: Agency) -> None:
    """What the writer records is exactly the canonical text, special cases included: a lone
    surrogate (as `\\udcff` text), NaN and infinities (as text), non-BMP and control characters,
    quotes and backslashes, keys that are not strings, floats, big integers, nesting."""
    record_event(
        ProfileHome(trail.home),
        "export",
        details={
            "file": "r\udcffport.csv",
            "ratio": float("nan"),
            "bounds": [float("-inf"), 1.5, -0.0, 1e-7, 2**70],
            "note": 'emoji \U0001f600, tab\t, nul\x00, quote " backslash \\ \u2028 é',
            "by_number": {2: "two", 10: "ten"},
            "nested": {"z": [{"b": None, "a": True}], "\u00e9": False},
        },
    )
    result = trail.run("audit", "verify", "--json", "--no-sign")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["ok"] is True
