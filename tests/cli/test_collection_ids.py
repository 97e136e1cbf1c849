"""`partners set --read-collection / --write-collection` take TAXII 2.1 collection ids, which
are UUIDs (TAXII 2.1 section 5.2.1: a Collection's `id` is an `identifier`, "an RFC
4122-compliant Version 4 UUID"). A placeholder (`ID`), an empty value, or the next option taken
for the value (`--read-collection $ID --write-collection $W` with both variables empty stored
`--write-collection` as the read collection) was stored, exit 0, and failed only at the next
pull or push, as HTTP 404. Now refused, exit 2, in one line naming the option and the fix, and
nothing is changed. Any UUID version is taken (`cti-exchange serve` derives version 5 ids), in
either case, stored as given."""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.server.provisioning import collection_id_for
from tests.conftest import Agency, CliResult

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "two-agencies"
API_ROOT = "https://taxii.example/api/"
READ = collection_id_for("cert-in", "cert-fr")
WRITE = collection_id_for("cert-fr", "cert-in")


def _config(agency: Agency) -> bytes:
    return (agency.home / "config.toml").read_bytes()


def _taxii(agency: Agency) -> dict[str, Any]:
    shown = agency.run("partners", "show", "cert-in", "--json")
    assert shown.exit_code == 0, shown.stderr
    taxii: dict[str, Any] = shown.json().get("taxii", {})
    return taxii


def _refused(result: CliResult, option: str) -> str:
    """The one-line error of a refused id."""
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"cti-exchange: error: {option} "), line
    assert "UUID such as" in line and "nothing was changed" in line, line
    assert "Traceback" not in result.stderr + result.stdout
    return line


@pytest.mark.parametrize("placeholder", ["ID", "<collection-id>", "COLLECTION_ID", "c-in", "collection1"])
def test_a_placeholder_collection_id_is_refused(partnered: tuple[Agency, Agency], placeholder: str) -> None:
    fr, _ = partnered
    before = _config(fr)
    result = fr.run("partners", "set", "cert-in", "--api-root", API_ROOT, "--read-collection", placeholder)
    line = _refused(result, "--read-collection")
    assert f"{placeholder!r} is not a TAXII collection id" in line and "UUIDs" in line
    assert _config(fr) == before  # not even the API root given with it


def test_an_empty_variable_before_the_next_option_is_refused(partnered: tuple[Agency, Agency]) -> None:
    """`--read-collection $IN --write-collection $OUT` with both unset: the shell passes
    `--read-collection --write-collection`, and `--write-collection` became the read id."""
    fr, _ = partnered
    before = _config(fr)
    swallowed = fr.run(
        "partners", "set", "cert-in", "--api-root", API_ROOT, "--read-collection", "--write-collection"
    )
    line = _refused(swallowed, "--read-collection")
    assert "took the option '--write-collection' as its value" in line and "empty variable" in line
    assert _config(fr) == before

    # `--write-collection=$OUT` keeps the pair together: an unset variable is an empty value.
    empty = fr.run("partners", "set", "cert-in", "--api-root", API_ROOT, "--write-collection=")
    assert "--write-collection is empty" in _refused(empty, "--write-collection")
    blank = fr.run("partners", "set", "cert-in", "--api-root", API_ROOT, "--read-collection", " ")
    _refused(blank, "--read-collection")
    assert _config(fr) == before


def test_a_refused_id_leaves_the_settings_it_came_with_unchanged(partnered: tuple[Agency, Agency]) -> None:
    fr, _ = partnered
    wired = fr.run("partners", "set", "cert-in", "--api-root", API_ROOT, "--read-collection", READ)
    assert wired.exit_code == 0, wired.stderr
    before = _config(fr)
    result = fr.run(
        "partners",
        "set",
        "cert-in",
        "--max-tlp",
        "green",
        "--write-collection",
        WRITE,
        "--read-collection",
        "ID",
    )
    _refused(result, "--read-collection")
    assert _config(fr) == before
    assert _taxii(fr) == {"api_root": API_ROOT, "read_collection": READ}
    shown = fr.run("partners", "show", "cert-in", "--json").json()
    assert shown["max_tlp"] == "amber"


def test_the_nil_uuid_is_refused_as_a_placeholder(partnered: tuple[Agency, Agency]) -> None:
    fr, _ = partnered
    nil = str(uuid.UUID(int=0))
    result = fr.run("partners", "set", "cert-in", "--api-root", API_ROOT, "--write-collection", nil)
    assert "nil UUID" in _refused(result, "--write-collection")


@pytest.mark.parametrize(
    "collection",
    [
        WRITE,  # version 5, as `cti-exchange serve` derives them
        "3dca4792-b56a-4298-920f-5b699806f33e",  # version 4, as the TAXII specification asks servers to mint them
        "91A7B528-80EB-42ED-A74D-C6FBD5A26116",  # upper case: stored as the server wrote it
        str(uuid.UUID(int=0x404)),  # any UUID form: whether it exists is the server's to say
    ],
)
def test_a_uuid_is_stored_as_given(partnered: tuple[Agency, Agency], collection: str) -> None:
    fr, _ = partnered
    other = str(uuid.UUID(int=0x405))  # the other direction: never the same collection
    result = fr.run(
        "partners", "set", "cert-in", "--api-root", API_ROOT, "--read-collection", collection,
        "--write-collection", other,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert _taxii(fr) == {"api_root": API_ROOT, "read_collection": collection, "write_collection": other}
    config = tomllib.loads(_config(fr).decode())
    assert config["partners"]["cert-in"]["taxii"]["read_collection"] == collection


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        ("--auth", "took the option '--auth'"),
        ("-", "took the option '-'"),
        ("ID", "is not a TAXII collection id"),
        ("{91a7b528-80eb-42ed-a74d-c6fbd5a26116}", "is not a TAXII collection id"),  # braces
        ("urn:uuid:91a7b528-80eb-42ed-a74d-c6fbd5a26116", "is not a TAXII collection id"),
        ("91a7b52880eb42eda74dc6fbd5a26116", "is not a TAXII collection id"),  # no hyphens
        ("91a7b528-80eb-42ed-a74d-c6fbd5a26116\n", "is not a TAXII collection id"),
        (" 91a7b528-80eb-42ed-a74d-c6fbd5a26116", "is not a TAXII collection id"),
        ("00000000-0000-0000-0000-000000000000", "nil UUID"),
    ],
)
def test_what_is_not_a_collection_id(value: str, problem: str) -> None:
    from cti_exchange.profile.model import collection_id_problem

    found = collection_id_problem(value)
    assert found is not None and problem in found and "\n" not in found


def test_the_ids_serve_prints_and_the_examples_hold_are_collection_ids() -> None:
    """What `cti-exchange serve` prints for `partners set`, and the example configurations,
    pass the check: the product keeps working end to end."""
    from cti_exchange.profile.model import collection_id_problem

    for sender, recipient in (("cert-fr", "cert-in"), ("cert-in", "cert-fr"), ("cert-de", "cert-in")):
        assert collection_id_problem(collection_id_for(sender, recipient)) is None
    configs = sorted(EXAMPLES.glob("*.config.toml"))
    assert configs
    for path in configs:
        for partner in tomllib.loads(path.read_text())["partners"].values():
            for key in ("read_collection", "write_collection"):
                assert collection_id_problem(partner["taxii"][key]) is None, (path, key)
