"""When two stored spellings are one indicator value: the canonical form decisions and exports
compare.

Partners' values are stored as the partners wrote them, so one value may be stored as
`evil.example` (cert-fr) and `Evil.Example.` (cert-uk), `203.0.113.7` and `203.0.113.7/32`,
`http://bad.example/x` and `HTTP://BAD.EXAMPLE:80/x`. An analyst's decision on one is a
decision on all of them, and an export writes the value once: both compare the canonical form,
which is what exports write (ValueCheck.canonical: the ingest normalisers), with a one-address
range (`/32`, `/128`) folded into the bare address, which matches the same packets.

Cheap on purpose: a value on its type's fast path is already canonical and costs one regular
expression; only the others go through the normalisers.
"""

from __future__ import annotations

from cti_exchange.exporters.safety import FastPath, ValueCheck

# A range of one address is the address (`203.0.113.7/32` blocks what `203.0.113.7` blocks).
_ONE_ADDRESS = {"ipv4-addr": "/32", "ipv6-addr": "/128"}


class ValueForms:
    """The canonical form of stored values, type by type."""

    def __init__(self, check: ValueCheck) -> None:
        self.check = check
        self._fast: dict[str, FastPath] = {}

    def fast_path(self, ioc_type: str) -> FastPath:
        """True for a value already in canonical form (and clear of the guardrails); false
        when `of` must look closer."""
        found = self._fast.get(ioc_type)
        if found is None:
            found = self._fast[ioc_type] = self.check.fast_path(ioc_type)
        return found

    def of(self, ioc_type: str, value: str) -> str:
        """The canonical form of `value`; the value itself when it does not normalise."""
        if self.fast_path(ioc_type)(value):
            return value
        return self.slow(ioc_type, value)

    def slow(self, ioc_type: str, value: str) -> str:
        """`of` for a value off the fast path."""
        form = self.check.canonical(ioc_type, value)
        suffix = _ONE_ADDRESS.get(ioc_type)
        if suffix is not None and form.endswith(suffix):
            return form.removesuffix(suffix)
        return form


def bundled_value_forms() -> ValueForms:
    """ValueForms with the bundled warning lists (their fast paths need them)."""
    from cti_exchange.readers.warning_list import bundled_warning_lists
    from cti_exchange.stix.guardrails import Guardrails

    return ValueForms(ValueCheck(Guardrails(bundled_warning_lists())))
