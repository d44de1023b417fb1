"""Column mapping of a monitoring report: which column is the label, the prediction, the
score, and the type of the others, in Python or in a JSON/YAML file.

>>> mapping = ColumnMapping.from_dict({"target": "churned", "prediction": "predicted",
...                                    "categorical": ["plan"]})
>>> mapping.roles(), mapping.categorical
({'target': 'churned', 'prediction': 'predicted'}, ('plan',))
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..exceptions import MappingError

__all__ = ["TASKS", "ColumnMapping"]

TASKS = ("classification", "regression")
"""Tasks a mapping can name (``task=``); None: inferred from the target."""

_ROLES = ("target", "prediction", "score")
_LISTS = ("numerical", "categorical")


@dataclass(frozen=True)
class ColumnMapping:
    """What the columns of a report's data sets are (every field optional).

    ``target``: the label column; ``prediction``: the model's output column (predicted
    labels of a classifier, values of a regressor); ``score``: the positive class's
    probability of a binary classifier. Named columns are left out of the feature drift
    tests and get their own sections: target drift, prediction drift and, with target
    and prediction, model performance. ``task`` (``classification`` or ``regression``)
    is inferred when None; ``positive_label`` is the positive class of a binary
    classifier (default: 1 or True when the labels are 0/1 or booleans).
    ``numerical`` / ``categorical`` override inferred column types.

    >>> merged = ColumnMapping(target="y", prediction="y_hat").merged(
    ...     ColumnMapping(prediction="pred", numerical=("age",)))
    >>> merged.roles(), merged.numerical
    ({'target': 'y', 'prediction': 'pred'}, ('age',))
    """

    target: str | None = None
    prediction: str | None = None
    score: str | None = None
    task: str | None = None
    positive_label: str | int | float | bool | None = None
    numerical: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for role in _ROLES:
            value = getattr(self, role)
            if value is not None and not isinstance(value, str):
                raise MappingError(f"{role} must be a column name (text), got {value!r}")
        if self.task is not None and self.task not in TASKS:
            raise MappingError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        label = self.positive_label
        if label is not None and not isinstance(label, (str, int, float, bool)):
            raise MappingError(f"positive_label must be a label value, got {label!r}")
        for key in _LISTS:
            value = getattr(self, key)
            listed = isinstance(value, (list, tuple))
            if not listed or not all(isinstance(v, str) for v in value):
                raise MappingError(f"{key} must be a list of column names, got {value!r}")
            object.__setattr__(self, key, tuple(value))
        named = [n for n in (self.target, self.prediction, self.score) if n is not None]
        twice = sorted({n for n in named if named.count(n) > 1})
        if twice:
            raise MappingError(f"column(s) {twice} named in two roles (target, prediction, score)")

    def roles(self) -> dict[str, str]:
        """``{role: column}`` of the named roles (target, prediction, score)."""
        return {role: getattr(self, role) for role in _ROLES if getattr(self, role) is not None}

    def merged(self, other: ColumnMapping) -> ColumnMapping:
        """This mapping with ``other``'s values on top: its named fields win, its column
        lists are added."""
        changes: dict[str, Any] = {
            f.name: getattr(other, f.name)
            for f in fields(self)
            if f.name not in _LISTS and getattr(other, f.name) is not None
        }
        for key in _LISTS:
            mine = getattr(self, key)
            changes[key] = mine + tuple(v for v in getattr(other, key) if v not in mine)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (the mapping file format)."""
        return {
            "target": self.target,
            "prediction": self.prediction,
            "score": self.score,
            "task": self.task,
            "positive_label": self.positive_label,
            "numerical": list(self.numerical),
            "categorical": list(self.categorical),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "column mapping") -> ColumnMapping:
        """A mapping from a dict with the keys of :meth:`to_dict` (any subset); an unknown
        key is an error (a typo would otherwise be ignored).

        >>> ColumnMapping.from_dict({"target": "y", "label": "x"})
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mlotel.exceptions.MappingError: column mapping: unknown key(s) ['label']; known: ...
        """
        if not isinstance(data, Mapping):
            raise MappingError(f"{source}: expected an object of keys, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise MappingError(f"{source}: unknown key(s) {unknown}; known: {', '.join(known)}")
        values = dict(data)
        for key in _LISTS:
            value = values.get(key)
            if value is None:
                values.pop(key, None)
            elif isinstance(value, str):  # one name, or "a,b" as on the command line
                values[key] = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, Sequence):
                values[key] = list(value)
        try:
            return cls(**values)
        except MappingError as exc:
            raise MappingError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> ColumnMapping:
        """Read a mapping file: JSON (``.json``) or YAML (``.yaml``/``.yml``, needs PyYAML,
        in the ``report`` extra).

        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp(), "mapping.json")
        >>> _ = path.write_text('{"target": "churned", "score": "probability"}')
        >>> ColumnMapping.load(path).roles()
        {'target': 'churned', 'score': 'probability'}
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MappingError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MappingError(f"{path}: cannot read the mapping file: {exc}") from None
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise MappingError(
                    f"{path}: YAML mapping files need PyYAML: pip install 'mlotel[report]' "
                    "(or write the mapping as JSON)"
                ) from None
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise MappingError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from None
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise MappingError(f"{path}: not valid JSON: {exc}") from None
        return cls.from_dict(data if data is not None else {}, source=str(path))
