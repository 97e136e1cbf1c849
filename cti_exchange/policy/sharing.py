"""TLP 2.0 enforced on the way out.

For each object and each partner: TLP:RED leaves only when the partner entry allows it
(`allow_red`) and the analyst says so on this push (`--allow-red`); TLP:AMBER+STRICT only when
exactly one partner is named; anything else only up to the partner's `max_tlp`.

An object's level is the strictest TLP anywhere on it: object markings and granular markings,
TLP marking ids in any case, and marking-definitions in the bundle that state a TLP under an id
of their own (stix/tlp.py). Marking-definitions, identities and extension-definitions carry no
content of their own and go along unmarked; any other object with no TLP found is refused
(`push` marks unmarked objects with the default TLP first; `seal` sends a bundle as it is).

An object that refers (object or granular marking) to a marking-definition that is neither a TLP
marking nor defined among the objects shared counts as TLP:RED: only the definitions among them
travel with it (stix/bundle.py `travelling_with`), and a partner reads a marking it has no
definition for as TLP:RED (docs/TRIAGE.md), so sending it under a lower TLP would share something
under a restriction no one can read. The refusal names the unknown id (`Refusal.unknown_markings`).

An object that refers to one refused for the same partner (a relationship, a sighting, a report
listing it) is refused too: the id alone can tell what was withheld, since our indicator ids are
uuidv5 of our identity and the pattern, so a partner could confirm a guessed TLP:RED value.

A partner's object goes on to no other agency at TLP:AMBER, TLP:AMBER+STRICT or TLP:RED
(`RULE_ONWARD`): TLP 2.0 lets AMBER go to the recipient's own organisation and its clients,
AMBER+STRICT to the organisation only, RED to no one further, and another partner CERT is none of
these. "A partner's object" is one whose `created_by_ref` is the identity of a partner we have
pinned (`partner_creators`: the identity its agency id gives, profile.model.identity_id_for, which
pinning holds every key file to), not ours; it may still go back to that partner itself. Objects
of ours, objects naming no creator or one we have not pinned, and a partner's TLP:CLEAR and
TLP:GREEN objects are relayed as before (docs/TRIAGE.md: relaying is ordinary STIX sharing).

A value is a partner's too when it reaches us again as ours (`RULE_LEARNED`): an analyst exports
cert-in's TLP:AMBER indicators (a plain list, a CSV) and pushes the file, whose indicators are
then our objects, created by us (or by a third party: our own MISP's export). Such an indicator,
not created by a partner, goes to no agency other than those that sent us its value, when every
partner that sent it did so at TLP:AMBER, AMBER+STRICT or RED (one that sent it at CLEAR or
GREEN made it shareable), unless it is ours and we shared it before the first of them arrived
(`LearnedValue`, read from the store by exchange/learned_values.py for push and seal).
`--observed-by-us` says the values are our own observations and lifts this rule; the creator
rule stays.

A refusal names the object as the analyst knows it too (an indicator's value, a cyber-observable's
value or file hash, else its name): a STIX id alone does not say which row of a CSV was refused.

Cyber-observables (SCOs) are shared under the same rules as any other object: `push` marks an
unmarked one with the default TLP, and a refused one takes along what refers to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cti_exchange.errors import PolicyError
from cti_exchange.profile.model import PartnerConfig, Profile, identity_id_for
from cti_exchange.stix.pattern_values import indicator_value
from cti_exchange.stix.references import references_in
from cti_exchange.stix.tlp import Tlp, marking_levels, refs_beyond_tlp, tlp_of
from cti_exchange.stix.validate import SCO_TYPES
from cti_exchange.untrusted_text import describe_value, escape_controls

RULE_RED = "tlp-red-needs-partner-and-flag"
RULE_STRICT = "amber-strict-single-partner"
RULE_MAX = "above-partner-max-tlp"
RULE_UNMARKED = "no-tlp-marking"
RULE_REFERS = "refers-to-refused"
RULE_ONWARD = "partner-tlp-no-onward-sharing"
RULE_LEARNED = "partner-value-no-onward-sharing"

# A partner's objects at these levels go back to that partner only (RULE_ONWARD).
_NOT_ONWARD = frozenset({Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED})

# Objects that carry no content of their own: they go along without a TLP.
_PLUMBING = frozenset({"marking-definition", "identity", "extension-definition"})
# Characters of an input value or name quoted in a refusal: enough to find the row (a SHA-512
# whole, 128 hex digits), and one line even when the value is a long URL.
SHOWN_SUBJECT = 128
# A file observable by its hash, named as an indicator comparing that hash is (pattern_values.py);
# strongest first. Hash names are input too: only these are shown.
_FILE_HASHES = (("SHA256", "sha256"), ("SHA512", "sha512"), ("SHA1", "sha1"), ("MD5", "md5"))


@dataclass(frozen=True)
class Refusal:
    object_id: str
    tlp: Tlp | None  # None: no TLP marking found (RULE_UNMARKED)
    partner: str
    rule: str
    # What the analyst knows the object by (`refusal_subject`): already cut and escaped.
    subject: str | None = None
    # RULE_ONWARD: the partner (local name) whose identity is the object's created_by_ref.
    creator: str | None = None
    # Marking-definition ids the object refers to that are neither TLP nor defined among the
    # objects shared: why it counts as TLP:RED (`sharing_level`).
    unknown_markings: tuple[str, ...] = ()
    # RULE_LEARNED: the least strict TLP the partners that sent us the value gave it.
    learned_tlp: Tlp | None = None

    def describe(self) -> str:
        label = self.tlp.label if self.tlp is not None else "no TLP"
        subject = f" [{self.subject}]" if self.subject else ""
        why = ""
        if self.rule == RULE_ONWARD and self.creator is not None:
            why = (
                f" ({self.creator}'s object: {label} does not allow passing a partner's object on "
                f"to another agency; {self.creator} can share it with {self.partner} directly)"
            )
        elif self.rule == RULE_LEARNED and self.creator is not None and self.learned_tlp is not None:
            why = (
                f" ({self.creator} shared this value with us at {self.learned_tlp.label}: it goes on "
                f"only from {self.creator}, who can share it with {self.partner} directly; if we "
                "observed it ourselves, push with --observed-by-us)"
            )
        elif self.unknown_markings and self.rule == RULE_RED:
            named = ", ".join(describe_value(ref, SHOWN_SUBJECT) for ref in self.unknown_markings[:2])
            more = f" and {len(self.unknown_markings) - 2} more" if len(self.unknown_markings) > 2 else ""
            why = (
                f" (refers to unknown marking-definition {named}{more}, neither TLP nor defined among "
                f"the objects shared: a partner reads it as TLP:RED; include its definition or "
                f"remove the reference)"
            )
        return f"{escape_controls(self.object_id)}{subject} ({label}) to {self.partner}: {self.rule}{why}"


def refusal_subject(obj: dict[str, Any]) -> str | None:
    """An indicator's or a cyber-observable's type and value (`domain-name evil.example`,
    `sha256 9f86...`), else the object's name, cut to SHOWN_SUBJECT characters with control
    characters escaped: it comes from the input, and is shown on a terminal and in --json."""
    kind, value = _subject_value(obj)
    if kind is not None and value is not None:
        return f"{kind} {describe_value(value, SHOWN_SUBJECT)}"
    name = obj.get("name")
    if isinstance(name, str) and name:
        return describe_value(name, SHOWN_SUBJECT)
    return None


def _subject_value(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    kind = obj.get("type")
    if kind == "indicator" and obj.get("pattern_type", "stix") == "stix":
        pattern = obj.get("pattern")
        return indicator_value(pattern if isinstance(pattern, str) else None)
    if kind not in SCO_TYPES:  # the type is shown as it is: only a known one
        return None, None
    value = obj.get("value")  # domain-name, ipv4-addr, url, email-addr, mac-addr, ...
    if isinstance(value, str) and value:
        return str(kind), value
    if kind == "file":
        hashes = obj.get("hashes")
        if isinstance(hashes, dict):
            by_name = {str(k).upper().replace("-", ""): v for k, v in hashes.items()}
            for algorithm, shown in _FILE_HASHES:
                digest = by_name.get(algorithm)
                if isinstance(digest, str) and digest:
                    return shown, digest
        name = obj.get("name")
        if isinstance(name, str) and name:
            return "file-name", name
    return None, None


@dataclass(frozen=True)
class SharingDecision:
    allowed: dict[str, list[dict[str, Any]]]  # partner name -> objects it may receive
    refusals: list[Refusal]
    # TLPs stated by marking-definitions in the objects under ids of their own.
    inline: dict[str, Tlp] | None = None
    # The ids of every marking-definition among the objects (and the definitions given along):
    # a marking ref to any other non-TLP id counts as TLP:RED (`sharing_level`).
    defined: frozenset[str] = frozenset()

    @property
    def strictest(self) -> dict[str, Tlp | None]:
        out: dict[str, Tlp | None] = {}
        for partner, objects in self.allowed.items():
            levels = [
                level
                for obj in objects
                if (level := sharing_level(obj, self.inline, self.defined)[0]) is not None
            ]
            out[partner] = Tlp.strictest(levels) if levels else None
        return out


def sharing_level(
    obj: dict[str, Any], inline: Mapping[str, Tlp] | None, defined: frozenset[str]
) -> tuple[Tlp | None, tuple[str, ...]]:
    """An object's TLP for sharing (`tlp_of`), and the marking-definition ids it refers to that
    are neither TLP nor in `defined`: with any, TLP:RED, as the partner will read it (docs/TRIAGE.md:
    a marking resolves only from the definition its source sent)."""
    level = tlp_of(obj, inline)
    unknown = tuple(dict.fromkeys(ref for ref in refs_beyond_tlp(obj) if ref not in defined))
    return (Tlp.RED, unknown) if unknown else (level, ())


def refusal_rule(level: Tlp, partner: PartnerConfig, *, partners_named: int, allow_red: bool) -> str | None:
    if level is Tlp.RED:
        return None if (partner.allow_red and allow_red) else RULE_RED
    if level is Tlp.AMBER_STRICT and partners_named != 1:
        return RULE_STRICT
    if level > partner.max_tlp:
        return RULE_MAX
    return None


def delivery_refusal(level: Tlp | None, partner: PartnerConfig) -> str | None:
    """For an envelope sealed earlier and still queued: the rule the partner entry now breaks
    for its strictest TLP, if any. TLP is enforced when an envelope leaves, not only when it is
    sealed: lowering a partner's `max_tlp` or withdrawing `allow_red` holds back what was queued
    for it (`--allow-red` was given when a TLP:RED envelope was sealed)."""
    if level is None:
        return None
    return refusal_rule(level, partner, partners_named=1, allow_red=True)


def onward_hint(refusals: list[Refusal]) -> str:
    """Whom to ask instead, for RULE_ONWARD refusals ("" when there are none)."""
    creators = sorted({r.creator for r in refusals if r.rule in (RULE_ONWARD, RULE_LEARNED) and r.creator})
    if not creators:
        return ""
    return (
        "a partner's TLP:AMBER or TLP:RED object goes on only from its creator: ask "
        f"{', '.join(creators)} to share it directly"
    )


def partner_creators(profile: Profile) -> dict[str, PartnerConfig]:
    """Our pinned partners by the STIX identity their objects name in `created_by_ref`: the one
    their agency id gives (pinning refuses a key file naming any other, partnership.py), and
    the one the entry records, if it records one. Ours is never among them."""
    out: dict[str, PartnerConfig] = {}
    for partner in profile.partners.values():
        for identity in (identity_id_for(partner.agency_id), partner.identity_id):
            if identity is not None and identity != profile.identity_id:
                out[identity] = partner
    return out


@dataclass(frozen=True)
class LearnedValue:
    """What our store says of an indicator's value (one not created by a partner) that partners
    also sent us, each at TLP:AMBER or stricter (`RULE_LEARNED`)."""

    senders: frozenset[str]  # local names of the partners that sent it: they know it
    first_sender: str  # the one that sent it first, named in the refusal
    level: Tlp  # the least strict TLP they gave it


def learned_refusal(
    obj: dict[str, Any], partner: PartnerConfig, learned: Mapping[str, LearnedValue]
) -> LearnedValue | None:
    """The partners' record of `obj`'s value when it may not go to `partner` (RULE_LEARNED)."""
    found = learned.get(str(obj.get("id")))
    if found is None or partner.name in found.senders:
        return None
    return found


def onward_refusal(
    obj: dict[str, Any], level: Tlp | None, partner: PartnerConfig, creators: Mapping[str, PartnerConfig]
) -> PartnerConfig | None:
    """The pinned partner that created `obj`, when `obj` is at a TLP that does not let us pass
    it on to `partner`, another agency (RULE_ONWARD); else None."""
    if level not in _NOT_ONWARD:
        return None
    creator_ref = obj.get("created_by_ref")
    creator = creators.get(creator_ref) if isinstance(creator_ref, str) else None
    if creator is None or creator.agency_id == partner.agency_id:
        return None
    return creator


def decide_sharing(
    objects: list[dict[str, Any]],
    partners: list[PartnerConfig],
    *,
    allow_red: bool,
    creators: Mapping[str, PartnerConfig] | None = None,
    definitions: Iterable[dict[str, Any]] = (),
    learned: Mapping[str, LearnedValue] | None = None,
) -> SharingDecision:
    """What each of `partners` may receive of `objects`. `creators`: our pinned partners by
    identity (`partner_creators`), for RULE_ONWARD; every caller deciding what leaves for a
    partner passes them (without them, no object is known as a partner's). `definitions`:
    marking-definitions that travel with `objects` without being among them (an envelope
    sealed again: those sealed in it), known as if they were among them. `learned`: objects
    not created by a partner, by id, whose values partners sent us at TLP:AMBER or stricter
    (RULE_LEARNED)."""
    allowed: dict[str, list[dict[str, Any]]] = {p.name: [] for p in partners}
    refusals: list[Refusal] = []
    markings = marking_levels([*objects, *definitions])
    inline = {mid: level for mid, level in markings.items() if level is not None} or None
    defined = frozenset(markings)
    for obj in objects:
        level, unknown = sharing_level(obj, inline, defined)
        for partner in partners:
            # Checked first: no partner entry or flag lifts it, so it is what the analyst is told.
            creator = onward_refusal(obj, level, partner, creators) if creators else None
            known = learned_refusal(obj, partner, learned) if learned and creator is None else None
            if creator is not None:
                rule: str | None = RULE_ONWARD
            elif known is not None:
                rule = RULE_LEARNED
            elif level is not None:
                rule = refusal_rule(level, partner, partners_named=len(partners), allow_red=allow_red)
            else:
                rule = None if obj.get("type") in _PLUMBING else RULE_UNMARKED
            if rule is None:
                allowed[partner.name].append(obj)
            else:
                refusals.append(
                    Refusal(
                        str(obj.get("id")),
                        level,
                        partner.name,
                        rule,
                        refusal_subject(obj),
                        creator=creator.name
                        if creator is not None
                        else (known.first_sender if known else None),
                        unknown_markings=unknown,
                        learned_tlp=known.level if known is not None else None,
                    )
                )
    if refusals:  # the common case has none, and costs nothing here
        for partner in partners:
            allowed[partner.name] = _without_references_to_refused(
                allowed[partner.name], partner.name, refusals, inline, defined
            )
    return SharingDecision(allowed=allowed, refusals=refusals, inline=inline, defined=defined)


def _without_references_to_refused(
    objects: list[dict[str, Any]],
    partner: str,
    refusals: list[Refusal],
    inline: dict[str, Tlp] | None,
    defined: frozenset[str],
) -> list[dict[str, Any]]:
    """Refuses, until nothing changes, every object that refers to one refused for `partner`
    (a report listing a relationship that points at a TLP:RED indicator goes too)."""
    refused = {r.object_id for r in refusals if r.partner == partner}
    if not refused:
        return objects
    kept = objects
    changed = True
    while changed:
        changed = False
        still = []
        for obj in kept:
            # At any depth: an Incident Core task names the impacts it changed inside
            # `changed_objects[*].initial_ref`, not in a top-level property.
            # A marking whose definition is refused would reach the partner undefined: TLP:RED.
            if refused.intersection(references_in(obj)) or refused.intersection(refs_beyond_tlp(obj)):
                refused.add(str(obj.get("id")))
                refusals.append(
                    Refusal(
                        str(obj.get("id")),
                        sharing_level(obj, inline, defined)[0],
                        partner,
                        RULE_REFERS,
                        refusal_subject(obj),
                    )
                )
                changed = True
            else:
                still.append(obj)
        kept = still
    return kept


SHOWN_REFUSALS = 5  # named in the one-line error; all are counted


def refusal_error(refusals: list[Refusal], *, outcome: str, hint: str) -> PolicyError:
    """The one-line error of a share the policy refused: the count, the first refusals named,
    then `outcome` (what became of the share, e.g. "; nothing was sent")."""
    shown = "; ".join(r.describe() for r in refusals[:SHOWN_REFUSALS])
    more = f" and {len(refusals) - SHOWN_REFUSALS} more" if len(refusals) > SHOWN_REFUSALS else ""
    return PolicyError(f"TLP policy refuses {len(refusals)} object(s): {shown}{more}{outcome}", hint=hint)
