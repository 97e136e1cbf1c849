"""ingest_files end to end: defaults, merging, guardrails, personal data, verdicts, hostile."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_exchange.errors import ExitCode, UsageError
from cti_exchange.ingest import IngestVerdict, ingest_files
from cti_exchange.ingest_settings import IngestOptions
from cti_exchange.stix.tlp import Tlp, tlp_of
from cti_exchange.stix.validate import validate_bundle

from .conftest import (
    IDENTITY,
    IngestText,
    bundle_of,
    indicators,
    make_context,
    oasis_validate,
    patterns,
)


def test_csv_with_every_optional_column(ingest_text: IngestText) -> None:
    content = (
        "value,type,tlp,confidence,description,valid_from,valid_until,labels,"
        "kill_chain_phases,reference,incident id\n"
        "evil.example,domain,TLP:GREEN,high,C2 domain,2025-01-01,2025-02-01T00:00:00Z,"
        "malicious-activity;attribution,mitre-attack:command-and-control,"
        "https://cert.example/advisory,INC-42\n"
    )
    result = ingest_text(content, "rows.csv")
    assert result.verdict is IngestVerdict.ALL_ACCEPTED, result.rejections
    (indicator,) = indicators(result)
    assert indicator["pattern"] == "[domain-name:value = 'evil.example']"
    assert tlp_of(indicator) is Tlp.GREEN
    assert indicator["confidence"] == 85
    assert indicator["valid_from"] == "2025-01-01T00:00:00.000Z"
    assert indicator["valid_until"] == "2025-02-01T00:00:00.000Z"
    assert indicator["indicator_types"] == ["malicious-activity", "attribution"]
    assert indicator["kill_chain_phases"] == [
        {"kill_chain_name": "mitre-attack", "phase_name": "command-and-control"}
    ]
    assert {"source_name": "CERT-FR", "external_id": "INC-42", "description": "incident"} in (
        indicator["external_references"]
    )
    assert any(w.code == "expired" for w in result.warnings)
    oasis_validate(bundle_of(result))


def test_every_ioc_type_becomes_valid_stix(ingest_text: IngestText) -> None:
    rows = [
        "1.2.3.4",
        "2001:db8:0:0:0:0:0:1",
        "45.33.0.0/16",
        "2001:db8::/48",
        "45.33.2.1:53",
        "evil.example",
        "http://evil.example/a",
        "abuse@evil.example",
        "ab" * 16,
        "ab" * 20,
        "ab" * 32,
        "ab" * 64,
        "payload.exe",
        "CVE-2021-44228",
    ]
    rule = '"rule demo\n{\n  strings: $a = ""x""\n  condition: $a\n}"'
    result = ingest_text("value\n" + "\n".join(rows) + "\n" + rule + "\n", "all.csv")
    assert result.rejected_count == 0, result.rejections
    kinds = set(result.accepted_by_type)
    assert kinds == {
        "ipv4-addr",
        "ipv6-addr",
        "ipv4-cidr",
        "ipv6-cidr",
        "ipv4-port",
        "domain-name",
        "url",
        "email-addr",
        "md5",
        "sha1",
        "sha256",
        "sha512",
        "file-name",
        "cve",
        "yara",
    }
    vulnerability = next(o for o in result.objects if o["type"] == "vulnerability")
    assert vulnerability["name"] == "CVE-2021-44228"
    yara = next(o for o in result.objects if o.get("pattern_type") == "yara")
    assert yara["name"] == "demo"
    oasis_validate(bundle_of(result))


def test_duplicates_merge_and_the_stricter_tlp_wins(ingest_text: IngestText) -> None:
    content = "value,tlp,confidence\n1.2.3.4,green,40\n1.2.3[.]4,amber+strict,70\n1.2.3.4,,10\n"
    result = ingest_text(content, "dups.csv")
    (indicator,) = indicators(result)
    assert tlp_of(indicator) is Tlp.AMBER_STRICT
    assert indicator["confidence"] == 70
    assert result.duplicates_merged == 2


def test_same_value_same_agency_same_id(ingest_text: IngestText) -> None:
    first = indicators(ingest_text("evil.example\n"))[0]
    again = indicators(
        ingest_text("EVIL.example.\n", context=make_context(now=make_context().now.replace(year=2026)))
    )[0]
    assert first["id"] == again["id"] and again["modified"] > first["modified"]


def test_default_tlp_is_announced_and_never_clear(ingest_text: IngestText) -> None:
    result = ingest_text("1.2.3.4\n")
    assert tlp_of(result.objects[0]) is Tlp.AMBER
    (announcement,) = [w for w in result.warnings if w.code == "default-tlp"]
    assert "TLP:AMBER" in announcement.reason
    with pytest.raises(UsageError):
        make_context(default_tlp=Tlp.CLEAR)


def test_tlp1_maps_and_unknown_tlp_is_rejected(ingest_text: IngestText) -> None:
    result = ingest_text("value,tlp\n1.2.3.4,WHITE\n5.6.7.8,purple\n", "tlp.csv")
    assert tlp_of(result.objects[0]) is Tlp.CLEAR
    (rejection,) = result.rejections
    assert rejection.code == "invalid-tlp" and rejection.line == 3 and rejection.field == "tlp"


def test_false_positives_warn_and_strict_rejects(ingest_text: IngestText) -> None:
    content = "10.1.2.3\n127.0.0.1\n169.254.1.1\n0.0.0.0\n::1\nwww.google.com\n192.0.2.1\nx.test\n"
    relaxed = ingest_text(content)
    codes = [w.code for w in relaxed.warnings if w.code != "default-tlp"]
    assert codes == [
        "private-ip",
        "loopback-ip",
        "link-local-ip",
        "unspecified-ip",
        "loopback-ip",
        "benign-domain",
    ]
    assert len(relaxed.objects) == 8  # documentation values pass silently
    strict = ingest_text(content, strict=True)
    assert len(strict.objects) == 2 and strict.rejected_count == 6
    assert strict.verdict is IngestVerdict.SOME_REJECTED


def test_personal_data_is_withheld_unless_kept(ingest_text: IngestText) -> None:
    content = (
        "value,description\njohn.doe@example.org,seen\nabuse@evil.example,role mailbox\n"
        "+33 6 12 34 56 78,call\nevil.example,ask jane.roe@corp.example or +91 22 2345 6789\n"
    )
    withheld = ingest_text(content, "pd.csv")
    assert withheld.accepted_by_type == {"email-addr": 1, "domain-name": 1}
    assert sum(w.code == "personal-data" for w in withheld.warnings) == 3
    domain = next(o for o in withheld.objects if "domain-name" in o["pattern"])
    assert "jane.roe" not in domain["description"] and "+91" not in domain["description"]
    kept = ingest_text(content, "pd.csv", keep_personal_data=True)
    assert kept.accepted_by_type == {"email-addr": 2, "domain-name": 1}
    assert [r.code for r in kept.rejections] == ["unrecognised"]  # a phone has no STIX type


@pytest.mark.parametrize(
    ("content", "verdict"),
    [
        ("1.2.3.4\n", IngestVerdict.ALL_ACCEPTED),
        ("1.2.3.4\nnot-an-indicator\n", IngestVerdict.SOME_REJECTED),
        ("nothing-here\n", IngestVerdict.NOTHING_USABLE),
    ],
)
def test_verdicts_and_exit_codes(ingest_text: IngestText, content: str, verdict: IngestVerdict) -> None:
    result = ingest_text(content)
    assert result.verdict is verdict
    assert (
        result.verdict.exit_code
        == {
            IngestVerdict.ALL_ACCEPTED: ExitCode.OK,
            IngestVerdict.SOME_REJECTED: ExitCode.PARTIAL,
            IngestVerdict.NOTHING_USABLE: ExitCode.INPUT,
        }[verdict]
    )


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x01\x02\xff" * 1000,
        b"{" * 100_000,
        b'{"type": "bundle", "objects": [{"type": "indicator"',
        "value\n" + "x" * (5 * 1024 * 1024) + "\n",
        "évil.example\n".encode("latin-1"),
    ],
)
def test_hostile_input_is_reported_not_raised(ingest_text: IngestText, content: bytes | str) -> None:
    result = ingest_text(content)
    assert result.verdict is not IngestVerdict.ALL_ACCEPTED or result.objects
    for remark in [*result.rejections, *result.warnings]:
        assert "\n" not in str(remark) and len(remark.value or "") < 200


def test_many_rejections_are_counted_but_not_all_kept(ingest_text: IngestText) -> None:
    result = ingest_text("bad\n" * 50 + "1.2.3.4\n", max_reported=10)
    assert result.rejected_count == 50 and len(result.rejections) == 10
    assert result.rejections_by_code == {"unrecognised": 50}


def test_stix_passthrough_keeps_objects_and_marks_them(ingest_text: IngestText) -> None:
    bundle = {
        "type": "bundle",
        "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        "objects": [
            {
                "type": "malware",
                "spec_version": "2.1",
                "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
                "created": "2024-01-01T00:00:00.000Z",
                "modified": "2024-01-01T00:00:00.000Z",
                "name": "Poison Ivy",
                "is_family": True,
                "created_by_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
                "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],
            },
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--31b940d4-6f7f-459a-80ea-9c1f17b5891c",
                "created": "2024-01-01T00:00:00.000Z",
                "modified": "2024-01-01T00:00:00.000Z",
                "pattern": "[ipv4-addr:value = '1.2.3.4'",
                "pattern_type": "stix",
                "valid_from": "2024-01-01T00:00:00Z",
            },
            {
                "type": "relationship",
                "spec_version": "2.1",
                "id": "relationship--31b940d4-6f7f-459a-80ea-9c1f17b5891d",
                "created": "2024-01-01T00:00:00.000Z",
                "modified": "2024-01-01T00:00:00.000Z",
                "relationship_type": "indicates",
                "source_ref": "indicator--31b940d4-6f7f-459a-80ea-9c1f17b5891c",
                "target_ref": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
            },
        ],
    }
    result = ingest_text(json.dumps(bundle), "b.json")
    (malware,) = result.objects
    assert malware["object_marking_refs"] == [Tlp.GREEN.marking_id]  # TLP 1.0 GREEN -> 2.0
    assert malware["created_by_ref"] == "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"
    assert [r.code for r in result.rejections] == ["invalid-pattern", "dangling-reference"]
    assert result.rejections[0].where is not None
    assert result.rejections[0].where.startswith("objects[1] indicator--")


def test_unrelated_files_keep_their_own_reports(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("1.2.3.4\n")
    (tmp_path / "b.csv").write_text("value\nbad\n")
    result = ingest_files([tmp_path / "a.txt", tmp_path / "b.csv", tmp_path / "missing"], make_context())
    assert result.formats == {str(tmp_path / "a.txt"): "text", str(tmp_path / "b.csv"): "csv"}
    assert [(r.file.rsplit("/", 1)[-1], r.code) for r in result.rejections] == [
        ("b.csv", "unrecognised"),
        ("missing", "unreadable-file"),
    ]
    assert result.objects[0]["created_by_ref"] == IDENTITY["id"]


def test_parallel_reading_gives_the_same_result(tmp_path: Path) -> None:
    lines = ["value,tlp"] + [f"10.{i // 250}.{i % 250}.1,green" for i in range(3000)]
    lines += ["bad", "10.0.0.1,red"]  # a rejection, and a duplicate across parts
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    wide = tmp_path / "big-utf16.csv"
    wide.write_text("\n".join(lines) + "\n", encoding="utf-16")  # read in one piece
    for source in (path, wide):
        one = ingest_files([source], make_context(), IngestOptions(workers=1))
        two = ingest_files([source], make_context(), IngestOptions(workers=3, parallel_min_bytes=1))
        assert one.objects == two.objects
        assert [str(r) for r in one.rejections] == [str(r) for r in two.rejections]
        assert one.warnings_by_code == two.warnings_by_code
        assert one.duplicates_merged == two.duplicates_merged == 1


_FIELD = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["1.2.3.4", "hxxp://a[.]b/c", "ab" * 16, "x@y.example", "::1", "10.0.0.0/8", "amber",
         "CVE-2024-1234", "rule r { condition: true }", "[file:name = 'x']", "2024-01-01", "'",
         "\\", "\u202e", "evil[.]example", "1.2.3.4:99999", "ip-dst", "tlp:red", "high", "200"]
    ),
)  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_FIELD, min_size=1, max_size=11), max_size=8))
def test_random_rows_never_raise(ingest_text: IngestText, rows: list[list[str]]) -> None:
    """Any CSV row reaches a verdict, and whatever is accepted makes a valid bundle."""
    header = "value,type,tlp,confidence,description,valid_from,valid_until,labels,phase,reference,case"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header.split(","))
    writer.writerows(rows)
    for name in ("rows.csv", "rows.txt"):
        result = ingest_text(buffer.getvalue().encode("utf-8", "surrogatepass"), name)
        if result.objects:
            assert validate_bundle(bundle_of(result)) == []


_STIX_OR_MISP_LEAF = st.none() | st.booleans() | st.integers(-5, 200) | st.text(max_size=8) | (
    st.sampled_from(
        ["indicator", "malware", "relationship", "marking-definition", "2.1", "2.0", "tlp",
         "amber", "tlp:red", "tlp:ex:chr", "indicator--6b1c0f5e-1f0a-4c3e-9a51-3f0b7d1c2e44",
         "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", "2024-01-01T00:00:00Z",
         "[ipv4-addr:value = '10.0.0.1']", "[email-addr:value = 'jo@x.example']", "stix",
         "ip-dst", "filename|md5", "1.2.3.4|80", "new-sdo", "x-foo"]
    )
)  # fmt: skip
_STIX_OR_MISP_KEYS = st.sampled_from(
    ["type", "id", "spec_version", "created", "modified", "objects", "object_marking_refs",
     "granular_markings", "marking_ref", "definition_type", "definition", "tlp", "extensions",
     "pattern", "pattern_type", "valid_from", "labels", "source_ref", "target_ref", "Event",
     "Attribute", "Object", "Tag", "name", "value", "to_ids", "uuid", "info", "distribution"]
)  # fmt: skip
_STIX_OR_MISP = st.recursive(
    _STIX_OR_MISP_LEAF,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(_STIX_OR_MISP_KEYS, c, max_size=7),
    max_leaves=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_STIX_OR_MISP, wrapper=st.sampled_from(["bundle", "event", "response", "raw"]))
def test_random_stix_and_misp_documents_never_raise(
    ingest_text: IngestText, document: object, wrapper: str
) -> None:
    if wrapper == "bundle":
        objects = document if isinstance(document, list) else [document]
        document = {"type": "bundle", "id": "bundle--6b1c0f5e-1f0a-4c3e-9a51-3f0b7d1c2e48",
                    "objects": objects}  # fmt: skip
    elif wrapper in ("event", "response"):
        document = {"Event": document} if wrapper == "event" else {"response": [document]}
    for input_format in (None, "stix", "misp"):
        result = ingest_text(json.dumps(document), "doc.json", format=input_format, strict=True)
        if result.objects:
            assert validate_bundle(bundle_of(result)) == []


def test_rules_and_patterns_are_not_refanged(ingest_text: IngestText) -> None:
    content = (
        'value\n"rule r { strings: $a = /evil(.)example/ condition: $a }"\n'
        "\"[file:name = 'a[.]b']\"\n"
        "evil[.]example\n"
    )
    result = ingest_text(content, "rules.csv")
    assert result.rejected_count == 0, result.rejections
    assert patterns(result) == {
        "rule r { strings: $a = /evil(.)example/ condition: $a }",
        "[file:name = 'a[.]b']",
        "[domain-name:value = 'evil.example']",
    }


_SAMPLE = "b45bc47b705c7c7ce66c8d8ada89d6f358667ccd341f7a0df82cc39046b82bf0"


def test_a_type_word_in_a_longer_label_does_not_make_host_port_a_url(ingest_text: IngestText) -> None:
    """Unit 42's VenomRAT list types the C2s it found on Pastebin `C2 @ Pastebin URL`: the value
    is the raw-TCP C2 `2.tcp.eu.ngrok.io:12002`, which was shared as the invented URL
    `http://2.tcp.eu.ngrok.io:12002/` (HTTP rules and blocklist entries that never match)."""
    rows = [
        ("C2 @ Pastebin URL", "2.tcp.eu.ngrok.io:12002"),  # line 2
        ("C2 @ Pastebin URL", "94.46.175.132:45807"),
        ("C2 @ Pastebin URL", "bomba1[.]ddns[.]net"),  # refanged before its type is read
        ("C2 @ Pastebin URL", "[2001:db8::1]:8443"),  # line 5
        ("C2 @ Pastebin URL", "evil.example/gate.php"),  # a path: a URL, http:// added as documented
        ("C2 @ Pastebin URL", "https://pastebin.com/raw/SB9rQiH4"),
        ("URL", "c2.example:8080"),  # an exact type name is followed as given
        ("url", "c2.example/panel"),
    ]
    content = "SHA256,Type,C2\n" + "".join(f"{_SAMPLE},{kind},{value}\n" for kind, value in rows)
    result = ingest_text(content, "venomrat.csv")
    assert result.verdict is IngestVerdict.ALL_ACCEPTED, result.rejections
    assert patterns(result) == {
        f"[file:hashes.'SHA-256' = '{_SAMPLE}']",
        "[network-traffic:dst_ref.value = '2.tcp.eu.ngrok.io' AND network-traffic:dst_port = 12002]",
        "[network-traffic:dst_ref.value = '94.46.175.132' AND network-traffic:dst_port = 45807]",
        "[domain-name:value = 'bomba1.ddns.net']",
        "[network-traffic:dst_ref.value = '2001:db8::1' AND network-traffic:dst_port = 8443]",
        "[url:value = 'http://evil.example/gate.php']",
        "[url:value = 'https://pastebin.com/raw/SB9rQiH4']",
        "[url:value = 'http://c2.example:8080/']",
        "[url:value = 'http://c2.example/panel']",
    }
    weak = [w for w in result.warnings if w.code == "weak-type-hint"]
    assert [(w.line, w.field) for w in weak] == [(2, "C2"), (3, "C2"), (4, "C2"), (5, "C2")]
    kept = ["domain-port", "ipv4-port", "domain-name", "ipv6-port"]
    assert all(f"kept as {own} rather" in w.reason for w, own in zip(weak, kept, strict=True))
    assert str(weak[0]).endswith(
        "venomrat.csv, line 2: C2: the type 'C2 @ Pastebin URL' names url only inside a longer "
        "label, and this value has no scheme and no path: kept as domain-port rather than an "
        "invented url [2.tcp.eu.ngrok.io:12002]"
    )
    oasis_validate(bundle_of(result))


def test_a_weak_url_hint_from_a_csv_header_or_a_text_label_gives_way_too(ingest_text: IngestText) -> None:
    """The rule lives in conversion, so it holds wherever the label comes from: a column named
    `C2 URL`, a `Label: value` line, a section heading."""
    csv_result = ingest_text("C2 URL\n7.tcp.eu.ngrok.io:18746\nhxxp://c2[.]example/x\n", "c2.csv")
    text_result = ingest_text(
        "C2 URL: 5.tcp.eu.ngrok.io:17844\n# C2 found at Pastebin URLs\n193.161.193.99:31780\n",
        "c2.txt",
        format="text",
    )
    assert patterns(csv_result) == {
        "[network-traffic:dst_ref.value = '7.tcp.eu.ngrok.io' AND network-traffic:dst_port = 18746]",
        "[url:value = 'http://c2.example/x']",
    }
    assert patterns(text_result) == {
        "[network-traffic:dst_ref.value = '5.tcp.eu.ngrok.io' AND network-traffic:dst_port = 17844]",
        "[network-traffic:dst_ref.value = '193.161.193.99' AND network-traffic:dst_port = 31780]",
    }
    assert [(w.line, w.code) for w in csv_result.warnings if w.code == "weak-type-hint"] == [
        (2, "weak-type-hint")
    ]
    assert [(w.line, w.code) for w in text_result.warnings if w.code == "weak-type-hint"] == [
        (1, "weak-type-hint"),
        (3, "weak-type-hint"),
    ]
