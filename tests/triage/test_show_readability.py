"""What an analyst reads in `triage show`, `triage review` and `export`, through the CLI on a
real store (a walkthrough found names refused, observables without a value, blank cells and
unlabelled sections)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Agency
from tests.triage.conftest import indicator, put, review_on_a_terminal, stix_object, store_path

IND = "indicator--aaaaaaaa-0000-4000-8000-000000000001"
MAL = "malware--bbbbbbbb-0000-4000-8000-000000000001"
ACTOR = "threat-actor--cccccccc-0000-4000-8000-000000000001"
INF = "infrastructure--eeeeeeee-0000-4000-8000-000000000001"
IP = "ipv4-addr--dddddddd-0000-4000-8000-000000000001"
DOMAIN = "domain-name--dddddddd-0000-4000-8000-000000000002"
FILE = "file--dddddddd-0000-4000-8000-000000000003"
EMOTET_FR = "malware--99999999-0000-4000-8000-000000000001"
EMOTET_UK = "malware--99999999-0000-4000-8000-000000000002"
DECOY = "malware--99999999-0000-4000-8000-000000000003"
SHA = "ab" * 32


def _observable(kind: str, object_id: str, **properties: Any) -> dict[str, Any]:
    return {"type": kind, "spec_version": "2.1", "id": object_id, **properties}


def _relationship(n: int, kind: str, source: str, target: str) -> dict[str, Any]:
    rel_id = f"relationship--ffffffff-0000-4000-8000-{n:012d}"
    return stix_object("relationship", rel_id, relationship_type=kind, source_ref=source, target_ref=target)


@pytest.fixture
def intel(cert_in: Agency) -> Agency:
    """An indicator that indicates a malware used by a threat actor, on an infrastructure made
    of observables; two partners' malware of one name; a malware named like an indicator value."""
    c2 = indicator("c2.example", object_id=IND, modified="2026-01-10T10:00:00.000Z")
    c2["description"] = "Beacon\x1b[2J over HTTPS\nto port 443"
    put(
        cert_in,
        [
            c2,
            stix_object("malware", MAL, name="PoisonIvy", is_family=True, description="A RAT"),
            stix_object("threat-actor", ACTOR, name="APT1", description="Comment Crew"),
            stix_object("infrastructure", INF, name="C2 box"),
            _observable("ipv4-addr", IP, value="198.51.100.7"),
            _observable("domain-name", DOMAIN, value="evil\x1b[31m" + "x" * 200 + ".example"),
            _observable("file", FILE, hashes={"MD5": "0" * 32, "SHA-256": SHA}),
            stix_object("malware", EMOTET_FR, name="Emotet", is_family=True),
            stix_object("malware", DECOY, name="c2.example", is_family=False),
            _relationship(1, "indicates", IND, MAL),
            _relationship(2, "uses", ACTOR, MAL),
            _relationship(3, "uses", MAL, INF),
            _relationship(4, "consists-of", INF, IP),
            _relationship(5, "consists-of", INF, DOMAIN),
            _relationship(6, "consists-of", INF, FILE),
        ],
        partner="cert-fr",
        received_at="2026-01-10T12:00:00.000Z",
    )
    put(
        cert_in,
        [stix_object("malware", EMOTET_UK, name="Emotet", is_family=True)],
        partner="cert-uk",
        received_at="2026-01-11T12:00:00.000Z",
    )
    return cert_in


def _sections(stdout: str) -> dict[str, list[list[str]]]:
    """Plain `triage show` output: each "Title:" line and the tab-separated rows under it."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in stdout.splitlines():
        if line.endswith(":") and "\t" not in line:
            current = sections.setdefault(line[:-1], [])
        elif not line:
            current = None
        elif current is not None:
            current.append(line.split("\t"))
    return sections


def _facts(stdout: str) -> dict[str, str]:
    header, *rows = _sections(stdout)["Object"]
    assert header == ["field", "value"]
    return {row[0]: row[1] for row in rows}


# -- 1. names ------------------------------------------------------------------------------


def test_show_takes_an_unambiguous_name_after_ids_and_values(intel: Agency) -> None:
    actor = intel.run("triage", "show", "APT1", "--json")
    assert actor.exit_code == 0, actor.stderr
    assert actor.json()["id"] == ACTOR
    text = intel.run("triage", "show", "PoisonIvy")
    assert text.exit_code == 0, text.stderr
    assert _facts(text.stdout)["id"] == MAL
    # Ids, id prefixes and values come first: a malware named "c2.example" does not hide the
    # indicator of that value.
    assert intel.run("triage", "show", "c2.example", "--json").json()["id"] == IND
    assert intel.run("triage", "show", IND[:20], "--json").json()["id"] == IND
    assert intel.run("triage", "show", DECOY, "--json").json()["id"] == DECOY
    # Exact: neither a part of the name nor another case.
    for near in ("APT", "apt1"):
        missing = intel.run("triage", "show", near)
        assert missing.exit_code == 2 and "no object" in missing.stderr
        assert "a value or a name" in missing.stderr


def test_a_name_several_objects_share_is_refused_with_their_ids(intel: Agency) -> None:
    shared = intel.run("triage", "show", "Emotet")
    assert shared.exit_code == 2 and shared.stdout == ""
    assert shared.stderr.count("\n") == 1, shared.stderr
    assert "'Emotet' is the name of 2 objects" in shared.stderr
    assert EMOTET_FR in shared.stderr and EMOTET_UK in shared.stderr
    assert "cti-exchange triage list --search Emotet" in shared.stderr
    # A name with a space is quoted for the shell in the hint.
    put(intel, [stix_object("threat-actor", f"threat-actor--{n}", name="Comment Crew") for n in range(5)])
    many = intel.run("triage", "show", "Comment Crew")
    assert many.exit_code == 2 and "is the name of 5 objects" in many.stderr
    assert "and 2 more" in many.stderr and "--search 'Comment Crew'" in many.stderr


def test_the_name_lookup_reads_the_named_index(intel: Agency) -> None:
    from cti_exchange.store.triage_detail import objects_named

    conn = sqlite3.connect(store_path(intel))
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT object_id, revoked FROM objects INDEXED BY objects_current_named "
        "WHERE is_current = 1 AND name IS NOT value AND name = ? ORDER BY rowid LIMIT ?",
        ("Emotet", 3),
    ).fetchall()
    conn.close()
    details = " ".join(row[3] for row in plan)
    assert "USING INDEX objects_current_named (name=?)" in details and "TEMP B-TREE" not in details
    from cti_exchange.store.store import Store

    with Store(store_path(intel)) as store:
        assert [n.object_id for n in objects_named(store.db.conn, "Emotet", 10)] == [EMOTET_FR, EMOTET_UK]


# -- 2. observables ------------------------------------------------------------------------


def test_related_observables_show_their_value_escaped_and_cut(intel: Agency) -> None:
    shown = intel.run("triage", "show", INF)
    assert shown.exit_code == 0, shown.stderr
    header, *rows = _sections(shown.stdout)["Related objects"]
    by_id = {row[3]: row[2] for row in rows}
    assert by_id[IP] == "198.51.100.7"
    assert by_id[FILE] == f"SHA-256:{SHA}"  # a file without a name: its strongest hash
    domain = by_id[DOMAIN]
    assert domain.startswith("evil\\x1b[31mxxx") and domain.endswith("(217 characters)")
    assert "\x1b" not in shown.stdout
    assert header == ["relationship", "type", "name / value", "id", "via", "said by"]
    assert {row[5] for row in rows} == {"cert-fr"}  # who asserts each relationship
    # An observable shown itself has its value too.
    assert _facts(intel.run("triage", "show", IP).stdout)["value"] == "198.51.100.7"


# -- 3, 4, 5. validity, version times, revoked -------------------------------------------


def test_validity_is_shown_only_for_objects_that_have_one(intel: Agency) -> None:
    for ref in (MAL, ACTOR, INF):
        facts = _facts(intel.run("triage", "show", ref).stdout)
        assert "valid" not in facts, (ref, facts)
    facts = _facts(intel.run("triage", "show", IND).stdout)
    assert facts["valid"] == "2026-01-10T10:00:00.000Z to 2099-01-01T00:00:00.000Z"


def test_versions_show_the_objects_own_modified_and_say_no(intel: Agency) -> None:
    later = intel.run("triage", "show", MAL, "--json").json()["object"]
    put(intel, [dict(later, modified="2026-02-01T08:30:00.5Z", revoked=True)], partner="cert-fr")
    shown = intel.run("triage", "show", MAL)
    assert shown.exit_code == 0, shown.stderr
    header, *rows = _sections(shown.stdout)["Versions"]
    assert header[:3] == ["version", "current", "revoked"]
    assert [row[:3] for row in rows] == [
        ["2026-02-01T08:30:00.5Z", "yes", "yes"],
        ["2026-01-10T10:00:00.000Z", "no", "no"],
    ]
    assert "000000Z" not in shown.stdout.split("STIX object:")[0]
    # The JSON gives the version as a STIX timestamp with millisecond precision, as `modified`
    # and every other timestamp are written (the store's microsecond key is not output), and
    # the object's own text beside it.
    versions = intel.run("triage", "show", MAL, "--json").json()["versions"]
    assert [(v["version"], v["modified"]) for v in versions] == [
        ("2026-02-01T08:30:00.500Z", "2026-02-01T08:30:00.5Z"),
        ("2026-01-10T10:00:00.000Z", "2026-01-10T10:00:00.000Z"),
    ]
    # Finer than a millisecond, the version keeps the digits the object has.
    put(intel, [dict(later, modified="2026-03-01T08:30:00.123456Z")], partner="cert-fr")
    newest = intel.run("triage", "show", MAL, "--json").json()["versions"][0]
    assert newest["version"] == newest["modified"] == "2026-03-01T08:30:00.123456Z"


# -- 6. section headings in plain output --------------------------------------------------


def test_plain_output_labels_every_section(intel: Agency) -> None:
    put(intel, [indicator("c2.example", tlp="green")], partner="cert-uk")
    put(
        intel,
        [
            stix_object(
                "sighting", "sighting--11111111-0000-4000-8000-000000000001", sighting_of_ref=IND, count=3
            )
        ],
        partner="cert-uk",
    )
    assert intel.run("triage", "accept", IND, "--note", "seen in proxy logs").exit_code == 0
    shown = intel.run("triage", "show", IND)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.startswith("Object:\nfield\tvalue\n")
    sections = _sections(shown.stdout)
    expected_headers = {
        "Object": "field",
        "Sources and signatures": "partner",
        "Same value from other sources": "id",
        "Versions": "version",
        "Related objects": "relationship",
        "Sightings": "sighting",
        "Decisions": "decision",
    }
    for title, first_column in expected_headers.items():
        assert title in sections, (title, shown.stdout)
        assert sections[title][0][0] == first_column and len(sections[title]) >= 2, title
    assert "\n\nSTIX object:\n{" in shown.stdout


# -- 7. review ---------------------------------------------------------------------------


def test_review_shows_the_description_and_context_before_asking(intel: Agency) -> None:
    output, status = review_on_a_terminal(
        intel, "--search", "c2.example", "--type", "domain-name", keys=(b"q",)
    )
    assert status == 0, output.decode(errors="replace")
    text = output.decode()
    before_keys = text.split("[a]ccept")[0]
    assert "description" in before_keys
    assert "Beacon\\x1b[2J over HTTPS to port 443" in before_keys  # escaped, one line
    assert "\x1b[2J" not in text
    for context in ("domain-name", "c2.example", "TLP:AMBER", "cert-fr", "70", "2099-01-01T00:00:00.000Z"):
        assert context in before_keys, context
    related = next(line for line in before_keys.splitlines() if "related" in line)
    assert "malware PoisonIvy" in related and "threat-actor APT1" in related
    assert "Reviewed 0" in text


# -- 8. export ---------------------------------------------------------------------------


def test_export_counts_values_in_the_singular_and_plural(cert_in: Agency, tmp_path: Path) -> None:
    put(cert_in, [indicator("one.example"), indicator("two.example")])
    assert cert_in.run("triage", "accept", "one.example").exit_code == 0
    single = cert_in.run("export", "--format", "plain", "-o", str(tmp_path / "one.txt"))
    assert single.exit_code == 0, single.stderr
    assert f"wrote 1 value to {tmp_path / 'one.txt'}" in single.stdout
    assert single.stderr == ""  # nothing for cron to mail (scripts-and-cron walkthrough, stop 28)
    assert (tmp_path / "one.txt").read_text().splitlines()[1].endswith(": 1 value")  # the file's head
    assert cert_in.run("triage", "accept", "two.example").exit_code == 0
    both = cert_in.run("export", "--format", "plain", "-o", str(tmp_path / "two.txt"))
    assert f"wrote 2 values to {tmp_path / 'two.txt'}" in both.stdout


def test_a_relationship_another_partner_asserts_says_who(intel: Agency) -> None:
    """Found on a walkthrough: cert-uk related cert-fr's indicator to a malware, and `triage
    show` listed "-> indicates" with nothing saying who claimed it."""
    put(intel, [_relationship(9, "indicates", IND, EMOTET_UK)], partner="cert-uk")
    related = intel.run("triage", "show", IND, "--json").json()["related"]
    by_target = {r["object_id"]: r["partner"] for r in related if r["via"] is None}
    assert by_target[EMOTET_UK] == "cert-uk" and by_target[MAL] == "cert-fr"
    rows = _sections(intel.run("triage", "show", IND).stdout)["Related objects"][1:]
    assert [row[5] for row in rows if row[3] == EMOTET_UK] == ["cert-uk"]
