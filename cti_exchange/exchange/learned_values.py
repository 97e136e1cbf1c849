"""Indicators not created by a partner whose values we learned from partners under TLP:AMBER or stricter
(policy/sharing.py `RULE_LEARNED`): read from the store before a push decides what may go.

An analyst exports a partner's TLP:AMBER indicators (a plain list, a CSV) and pushes the file:
its indicators become ours, created by us, and the creator rule (`RULE_ONWARD`) no longer sees
the partner in them. The store still does: it holds the partner's objects with the same values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from cti_exchange.clock import parse_timestamp
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.policy.sharing import LearnedValue, SharingDecision, decide_sharing, partner_creators
from cti_exchange.profile.model import PartnerConfig
from cti_exchange.stix.pattern_values import indicator_value
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.partner_values import holds_values, partner_values
from cti_exchange.store.store import open_store


def values_learned_from_partners(
    home: ProfileHome, objects: list[dict[str, Any]], identity_id: str, partner_identities: Collection[str]
) -> dict[str, LearnedValue]:
    """The indicators among `objects` not created by a partner (ours, a third party's such as
    our own MISP's, or naming no creator: a partner's own objects are the creator rule's), by
    id, whose value partners sent us, every one of them at TLP:AMBER, AMBER+STRICT or RED; an
    indicator of ours (created by `identity_id`) is left out when we shared it before the first
    of them arrived. Its `created` is when our ingest first made it (a re-share keeps it); a
    third party's `created` says nothing of when we had it."""
    if not home.store_path().exists():
        return {}
    with open_store(home) as store:
        if not holds_values(store.db.conn):
            return {}  # the common case of a store that received nothing: no value is read
        ours: dict[str, tuple[str, str]] = {}  # object id -> (IOC type, canonical form)
        by_id: dict[str, dict[str, Any]] = {}
        from cti_exchange.exporters.value_forms import bundled_value_forms  # only with values to judge

        forms = bundled_value_forms()
        wanted: dict[str, set[str]] = defaultdict(set)
        for obj in objects:
            if obj.get("type") != "indicator" or obj.get("created_by_ref") in partner_identities:
                continue
            if obj.get("pattern_type", "stix") != "stix":
                continue
            pattern = obj.get("pattern")
            ioc_type, value = indicator_value(pattern if isinstance(pattern, str) else None)
            if ioc_type is not None and value is not None:
                form = forms.of(ioc_type, value)
                ours[str(obj["id"])] = (ioc_type, form)
                by_id[str(obj["id"])] = obj
                wanted[ioc_type].add(form)
        sent = partner_values(store.db.conn, forms, wanted) if wanted else {}
        restricted = {}
        for object_id, key in ours.items():
            found = sent.get(key)
            if found is not None and found.senders and found.least_strict >= Tlp.AMBER:
                restricted[object_id] = found
        ours_restricted = [i for i in restricted if by_id[i].get("created_by_ref") == identity_id]
        shared_first = store.outbound.first_created(ours_restricted) if ours_restricted else {}
    learned = {}
    for object_id, found in restricted.items():
        ours_since = shared_first.get(object_id)
        if ours_since is not None and parse_timestamp(ours_since) < parse_timestamp(found.first_received):
            continue  # we shared it before any partner sent it: our own knowledge
        learned[object_id] = LearnedValue(found.senders, found.first_sender, found.least_strict)
    return learned


def decide_with_learned_values(
    home: ProfileHome,
    objects: list[dict[str, Any]],
    partners: list[PartnerConfig],
    *,
    allow_red: bool,
    observed_by_us: bool,
) -> SharingDecision:
    """The sharing policy for a push or a seal of `objects`: the creator rule with our pinned
    partners, and the values learned from them unless `observed_by_us`."""
    profile = home.load_profile()
    creators = partner_creators(profile)
    learned = (
        {} if observed_by_us else values_learned_from_partners(home, objects, profile.identity_id, creators)
    )
    return decide_sharing(objects, partners, allow_red=allow_red, creators=creators, learned=learned)
