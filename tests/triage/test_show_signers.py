"""`triage show VALUE` names, for every partner that sent the value, the key that signed what
it received: a walkthrough found cert-fr's signer only in `--json` when cert-de and cert-fr had
each sent `bestarg.com` as an object of its own (the table listed the shown object's sources)."""

from __future__ import annotations

import sqlite3

import pytest

from tests.conftest import Agency
from tests.triage.conftest import indicator, on_a_terminal, put, store_path

DE = "indicator--de000000-0000-4000-8000-000000000001"
FR = "indicator--f0000000-0000-4000-8000-000000000001"
UK = "indicator--0c000000-0000-4000-8000-000000000001"
SIGNERS = {
    # partner: (envelope, signer key id, signer thumbprint)
    "cert-de": ("envelope--de000000-0000-4000-8000-000000000001", "cert-de-sig-2026", "DE" + "d" * 41),
    "cert-fr": ("envelope--f0000000-0000-4000-8000-000000000001", "cert-fr-sig\x1b[31m", "FR" + "f" * 41),
    "cert-uk": ("envelope--0c000000-0000-4000-8000-000000000001", "cert-uk-sig-2026", "UK" + "u" * 41),
}


def _signed_envelope(agency: Agency, partner: str) -> None:
    """The envelope row a pull records on arrival: who signed it, with which key."""
    envelope, kid, thumbprint = SIGNERS[partner]
    with sqlite3.connect(store_path(agency)) as conn:
        conn.execute(
            "INSERT INTO envelopes_in (envelope_id, partner, sender, sequence, digest, issued_at, "
            "received_at, signer_kid, signer_thumbprint, bundle_id, object_count, artifact_id, "
            "jws_deflated) VALUES (?, ?, ?, 1, 'd', 't', 't', ?, ?, 'bundle--1', 1, NULL, x'00')",
            (envelope, partner, partner, kid, thumbprint),
        )


@pytest.fixture
def bestarg(cert_in: Agency) -> Agency:
    """cert-de and cert-fr each sent `bestarg.com`, cert-uk sent it as `BESTARG.COM.`."""
    for partner, object_id, value, received in (
        ("cert-de", DE, "bestarg.com", "2026-01-10T12:00:00.000Z"),
        ("cert-fr", FR, "bestarg.com", "2026-01-11T12:00:00.000Z"),
        ("cert-uk", UK, "BESTARG.COM.", "2026-01-12T12:00:00.000Z"),
    ):
        put(
            cert_in,
            [indicator(value, object_id=object_id)],
            partner=partner,
            envelope_id=SIGNERS[partner][0],
            received_at=received,
        )
        _signed_envelope(cert_in, partner)
    return cert_in


def _section(stdout: str, title: str) -> list[list[str]]:
    rows: list[list[str]] | None = None
    for line in stdout.splitlines():
        if line == f"{title}:":
            rows = []
        elif rows is not None:
            if not line:
                break
            rows.append(line.split("\t"))
    assert rows is not None, stdout
    return rows


def test_plain_show_names_the_signer_of_every_partner_of_the_value(bestarg: Agency) -> None:
    shown = bestarg.run("triage", "show", "bestarg.com")
    assert shown.exit_code == 0, shown.stderr
    header, *rows = _section(shown.stdout, "Sources and signatures")
    assert header[:6] == ["partner", "envelope", "received", "TLP", "signer key", "signer thumbprint"]
    signed = {row[0]: (row[1], row[4], row[5]) for row in rows}
    assert signed == {
        "cert-de": SIGNERS["cert-de"],
        "cert-fr": (SIGNERS["cert-fr"][0], "cert-fr-sig\\x1b[31m", SIGNERS["cert-fr"][2]),
        "cert-uk": SIGNERS["cert-uk"],
    }
    assert "\x1b" not in shown.stdout
    # Each row says which object arrived (they are listed under "Same value from other sources").
    objects = {row[0]: row[6] for row in rows}
    assert objects == {"cert-de": DE, "cert-fr": FR, "cert-uk": UK}

    # As --json has it: the sources of the value and of its other spellings.
    data = bestarg.run("triage", "show", "bestarg.com", "--json").json()
    in_json = {
        (s["partner"], s["signer_kid"].replace("\x1b", "\\x1b"), s["signer_thumbprint"])
        for s in [*data["sources"], *(s for line in data["same_value"] for s in line["sources"])]
    }
    assert in_json == {(row[0], row[4], row[5]) for row in rows}


def _show_on_a_terminal(agency: Agency, *args: str) -> str:
    return on_a_terminal(agency, "triage", "show", *args)


def test_show_on_a_terminal_names_the_signer_of_every_partner_of_the_value(bestarg: Agency) -> None:
    text = _show_on_a_terminal(bestarg, "bestarg.com")
    signatures = text.split("Sources and signatures", 1)[1].split("Same value from other sources", 1)[0]
    rows = {partner: [line for line in signatures.splitlines() if partner in line] for partner in SIGNERS}
    assert all(len(found) == 1 for found in rows.values()), signatures
    for partner, (envelope, kid, thumbprint) in SIGNERS.items():
        (row,) = rows[partner]
        assert envelope in row and thumbprint in row, signatures
        assert kid.replace("\x1b", "\\x1b") in row, signatures
        assert ("(this)" in row) == (partner == "cert-de"), row
    assert "\x1b[31m" not in text
