"""Messages for bad inputs that named the wrong problem, or none (found on a walkthrough): a JSON
array of strings was "not a recognised indicator", a MISP event whose Attribute is no list gave
"nothing usable" with nothing rejected, UTF-16 text without a BOM was "binary", and JSON nested
100,000 deep was a "line longer than 16,384 characters"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Agency


def _rejected(result_stderr: str) -> list[str]:
    return [line for line in result_stderr.splitlines() if line.startswith("rejected:")]


@pytest.mark.parametrize("text", ['["1.2.3.4","evil.com"]', '[\n  "1.2.3.4",\n  "evil.com"\n]\n'])
def test_a_json_array_of_strings_is_named_with_how_to_fix_it(
    cert_fr: Agency, tmp_path: Path, text: str
) -> None:
    path = tmp_path / "values.json"
    path.write_text(text)
    result = cert_fr.run("validate", str(path))
    assert result.exit_code == 6, result.stderr
    [line] = _rejected(result.stderr)
    assert "values.json" in line and "a JSON array of strings, not STIX objects" in line
    assert "one value per line in a text file" in line
    assert "not a recognised indicator" not in result.stderr


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("Attribute", "x", "a string"),
        ("Attribute", {"type": "ip-dst", "value": "1.2.3.4"}, "a JSON object"),
        ("Object", {"name": "file"}, "a JSON object"),
    ],
)
def test_a_misp_event_whose_attribute_is_not_a_list_is_rejected_by_name(
    cert_fr: Agency, tmp_path: Path, key: str, value: object, kind: str
) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"Event": {key: value}}))
    result = cert_fr.run("validate", str(path))
    assert result.exit_code == 6, result.stderr
    [line] = _rejected(result.stderr)  # was: 0 rejected, 0 warnings, and no reason
    assert "event.json" in line and f"the event's '{key}' is {kind}, not a list of MISP" in line


@pytest.mark.parametrize(("codec", "order"), [("utf-16-le", "little-endian"), ("utf-16-be", "big-endian")])
@pytest.mark.parametrize("name", ["iocs.txt", "bundle.json"])
def test_utf16_without_a_bom_is_named_with_how_to_save_it(
    cert_fr: Agency, tmp_path: Path, codec: str, order: str, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes("1.2.3.4\r\nevil.example\r\n".encode(codec))
    result = cert_fr.run("validate", str(path))
    assert result.exit_code == 6, result.stderr
    [line] = _rejected(result.stderr)
    assert name in line and f"looks like UTF-16 ({order}) text without a byte-order mark" in line
    assert "save it as UTF-8, or as UTF-16 with a byte-order mark" in line
    assert "binary" not in line


def test_a_binary_file_is_still_called_binary(cert_fr: Agency, tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" * 4)
    result = cert_fr.run("validate", str(path))
    [line] = _rejected(result.stderr)
    assert "looks like a binary file (it contains NUL bytes)" in line and "UTF-16" not in line


def test_utf16_with_a_bom_is_still_read(cert_fr: Agency, tmp_path: Path) -> None:
    path = tmp_path / "iocs.txt"
    path.write_bytes("1.2.3.4\r\nevil.example\r\n".encode("utf-16"))
    result = cert_fr.run("validate", str(path))
    assert result.exit_code == 0, result.stderr


def test_json_nested_very_deep_is_reported_as_nested_too_deep(cert_fr: Agency, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    result = cert_fr.run("validate", str(path))
    assert result.exit_code == 6, result.stderr
    [line] = _rejected(result.stderr)
    assert "deep.json" in line and "nested too deeply" in line
    assert "longer than" not in result.stderr


def test_a_text_list_starting_with_a_bracketed_address_is_still_text(cert_fr: Agency, tmp_path: Path) -> None:
    path = tmp_path / "iocs.txt"
    path.write_text("[2001:db8::1]:443\nevil[.]example\n")
    result = cert_fr.run("validate", str(path))
    assert result.exit_code == 0, result.stderr
    assert "read as text" in result.stdout
