"""The readers on edge cases, on hostile input, and on random bytes (property-based)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti_exchange.errors import InputError
from cti_exchange.ingest import ingest_files
from cti_exchange.readers.csv_reader import CsvReader, detect_delimiter
from cti_exchange.readers.detect import READERS, detect_format
from cti_exchange.readers.interface import Finding, ReadLimits, ReadResult, Rejection
from cti_exchange.readers.misp_reader import MispReader, tlp_from_tags
from cti_exchange.readers.stix_reader import StixReader
from cti_exchange.readers.text_reader import TextReader
from cti_exchange.stix.ioc_types import IocType
from cti_exchange.stix.tlp import Tlp
from cti_exchange.stix.type_hints import parse_type_hint
from cti_exchange.untrusted_text import describe_value

from .conftest import make_context


def _write(tmp_path: Path, content: str | bytes, name: str = "in") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _values(result: ReadResult) -> list[str]:
    return [c.value for c in result.candidates]


# --- CSV -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "Value,TLP\n1.2.3.4,green\n",
        "\ufeffvalue;tlp\r\n1.2.3.4;green\r\n",  # UTF-8 BOM, ';', CRLF
        "sep=;\nIndicator;Traffic Light Protocol\n1.2.3.4;green\n",  # Excel sep= line
        "IOC\tTLP\t\t\n1.2.3.4\tgreen\t\t\n\t\t\t\n",  # tab, padding columns, empty row
        " Observable Value |tlp\n1.2.3.4|green\n",
    ],
)
def test_csv_headers_delimiters_and_excel_artefacts(tmp_path: Path, content: str) -> None:
    result = CsvReader().read_all(_write(tmp_path, content))
    assert _values(result) == ["1.2.3.4"]
    assert result.candidates[0].tlp == "green"
    assert result.rejections == []


def test_csv_utf16_with_bom(tmp_path: Path) -> None:
    path = _write(tmp_path, "value,description\r\nevil.example,caf\u00e9\r\n".encode("utf-16"))
    result = CsvReader().read_all(path)
    assert _values(result) == ["evil.example"]
    assert result.candidates[0].description == "caf\u00e9"


def test_csv_quoted_multiline_field_keeps_line_numbers(tmp_path: Path) -> None:
    content = 'value,description\n1.2.3.4,"two\nlines"\n5.6.7.8,x\n'
    result = CsvReader().read_all(_write(tmp_path, content))
    assert [(c.value, c.line) for c in result.candidates] == [("1.2.3.4", 2), ("5.6.7.8", 4)]
    assert result.candidates[0].description == "two\nlines"


def test_csv_latin1_is_read_with_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, "value,description\nevil.example,caf\xe9\n".encode("latin-1"))
    result = CsvReader().read_all(path)
    assert result.candidates[0].description == "caf\u00e9"
    assert [f.code for f in result.findings] == ["not-utf8"]


def test_csv_typed_columns_and_type_column(tmp_path: Path) -> None:
    content = "SHA256,Type,C2,Filename\n" + "ab" * 32 + ",IPV4:PORT,1.2.3.4:80,a.exe\n"
    result = CsvReader().read_all(_write(tmp_path, content))
    hints = [(c.value, c.type_hint, c.field) for c in result.candidates]
    assert hints == [("1.2.3.4:80", "IPV4:PORT", "C2"), ("ab" * 32, "SHA256", "SHA256")]
    assert result.candidates[0].description == "Filename: a.exe"


def test_csv_without_indicator_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no indicator column"):
        list(CsvReader().read(_write(tmp_path, "ISP,City\niiNet,Sydney\n")))


def test_csv_field_over_the_limit_is_rejected_and_reading_goes_on(tmp_path: Path) -> None:
    content = 'value,description\n1.2.3.4,"' + "x" * 300_000 + '"\n5.6.7.8,ok\n'
    result = CsvReader().read_all(_write(tmp_path, content))
    assert [r.code for r in result.rejections] == ["malformed-row"]
    assert "5.6.7.8" in _values(result)


def test_long_lines_are_skipped_without_reading_them_whole(tmp_path: Path) -> None:
    content = "evil.example\n" + "a" * 10_000_000 + "\n1.2.3.4\n"
    result = TextReader(ReadLimits(max_line_bytes=1024 * 1024)).read_all(_write(tmp_path, content))
    assert [r.code for r in result.rejections] == ["line-too-long"]
    assert result.rejections[0].line == 2
    assert _values(result) == ["evil.example", "1.2.3.4"]


def test_delimiter_detection() -> None:
    assert detect_delimiter('"a,b";c;d') == ";"
    assert detect_delimiter("a\tb") == "\t"
    assert detect_delimiter("value") == ","


# --- plain text ----------------------------------------------------------------------------


def test_text_list_with_comments_bullets_and_defanging(tmp_path: Path) -> None:
    content = (
        "# IOCs from the advisory\n\n"
        "- hxxp://evil[.]example/a\n"
        "* `1.2.3[.]4`\n"
        "185.178.209[.]193\tCobalt Strike C2\t\n"
        "- 1bwsl4[.]com - 37.230.113[.]85\n"
        "SHA256 hash: " + "ab" * 32 + "\n"
        "Some prose explaining the campaign.\n"
        "|`124.171.71.0/24`  |iiNet |Sydney\n"
    )
    result = TextReader().read_all(_write(tmp_path, content))
    assert _values(result) == [
        "hxxp://evil[.]example/a",
        "1.2.3[.]4",
        "185.178.209[.]193",
        "1bwsl4[.]com",
        "37.230.113[.]85",
        "ab" * 32,
    ]
    assert result.candidates[2].description == "Cobalt Strike C2"
    assert result.candidates[5].type_hint == "SHA256 hash"
    assert {f.code for f in result.findings} == {"prose", "table-rows"}


def test_text_sections_type_the_lines_below(tmp_path: Path) -> None:
    content = (
        "# Domain\nevil.example\n# IP Address\n1.2.3.4\n=== Windows artefacts\nGlobal\\x\n"
        "=== Mutexes\nGlobal\\y\n"
    )
    result = TextReader().read_all(_write(tmp_path, content))
    assert [(c.value, c.type_hint) for c in result.candidates] == [
        ("evil.example", "Domain"),
        ("1.2.3.4", "IP Address"),
        ("Global\\y", "Mutexes"),  # a mutex name is only ever typed by its section
    ]
    # A heading that names no type ends the section: Global\x is not an IP address.
    assert [(r.code, r.value) for r in result.rejections] == [("unrecognised", "Global\\x")]


# --- STIX ----------------------------------------------------------------------------------


def test_stix_reader_forms(tmp_path: Path) -> None:
    obj = {"type": "x-thing", "id": "x-thing--6b1c0f5e-1f0a-4c3e-9a51-3f0b7d1c2e44"}
    bare = StixReader().read_all(_write(tmp_path, json.dumps(obj)))
    assert bare.stix_inputs[0].objects == [obj]
    old = {"type": "bundle", "id": "bundle--1", "spec_version": "2.0", "objects": [obj]}
    assert StixReader().read_all(_write(tmp_path, json.dumps(old))).stix_inputs[0].stix20
    listed = StixReader().read_all(_write(tmp_path, json.dumps([obj])))
    assert [f.code for f in listed.findings] == ["not-a-bundle"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"type": "bundle", "objects": [', "truncated JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"type": "bundle", "type": "x"}', "appears twice"),
        ('{"type": "indicator", "id": "x", "confidence": NaN}', "NaN"),
        (b'{"a": "\xe9"}', "not UTF-8"),
        (b"\x00\x01binary", "binary"),
        ('{"Event": {"info": "x"}}', "MISP event"),
        ('{"type": "bundle", "id": "bundle--1", "objects": []}', "no objects"),
        ("42", "not a STIX"),
    ],
)
def test_stix_reader_refuses_bad_json_in_one_line(tmp_path: Path, content: str | bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as caught:
        list(StixReader().read(_write(tmp_path, content)))
    assert "\n" not in caught.value.diagnostics()


def test_json_size_limit(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"type": "bundle", "objects": ["x" * 2000]}))
    with pytest.raises(InputError, match="limited to"):
        list(StixReader(ReadLimits(max_json_bytes=1000)).read(path))


# --- MISP ----------------------------------------------------------------------------------


def _event(**changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "uuid": "5be1e65d-8198-497b-bdf5-5ec20a016219",
        "info": "demo",
        "Tag": [{"name": "tlp:green"}],
        "Attribute": [
            {"uuid": "a1", "type": "ip-dst|port", "value": "1.2.3.4|443", "to_ids": True},
            {
                "uuid": "a2",
                "type": "filename|md5",
                "value": "a.exe|" + "ab" * 16,
                "to_ids": True,
                "Tag": [{"name": "tlp:amber+strict"}],
            },
            {"uuid": "a3", "type": "text", "value": "context", "to_ids": False},
            {"uuid": "a4", "type": "named pipe", "value": "\\\\.\\pipe\\x", "to_ids": True},
            {"uuid": "a5", "type": "link", "value": "https://blog.example/post", "to_ids": False},
        ],
    }
    event.update(changes)
    return event


@pytest.mark.parametrize("wrap", ["bare", "event", "response"])
def test_misp_wrappers_and_mapping(tmp_path: Path, wrap: str) -> None:
    event = _event()
    document = {
        "bare": event,
        "event": {"Event": event},
        "response": {"response": [{"Event": event}]},
    }
    result = MispReader().read_all(_write(tmp_path, json.dumps(document[wrap])))
    got = [(c.value, c.type_hint, c.tlp) for c in result.candidates]
    assert got == [("1.2.3.4:443", "ip:port", "green"), ("ab" * 16, "md5", "amber+strict")]
    assert "file name: a.exe" in (result.candidates[1].description or "")
    assert {"source_name": "reference", "url": "https://blog.example/post"} in (
        result.candidates[0].external_references
    )
    assert [r.code for r in result.rejections] == ["unsupported-type"]
    assert [f.code for f in result.findings] == ["not-for-detection"]


def test_misp_hostname_and_port(tmp_path: Path) -> None:
    attribute = {"uuid": "a6", "type": "hostname|port", "value": "2.tcp.eu.ngrok.io|12002", "to_ids": True}
    result = MispReader().read_all(_write(tmp_path, json.dumps({"Event": _event(Attribute=[attribute])})))
    assert [(c.value, c.type_hint) for c in result.candidates] == [
        ("2.tcp.eu.ngrok.io:12002", "hostname:port")
    ]
    assert parse_type_hint("hostname:port") == {IocType.DOMAIN_PORT}


def test_misp_unknown_tlp_rejects_the_event(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"Event": _event(Tag=[{"name": "tlp:ex:chr"}])}))
    result = MispReader().read_all(path)
    assert result.candidates == [] and [r.code for r in result.rejections] == ["invalid-tlp"]


def test_misp_tags_given_as_plain_strings_are_read(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"Event": _event(Tag=["tlp : red", "osint"])}))
    result = MispReader().read_all(path)
    # Read as the event's TLP (strictest with the attribute's own tag), not left to the default.
    assert [c.tlp for c in result.candidates] == ["red", "red"]


def test_misp_tlp_tags() -> None:
    assert tlp_from_tags(["tlp:white", "misp-galaxy:x"]) is Tlp.CLEAR
    assert tlp_from_tags(["tlp:green", "tlp:amber"]) is Tlp.AMBER
    assert tlp_from_tags(['tlp:"red"']) is Tlp.RED
    assert tlp_from_tags(["ESET"]) is None
    # However spaced or cased, a tlp tag is read, never skipped (skipped would mean the default).
    assert tlp_from_tags(["tlp : red"]) is Tlp.RED
    assert tlp_from_tags(["TLP:Amber+Strict", "tlp:green"]) is Tlp.AMBER_STRICT
    assert tlp_from_tags(["tlpish:red"]) is None


# --- detection and reports -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"type": "bundle", "objects": []}', "stix"),
        ('  [ {"type": "indicator"} ]', "stix"),
        ('{"response": [{"Event": {}}]}', "misp"),
        ("value,tlp\n1.2.3.4,green\n", "csv"),
        ("# list\n1.2.3.4\n", "text"),
        ("[::1]:443\n", "text"),
        ("185.178.209[.]193\tCobalt Strike\t\n", "text"),
        # A labelled line names its value: not a one-column CSV header naming "URL".
        ("C2 URL: 5.tcp.eu.ngrok.io:17844\nC2 URL: evil.example:443\n", "text"),
        ("IPV4:PORT\n20.195.166.5:30120\n", "csv"),  # a column named ip:port
    ],
)
def test_format_detection(tmp_path: Path, content: str, expected: str) -> None:
    assert detect_format(_write(tmp_path, content)) == expected


def test_describe_value_escapes_and_cuts() -> None:
    shown = describe_value("a\x1b[31m\u202eb" + "x" * 200)
    assert "\x1b" not in shown and "\u202e" not in shown and "\\x1b" in shown
    assert shown.endswith("(208 characters)")


def test_remarks_render_on_one_line() -> None:
    text = str(Rejection("f.csv", "bad", line=3, field="tlp", value="x"))
    assert text == "f.csv, line 3: tlp: bad [x]"
    assert isinstance(Finding("f", "w"), Finding) and not isinstance(Finding("f", "w"), Rejection)


# --- random input never raises anything but InputError ------------------------------------


_HOSTILE = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=2000).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.lists(
        st.sampled_from(
            [
                "value,tlp\n",
                "1.2.3.4,green\n",
                '"',
                "\r\n",
                ",",
                "[.]",
                "hxxp://",
                "{",
                "}",
                "[",
                "]",
                "\x00",
                "\ufeff",
                "# Domain\n",
            ]
        ),
        max_size=60,
    ).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_HOSTILE, reader_name=st.sampled_from(sorted(READERS)))
def test_readers_never_crash_on_random_input(tmp_path: Path, data: bytes, reader_name: str) -> None:
    path = _write(tmp_path, data, "random.bin")
    try:
        for _ in READERS[reader_name]().read(path):
            pass
    except InputError as error:
        assert "\n" not in error.diagnostics()


@pytest.mark.parametrize(
    "line",
    [
        "= " + " " * 500_000 + "x",
        "[" + "a=" * 300_000,
        "# " + "\t " * 300_000 + "Domain x",
        "+1" + "1" * 500_000,
        "a" + "[.]" * 200_000,
        "x." * 300_000 + "/",
        ":" * 500_000,
    ],
)
def test_pathological_lines_are_handled_in_linear_time(tmp_path: Path, line: str) -> None:
    """Nothing quadratic (ReDoS) on hostile lines of up to the 1 MiB line limit."""
    started = time.process_time()
    for content, reader in (
        (line + "\n1.2.3.4\n", TextReader()),
        (line[:15_000] + "\n1.2.3.4\n", TextReader()),  # under the text line limit
        ('value,description\n"' + line.replace('"', "") + '",x\n', CsvReader()),
    ):
        reader.read_all(_write(tmp_path, content))
    ingest_files([_write(tmp_path, "value\n" + line[:100_000] + "\n", "v.csv")], make_context())
    assert time.process_time() - started < 3.0


def test_lone_surrogate_escapes_are_refused(tmp_path: Path) -> None:
    obj = '{"type": "x-a", "id": "x-a--6b1c0f5e-1f0a-4c3e-9a51-3f0b7d1c2e44", "name": "%s"}'
    with pytest.raises(InputError, match="lone surrogate"):
        list(StixReader().read(_write(tmp_path, obj % "\\ud800")))
    paired = StixReader().read_all(_write(tmp_path, obj % "\\ud83d\\ude00"))
    assert paired.stix_inputs[0].objects[0]["name"] == "\U0001f600"
