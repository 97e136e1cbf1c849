"""Values pasted from a report find what is stored: `triage show|accept|reject|false-positive`
and `sight` look a value up as typed, then refanged and in canonical form, as `push` stores
it (`185.178.209[.]193`, `hxxp://333media[.]co[.]uk/...` and `BESTARG.COM` said "no object ...
in the store" although `185.178.209.193`, the URL and `bestarg.com` were stored)."""

from __future__ import annotations

import pytest

from tests.conftest import Agency
from tests.triage.conftest import indicator, put

ADDRESS = "185.178.209.193"
URL = "http://333media.co.uk/wp-content/plugins/gate.php?id=7"
DOMAIN = "bestarg.com"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture
def stored(partnered: tuple[Agency, Agency]) -> tuple[Agency, dict[str, str]]:
    """CERT-In holding CERT-FR's indicators, canonical as push writes them: value -> id."""
    _, india = partnered
    objects = [
        indicator(ADDRESS, "ipv4-addr"),
        indicator(URL, "url"),
        indicator(DOMAIN),
        indicator(MD5, "md5"),
        indicator("Mixed.Example"),  # a partner's own spelling, not canonical
    ]
    put(india, objects, partner="cert-fr")
    return india, {obj["name"]: obj["id"] for obj in objects}


def _status(agency: Agency, reference: str) -> tuple[str, str]:
    shown = agency.run("triage", "show", reference, "--json")
    assert shown.exit_code == 0, shown.stderr
    document = shown.json()
    return document["object"]["id"], document["status"]


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("185.178.209[.]193", ADDRESS),
        ("185[.]178[.]209[.]193", ADDRESS),
        ("hxxp://333media[.]co[.]uk/wp-content/plugins/gate.php?id=7", URL),
        ("HXXP://333MEDIA[.]CO[.]UK/wp-content/plugins/gate.php?id=7", URL),
        ("BESTARG.COM", DOMAIN),
        ("bestarg[.]com", DOMAIN),
        ("  BestArg.Com.  ", DOMAIN),
        (MD5.upper(), MD5),
        ("Mixed[.]Example", "Mixed.Example"),  # refanged, as the partner spelled it
    ],
)
def test_show_finds_a_pasted_value(stored: tuple[Agency, dict[str, str]], typed: str, value: str) -> None:
    india, ids = stored
    assert _status(india, typed) == (ids[value], "new")


@pytest.mark.parametrize(
    ("command", "typed", "value", "status"),
    [
        ("accept", "185.178.209[.]193", ADDRESS, "accepted"),
        ("accept", "BESTARG.COM", DOMAIN, "accepted"),
        ("reject", "hxxp://333media[.]co[.]uk/wp-content/plugins/gate.php?id=7", URL, "rejected"),
        ("false-positive", MD5.upper(), MD5, "false-positive"),
    ],
)
def test_decisions_take_a_pasted_value(
    stored: tuple[Agency, dict[str, str]], command: str, typed: str, value: str, status: str
) -> None:
    india, ids = stored
    decided = india.run("triage", command, typed, "--note", "from the advisory", "--json")
    assert decided.exit_code == 0, decided.stderr
    assert decided.json()["object_ids"] == [ids[value]]
    assert _status(india, value) == (ids[value], status)


@pytest.mark.parametrize("command", ["show", "false-positive", "sight"])
def test_the_spelling_an_export_wrote_finds_a_partners_own_spelling(
    stored: tuple[Agency, dict[str, str]], command: str
) -> None:
    """An alert quotes what the export wrote, the canonical `mixed.example`; the partner sent
    `Mixed.Example` (found on a walkthrough: "no object", so the SOC could not mark it)."""
    india, ids = stored
    exported = india.run("export", "--any-status").stdout.splitlines()
    assert "mixed.example" in exported
    if command == "show":
        assert _status(india, "mixed.example") == (ids["Mixed.Example"], "new")
        return
    args = ["--note", "CDN"] if command == "false-positive" else ["--queue"]
    done = india.run(*(["triage"] if command != "sight" else []), command, "mixed.example", *args)
    assert done.exit_code == 0, done.stderr
    if command == "false-positive":
        assert _status(india, "Mixed.Example") == (ids["Mixed.Example"], "false-positive")


def test_exact_values_and_ids_still_work(stored: tuple[Agency, dict[str, str]]) -> None:
    india, ids = stored
    assert _status(india, ADDRESS) == (ids[ADDRESS], "new")
    assert _status(india, "Mixed.Example") == (ids["Mixed.Example"], "new")
    assert _status(india, ids[DOMAIN][:20]) == (ids[DOMAIN], "new")
    # An id prefix naming several objects is still refused, as before.
    several = india.run("triage", "accept", "indicator--")
    assert several.exit_code == 2
    assert "names several objects" in several.stderr


def test_not_found_names_the_spelling_searched_for(stored: tuple[Agency, dict[str, str]]) -> None:
    india, _ = stored
    missing = india.run("triage", "accept", "BESTARG.NET")
    assert missing.exit_code == 2
    assert "no object 'BESTARG.NET' in the store (searched for 'bestarg.net')" in missing.stderr
    defanged = india.run("triage", "show", "hxxp://evil[.]example/a")
    assert defanged.exit_code == 2
    assert "(searched for 'http://evil.example/a')" in defanged.stderr
    # Typed in its canonical spelling already: nothing more to say.
    plain = india.run("triage", "reject", "nothing.example")
    assert plain.exit_code == 2
    assert "no object 'nothing.example' in the store" in plain.stderr
    assert "searched for" not in plain.stderr
    # All or none: one unknown reference among found ones changes nothing.
    mixed = india.run("triage", "accept", "BESTARG.COM", "BESTARG.NET")
    assert mixed.exit_code == 2
    assert _status(india, DOMAIN)[1] == "new"


def test_a_pasted_value_several_partners_sent_is_decided_for_all(
    partnered: tuple[Agency, Agency],
) -> None:
    """As for the value typed canonically: the decision applies to every object holding it."""
    _, india = partnered
    first, second = indicator(DOMAIN), indicator(DOMAIN)
    put(india, [first], partner="cert-fr")
    put(india, [second], partner="cert-fr")
    typed = india.run("triage", "accept", "BestArg[.]Com", "--json")
    canonical = india.run("triage", "reject", DOMAIN, "--json")
    assert typed.exit_code == 0 and canonical.exit_code == 0, typed.stderr + canonical.stderr
    assert sorted(typed.json()["object_ids"]) == sorted(canonical.json()["object_ids"])
    assert sorted(typed.json()["object_ids"]) == sorted([first["id"], second["id"]])


def test_sight_takes_a_pasted_value(stored: tuple[Agency, dict[str, str]]) -> None:
    india, ids = stored
    sent = india.run(
        "sight",
        "185.178.209[.]193",
        "--queue",
        "--first-seen",
        "2026-01-11T08:00:00Z",
        "--last-seen",
        "2026-01-11T09:00:00Z",
        "--json",
    )
    assert sent.exit_code == 0, sent.stderr
    assert [s["sighting_of_ref"] for s in sent.json()["sightings"]] == [ids[ADDRESS]]
    missing = india.run("sight", "BESTARG.NET", "--queue")
    assert missing.exit_code == 2
    assert "(searched for 'bestarg.net')" in missing.stderr
