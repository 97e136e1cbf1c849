"""An envelope held as `unknown-key` (signed by a kid nobody pinned) was decrypted and inflated
again, unauthenticated, at the end of every pull for ever: anyone who can write to the TAXII
collection could make each cron sync take minutes and hundreds of MB. Now it is opened again only
once the partner's pinned keys have changed since it was last tried; `partners update-keys`
still releases it at the next sync. An accept-gap blocked by such a record says its sequence
number is unverified. Through the CLI, real server."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.exchange.conftest import Exchange, received_values, store_rows, write_iocs


def _records(exchange: Exchange) -> list[tuple[str, int]]:
    return [
        (str(reason), int(closed))
        for reason, closed in store_rows(
            exchange.india, "SELECT reason, resolved_at IS NOT NULL FROM quarantine ORDER BY id"
        )
    ]


def _plaintext_limit(exchange: Exchange, limit: str) -> None:
    config = exchange.india.home / "config.toml"
    text = config.read_text()
    if "max_plaintext_bytes" in text:
        lines = [
            f"max_plaintext_bytes = {limit}" if line.startswith("max_plaintext_bytes") else line
            for line in text.splitlines()
        ]
        config.write_text("\n".join(lines) + "\n")
    else:
        config.write_text(text.replace("[envelope]\n", f"[envelope]\nmax_plaintext_bytes = {limit}\n"))
    assert f"max_plaintext_bytes = {limit}" in config.read_text()


def test_an_unknown_key_envelope_is_not_opened_again_until_the_partners_keys_change(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 0
    assert fr.run("keys", "rotate").exit_code == 0
    assert fr.run("push", str(write_iocs(tmp_path / "b.csv", 40, start=10)), "--to", "cert-in").exit_code == 0
    first = india.run("sync")
    assert first.exit_code == 4 and "unknown-key" in first.stderr
    assert _records(exchange) == [("unknown-key", 0)]

    # Opened again, it would now stop at the plaintext limit (refused for good, its record
    # closed): it stays held as it was, so it was not decrypted and inflated again.
    _plaintext_limit(exchange, "1024")
    for _ in range(2):
        quiet = india.run("sync")
        assert quiet.exit_code == 0, quiet.stderr
        assert _records(exchange) == [("unknown-key", 0)]

    # Once the partner's keys change, it is opened again, and goes through.
    _plaintext_limit(exchange, str(256 * 1024 * 1024))
    document = fr.export_keys(tmp_path / "cert-fr-rotated.json")
    assert india.run("partners", "update-keys", "cert-fr", "--jwks", str(document)).exit_code == 0
    released = india.run("sync")
    assert released.exit_code == 0, released.stderr
    assert _records(exchange) == [("unknown-key", 1)]
    assert len(received_values(india)) == 42


def test_accept_gap_blocked_by_an_unknown_key_envelope_says_its_sequence_is_unverified(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 0
    shutil.copytree(fr.home / "keys", tmp_path / "fr-keys-old")
    assert fr.run("keys", "rotate").exit_code == 0
    # Sequence 2, signed with a key CERT-In has not pinned: what it claims is unchecked.
    assert fr.run("push", str(write_iocs(tmp_path / "b.csv", 2, start=10)), "--to", "cert-in").exit_code == 0
    shutil.rmtree(fr.home / "keys")
    shutil.copytree(tmp_path / "fr-keys-old", fr.home / "keys")
    # Sequence 3, signed with the key CERT-In pinned: verified, behind 2.
    assert fr.run("push", str(write_iocs(tmp_path / "c.csv", 2, start=20)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 4
    unknown, gap = india.run("quarantine", "list", "--json").json()
    assert (unknown["reason"], gap["reason"]) == ("unknown-key", "sequence-gap")
    assert (
        f"held in quarantine before it: 2 as record {unknown['id']} (unknown-key; its sequence "
        "number unverified: its signature could not be checked)"
    ) in gap["detail"]

    blocked = india.run("quarantine", "accept-gap", str(gap["id"]))
    assert blocked.exit_code == 4, blocked.stderr
    assert (
        "an envelope claiming sequence 2 (unverified: its signature could not be checked)" in blocked.stderr
    )
    assert len(received_values(india)) == 2
