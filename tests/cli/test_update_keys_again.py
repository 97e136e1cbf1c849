"""The same key file applied again (found on a walkthrough) said "Updated keys" and wrote a
`key-change` audit record with nothing in it; now it says the keys are unchanged and writes
nothing."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Agency


def _key_changes(agency: Agency) -> int:
    return len(agency.run("audit", "show", "--action", "key-change", "--json").json())


def test_the_same_file_again_changes_nothing(partnered: tuple[Agency, Agency], tmp_path: Path) -> None:
    fr, india = partnered
    assert fr.run("keys", "rotate").exit_code == 0
    document = fr.export_keys(tmp_path / "rotated.json")
    first = india.run("partners", "update-keys", "cert-fr", "--jwks", str(document))
    assert first.exit_code == 0 and first.stdout.startswith("Updated keys of cert-fr"), first.stderr
    records = _key_changes(india)

    again = india.run("partners", "update-keys", "cert-fr", "--jwks", str(document))
    assert again.exit_code == 0, again.stderr
    assert again.stdout == "Keys of cert-fr unchanged: the file holds the keys already pinned\n"
    assert _key_changes(india) == records
    assert india.run("partners", "update-keys", "cert-fr", "--jwks", str(document), "--json").json()[
        "unchanged"
    ]


def test_one_collection_for_both_directions_is_warned_of(partnered: tuple[Agency, Agency]) -> None:
    """Found on a walkthrough: a typo gave the same collection id to --read-collection and
    --write-collection, and `partners set` took it without a word. A warning, not a refusal: a
    server may use one collection for both directions."""
    fr, _ = partnered
    same = "0389298c-1d84-56a2-b7a8-48e1f2722470"
    refused = fr.run(
        "partners",
        "set",
        "cert-in",
        "--api-root",
        "https://127.0.0.1:9/exchange/",
        "--read-collection",
        same,
        "--write-collection",
        same,
    )
    assert refused.exit_code == 0, refused.stderr
    assert f"warning: the read and write collections of cert-in are the same, {same}" in refused.stderr
