"""Turning indicator candidates from any reader into STIX 2.1 indicators and vulnerabilities.

For each candidate: refang (unless it is a rule, a STIX pattern, a mutex, a registry key or an
e-mail subject),
settle the type (the input's type hint, else detection), normalise, check the guardrails, parse
the optional fields, then build the object with a pattern made by construction. Everything
wrong with a candidate is reported through the `IssueSink` with a code, the field and a reason;
nothing raises.

What is rejected and what is only warned about:
- rejected: empty or over-long values, unknown type names, values that are not what their type
  says or not a recognised indicator at all, invalid TLP / confidence / timestamps / kill chain
  phases, valid_until not after valid_from; with `strict`, the likely false positives too;
- warned, and kept: likely false positives (private and reserved addresses, internal names,
  benign domains, hashes and file names), internationalised domain names (check for
  homographs), indicators already expired;
- warned, and withheld unless `keep_personal_data`: individuals' e-mail addresses and phone
  numbers, and e-mail subjects holding one (an indicator's value cannot be scrubbed without
  changing what it matches); free-text fields are scrubbed of them.

This module is the hot path of ingestion: it avoids per-row allocations it can do without.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from cti_exchange.stix.candidate import IndicatorCandidate
from cti_exchange.stix.guardrails import (
    Guardrails,
    holds_personal_data,
    is_individual_email,
    looks_like_phone_number,
    may_hold_a_personal_number,
    scrub_personal_data,
    url_personal_data,
)
from cti_exchange.stix.ioc_types import (
    HASH_TYPES,
    X509_TYPES,
    IocType,
    detect_ioc_type,
    is_defanged_host_name,
    is_hash_shaped,
)
from cti_exchange.stix.normalise import (
    check_printable,
    normalise,
    normalise_any_hash,
    normalise_x509_fingerprint,
)
from cti_exchange.stix.objects import StixObjectBuilder
from cti_exchange.stix.patterns import pattern_for
from cti_exchange.stix.properties import (
    parse_confidence,
    parse_indicator_types,
    parse_kill_chain_phases,
    parse_timestamp,
)
from cti_exchange.stix.refang import refang
from cti_exchange.stix.tlp import Tlp
from cti_exchange.stix.type_hints import TypeHint, read_type_hint, type_hint_name
from cti_exchange.untrusted_text import describe_value

_TYPE_ORDER = list(IocType)
# Never refanged: rules and patterns (a regular expression's "(.)"), and host artefacts, which
# no one defangs and whose "[.]" or "hxxp" would be part of the name.
_AS_WRITTEN = frozenset(
    {
        *(t for t in IocType if t.is_rule),
        IocType.STIX_PATTERN,
        IocType.MUTEX,
        IocType.WINDOWS_REGISTRY_KEY,
        IocType.EMAIL_SUBJECT,
    }
)
# An address with a port, and the address alone: what `1.2.3.4:None` is shared as.
_ADDRESS_OF = {
    IocType.IPV4_PORT: IocType.IPV4,
    IocType.IPV6_PORT: IocType.IPV6,
    IocType.DOMAIN_PORT: IocType.DOMAIN,
}
# What a port the source did not know is written as: Python's None, JSON's null, a spreadsheet's
# placeholders, or nothing.
_UNKNOWN_PORTS = frozenset({"", "none", "null", "nil", "-", "--", "n/a", "na", "?", "unknown"})
MAX_VALUE_LENGTH = 128 * 1024  # the largest rule we accept; other types have lower limits
MAX_DESCRIPTION_LENGTH = 16 * 1024


class IssueSink(Protocol):
    """Receives what conversion finds wrong with a candidate."""

    def __call__(
        self,
        candidate: IndicatorCandidate,
        code: str,
        field: str | None,
        reason: str,
        /,
        *,
        rejected: bool,
    ) -> None: ...


@dataclass(frozen=True)
class ConversionSettings:
    default_tlp: Tlp
    strict: bool = False
    keep_personal_data: bool = False
    # source_name of the external reference made from an incident id column: our agency.
    incident_source_name: str = "incident"


class _Rejected(Exception):
    """Internal: ends the conversion of one candidate (the sink has been told why)."""


class CandidateConverter:
    """Converts candidates one at a time; `converted` returns the STIX object or None."""

    def __init__(
        self,
        builder: StixObjectBuilder,
        guardrails: Guardrails,
        settings: ConversionSettings,
        sink: IssueSink,
    ) -> None:
        self.builder = builder
        self.guardrails = guardrails
        self.settings = settings
        self.sink = sink
        # How many candidates took the default TLP, per run; the caller announces it.
        self.default_tlp_count = 0
        self._hints: dict[str, TypeHint | str] = {}
        self._tlps: dict[str, Tlp | str] = {}

    def converted(self, candidate: IndicatorCandidate) -> tuple[IocType, dict[str, Any]] | None:
        """(type, object) for an accepted candidate; None when it was rejected or withheld."""
        try:
            return self._convert(candidate)
        except _Rejected:
            return None

    def _reject(self, candidate: IndicatorCandidate, code: str, field: str | None, reason: str) -> NoReturn:
        self.sink(candidate, code, field, reason, rejected=True)
        raise _Rejected

    def _warn(self, candidate: IndicatorCandidate, code: str, field: str | None, reason: str) -> None:
        self.sink(candidate, code, field, reason, rejected=False)

    def _convert(self, c: IndicatorCandidate) -> tuple[IocType, dict[str, Any]] | None:
        value_field = c.field or "value"
        raw = c.value
        if len(raw) > MAX_VALUE_LENGTH:
            self._reject(c, "value-too-long", value_field, f"longer than {MAX_VALUE_LENGTH:,}")
        value = raw.strip()
        if not value:
            self._reject(c, "empty-value", value_field, "no value")
        hint = self._type_hint(c) if c.type_hint else None
        allowed = hint.types if hint is not None else None
        ioc_type = None
        if allowed is None:
            # Rules and STIX patterns are detected before refanging, which would rewrite a
            # regular expression's "(.)" or a literal "[.]" inside them.
            if value[0] == "[" or " " in value or "\n" in value or "\t" in value:
                ioc_type = detect_ioc_type(value)
                if ioc_type is not None and not ioc_type.is_rule and (ioc_type is not IocType.STIX_PATTERN):
                    ioc_type = None
            if ioc_type is None:
                refanged = refang(value)
                ioc_type = detect_ioc_type(refanged)
                if ioc_type is IocType.FILE_NAME and refanged != value and is_defanged_host_name(refanged):
                    ioc_type = IocType.DOMAIN  # `evil_x[.]com`: defanged, so a host, not a file
                if ioc_type is not IocType.WINDOWS_REGISTRY_KEY:
                    value = refanged
        elif not allowed <= _AS_WRITTEN:
            value = refang(value)
        if ioc_type is None:
            port_types = _ADDRESS_OF.keys() if allowed is None else allowed & _ADDRESS_OF.keys()
            if port_types and (alone := self._without_unknown_port(c, value, port_types, value_field)):
                ioc_type, value = alone
        if ioc_type is None:
            ioc_type = self._resolve_type(c, value, hint, value_field)
            if ioc_type is None:
                return None
        try:
            normalised = normalise(ioc_type, value)
        except ValueError as error:
            self._reject(c, "invalid-value", value_field, f"not a valid {ioc_type.value}: {error}")
        return self._build(c, ioc_type, normalised, value_field)

    def _without_unknown_port(
        self, c: IndicatorCandidate, value: str, port_types: Iterable[IocType], value_field: str
    ) -> tuple[IocType, str] | None:
        """`95.214.26.97:None`: a C2 list's ip:port whose port its source did not know (a
        script's None, null, -, N/A, or nothing). The address is still the indicator: shared
        alone, with a warning, rather than lost to a port that is no number. None when `value`
        is no address (of `port_types`) with such a port."""
        address, sep, port = value.rpartition(":")
        if not sep or port.strip().lower() not in _UNKNOWN_PORTS:
            return None
        if address.startswith("[") and address.endswith("]"):
            address = address[1:-1]
        detected = detect_ioc_type(address)
        if detected is None or detected not in {_ADDRESS_OF[t] for t in port_types}:
            return None
        port_text = f"'{describe_value(port, 20)}'" if port.strip() else "empty"
        self._warn(
            c,
            "unknown-port",
            value_field,
            f"the port is unknown ({port_text}): shared as the {detected.value} alone, which "
            "matches its traffic on every port",
        )
        return detected, address

    def _type_hint(self, c: IndicatorCandidate) -> TypeHint:
        text = c.type_hint or ""
        hint = self._hints.get(text)
        if hint is None:
            try:
                hint = read_type_hint(text)
            except ValueError as error:
                hint = str(error)
            self._hints[text] = hint
        if isinstance(hint, str):
            self._reject(c, "unknown-type", "type", hint)
        return hint

    def _resolve_type(
        self,
        c: IndicatorCandidate,
        value: str,
        hint: TypeHint | None,
        value_field: str,
    ) -> IocType | None:
        allowed = hint.types if hint is not None else None
        if hint is not None and len(hint.types) == 1:
            if hint.exact:
                return next(iter(hint.types))
            return self._weak_hint_type(c, value, hint, value_field)
        detected = detect_ioc_type(value)
        if allowed is not None and detected not in allowed:
            if allowed == HASH_TYPES:
                try:
                    return normalise_any_hash(value)[0]
                except ValueError as error:
                    self._reject(c, "invalid-value", value_field, f"not a valid hash: {error}")
            if allowed == X509_TYPES:
                try:
                    return normalise_x509_fingerprint(value)[0]
                except ValueError as error:
                    reason = f"not a valid certificate fingerprint: {error}"
                    self._reject(c, "invalid-value", value_field, reason)
            expected = type_hint_name(allowed)
            if detected is not None:
                reason = f"the type says {expected} but it looks like {detected.value}"
                self._reject(c, "type-mismatch", value_field, reason)
            # Not recognised: say what is wrong with it as the first type the hint allows.
            first = min(allowed, key=lambda t: _TYPE_ORDER.index(t))
            try:
                normalise(first, value)
            except ValueError as error:
                self._reject(c, "invalid-value", value_field, f"not a valid {expected}: {error}")
            return first
        if detected is not None:
            return detected
        if is_hash_shaped(value):
            try:
                normalise_any_hash(value)
            except ValueError as error:
                self._reject(c, "invalid-value", value_field, str(error))
        if looks_like_phone_number(value):
            if self.settings.keep_personal_data:
                self._reject(c, "unrecognised", value_field, "phone numbers have no STIX type")
            self._warn(c, "personal-data", value_field, "a phone number: personal data, withheld")
            return None
        self._reject(c, "unrecognised", value_field, "not a recognised indicator")
        return None  # unreachable: _reject raises

    def _weak_hint_type(self, c: IndicatorCandidate, value: str, hint: TypeHint, value_field: str) -> IocType:
        """The type of a value whose type hint is one type named inside a longer label."""
        (hinted,) = hint.types
        detected = detect_ioc_type(value)
        if detected is None or not hint.gives_way_to(detected):
            return hinted
        # "C2 @ Pastebin URL" says where Unit 42 found the C2, not that `host:port` is a URL:
        # making it one would invent a scheme and a path the source never gave.
        label = describe_value(c.type_hint, 60)
        self._warn(
            c,
            "weak-type-hint",
            value_field,
            f"the type '{label}' names {hinted.value} only inside a longer label, and this value "
            f"has no scheme and no path: kept as {detected.value} rather than an invented {hinted.value}",
        )
        return detected

    def _build(
        self, c: IndicatorCandidate, ioc_type: IocType, value: str, value_field: str
    ) -> tuple[IocType, dict[str, Any]] | None:
        settings = self.settings
        if ioc_type is IocType.EMAIL and not settings.keep_personal_data and is_individual_email(value):
            self._warn(
                c,
                "personal-data",
                value_field,
                "an individual's e-mail address is personal data (GDPR, DPDP Act): withheld; "
                "use --keep-personal-data to share it",
            )
            return None
        if (
            ioc_type is IocType.EMAIL_SUBJECT
            and not settings.keep_personal_data
            and holds_personal_data(value)
        ):
            self._warn(
                c,
                "personal-data",
                value_field,
                "a subject holding an individual's e-mail address or phone number is personal data "
                "(GDPR, DPDP Act), and scrubbing it would change what it matches: withheld; "
                "use --keep-personal-data to share it",
            )
            return None
        if ioc_type is IocType.URL and not settings.keep_personal_data and (why := url_personal_data(value)):
            self._warn(
                c,
                "personal-data",
                value_field,
                f"{why} is personal data (GDPR, DPDP Act), and scrubbing it would change what it "
                "matches: withheld; use --keep-personal-data to share it",
            )
            return None
        hit = self.guardrails.check(ioc_type, value)
        if hit is not None:
            if settings.strict or hit.rejected:
                advice = f": rejected; {hit.advice}" if hit.rejected and hit.advice else ""
                self._reject(c, hit.code, value_field, f"likely false positive: {hit.message}{advice}")
            self._warn(c, hit.code, value_field, f"likely false positive: {hit.message}")
        if ioc_type is IocType.DOMAIN and "xn--" in value:
            self._warn(c, "idn-domain", value_field, f"internationalised name, shared as {value}")

        if c.named_tlp is not None:
            self._refuse_weaker_than_named(c)
        tlp = self._tlp(c)
        confidence = None
        text = c.confidence
        if text:
            if text.isdigit() and len(text) <= 3 and int(text) <= 100:
                confidence = int(text)  # the common case, without the general parser
            else:
                try:
                    confidence = parse_confidence(text)
                except ValueError as error:
                    self._reject(c, "invalid-confidence", "confidence", str(error))
        valid_from = self._timestamp(c, "valid_from", c.valid_from) if c.valid_from else None
        valid_until = self._timestamp(c, "valid_until", c.valid_until) if c.valid_until else None
        if valid_until is not None:
            start = valid_from or self.builder.now
            if valid_until <= start:
                self._reject(c, "invalid-validity", "valid_until", "not later than valid_from")
            if valid_until < self.builder.now:
                self._warn(c, "expired", "valid_until", "the indicator has already expired")
        elif valid_from is not None and ioc_type is not IocType.CVE:
            # valid_until defaults to valid_from plus the type's lifetime: an old first-seen
            # date gives an indicator expired on arrival, which exports leave out.
            lifetime = self.builder.lifetime(ioc_type)
            if valid_from + lifetime < self.builder.now:
                self._warn(
                    c,
                    "expired",
                    "valid_from",
                    f"the indicator has already expired: valid for {lifetime.days} days from "
                    "valid_from, the lifetime of its type (give valid_until to say otherwise)",
                )
        description, personal_data = self._description(c) if c.description else (None, None)
        external_references = (
            self._external_references(c) if c.reference or c.incident_id or c.external_references else None
        )

        if ioc_type is IocType.CVE:
            self._say_personal_data(c, personal_data)
            return ioc_type, self.builder.vulnerability_from(
                value,
                tlp=tlp,
                confidence=confidence,
                description=description,
                external_references=external_references,
            )
        indicator_types = kill_chain_phases = None
        if c.indicator_types and c.indicator_types.strip():
            try:
                indicator_types = parse_indicator_types(c.indicator_types)
            except ValueError as error:
                self._reject(c, "invalid-indicator-types", "indicator_types", str(error))
        if c.kill_chain_phases and c.kill_chain_phases.strip():
            try:
                kill_chain_phases = parse_kill_chain_phases(c.kill_chain_phases)
            except ValueError as error:
                self._reject(c, "invalid-kill-chain-phases", "kill_chain_phases", str(error))
        self._say_personal_data(c, personal_data)
        return ioc_type, self.builder.indicator_from(
            ioc_type,
            value,
            pattern_for(ioc_type, value),
            tlp=tlp,
            confidence=confidence,
            valid_from=valid_from,
            valid_until=valid_until,
            description=description,
            indicator_types=indicator_types,
            kill_chain_phases=kill_chain_phases,
            external_references=external_references,
        )

    def _refuse_weaker_than_named(self, c: IndicatorCandidate) -> None:
        """Rejects a value whose input names a stricter TLP beside it (`named_tlp`) than the
        one it would go out at: fail closed, as for a text list naming a level below its head."""
        assert c.named_tlp is not None
        named = Tlp.parse(c.named_tlp)
        try:
            own = Tlp.parse(c.tlp) if c.tlp and c.tlp.strip() else None
        except ValueError:
            return  # `_tlp` rejects it (invalid-tlp)
        going = own or self.settings.default_tlp
        if named > going:
            whence = "its own TLP" if own else "the default, as it has no TLP of its own"
            self._reject(
                c,
                "tlp-in-text",
                "tlp",
                f"the input names {named.label} beside the value, stricter than {going.label} "
                f"({whence}): mark the value {named.value} (a tlp column or tag, or --tlp "
                f"{named.value}), or reword that text",
            )

    def _tlp(self, c: IndicatorCandidate) -> Tlp:
        text = c.tlp
        tlp = self._tlps.get(text) if text else None
        if tlp.__class__ is Tlp:
            return tlp
        if text is None or not text.strip():
            self.default_tlp_count += 1
            return self.settings.default_tlp
        if tlp is None:
            try:
                tlp = Tlp.parse(text)
            except ValueError as error:
                tlp = str(error)
            self._tlps[text] = tlp
        if isinstance(tlp, str):
            self._reject(c, "invalid-tlp", "tlp", tlp)
        return tlp

    def _timestamp(self, c: IndicatorCandidate, field: str, text: str | None) -> Any:
        if text is None or not text.strip():
            return None
        try:
            return parse_timestamp(text)
        except ValueError as error:
            self._reject(c, "invalid-timestamp", field, str(error))

    def _say_personal_data(self, c: IndicatorCandidate, warning: str | None) -> None:
        """The description's personal-data warning, said once the candidate is kept: a
        rejected one shares nothing."""
        if warning is not None:
            self._warn(c, "personal-data", "description", warning)

    def _description(self, c: IndicatorCandidate) -> tuple[str | None, str | None]:
        """(the description to share, the personal-data warning to give if the candidate is
        kept)."""
        text = c.description
        if not text or not text.strip():
            return None, None
        if (
            text.isprintable()
            and "  " not in text
            and "@" not in text
            and not may_hold_a_personal_number(text)
        ):
            return text.strip(), None  # the common case: nothing to tidy, check or scrub
        text = " ".join(text.split()) if "\n" not in text else text.strip()
        if len(text) > MAX_DESCRIPTION_LENGTH:
            self._reject(c, "value-too-long", "description", "description too long")
        try:
            check_printable(text.replace("\n", " "), "description")
        except ValueError as error:
            self._reject(c, "invalid-value", "description", str(error))
        scrubbed, found = scrub_personal_data(text)
        # Kept with --keep-personal-data, but the analyst is told either way.
        done = "kept in" if self.settings.keep_personal_data else "removed from"
        warning = (
            f"{found} item(s) of personal data (e-mail, phone, id, IBAN) {done} the text" if found else None
        )
        return (text if self.settings.keep_personal_data else scrubbed), warning

    def _external_references(self, c: IndicatorCandidate) -> list[dict[str, str]] | None:
        references: list[dict[str, str]] = list(c.external_references)
        for field, text in (("reference", c.reference), ("incident_id", c.incident_id)):
            if text and (len(text) > 4096 or not text.isprintable()):
                self._reject(c, "invalid-value", field, "too long or holds control characters")
        if c.reference and c.reference.strip():
            reference = c.reference.strip()
            key = "url" if reference.startswith(("http://", "https://")) else "description"
            references.append({"source_name": "reference", key: reference})
        if c.incident_id and c.incident_id.strip():
            references.append(
                {
                    "source_name": self.settings.incident_source_name,
                    "external_id": c.incident_id.strip(),
                    "description": "incident",
                }
            )
        return references or None
