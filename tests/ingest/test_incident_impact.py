"""The Incident Core `impact` objects of the corpus (paid_ransom.json) through `validate`.

Their `extensions` hold a key named `monetary` beside the extension-definition id. STIX 2.1
section 7.3 allows only extension-definition ids and predefined `-ext` names as keys (the OASIS
stix2-validator refuses `monetary` too), so the impacts are rejected for now. The rejection
names the object once, in its location, not again at the start of the reason.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Agency

CORPUS_FILE = (
    Path(__file__).resolve().parent.parent
    / "data"
    / "corpus"
    / "stix21-markings-extensions"
    / "incident-impact-paid_ransom.json"
)
IMPACTS = ["impact--0c9511ac-e14b-4f48-9d49-54bfc93c9b34", "impact--dde347a5-e695-4b58-bc7e-00712abdc9a6"]


def test_impact_rejection_names_the_object_once(cert_fr: Agency) -> None:
    result = cert_fr.run("validate", "--json", str(CORPUS_FILE))
    rejections = result.json()["rejections"]
    assert [r["where"] for r in rejections] == [f"objects[{i}] {impact}" for i, impact in enumerate(IMPACTS)]
    assert [r["reason"] for r in rejections] == [
        "extension key 'monetary' is not an extension-definition id or an '-ext' name"
    ] * 2


def test_impact_rejection_text_output_names_the_object_once(cert_fr: Agency) -> None:
    result = cert_fr.run("validate", str(CORPUS_FILE))
    lines = [line for line in result.stderr.splitlines() if line.startswith("rejected:")]
    assert len(lines) == 2
    for line, impact in zip(lines, IMPACTS, strict=True):
        assert line.count(impact) == 1, line
