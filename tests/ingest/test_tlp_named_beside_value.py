"""A TLP named beside a value fails closed (found on a walkthrough): a CSV row whose comment
says `TLP:RED do not share` went out at the default TLP:AMBER, its comment shared as the
description, with only the usual "had no TLP" warning. A text list naming a level below its
head is refused; a CSV row (or a MISP attribute whose comment or event title does it) now is
rejected when the level it names is stricter than the one the value would go out at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency


def _validate(agency: Agency, path: Path, *options: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(exit code, JSON report, each indicator `convert` wrote: name -> TLP level)."""
    out = path.with_suffix(".bundle.json")
    out.unlink(missing_ok=True)
    result = agency.run("convert", "--json", str(path), "-o", str(out), *options)
    levels = {}
    for obj in json.loads(out.read_text())["objects"] if out.exists() else []:
        if obj["type"] == "indicator":
            level = Tlp.from_marking_id(obj["object_marking_refs"][0])
            levels[obj["name"]] = level.value if level is not None else "none"
    return result.exit_code, result.json(), levels


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "iocs.csv"
    path.write_text(text)
    return path


def test_a_comment_naming_a_stricter_tlp_than_the_default_rejects_its_row(
    cert_fr: Agency, tmp_path: Path
) -> None:
    path = _csv(
        tmp_path, "type,value,comment\ndomain,red.example,TLP:RED do not share\ndomain,ok.example,phishing\n"
    )
    code, report, levels = _validate(cert_fr, path)
    assert code == 1 and levels == {"ok.example": "amber"}
    (rejection,) = report["rejections"]
    assert rejection["code"] == "tlp-in-text" and rejection["line"] == 2
    assert rejection["field"] == "tlp" and rejection["reason"].startswith(
        "the input names TLP:RED beside the value, stricter than TLP:AMBER (the default, as it "
        "has no TLP of its own): mark the value red"
    ), rejection

    # The fixes the message names: --tlp, or a tlp column.
    assert _validate(cert_fr, path, "--tlp", "red")[2] == {"red.example": "red", "ok.example": "red"}
    marked = _csv(tmp_path, "type,value,comment,tlp\ndomain,red.example,TLP:RED do not share,red\n")
    assert _validate(cert_fr, marked)[:3:2] == (0, {"red.example": "red"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A weaker or equal level named beside the value: nothing goes out weaker.
        (
            "type,value,comment,tlp\ndomain,a.example,was TLP:GREEN at the source,amber\n",
            {"a.example": "amber"},
        ),
        ("# TLP:RED\ntype,value,comment\ndomain,a.example,TLP:RED report 42\n", {"a.example": "red"}),
        # A tlp cell is the value's own TLP, not text beside it.
        ("type,value,tlp\ndomain,a.example,TLP:AMBER+STRICT\n", {"a.example": "amber+strict"}),
    ],
)
def test_a_level_no_stricter_than_the_values_is_read_as_before(
    cert_fr: Agency, tmp_path: Path, text: str, expected: dict[str, str]
) -> None:
    code, report, levels = _validate(cert_fr, _csv(tmp_path, text))
    assert code == 0 and levels == expected, report["rejections"]


def test_a_column_not_shared_still_marks_its_row(cert_fr: Agency, tmp_path: Path) -> None:
    path = _csv(tmp_path, "value,type,handling\n203.0.113.5,ip,TLP:AMBER+STRICT\n")
    code, report, _ = _validate(cert_fr, path)
    assert code == 6 and [r["code"] for r in report["rejections"]] == ["tlp-in-text"]


def test_a_misp_comment_naming_a_stricter_tlp_than_the_tags(cert_fr: Agency, tmp_path: Path) -> None:
    def attribute(value: str, comment: str) -> dict[str, Any]:
        return {"type": "domain", "value": value, "to_ids": True, "comment": comment}

    event = {
        "Event": {
            "info": "Phishing wave",
            "Tag": [{"name": "tlp:green"}],
            "Attribute": [
                attribute("red.example", "TLP:RED - from a closed group"),
                attribute("ok.example", ""),
            ],
        }
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    code, report, levels = _validate(cert_fr, path)
    assert code == 1 and levels == {"ok.example": "green"}
    assert [r["code"] for r in report["rejections"]] == ["tlp-in-text"]
    assert "stricter than TLP:GREEN (its own TLP)" in report["rejections"][0]["reason"]
