"""Parsing STIX property values that inputs give as text: confidence, timestamps, indicator
types, kill chain phases.

Each parser returns the STIX value or raises ValueError with a reason the analyst can act on.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# STIX 2.1 Appendix A, "None / Low / Med / High" scale, scale-to-STIX column.
_CONFIDENCE_WORDS = {"none": 0, "low": 15, "med": 50, "medium": 50, "high": 85}

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_VOCABULARY_WORD = re.compile(r"[a-z0-9][a-z0-9-]*")
_LIST_SEPARATORS = re.compile(r"\s*[,;|]\s*")

# Phase names of the two kill chains in common use, so that a bare phase can be placed.
LOCKHEED_MARTIN_PHASES = frozenset(
    """reconnaissance weaponization delivery exploitation installation command-and-control
    actions-on-objectives""".split()
)
MITRE_ATTACK_TACTICS = frozenset(
    """reconnaissance resource-development initial-access execution persistence
    privilege-escalation defense-evasion credential-access discovery lateral-movement
    collection command-and-control exfiltration impact""".split()
)


def parse_confidence(text: str | int) -> int:
    """0-100 from "85", "85%", or a word of the None/Low/Med/High scale (STIX 2.1 Appendix A)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        cleaned = str(text).strip().lower().removesuffix("%").strip()
        if cleaned in _CONFIDENCE_WORDS:
            return _CONFIDENCE_WORDS[cleaned]
        if not cleaned.isdigit() or len(cleaned) > 3:
            raise ValueError(f"confidence {text!r} is not an integer 0-100 or none/low/med/high")
        value = int(cleaned)
    if not 0 <= value <= 100:
        raise ValueError(f"confidence {value} is not between 0 and 100")
    return value


def parse_timestamp(text: str) -> datetime:
    """A timezone-aware datetime from ISO 8601 text; a date alone means midnight UTC, and a
    time without an offset is taken as UTC."""
    cleaned = text.strip()
    if len(cleaned) > 40:
        raise ValueError("timestamp is too long")
    if _DATE_ONLY.fullmatch(cleaned):
        cleaned += "T00:00:00"
    try:
        moment = datetime.fromisoformat(cleaned.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not 1970 <= moment.year <= 9999:
        raise ValueError(f"year {moment.year} is out of range")
    return moment.astimezone(UTC)


def _words(text: str) -> list[str]:
    return [word for word in _LIST_SEPARATORS.split(text.strip()) if word]


def vocabulary_word(text: str) -> str:
    """An open-vocabulary value in STIX style: lower case, words joined by hyphens."""
    word = "-".join(text.strip().lower().replace("_", " ").split())
    if not _VOCABULARY_WORD.fullmatch(word) or len(word) > 100:
        raise ValueError(f"{text!r} is not a vocabulary word (letters, digits and '-')")
    return word


def parse_indicator_types(text: str) -> list[str]:
    """indicator_types from "malicious-activity; anomalous activity" (indicator-type-ov is
    open, so any word is accepted)."""
    types = list(dict.fromkeys(vocabulary_word(word) for word in _words(text)))
    if not types:
        raise ValueError("no indicator type given")
    return types


def parse_kill_chain_phases(text: str) -> list[dict[str, str]]:
    """kill_chain_phases from "mitre-attack:execution, delivery" (a bare phase is placed in the
    Lockheed Martin chain or MITRE ATT&CK when its name belongs to only one of them)."""
    phases: list[dict[str, str]] = []
    for item in _words(text):
        chain, _, phase = item.rpartition(":")
        phase_name = vocabulary_word(phase)
        if chain:
            chain_name = vocabulary_word(chain)
        elif phase_name in LOCKHEED_MARTIN_PHASES and phase_name not in MITRE_ATTACK_TACTICS:
            chain_name = "lockheed-martin-cyber-kill-chain"
        elif phase_name in MITRE_ATTACK_TACTICS and phase_name not in LOCKHEED_MARTIN_PHASES:
            chain_name = "mitre-attack"
        else:
            raise ValueError(f"kill chain phase {item!r} needs its chain, e.g. 'mitre-attack:{phase_name}'")
        entry = {"kill_chain_name": chain_name, "phase_name": phase_name}
        if entry not in phases:
            phases.append(entry)
    if not phases:
        raise ValueError("no kill chain phase given")
    return phases
