"""Which feature values never leave the process: ``payload_redact`` / ``payload_allow``.

Names are compared normalised: case-folded, surrounding whitespace stripped, and runs
of spaces, ``_`` and ``-`` read as one ``_`` (``"SSN "``, ``"ssn"`` and ``"Ssn"`` are one
name; ``"credit card"`` is ``"credit_card"``). A structured name is also compared part
by part: the levels of a pandas MultiIndex column (``('pii', 'ssn')``) and the path of
a nested key (``user.ssn``). Deny-listed names are redacted wherever they appear: as a
feature, as a level of a column name, or as a key of a nested dict (at any depth, in
lists too) inside a feature's value. The allow list applies to top-level features: a
feature is logged in clear only when its whole name (or its levels joined with ``.``) is
allowed and no part of it is denied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from . import semconv

__all__ = ["Redactor", "normalise_name"]

_SEPARATORS = re.compile(r"[\s_\-]+")
# Characters that structure a name: str() of a tuple column, dotted and bracketed paths.
_STRUCTURE = re.compile(r"[.\[\](),'\"/:]+")
_MAX_DEPTH = 8  # nested containers redacted this deep; deeper ones are replaced whole
_MAX_ITEMS = 64  # items of one nested container kept (its text is cut to 256 characters)
_CACHE_LIMIT = 4096


def normalise_name(name: str) -> str:
    """The form feature names are compared in.

    >>> normalise_name("  Credit-Card Number "), normalise_name("SSN")
    ('credit_card_number', 'ssn')
    """
    return _SEPARATORS.sub("_", str(name).strip().casefold()).strip("_")


def _parts(name: str) -> list[str]:
    return [p for p in (normalise_name(p) for p in _STRUCTURE.split(name)) if p]


class Redactor:
    """The redaction rules of one configuration.

    >>> redactor = Redactor(["ssn"], None)
    >>> redactor.payload({"SSN ": "123", "user": {"Ssn": "456", "age": 3}, "('pii', 'ssn')": 7})
    {'SSN ': '[REDACTED]', 'user': {'Ssn': '[REDACTED]', 'age': 3}, "('pii', 'ssn')": '[REDACTED]'}
    >>> Redactor([], ["age"]).payload({"AGE": 31, "income": 10})
    {'AGE': 31, 'income': '[REDACTED]'}
    """

    def __init__(self, redact: Iterable[str], allow: Iterable[str] | None) -> None:
        self._deny = frozenset(filter(None, map(normalise_name, redact)))
        self._allow = None if allow is None else frozenset(map(normalise_name, allow))
        self.active = bool(self._deny) or self._allow is not None
        """Whether any value is redacted at all (else every method returns its input)."""
        self.nested = bool(self._deny)
        """Whether values that are containers must be walked for denied keys."""
        self._hidden: dict[str, bool] = {}
        self._denied: dict[str, bool] = {}

    def hides(self, name: str) -> bool:
        """Whether the feature ``name`` is logged as ``[REDACTED]`` (denied, or not allowed)."""
        found = self._hidden.get(name)
        if found is None:
            found = self.denies(name)
            allow = self._allow
            if not found and allow is not None:
                found = normalise_name(name) not in allow and ".".join(_parts(name)) not in allow
            if len(self._hidden) < _CACHE_LIMIT:
                self._hidden[name] = found
        return found

    def denies(self, name: str) -> bool:
        """Whether ``name`` (or a part of it) is on the deny list."""
        found = self._denied.get(name)
        if found is None:
            deny = self._deny
            found = bool(deny) and (
                normalise_name(name) in deny or any(p in deny for p in _parts(name))
            )
            if len(self._denied) < _CACHE_LIMIT:
                self._denied[name] = found
        return found

    def payload(self, payload: dict[str, Any], walk: bool = True) -> dict[str, Any]:
        """``payload`` (a feature map, changed in place) with hidden features redacted and,
        with ``walk``, denied keys redacted inside container values (the aggregator passes
        ``walk=False``: it redacted each row's containers with :meth:`value` already)."""
        if not self.active:
            return payload
        nested = self.nested and walk
        for key, value in payload.items():
            if self.hides(key):
                payload[key] = semconv.REDACTED
            elif nested and isinstance(value, (Mapping, list, tuple)):
                payload[key] = self.value(value)
        return payload

    def value(self, value: Any, depth: int = 0) -> Any:
        """A copy of a container value with the values of denied keys redacted (at any
        depth, inside lists too); other values are returned as they are."""
        if not self.nested:
            return value
        if isinstance(value, Mapping):
            if depth >= _MAX_DEPTH:
                return semconv.REDACTED
            items = list(value.items())
            kept: dict[Any, Any] = {}
            for key, item in items[:_MAX_ITEMS]:
                kept[key] = (
                    semconv.REDACTED if self.denies(str(key)) else self.value(item, depth + 1)
                )
            if len(items) > _MAX_ITEMS:
                kept["…"] = "…"
            return kept
        if isinstance(value, (list, tuple)):
            if depth >= _MAX_DEPTH:
                return semconv.REDACTED
            shown = [self.value(item, depth + 1) for item in value[:_MAX_ITEMS]]
            if len(value) > _MAX_ITEMS:
                shown.append("…")
            return shown
        return value
