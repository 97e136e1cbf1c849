"""TLP 2.0 enforced on the way out.

For each object and each partner: TLP:RED leaves only when the partner entry allows it
(`allow_red`) and the analyst says so on this push (`--allow-red`); TLP:AMBER+STRICT only when
exactly one partner is named; anything else only up to the partner's `max_tlp`. Objects with no
TLP marking (marking-definitions, the agency identity, extension-definitions) carry no content
of their own and always go along.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cti_exchange.profile.model import PartnerConfig
from cti_exchange.stix.tlp import Tlp, tlp_of

RULE_RED = "tlp-red-needs-partner-and-flag"
RULE_STRICT = "amber-strict-single-partner"
RULE_MAX = "above-partner-max-tlp"


@dataclass(frozen=True)
class Refusal:
    object_id: str
    tlp: Tlp
    partner: str
    rule: str

    def describe(self) -> str:
        return f"{self.object_id} ({self.tlp.label}) to {self.partner}: {self.rule}"


@dataclass(frozen=True)
class SharingDecision:
    allowed: dict[str, list[dict[str, Any]]]  # partner name -> objects it may receive
    refusals: list[Refusal]

    @property
    def strictest(self) -> dict[str, Tlp | None]:
        out: dict[str, Tlp | None] = {}
        for partner, objects in self.allowed.items():
            levels = [level for obj in objects if (level := tlp_of(obj)) is not None]
            out[partner] = Tlp.strictest(levels) if levels else None
        return out


def refusal_rule(level: Tlp, partner: PartnerConfig, *, partners_named: int, allow_red: bool) -> str | None:
    if level is Tlp.RED:
        return None if (partner.allow_red and allow_red) else RULE_RED
    if level is Tlp.AMBER_STRICT and partners_named != 1:
        return RULE_STRICT
    if level > partner.max_tlp:
        return RULE_MAX
    return None


def decide_sharing(
    objects: list[dict[str, Any]], partners: list[PartnerConfig], *, allow_red: bool
) -> SharingDecision:
    allowed: dict[str, list[dict[str, Any]]] = {p.name: [] for p in partners}
    refusals: list[Refusal] = []
    for obj in objects:
        level = tlp_of(obj)
        for partner in partners:
            rule = (
                None
                if level is None
                else refusal_rule(level, partner, partners_named=len(partners), allow_red=allow_red)
            )
            if rule is None:
                allowed[partner.name].append(obj)
            else:
                assert level is not None
                refusals.append(Refusal(str(obj.get("id")), level, partner.name, rule))
    return SharingDecision(allowed=allowed, refusals=refusals)
