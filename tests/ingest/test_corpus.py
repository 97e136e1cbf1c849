"""The real public files of tests/data/corpus (see its SOURCES.md): each file's quirks are
checked, and every bundle produced passes the OASIS stix2-validator."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_exchange.ingest import IngestResult, IngestVerdict, ingest_files
from cti_exchange.ingest_settings import IngestOptions
from cti_exchange.stix.tlp import Tlp, tlp_of

from .conftest import CORPUS, bundle_of, indicators, make_context, oasis_validate, patterns

ALL_FILES = sorted(
    p
    for p in CORPUS.rglob("*")
    if p.is_file() and p.parent.name not in ("LICENSES",) and p.name != "SOURCES.md"
)


def _ingest(relative: str, **options: object) -> IngestResult:
    return ingest_files([CORPUS / relative], make_context(), IngestOptions(**options))  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_corpus_file_gives_a_valid_bundle_or_a_clear_report(path: Path) -> None:
    result = ingest_files([path], make_context(), IngestOptions(include_non_ids=True))
    for remark in [*result.rejections, *result.warnings]:
        assert "\n" not in str(remark)
    if result.objects:
        oasis_validate(bundle_of(result))
    else:
        assert result.verdict is IngestVerdict.NOTHING_USABLE


def test_conti_tab_separated_defanged_and_plain_duplicate() -> None:
    result = _ingest("iocs/unit42-Conti_IOCs.txt")
    assert result.accepted_by_type == {"ipv4-addr": 7, "domain-name": 3, "sha256": 44}
    assert result.duplicates_merged == 1  # 185.178.209[.]193 and 185.178.209.193
    assert "[ipv4-addr:value = '185.178.209.193']" in patterns(result)
    first = indicators(result)[0]
    assert first["description"] == "Cobalt Strike C2 communication"
    assert result.verdict is IngestVerdict.ALL_ACCEPTED


def test_gamaredon_sections() -> None:
    result = _ingest("iocs/unit42-Gamaredon_IoCs_DEC2022.txt")
    assert result.accepted_by_type == {
        "domain-name": 596,
        "ipv4-addr": 18,
        "sha256": 241,
        "url": 17,
    }
    assert any(p.startswith("[url:value = 'https://t.me/") for p in patterns(result))


def test_shade_urls_with_several_defanged_dots() -> None:
    result = _ingest("iocs/unit42-Shade-ransomware-URLs-March-and-April-2019.txt")
    assert result.accepted_by_type == {"url": 203}
    assert "[url:value = 'http://333media.co.uk/.tmb/inf.inf']" in patterns(result)
    assert [w.code for w in result.warnings if w.code == "prose"] == ["prose"]  # the header


def test_venomrat_csv_ip_port_and_repeated_hashes() -> None:
    result = _ingest("iocs/unit42-venomrat_iocs.csv")
    assert result.accepted_by_type["ipv4-port"] > 250
    assert result.duplicates_merged > 90  # hashes repeat across rows
    assert result.rejections == []  # line 163's `95.214.26.97:None`: its address (test_unknown_ports.py)
    assert any(w.code == "private-ip" and w.line == 374 for w in result.warnings)


def test_venomrat_c2_found_at_pastebin_keeps_its_own_type() -> None:
    """Rows 426-439 are typed `C2 @ Pastebin URL`: where Unit 42 found the C2, not what it is.
    VenomRAT speaks raw TCP to `host:port`; none of these may become an invented http:// URL."""
    result = _ingest("iocs/unit42-venomrat_iocs.csv")
    # Before: url 22 (10 of them invented from these rows), domain-name 7, ipv4-port 273.
    assert result.accepted_by_type == {
        "domain-name": 8,  # bomba1.ddns.net
        "domain-port": 6,  # ngrok, portmap.host, ply.gg relays
        "ipv4-addr": 1,  # 95.214.26.97:None, line 163
        "ipv4-port": 276,
        "sha256": 308,
        "url": 12,  # the Pastebin pastes themselves (rows typed URL)
    }
    found = patterns(result)
    assert (
        "[network-traffic:dst_ref.value = '2.tcp.eu.ngrok.io' AND network-traffic:dst_port = 12002]" in found
    )
    assert "[network-traffic:dst_ref.value = '94.46.175.132' AND network-traffic:dst_port = 45807]" in found
    assert "[domain-name:value = 'bomba1.ddns.net']" in found
    assert {p for p in found if p.startswith("[url:")} == {
        p for p in found if p.startswith("[url:value = 'https://pastebin.com/raw/")
    }
    assert [w.line for w in result.warnings if w.code == "weak-type-hint"] == list(range(426, 440))


def test_ta551_notes_username_is_not_defanging() -> None:
    result = _ingest("iocs/unit42-2020-07-14-TA551-IOCs-for-IcedID.txt")
    found = patterns(result)
    assert "[domain-name:value = 'ldrglobal.casa']" in found  # defanged, mid-line
    assert "[ipv4-addr:value = '194.5.249.158']" in found
    assert "[file:name = '~446334.exe']" in found  # from C:\Users\[username]\...\~446334.exe
    assert not any("username" in p for p in found)
    assert not any("certificate-07.14.2020.doc" in p for p in found)  # context of a hash


def test_eset_adoc_victim_networks_are_not_ingested() -> None:
    result = _ingest("iocs/eset-evasive_panda-README.adoc")
    assert not any("ISSUBSET" in p for p in patterns(result))
    assert any(w.code == "table-rows" for w in result.warnings)


def test_eset_stantinko_youtube_links_are_urls_not_hosts() -> None:
    result = _ingest("iocs/eset-stantinko-README.adoc")
    found = patterns(result)
    assert "[url:value = 'https://www.youtube.com/watch?v=kS1jXg99WiM']" in found
    assert "[domain-name:value = 'www.youtube.com']" not in found
    assert "[ipv4-addr:value = '3.16.150.123']" in found
    assert any("placeholder" in r.reason for r in result.rejections)  # %RANDOM_GUID%.dll


def test_eset_stantinko_windows_artefacts_are_mutexes_and_registry_keys() -> None:
    """The "Windows Artifacts" section: 11 mutexes under `==== Mutexes`, the mutex name that is
    also the RC4 key under `=== Mutex name and RC4 key`, and 15 registry keys under `==== Windows
    Registry keys`. Before, all 24 one-word lines were rejected as "not a recognised indicator"
    and the 3 keys with spaces in their names were skipped as prose."""
    result = _ingest("iocs/eset-stantinko-README.adoc")
    assert result.accepted_by_type["mutex"] == 12
    assert result.accepted_by_type["windows-registry-key"] == 13
    found = patterns(result)
    assert "[mutex:name = 'Global\\\\BitStreamSvc']" in found
    assert "[mutex:name = '3,141592653589793238462643']" in found
    # HKLM written in full (STIX 2.1 section 6.17), the trailing separator dropped.
    assert (
        "[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\SYSTEM\\\\CurrentControlSet\\\\services\\\\"
        "Bonjoiur Host Controller']" in found
    )
    # Only the two keys given as regular expressions (`[0-9A-F]{4}`) are left out: a literal
    # comparison would never match them.
    artefacts = [r for r in result.rejections if (r.value or "").startswith(("Global\\", "HKLM"))]
    assert [r.line for r in artefacts] == [822, 823]
    assert all("'[0-9A-F]{4}' is a regular expression" in r.reason for r in artefacts)


def test_sednit_plain_sha256_list() -> None:
    result = _ingest("iocs/eset-sednit-samples.sha256")
    assert result.accepted_by_type == {"sha256": 133}
    assert result.verdict is IngestVerdict.ALL_ACCEPTED


def test_stix20_unit42_is_upgraded() -> None:
    result = _ingest("stix20/unit42-2024-02-27-Akira-Ransomware.json")
    assert result.accepted_by_type == {"report": 1, "indicator": 18}
    indicator = indicators(result)[0]
    assert indicator["spec_version"] == "2.1" and indicator["pattern_type"] == "stix"
    assert indicator["indicator_types"] == ["malicious-activity"] and "labels" not in indicator
    assert any(w.code == "stix20-upgraded" for w in result.warnings)


def test_oasis_bare_object_with_tlp1_red_and_unresolved_marking() -> None:
    result = _ingest("stix21/oasis-interop-objectmarking-test.json")
    (campaign,) = result.objects
    assert tlp_of(campaign) is Tlp.RED
    assert campaign["object_marking_refs"][0] == Tlp.RED.marking_id
    assert [w.code for w in result.warnings] == ["unresolved-marking"]


def test_oasis_granular_markings_are_mapped_to_tlp2() -> None:
    result = _ingest("stix21/oasis-using-granular-markings.json")
    refs = {g["marking_ref"] for o in result.objects for g in o.get("granular_markings", ())}
    assert refs <= {level.marking_id for level in Tlp}


def test_poisonivy_value_with_a_space_is_flagged() -> None:
    result = _ingest("stix21/oasis-poisonivy.json")
    assert result.accepted_by_type["indicator"] == 25
    assert any(w.code == "suspect-pattern-value" and "autuo" in w.reason for w in result.warnings)


def test_incident_core_new_sdo_types_pass_through_unless_malformed() -> None:
    """`impact` and `task` are new-sdo extension types and pass; the two impacts also carry an
    extension keyed `monetary`, which STIX 2.1 section 7.3 does not allow (the OASIS validator
    refuses it too), so they are rejected with that reason."""
    result = _ingest("stix21-markings-extensions/incident-impact-paid_ransom.json")
    assert result.accepted_by_type == {"task": 1}
    assert [r.code for r in result.rejections] == ["invalid-object", "invalid-object"]
    assert all("'monetary'" in r.reason for r in result.rejections)


def test_tlp2_marking_file_alone_is_nothing_to_share() -> None:
    result = _ingest("stix21-markings-extensions/tlp2-amber-strict.json")
    assert result.verdict is IngestVerdict.NOTHING_USABLE


def test_medallion_data_is_not_stix() -> None:
    result = _ingest("taxii21/medallion-default_data.json")
    assert [r.code for r in result.rejections] == ["unreadable-file"]


def test_misp_zebrocy_to_ids_false_is_skipped_by_default() -> None:
    result = _ingest("misp/eset-sednit-2018-11-20_Zebrocy.misp.json")
    assert result.verdict is IngestVerdict.NOTHING_USABLE
    # 32 attributes: the 'External analysis' URL (ESET's blog post) is the event's reference.
    assert result.warnings_by_code == {"not-for-detection": 31}


def test_misp_zebrocy_with_non_ids_and_personal_data_withheld() -> None:
    result = _ingest("misp/eset-sednit-2018-11-20_Zebrocy.misp.json", include_non_ids=True)
    assert result.accepted_by_type == {"md5": 5, "sha1": 5, "sha256": 5, "url": 1}  # the C2
    assert result.warnings_by_code["personal-data"] == 11  # email-src / email-dst
    assert {r.code for r in result.rejections} == {"unsupported-type"}  # text attributes
    sha = next(o for o in indicators(result) if "SHA-256" in o["pattern"])
    assert sha["external_references"][0]["external_id"] == "5be1e65d-8198-497b-bdf5-5ec20a016219"
    blog = "https://www.welivesecurity.com/2018/11/20/sednit-whats-going-zebrocy/"
    assert {"source_name": "reference", "url": blog} in sha["external_references"]


def test_misp_cloudmensis_attributes_inside_objects() -> None:
    result = _ingest("misp/eset-cloudmensis.misp.json")
    assert result.accepted_by_type == {"md5": 3, "sha1": 3, "sha256": 3}
    assert all("MISP object file" in o["description"] for o in result.objects)
    # The av-signature objects' `signature` attributes are to_ids text: no STIX mapping.
    assert result.rejections_by_code == {"unsupported-type": 2}


def test_misp_bespin_bare_event() -> None:
    result = _ingest("misp/eset-sshdoor-bespin.misp.json", include_non_ids=True)
    assert result.accepted_by_type == {"sha1": 1, "file-name": 1}
