"""Mutex names and Windows registry keys: host artefacts an EDR or a host scanner looks for.

ESET's IOC pages list them (tests/data/corpus/iocs/eset-stantinko-README.adoc, "Windows
Artifacts"), and MISP has `mutex`, `regkey` and `regkey|value` attributes; STIX 2.1 has the
`mutex` (section 6.11) and `windows-registry-key` (section 6.17) objects to compare them on.
Before, every one of them was rejected as "not a recognised indicator".
"""

from __future__ import annotations

import json

import pytest

from cti_exchange.ingest import IngestVerdict
from cti_exchange.stix.ioc_types import IocType, detect_ioc_type
from cti_exchange.stix.normalise import normalise
from cti_exchange.stix.patterns import pattern_for, validate_stix_pattern
from cti_exchange.stix.type_hints import parse_type_hint

from .conftest import IngestText, bundle_of, oasis_validate, patterns

MUTEX = "mutex"
KEY = "windows-registry-key"
RUN = r"HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run"


# One table, one test: a registry key is recognised by its hive, a mutex name never guessed.
DETECTED = {
    r"HKLM\SYSTEM\CurrentControlSet\Services\wsaudio" + "\\": KEY,
    r"HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run\xyz": KEY,
    r"hkcu:\Software\Classes\CLSID": KEY,  # PowerShell's registry drive
    r"HKU\S-1-5-21-1\Software\x": KEY,
    # Image File Execution Options: a key named like a file is still a key, spaces and all.
    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Image File Execution Options\sethc.exe": KEY,
    "HKLM": None,  # a hive alone is not a key
    r"HKLMX\Software": None,
    r"Global\BitStreamSvc": None,  # any word can be a mutex name
    "3,141592653589793238462643": None,
}


def test_detect() -> None:
    detected = {value: detect_ioc_type(value) for value in DETECTED}
    assert {value: kind.value if kind else None for value, kind in detected.items()} == DETECTED


@pytest.mark.parametrize(
    ("ioc_type", "value", "expected"),
    [
        (MUTEX, r"Global\BitStreamSvc", r"Global\BitStreamSvc"),
        (MUTEX, "  MixedCase_Mutex ", "MixedCase_Mutex"),  # kept as written: case-sensitive
        (
            KEY,
            "HKLM\\SYSTEM\\CurrentControlSet\\Services\\BitStreamSvc\\",
            r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\BitStreamSvc",
        ),
        (KEY, r"hkcu:\Software\Foo", r"HKEY_CURRENT_USER\Software\Foo"),
        (KEY, r"HKCR\.xyz", r"HKEY_CLASSES_ROOT\.xyz"),
        (KEY, r"HKU\S-1-5-18", r"HKEY_USERS\S-1-5-18"),
        (KEY, r"HKCC\System", r"HKEY_CURRENT_CONFIG\System"),
        (KEY, r"HKEY_LOCAL_MACHINE\\SOFTWARE\\Foo", r"HKEY_LOCAL_MACHINE\SOFTWARE\Foo"),  # escaped copy
        (
            KEY,
            r"HKCR\{21EC2020-3AEA-1069-A2DD-08002B30309D}",
            r"HKEY_CLASSES_ROOT\{21EC2020-3AEA-1069-A2DD-08002B30309D}",
        ),
    ],
)
def test_normalise(ioc_type: str, value: str, expected: str) -> None:
    assert normalise(IocType(ioc_type), value) == expected


@pytest.mark.parametrize(
    ("ioc_type", "value", "reason"),
    [
        (MUTEX, "Global\\", "no mutex name"),
        (MUTEX, "Global\\a\x0bb", "unprintable"),
        (MUTEX, "Global\\a\nb", "unprintable"),
        (MUTEX, r"Global\%RANDOM%", "placeholder"),
        (MUTEX, "x" * 261, "longer than 260"),
        (KEY, "HKLM\\", "alone is a hive"),
        (KEY, r"SOFTWARE\Microsoft", "starts with its hive"),
        (KEY, r"HKU\<SID>\Software\x", "placeholder"),
        (KEY, r"HKLM\SOFTWARE\Classes\[0-9A-F]{4}.CoreClass.2" + "\\", "regular expression"),
        (KEY, "HKLM\\Software\\a\u202eb", "unprintable"),
    ],
)
def test_normalise_rejects_with_a_reason(ioc_type: str, value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise(IocType(ioc_type), value)


@pytest.mark.parametrize(
    ("ioc_type", "value", "pattern"),
    [
        (MUTEX, r"Global\BitStreamSvc", r"[mutex:name = 'Global\\BitStreamSvc']"),
        (
            KEY,
            r"HKEY_LOCAL_MACHINE\SOFTWARE\it's",
            r"[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\SOFTWARE\\it\'s']",
        ),
    ],
)
def test_pattern_escapes_backslashes_and_quotes(ioc_type: str, value: str, pattern: str) -> None:
    assert pattern_for(IocType(ioc_type), value) == pattern
    assert validate_stix_pattern(pattern) is None


TYPE_NAMES = {
    "Mutex": MUTEX,
    "Mutexes": MUTEX,
    "mutex name": MUTEX,
    "Mutex name and RC4 key": MUTEX,  # ESET Stantinko's heading
    "Registry keys": KEY,
    "Windows Registry keys": KEY,
    "regkey": KEY,
    "windows-registry-key": KEY,
    # "registry" alone names the type; inside a longer label it may be a domain registry.
    "Domain registry": "domain-name",
}


def test_type_names() -> None:
    named = {}
    for hint in TYPE_NAMES:
        try:
            named[hint] = {kind.value for kind in parse_type_hint(hint)}
        except ValueError as error:
            named[hint] = {str(error)}
    assert named == {hint: {kind} for hint, kind in TYPE_NAMES.items()}


TEXT_LIST = "\n".join(
    [
        "# C2",
        "evil[.]example",
        "# Mutexes",
        r"Global\BitStreamSvc",
        "3,141592653589793238462643",
        "evil.example",  # under a mutex heading, a mutex name (typed, not detected)
        "=== Windows Registry keys",
        "HKLM\\SYSTEM\\CurrentControlSet\\services\\Bonjoiur Host Controller\\",
        "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\svchost32\tpersistence",
        "=== Other artefacts",
        r"Global\Untyped",  # a heading naming no type ends the section: not guessed
        r"HKLM\SOFTWARE\Stantinko",  # a key is recognised anywhere
        "",
    ]
)


def test_a_text_list_with_mutex_and_registry_key_sections(ingest_text: IngestText) -> None:
    result = ingest_text(TEXT_LIST, name="artefacts.txt")
    assert result.accepted_by_type == {"domain-name": 1, MUTEX: 3, KEY: 3}
    found = patterns(result)
    assert r"[mutex:name = 'Global\\BitStreamSvc']" in found
    assert "[mutex:name = '3,141592653589793238462643']" in found
    assert "[mutex:name = 'evil.example']" in found
    # The key runs to the end of the line (key names hold spaces), or to a tab.
    assert (
        r"[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\services\\Bonjoiur Host Controller']"
        in found
    )
    run = r"[windows-registry-key:key = '" + RUN.replace("\\", "\\\\") + r"\\svchost32']"
    assert run in found
    assert r"[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Stantinko']" in found
    persistence = next(o for o in result.objects if o.get("pattern") == run)
    assert persistence["description"] == "persistence"
    assert [(r.code, r.line) for r in result.rejections] == [("unrecognised", 11)]
    oasis_validate(bundle_of(result))


def test_host_artefacts_are_never_refanged(ingest_text: IngestText) -> None:
    # "[.]" and "hxxp" are part of these names, not defanging.
    result = ingest_text("HKCU\\Software\\a[.]b\n# Mutex\nGlobal\\hxxp[.]x\n", name="odd.txt")
    assert set(patterns(result)) == {
        r"[mutex:name = 'Global\\hxxp[.]x']",
        r"[windows-registry-key:key = 'HKEY_CURRENT_USER\\Software\\a[.]b']",
    }


def test_a_csv_type_column_and_a_mutex_column(ingest_text: IngestText) -> None:
    typed = ingest_text(
        "value,type\n"
        "Global\\Wsaudio_Initialize,mutex\n"
        '"HKLM\\SYSTEM\\CurrentControlSet\\Services\\Ghostery Storage Server\\",windows-registry-key\n'
        "HKLM\\SOFTWARE\\Foo,regkey\n",
        name="typed.csv",
    )
    assert typed.accepted_by_type == {MUTEX: 1, KEY: 2}
    column = ingest_text("Mutex,Comment\nGlobal\\ThemeControl,themctrl.dll\n", name="mutexes.csv")
    assert patterns(column) == {r"[mutex:name = 'Global\\ThemeControl']"}


def test_the_run_key_itself_is_a_likely_false_positive(ingest_text: IngestText) -> None:
    result = ingest_text(f"{RUN}\n{RUN}\\svchost32\n", name="run.txt")
    hits = [w for w in result.warnings if w.code == "system-registry-key"]
    assert [w.line for w in hits] == [1]  # the entry under it is the indicator
    strict = ingest_text(f"{RUN}\n", name="run2.txt", strict=True)
    assert [r.code for r in strict.rejections] == ["system-registry-key"]


def _misp_event(attributes: list[dict[str, object]]) -> str:
    return json.dumps(
        {
            "Event": {
                "uuid": "5be1e65d-8198-497b-bdf5-5ec20a016219",
                "info": "Stantinko artefacts",
                "Tag": [{"name": "tlp:green"}],
                "Attribute": attributes,
            }
        }
    )


def test_a_misp_event_with_mutex_and_regkey_attributes(ingest_text: IngestText) -> None:
    event = _misp_event(
        [
            {"uuid": "b1", "type": "mutex", "value": "Global\\Intel_hctrl32", "to_ids": True},
            {
                "uuid": "b2",
                "type": "regkey",
                "value": "HKLM\\SYSTEM\\CurrentControlSet\\services\\ihctrl32",
                "to_ids": True,
            },
            {
                "uuid": "b3",
                "type": "regkey|value",
                "value": r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\svchost32|C:\Users\Public\svchost32.exe",
                "comment": "persistence",
                "to_ids": True,
            },
            {"uuid": "b4", "type": "mutex", "value": "Global\\<random>", "to_ids": True},
        ]
    )
    result = ingest_text(event, name="event.json")
    assert result.accepted_by_type == {MUTEX: 1, KEY: 2}
    assert set(patterns(result)) == {
        r"[mutex:name = 'Global\\Intel_hctrl32']",
        r"[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\services\\ihctrl32']",
        r"[windows-registry-key:key = 'HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\svchost32']",
    }
    run = next(o for o in result.objects if "svchost32" in o.get("pattern", ""))
    assert run["description"] == (
        r"persistence; MISP event: Stantinko artefacts; registry value data: C:\Users\Public\svchost32.exe"
    )
    assert all(o["object_marking_refs"] for o in result.objects)
    (rejection,) = result.rejections
    assert rejection.code == "invalid-value" and "placeholder" in rejection.reason
    oasis_validate(bundle_of(result))


def test_a_stix_bundle_comparing_a_system_key_is_warned_about(ingest_text: IngestText) -> None:
    """Partner patterns go through the guardrails too: a key every host has matches everywhere."""
    escaped = RUN.replace("\\", "\\\\")
    bundle = {
        "type": "bundle",
        "id": "bundle--6b1c0f5e-1f0a-4c3e-9a51-3f0b7d1c2e44",
        "objects": [
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--0b1c0f5e-1f0a-4c3e-9a51-3f0b7d1c2e44",
                "created": "2025-01-01T00:00:00.000Z",
                "modified": "2025-01-01T00:00:00.000Z",
                "pattern": f"[windows-registry-key:key = '{escaped}']",
                "pattern_type": "stix",
                "valid_from": "2025-01-01T00:00:00.000Z",
            }
        ],
    }
    result = ingest_text(json.dumps(bundle), name="bundle.json")
    assert result.verdict is not IngestVerdict.NOTHING_USABLE
    assert [w.code for w in result.warnings if w.code == "system-registry-key"] == ["system-registry-key"]
