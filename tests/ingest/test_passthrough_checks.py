"""STIX input gets the checks our own indicators get (helper-56's reproductions, bugs 2, 3, 5).

- The false-positive guardrails run on `ISSUBSET` comparisons of addresses (the form
  `convert` itself writes a CIDR in) and on the `value` of ipv4-addr, ipv6-addr, domain-name
  and url observables, with the same outcome as for `=`: a warning, a rejection with --strict.
- An individual's e-mail address compared as an email-message's sender or recipient withholds
  the indicator, and object names are scrubbed like other free text.
- The summary warnings count only the objects that are shared, and references to rejected or
  withheld objects are removed wherever they are, nested ones included.

The corpus files are the ones of tests/data/corpus (see its SOURCES.md); the small bundles are
written by the tests.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_exchange.readers.warning_list import bundled_warning_lists
from cti_exchange.stix.guardrails import Guardrails
from cti_exchange.stix.ioc_types import IocType
from cti_exchange.stix.passthrough import PassthroughPreparer, PassthroughSettings
from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency, CliResult, run_cli

from .conftest import CORPUS, IDENTITY, oasis_validate

APT1 = CORPUS / "stix21" / "oasis-apt1.json"
PAID_RANSOM = CORPUS / "stix21-markings-extensions" / "incident-impact-paid_ransom.json"
TIMES = {"created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z"}


def _id(kind: str, n: int) -> str:
    return f"{kind}--00000000-0000-4000-8000-{n:012d}"


def _indicator(n: int, pattern: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": _id("indicator", n),
        **TIMES,
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
        **properties,
    }


def _sco(kind: str, n: int, value: str, **properties: Any) -> dict[str, Any]:
    return {"type": kind, "spec_version": "2.1", "id": _id(kind, n), "value": value, **properties}


def _write(tmp_path: Path, name: str, objects: list[dict[str, Any]]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"type": "bundle", "id": _id("bundle", 0), "objects": objects}))
    return str(path)


def _codes(remarks: list[dict[str, Any]]) -> list[str]:
    return sorted(remark["code"] for remark in remarks)


def _convert(agency: Agency, tmp_path: Path, source: str, *options: str) -> tuple[CliResult, list[Any]]:
    out = tmp_path / "out.json"
    result = agency.run("convert", source, "-o", str(out), "--json", *options)
    assert result.exit_code in (0, 1), result.stderr
    bundle = json.loads(out.read_text())
    oasis_validate(bundle)
    return result, bundle["objects"]


# -- bug 2: ISSUBSET comparisons and observables ---------------------------------------------


CIDR_CODES = ["broad-range", "broad-range", "private-ip"]


def test_own_cidr_output_fed_back_keeps_its_guardrails(cert_fr: Agency, tmp_path: Path) -> None:
    source = tmp_path / "cidr.txt"
    source.write_text("10.0.0.0/8\n223.166.0.0/15\n192.168.10.0/24\n")
    from_text = cert_fr.run("validate", "--strict", str(source), "--json")
    assert from_text.exit_code == 6
    assert _codes(from_text.json()["rejections"]) == CIDR_CODES

    bundle = tmp_path / "bundle.json"
    assert cert_fr.run("convert", str(source), "-o", str(bundle)).exit_code == 0
    patterns = sorted(
        o["pattern"] for o in json.loads(bundle.read_text())["objects"] if o["type"] == "indicator"
    )
    assert patterns == [
        "[ipv4-addr:value ISSUBSET '10.0.0.0/8']",
        "[ipv4-addr:value ISSUBSET '192.168.10.0/24']",
        "[ipv4-addr:value ISSUBSET '223.166.0.0/15']",
    ]
    warned = cert_fr.run("validate", str(bundle), "--json")
    assert warned.exit_code == 0
    assert _codes([w for w in warned.json()["warnings"] if w.get("field") == "pattern"]) == CIDR_CODES
    strict = cert_fr.run("validate", "--strict", str(bundle), "--json")
    report = strict.json()
    # Only our identity, which the bundle carries, is left: nothing to share, as push says.
    assert strict.exit_code == 6 and report["accepted_by_type"] == {"identity": 1}, strict.stdout
    assert _codes(report["rejections"]) == CIDR_CODES
    assert "compares ipv4-addr:value ISSUBSET '10.0.0.0/8'" in report["rejections"][0]["reason"]


@pytest.mark.parametrize("operator", ["=", "ISSUBSET"])
def test_apt1_cidrs_are_flagged_whichever_operator_writes_them(tmp_path: Path, operator: str) -> None:
    """APT1's four indicators on /15 networks (`ipv4-addr:value = '223.166.0.0/15'`), and the
    same file with them written as STIX 2.1 writes a CIDR test (ISSUBSET)."""
    text = re.sub(r"ipv4-addr:value = ('[0-9.]+/15')", rf"ipv4-addr:value {operator} \1", APT1.read_text())
    assert len(re.findall(rf"ipv4-addr:value {operator} '[0-9.]+/15'", text)) == 4
    source = tmp_path / "apt1.json"
    source.write_text(text)
    report = run_cli("validate", str(source), "--json").json()
    assert report["warnings_by_code"].get("broad-range") == 4, report["warnings_by_code"]
    strict = run_cli("validate", "--strict", str(source), "--json").json()
    assert strict["rejections_by_code"] == {"broad-range": 4, "dangling-reference": 4}


def _observables() -> list[dict[str, Any]]:
    return [
        _sco("ipv4-addr", 1, "10.0.0.1"),
        _sco("ipv4-addr", 2, "0.0.0.0/0"),
        _sco("ipv6-addr", 3, "fd00::1"),
        _sco("domain-name", 4, "printer.corp"),
        _sco("url", 5, "http://192.168.1.1/admin"),
        _sco("ipv4-addr", 6, "198.51.100.7"),  # documentation: silent
        _sco("domain-name", 7, "c2.example.net"),
        {
            "type": "observed-data",
            "spec_version": "2.1",
            "id": _id("observed-data", 8),
            **TIMES,
            "first_observed": "2024-01-01T00:00:00Z",
            "last_observed": "2024-01-01T00:00:00Z",
            "number_observed": 1,
            "object_refs": [_id("ipv4-addr", 1), _id("ipv4-addr", 6)],
        },
    ]


_OBSERVABLE_CODES = ["broad-range", "internal-name", "private-ip", "private-ip", "private-ip"]


def test_false_positive_observables_are_flagged(tmp_path: Path) -> None:
    source = _write(tmp_path, "sco.json", _observables())
    warned = run_cli("validate", source, "--json")
    assert warned.exit_code == 0, warned.stdout
    report = warned.json()
    assert _codes([w for w in report["warnings"] if w.get("field") == "value"]) == _OBSERVABLE_CODES
    assert report["objects"] == 8
    reasons = " | ".join(w["reason"] for w in report["warnings"])
    assert "likely false positive: value '10.0.0.1': in private-use space (RFC 1918)" in reasons

    strict = run_cli("validate", "--strict", source, "--json")
    report = strict.json()
    assert strict.exit_code == 1
    assert _codes(report["rejections"]) == _OBSERVABLE_CODES
    # The observed-data keeps the observable that was not rejected, and says what it lost.
    assert report["objects"] == 3
    (edited,) = [w for w in report["warnings"] if w["code"] == "dangling-reference"]
    assert "object_refs" in edited["reason"] and edited["where"].startswith("objects[7] observed-data--")


def test_push_dry_run_refuses_a_private_observable_under_strict(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    cert_fr, _ = partnered
    source = _write(tmp_path, "sco.json", [_sco("ipv4-addr", 1, "10.0.0.1")])
    assert cert_fr.run("push", source, "--to", "cert-in", "--dry-run").exit_code == 0
    strict = cert_fr.run("push", source, "--to", "cert-in", "--dry-run", "--strict", "--json")
    assert strict.exit_code == 6, strict.stderr
    assert strict.json()["rejections_by_code"] == {"private-ip": 1}, strict.stdout


def test_other_comparisons_and_observable_values_keep_their_outcome(tmp_path: Path) -> None:
    """Negated comparisons name no value to look for; a malformed value is a warning, and a
    rejection with --strict, as INGEST.md says (it stayed a warning then: walkthrough F10)."""
    source = _write(
        tmp_path,
        "other.json",
        [
            _indicator(1, "[ipv4-addr:value NOT ISSUBSET '10.0.0.0/8']"),
            _indicator(2, "[ipv4-addr:value ISSUBSET '10.0.0.1/8']"),  # host bits set
            _sco("domain-name", 3, "domain autuo.xicp.net"),
        ],
    )
    report = run_cli("validate", source, "--json").json()
    assert report["rejected"] == 0 and report["objects"] == 3
    assert report["warnings_by_code"] == {
        "default-tlp": 1,
        "attributed": 1,
        "suspect-pattern-value": 1,
        "suspect-value": 1,
    }
    strict = run_cli("validate", "--strict", source, "--json").json()
    assert strict["objects"] == 1  # the negated comparison
    assert strict["rejections_by_code"] == {"suspect-pattern-value": 1, "suspect-value": 1}


# -- bug 3: e-mail addresses in email-message comparisons and in names ------------------------


@pytest.mark.parametrize(
    "path",
    ["from_ref.value", "sender_ref.value", "to_refs[*].value", "cc_refs[0].value", "bcc_refs[*].value"],
)
def test_individual_email_in_email_message_pattern_and_name_is_withheld(
    cert_fr: Agency, tmp_path: Path, path: str
) -> None:
    source = _write(
        tmp_path,
        "mail.json",
        [
            _indicator(
                1, f"[email-message:{path} = 'john.doe@gmail.com']", name="mail from john.doe@gmail.com"
            ),
            _indicator(
                2,
                f"[email-message:{path} = 'abuse@evil.example.net']",
                name="mail from abuse@evil.example.net",
            ),
        ],
    )
    result, objects = _convert(cert_fr, tmp_path, source)
    assert "john.doe" not in json.dumps(objects)
    (kept,) = [o for o in objects if o["type"] == "indicator"]
    assert kept["id"] == _id("indicator", 2)  # a role mailbox stays, as before
    assert kept["name"] == "mail from abuse@evil.example.net"
    withheld = [w for w in result.json()["warnings"] if w["code"] == "personal-data"]
    assert any("withheld" in w["reason"] and w["where"].startswith("objects[0]") for w in withheld)

    _, kept_all = _convert(cert_fr, tmp_path, source, "--keep-personal-data")
    assert [o["name"] for o in kept_all if o["type"] == "indicator"] == [
        "mail from john.doe@gmail.com",
        "mail from abuse@evil.example.net",
    ]


def test_names_are_scrubbed_like_other_free_text_but_not_observable_values(
    cert_fr: Agency, tmp_path: Path
) -> None:
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": _id("report", 1),
        **TIMES,
        "name": "Phishing sent to jane.roe@example.org, +33 1 23 45 67 89",
        "published": "2024-01-01T00:00:00Z",
        "object_refs": [_id("file", 2)],
    }
    file_name = "invoice for jane.roe@example.org.pdf"
    observable = {"type": "file", "spec_version": "2.1", "id": _id("file", 2), "name": file_name}
    result, objects = _convert(cert_fr, tmp_path, _write(tmp_path, "named.json", [report, observable]))
    by_type = {o["type"]: o for o in objects}
    assert by_type["report"]["name"] == "Phishing sent to [e-mail address removed], [phone number removed]"
    assert by_type["file"]["name"] == file_name
    (warning,) = [w for w in result.json()["warnings"] if w["code"] == "personal-data"]
    assert (
        warning["field"] == "name"
        and "2 item(s) of personal data (e-mail, phone, id, IBAN) removed" in warning["reason"]
    )


# -- bug 5: counts and references --------------------------------------------------------------


def test_incident_core_counts_only_objects_that_are_kept(tmp_path: Path) -> None:
    report = run_cli("validate", str(PAID_RANSOM), "--json").json()
    assert report["objects"] == 1  # the task; both impacts are rejected
    assert report["rejections_by_code"] == {"invalid-object": 2}
    reasons = {w["code"]: w["reason"] for w in report["warnings"]}
    assert reasons["default-tlp"].startswith("1 object(s) had no TLP marking")
    assert reasons["attributed"].startswith("1 object(s) had no created_by_ref")


def test_incident_task_does_not_refer_to_rejected_impacts(cert_fr: Agency, tmp_path: Path) -> None:
    result, objects = _convert(cert_fr, tmp_path, str(PAID_RANSOM))
    (task,) = [o for o in objects if o["type"] == "task"]
    # Its one state change was between the two rejected impacts: nothing is left of it.
    assert "changed_objects" not in task
    assert task["name"] == "Negotiated Ransomware Payment"
    (edited,) = [w for w in result.json()["warnings"] if w["code"] == "dangling-reference"]
    assert "changed_objects[0].initial_ref, changed_objects[0].result_ref" in edited["reason"]


def test_withheld_email_objects_are_not_counted(tmp_path: Path) -> None:
    source = _write(
        tmp_path,
        "mailboxes.json",
        [
            _sco("email-addr", 1, "john.doe@gmail.com"),
            _sco("email-addr", 2, "jane.roe@gmail.com"),
            _sco("email-addr", 3, "abuse@evil.example.net"),
            {"type": "email-message", "spec_version": "2.1", "id": _id("email-message", 4), "is_multipart": False,
             "from_ref": _id("email-addr", 1), "to_refs": [_id("email-addr", 2), _id("email-addr", 3)],
             "subject": "invoice"},
        ],
    )  # fmt: skip
    report = run_cli("validate", source, "--json").json()
    assert report["objects"] == 2
    reasons = {w["code"]: w["reason"] for w in report["warnings"]}
    assert reasons["default-tlp"].startswith("2 object(s) had no TLP marking")


# -- the core: PassthroughPreparer --------------------------------------------------------------

_GUARDRAILS = Guardrails(bundled_warning_lists())


Issues = list[tuple[int, str, bool]]  # (input index, code, rejected)


def _prepare(
    objects: list[Any], *, strict: bool = False, keep_personal_data: bool = False
) -> tuple[list[dict[str, Any]], Issues, PassthroughPreparer]:
    """The objects shared, the issues reported and the preparer (its counts)."""
    issues: Issues = []

    def sink(
        index: int, _id: str | None, code: str, _field: str | None, _reason: str, /, *, rejected: bool
    ) -> None:
        issues.append((index, code, rejected))

    settings_ = PassthroughSettings(
        IDENTITY["id"], Tlp.AMBER, strict=strict, keep_personal_data=keep_personal_data
    )
    preparer = PassthroughPreparer(settings_, _GUARDRAILS, sink)
    return preparer.prepared(json.loads(json.dumps(objects))), issues, preparer


def _relationship(n: int, source: str, target: str) -> dict[str, Any]:
    return {
        "type": "relationship",
        "spec_version": "2.1",
        "id": _id("relationship", n),
        **TIMES,
        "relationship_type": "indicates",
        "source_ref": source,
        "target_ref": target,
    }


def test_references_are_removed_in_nested_objects_and_left_outs_cascade() -> None:
    malware = {"type": "malware", "spec_version": "2.1", "id": _id("malware", 1), **TIMES, "is_family": True,
               "name": "x"}  # fmt: skip
    rejected = _indicator(2, "[ipv4-addr:value = '10.0.0.1']")  # rejected under --strict
    kept = _indicator(3, "[ipv4-addr:value = '198.51.100.1']")
    task = {
        "type": "x-task",
        "id": _id("x-task", 4),
        "spec_version": "2.1",
        **TIMES,
        "changed_objects": [
            {"state": "a", "initial_ref": _id("indicator", 2), "result_ref": _id("indicator", 3)},
            {"state": "b", "initial_ref": _id("indicator", 2)},
            {"state": "c"},
        ],
        "extensions": {"x-ext": {"seen_refs": [_id("indicator", 2)], "note": "n"}},
    }
    objects = [
        malware,
        rejected,
        kept,
        _relationship(5, _id("indicator", 2), _id("malware", 1)),  # left out
        task,
        {"type": "report", "spec_version": "2.1", "id": _id("report", 6), **TIMES, "name": "r",
         "published": "2024-01-01T00:00:00Z", "object_refs": [_id("relationship", 5)]},  # left out in turn
        {"type": "note", "spec_version": "2.1", "id": _id("note", 7), **TIMES, "content": "c",
         "object_refs": [_id("report", 6), _id("malware", 1)]},  # loses the report
    ]  # fmt: skip
    shared, issues, preparer = _prepare(objects, strict=True)
    assert [o["id"] for o in shared] == [
        _id("malware", 1),
        _id("indicator", 3),
        _id("x-task", 4),
        _id("note", 7),
    ]
    assert issues == [
        (1, "private-ip", True),
        (3, "dangling-reference", True),
        (4, "dangling-reference", False),
        (5, "dangling-reference", True),
        (6, "dangling-reference", False),
    ]
    assert shared[2]["changed_objects"] == [{"state": "a", "result_ref": _id("indicator", 3)}, {"state": "c"}]
    assert shared[2]["extensions"] == {"x-ext": {"note": "n"}}
    assert shared[3]["object_refs"] == [_id("malware", 1)]
    # Counted: the four objects shared; the custom x-task is not an SDO, so not attributed.
    assert preparer.default_tlp_count == 4 and preparer.attributed_count == 3


def test_markings_authors_and_ids_still_shared_are_not_removed() -> None:
    rejected_marking = {"type": "marking-definition", "spec_version": "2.1", "id": _id("marking-definition", 1),
                        "created": "2024-01-01T00:00:00.000Z"}  # no definition: rejected  # fmt: skip
    author = {
        "type": "identity",
        "spec_version": "2.1",
        "id": _id("identity", 2),
        **TIMES,
    }  # no name: rejected
    old = _indicator(3, "[ipv4-addr:value = '10.0.0.1']")
    new = {**_indicator(3, "[ipv4-addr:value = '198.51.100.1']"), "modified": "2024-02-01T00:00:00.000Z"}
    relationship = {
        **_relationship(4, _id("indicator", 3), _id("indicator", 3)),
        "created_by_ref": _id("identity", 2),
        "object_marking_refs": [_id("marking-definition", 1), Tlp.GREEN.marking_id],
    }
    shared, issues, _ = _prepare([rejected_marking, author, old, new, relationship], strict=True)
    assert [o["id"] for o in shared] == [_id("indicator", 3), _id("relationship", 4)]
    assert shared[1] == relationship  # another version of the indicator is shared
    assert [code for _, code, _ in issues if code == "dangling-reference"] == []


def test_an_object_nested_too_deeply_to_edit_is_left_out() -> None:
    """Deeper than the recursion limit (JSON input is refused before that: this is the core
    given such an object directly): a rejection, not a crash."""
    nested: dict[str, Any] = {"x_ref": _id("indicator", 1)}
    for _ in range(3000):
        nested = {"a": [nested]}
    deep = {"type": "x-thing", "spec_version": "2.1", "id": _id("x-thing", 2), **TIMES, "deep": nested}
    issues: list[tuple[str, str]] = []

    def sink(
        _index: int, _id: str | None, code: str, _f: str | None, reason: str, /, *, rejected: bool
    ) -> None:
        issues.append((code, reason))

    preparer = PassthroughPreparer(PassthroughSettings(IDENTITY["id"], Tlp.AMBER), _GUARDRAILS, sink)
    assert preparer.prepared([_indicator(1, "[ipv4-addr:value = '1.2.3.4'"), deep]) == []
    assert [code for code, _ in issues] == ["invalid-pattern", "dangling-reference"]
    assert "nested too deeply to remove the references" in issues[1][1]


def test_email_message_loses_the_references_to_withheld_addresses() -> None:
    objects = [
        _sco("email-addr", 1, "john.doe@gmail.com"),
        {"type": "email-message", "spec_version": "2.1", "id": _id("email-message", 2), "is_multipart": False,
         "from_ref": _id("email-addr", 1), "subject": "invoice"},
    ]  # fmt: skip
    shared, issues, preparer = _prepare(objects)
    (message,) = shared
    assert "from_ref" not in message and message["subject"] == "invoice"
    assert [code for _, code, _ in issues] == ["personal-data", "dangling-reference"]
    assert preparer.default_tlp_count == 1
    kept, issues, _ = _prepare(objects, keep_personal_data=True)
    assert len(kept) == 2 and issues == []


def test_stix20_upgrades_count_only_objects_that_are_shared() -> None:
    stix20 = [
        {"type": "indicator", "id": _id("indicator", 1), **TIMES, "labels": ["malicious-activity"],
         "pattern": "[ipv4-addr:value = '198.51.100.1']", "valid_from": "2024-01-01T00:00:00Z"},
        {"type": "indicator", "id": _id("indicator", 2), **TIMES, "labels": ["malicious-activity"],
         "pattern": "[ipv4-addr:value = '198.51.100.1'", "valid_from": "2024-01-01T00:00:00Z"},
    ]  # fmt: skip
    shared, _, preparer = _prepare(stix20)
    assert len(shared) == 1 and preparer.upgraded_count == 1


# -- properties ---------------------------------------------------------------------------------


def _verdict(objects: list[dict[str, Any]], strict: bool) -> tuple[int, list[tuple[str, bool]]]:
    shared, issues, _ = _prepare(objects, strict=strict)
    return len(shared), [(code, rejected) for _, code, rejected in issues]


@st.composite
def _ipv4_networks(draw: st.DrawFn) -> str:
    prefix = draw(st.integers(0, 32))
    address = draw(st.integers(0, 2**32 - 1))
    return str(ipaddress.IPv4Network((address, prefix), strict=False))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cidr=_ipv4_networks(), strict=st.booleans())
def test_an_ipv4_cidr_gets_one_verdict_whichever_way_it_comes(cidr: str, strict: bool) -> None:
    """ISSUBSET, `=` and an ipv4-addr observable holding the CIDR: the verdict of our own
    indicators (Guardrails.check on the normalised CIDR)."""
    hit = _GUARDRAILS.check(IocType.IPV4_CIDR, cidr)
    expected = (0 if hit and strict else 1, [(hit.code, strict)] if hit else [])
    assert _verdict([_indicator(1, f"[ipv4-addr:value ISSUBSET '{cidr}']")], strict) == expected
    assert _verdict([_indicator(1, f"[ipv4-addr:value = '{cidr}']")], strict) == expected
    assert _verdict([_sco("ipv4-addr", 1, cidr)], strict) == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(address=st.ip_addresses(v=6), prefix=st.integers(0, 128))
def test_an_ipv6_cidr_gets_one_verdict_whichever_way_it_comes(
    address: ipaddress.IPv6Address, prefix: int
) -> None:
    network = ipaddress.IPv6Network((address, prefix), strict=False)
    cidr = f"{network.network_address.compressed}/{prefix}"
    if network.network_address.ipv4_mapped is not None:
        cidr = f"::ffff:{network.network_address.ipv4_mapped}/{prefix}"
    hit = _GUARDRAILS.check(IocType.IPV6_CIDR, cidr)
    expected = (0 if hit else 1, [(hit.code, True)] if hit else [])
    assert _verdict([_indicator(1, f"[ipv6-addr:value ISSUBSET '{cidr}']")], True) == expected
    assert _verdict([_sco("ipv6-addr", 1, cidr)], True) == expected


# -- IN sets, LIKE and MATCHES (review by helper-59) ------------------------------------------


def test_each_member_of_an_in_set_gets_the_guardrails(cert_fr: Agency, tmp_path: Path) -> None:
    """`[ipv4-addr:value IN ('10.1.2.3', '45.33.2.1')]` went out unchecked, even with --strict,
    where `= '10.1.2.3'` is refused."""
    source = _write(tmp_path, "in.json", [_indicator(1, "[ipv4-addr:value IN ('10.1.2.3', '45.33.2.1')]")])
    warned = cert_fr.run("validate", source, "--json")
    (hit,) = [w for w in warned.json()["warnings"] if w["code"] == "private-ip"]
    assert warned.exit_code == 0 and "IN (... '10.1.2.3' ...)" in hit["reason"]
    strict = cert_fr.run("validate", "--strict", source, "--json")
    assert strict.exit_code == 6 and _codes(strict.json()["rejections"]) == ["private-ip"]


@pytest.mark.parametrize(
    "pattern",
    [
        "[email-addr:value IN ('abuse@evil.example.net', 'john.smith@gmail.com')]",
        "[email-message:from_ref.value LIKE 'john.smith@gmail.com']",
        "[email-addr:value MATCHES '^john\\\\.smith@gmail\\\\.com$']",
    ],
)
def test_an_individuals_address_in_a_set_or_a_match_is_withheld(
    cert_fr: Agency, tmp_path: Path, pattern: str
) -> None:
    source = _write(
        tmp_path,
        "mail.json",
        [_indicator(1, pattern), _indicator(2, "[email-addr:value LIKE '%@evil.example.net']")],
    )
    result, objects = _convert(cert_fr, tmp_path, source)
    assert [o["id"] for o in objects if o["type"] == "indicator"] == [_id("indicator", 2)]
    assert "john.smith" not in json.dumps(objects)
    assert "personal-data" in _codes(result.json()["warnings"])
    _, kept = _convert(cert_fr, tmp_path, source, "--keep-personal-data")
    assert len([o for o in kept if o["type"] == "indicator"]) == 2
