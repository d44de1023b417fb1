"""Reference profiles: per-feature statistics and bins, saved as versioned JSON."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ProfileError
from ._binning import (
    MISSING,
    WRONG_TYPE,
    category_key,
    category_keys,
    equal_frequency_edges,
    numeric_column,
)
from ._constraints import Constraint, constraint_from_dict
from ._datasets import is_dataset_source, open_dataset
from ._multivariate import MultivariateProfile, fit_multivariate
from ._partials import (
    CATEGORY_CAP,
    ColumnPlan,
    ColumnSketch,
    Job,
    ScanPass,
    bucket_index,
    grid_for,
    grid_quantiles,
    quantile_buckets,
    run_job,
)

__all__ = [
    "FeatureProfile", "Profile", "ProfileJob", "SCHEMA_VERSION", "auto_bins", "profile_dataset"
]

SCHEMA_VERSION = 2
"""Version of the profile JSON format this mlotel writes; it reads this and older ones.
Version 2 added the ``multivariate`` entry and bin counts chosen from the reference size
(version 1 files load as they are: their bins, no multivariate model)."""
FORMAT = "mlotel.profile"
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
MAX_INT_CATEGORIES = 10  # integer columns with at most this many distinct values are categorical
MAX_KNOWN_CATEGORIES = 1000  # distinct reference values kept to recognise new categories
MIN_BINS, MAX_BINS, VALUES_PER_BIN = 10, 50, 200


def auto_bins(values: int) -> int:
    """Equal-frequency bins for a numeric column with ``values`` finite reference values.

    One bin per 200 values, between 10 and 50: 50 bins keep 99.5 % of the information a
    normal location shift has (10 keep 93 %), and 200 reference values per bin keep each
    bin's reference share within about 7 % of its true value.

    >>> auto_bins(500), auto_bins(5_000), auto_bins(10_000), auto_bins(1_000_000)
    (10, 25, 50, 50)
    """
    return max(MIN_BINS, min(MAX_BINS, values // VALUES_PER_BIN))
ROLES = ("feature", "target", "prediction", "score")


@dataclass(frozen=True)
class FeatureProfile:
    """One column of a reference profile.

    Numeric columns carry ``min``/``max``/``mean``/``std``/``quantiles`` of their
    finite values, inner bin ``edges`` and ``bin_counts`` (one more than edges).
    Categorical columns carry their top ``categories`` with ``bin_counts`` (the last
    count is "other") and ``known_categories``: every other reference value, or None
    when there were too many to keep.

    >>> from mlotel.drift import Profile
    >>> age = Profile.from_data({"age": [20.0, 30.0, None, 40.0]})["age"]
    >>> age.kind, age.count, age.missing, age.mean, age.missing_share
    ('numeric', 3, 1, 30.0, 0.25)
    >>> FeatureProfile.from_dict(age.to_dict()) == age
    True
    """

    name: str
    kind: str  # "numeric" or "categorical"
    role: str = "feature"
    count: int = 0  # present values (numeric: finite ones)
    missing: int = 0
    non_finite: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    known_categories: tuple[str, ...] | None = ()
    value_type: str = "number"  # categorical: "number" or "text"
    bin_counts: tuple[int, ...] = ()
    constraints: tuple[Constraint, ...] = ()

    @property
    def rows(self) -> int:
        """Rows of the reference: present, missing and non-finite values."""
        return self.count + self.missing + self.non_finite

    @property
    def missing_share(self) -> float:
        """Share of the reference rows that were missing (0.0 without rows)."""
        return self.missing / self.rows if self.rows else 0.0

    @property
    def shares(self) -> np.ndarray:
        """Reference share of each bin (zeros when the column had no values)."""
        counts = np.asarray(self.bin_counts, dtype=np.float64)
        total = counts.sum()
        return counts / total if total else counts

    @property
    def bin_labels(self) -> list[str]:
        """``ml.feature.bin`` values: bin indexes, or category names plus ``__other__``."""
        if self.kind == "numeric":
            return [str(i) for i in range(len(self.bin_counts))]
        return [*self.categories, "__other__"]

    def to_dict(self) -> dict[str, Any]:
        """The column as JSON-ready data (one entry of the profile's ``features``)."""
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "role": self.role,
            "count": self.count,
            "missing": self.missing,
            "non_finite": self.non_finite,
        }
        if self.kind == "numeric":
            data.update(
                min=self.min,
                max=self.max,
                mean=self.mean,
                std=self.std,
                quantiles=dict(self.quantiles),
                edges=list(self.edges),
            )
        else:
            data.update(
                categories=list(self.categories),
                known_categories=None
                if self.known_categories is None
                else list(self.known_categories),
                value_type=self.value_type,
            )
        data["bin_counts"] = list(self.bin_counts)
        if self.constraints:
            data["constraints"] = [c.to_dict() for c in self.constraints]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureProfile:
        """The column :meth:`to_dict` described; KeyError/ValueError for bad data."""
        kind = data["kind"]
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"kind must be numeric or categorical, not {kind!r}")
        role = data.get("role", "feature")
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        counts = tuple(int(c) for c in data["bin_counts"])
        if any(c < 0 for c in counts):
            raise ValueError("bin_counts must not be negative")
        numeric = kind == "numeric"
        edges = tuple(float(e) for e in data["edges"]) if numeric else ()
        categories = () if numeric else tuple(str(c) for c in data["categories"])
        expected = len(edges) + 1 if numeric else len(categories) + 1
        if counts and len(counts) != expected:
            raise ValueError(f"bin_counts has {len(counts)} entries, expected {expected}")
        if list(edges) != sorted(edges):
            raise ValueError("edges must be sorted")
        known = data.get("known_categories", ())
        return cls(
            name=str(data["name"]),
            kind=kind,
            role=role,
            count=int(data["count"]),
            missing=int(data.get("missing", 0)),
            non_finite=int(data.get("non_finite", 0)),
            min=_opt_float(data.get("min")),
            max=_opt_float(data.get("max")),
            mean=_opt_float(data.get("mean")),
            std=_opt_float(data.get("std")),
            quantiles={str(k): float(v) for k, v in (data.get("quantiles") or {}).items()},
            edges=edges,
            categories=categories,
            known_categories=None if known is None else tuple(str(c) for c in known),
            value_type=str(data.get("value_type", "number")),
            bin_counts=counts,
            constraints=tuple(constraint_from_dict(c) for c in data.get("constraints", ())),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


# --- building ----------------------------------------------------------------------


def _columns_of(
    data: Any, feature_names: Sequence[str] | None
) -> tuple[list[str], list[np.ndarray]]:
    """Column names and 1-D arrays of a DataFrame, 2-D array, dict of columns or rows."""
    module = type(data).__module__.partition(".")[0]
    if module == "pandas" and hasattr(data, "columns"):
        names = [str(c) for c in data.columns]
        return names, [data[c].to_numpy() for c in data.columns]
    if module == "pyarrow" and hasattr(data, "column_names"):
        names = [str(c) for c in data.column_names]
        return names, [data.column(c).to_numpy(zero_copy_only=False) for c in data.column_names]
    if isinstance(data, Mapping):
        names = [str(k) for k in data]
        return names, [_as_column(v) for v in data.values()]
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], Mapping):
        keys = list(dict.fromkeys(k for row in data for k in row))
        return [str(k) for k in keys], [_as_column([row.get(k) for row in data]) for k in keys]
    matrix = np.asarray(data)
    if matrix.ndim == 1:
        matrix = matrix.reshape(-1, 1)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D table of rows x features, got shape {matrix.shape}")
    width = matrix.shape[1]
    if feature_names is not None and len(feature_names) != width:
        raise ValueError(f"feature_names has {len(feature_names)} names for {width} columns")
    names = (
        [str(n) for n in feature_names]
        if feature_names is not None
        else [f"f{i}" for i in range(width)]
    )
    return names, [matrix[:, i] for i in range(width)]


def _as_column(values: Any) -> np.ndarray:
    column = np.asarray(values)
    if column.ndim != 1:
        column = np.asarray(list(values), dtype=object)
    return column


def _is_categorical(column: np.ndarray) -> bool:
    kind = column.dtype.kind
    if kind == "b" or kind in "USO":
        if kind == "O":  # numbers stored as objects (e.g. with None) stay numeric
            present = [v for v in column.tolist() if category_key(v) not in (MISSING,)]
            return not all(
                isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in present
            )
        return True
    if kind in "iu":
        return len(np.unique(column)) <= MAX_INT_CATEGORIES
    return False


def _numeric_profile(
    name: str, role: str, column: np.ndarray, bins: int | None
) -> FeatureProfile:
    values, missing_mask, wrong = numeric_column(column)
    nan = np.isnan(values)
    missing = int(np.count_nonzero(nan))
    if missing_mask is not None:
        missing += int(np.count_nonzero(missing_mask & ~nan))
    if wrong is not None and wrong.any():
        raise ValueError(f"column {name!r} is numeric but holds non-numeric values")
    present = ~nan if missing_mask is None else ~nan & ~missing_mask
    finite_mask = present & np.isfinite(values)
    non_finite = int(np.count_nonzero(present & ~finite_mask))
    finite = np.sort(values[finite_mask])
    if finite.size == 0:
        return FeatureProfile(
            name, "numeric", role, 0, missing, non_finite, bin_counts=(0,), edges=()
        )
    edges = equal_frequency_edges(finite, auto_bins(finite.size) if bins is None else bins)
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
    quantiles = np.quantile(finite, QUANTILES)
    return FeatureProfile(
        name=name,
        kind="numeric",
        role=role,
        count=int(finite.size),
        missing=missing,
        non_finite=non_finite,
        min=float(finite[0]),
        max=float(finite[-1]),
        mean=float(finite.mean()),
        std=float(finite.std()),
        quantiles={str(q): float(v) for q, v in zip(QUANTILES, quantiles.tolist())},
        edges=tuple(edges.tolist()),
        bin_counts=tuple(int(c) for c in counts.tolist()),
    )


def _categorical_profile(
    name: str, role: str, column: np.ndarray, top: int, counts_by_key: dict[str, int] | None = None
) -> FeatureProfile:
    if counts_by_key is None:
        keys, index = category_keys(column)
        tallies = np.bincount(index, minlength=len(keys))
        counts_by_key = {}
        for key, n in zip(keys, tallies.tolist()):
            if n:
                counts_by_key[key] = counts_by_key.get(key, 0) + n
    missing = counts_by_key.pop(MISSING, 0)
    if counts_by_key.pop(WRONG_TYPE, 0):
        raise ValueError(f"column {name!r} holds values that are not categories (lists, ...)")
    value_type = (
        "text"
        if column.dtype.kind in "US"
        or (column.dtype.kind == "O" and any(isinstance(v, str) for v in column.tolist()))
        else "number"
    )
    return _categorical_from_counts(name, role, counts_by_key, missing, top, value_type, ())


def _categorical_from_counts(
    name: str,
    role: str,
    counts_by_key: Mapping[str, int],
    missing: int,
    top: int,
    value_type: str,
    constraints: tuple[Constraint, ...],
    known_complete: bool = True,
) -> FeatureProfile:
    # Most frequent first; ties by name so the same data always gives the same bins.
    ordered = sorted(counts_by_key.items(), key=lambda kv: (-kv[1], kv[0]))
    head = ordered[:top]
    rest = ordered[top:]
    known: tuple[str, ...] | None = tuple(sorted(k for k, _ in rest))
    if not known_complete or (known is not None and len(known) > MAX_KNOWN_CATEGORIES):
        known = None
    return FeatureProfile(
        name=name,
        kind="categorical",
        role=role,
        count=sum(counts_by_key.values()),
        missing=missing,
        categories=tuple(k for k, _ in head),
        known_categories=known,
        value_type=value_type,
        bin_counts=(*(n for _, n in head), sum(n for _, n in rest)),
        constraints=constraints,
    )


def _names_set(value: str | Sequence[str] | None) -> set[str]:
    if value is None:
        return set()
    return {value} if isinstance(value, str) else {str(v) for v in value}


@dataclass(frozen=True)
class Profile:
    """A reference profile: what the training (or a known-good) data looked like.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> profile = Profile.from_data(
    ...     {"age": rng.normal(40, 10, 1000), "plan": rng.choice(["a", "b"], 1000)}
    ... )
    >>> profile["age"].kind, len(profile["age"].bin_counts), profile["plan"].categories
    ('numeric', 10, ('b', 'a'))
    >>> profile.multivariate is None  # needs two numeric features
    True
    >>> Profile.from_json(profile.to_json()) == profile
    True
    """

    features: tuple[FeatureProfile, ...]
    rows: int = 0
    created: str = ""
    schema_version: int = SCHEMA_VERSION
    multivariate: MultivariateProfile | None = None
    """PCA reconstruction model of the numeric input features (``docs/drift.md``)."""

    # --- access -----------------------------------------------------------------
    def __getitem__(self, name: str) -> FeatureProfile:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(f"no column {name!r} in the profile")

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.features)

    @property
    def feature_names(self) -> list[str]:
        """Names of the input features (role ``feature``), in column order."""
        return [f.name for f in self.features if f.role == "feature"]

    def role(self, role: str) -> FeatureProfile | None:
        """The first column with this role (``prediction``, ``score``, ``target``)."""
        return next((f for f in self.features if f.role == role), None)

    # --- building ---------------------------------------------------------------
    @classmethod
    def from_data(
        cls,
        data: Any,
        feature_names: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        target: str | None = None,
        prediction: str | Sequence[Any] | np.ndarray | None = None,
        *,
        numeric: Sequence[str] | None = None,
        score: str | Sequence[Any] | np.ndarray | None = None,
        bins: int | None = None,
        top_categories: int = 20,
        multivariate: bool = True,
    ) -> Profile:
        """Profile a DataFrame, a 2-D array (with ``feature_names``), a dict of columns,
        a list of row dicts, a pyarrow Table, or a dataset: a Parquet or CSV file, a
        directory of them (hive partitions included), a glob or a list of paths, read in
        record batches (:class:`ProfileJob`; the same profile, memory bounded by the batch).

        Column types are inferred (text, bool and integers with at most 10 distinct
        values are categorical) and overridden by ``categorical=`` / ``numeric=``.
        ``target``, ``prediction`` and ``score`` name columns with those roles; the
        last two may also be arrays of values (e.g. ``model.predict(X_train)``).
        ``bins``: equal-frequency bins per numeric column; by default chosen from the
        column's size (:func:`auto_bins`: 10 to 50). ``multivariate``: also fit the
        multivariate drift model (PCA on the numeric features, calibrated on held-out
        rows) when there are at least 2 numeric features and 200 rows.
        """
        if (bins is not None and bins < 1) or top_categories < 1:
            raise ValueError("bins and top_categories must be at least 1")
        if is_dataset_source(data):
            job = ProfileJob(
                categorical=categorical, numeric=numeric, target=target,
                prediction=prediction, score=score,  # type: ignore[arg-type]
                bins=bins, top_categories=top_categories,
            )
            return profile_dataset(data, job)
        names, columns = _columns_of(data, feature_names)
        rows = len(columns[0]) if columns else 0
        extra: list[tuple[str, str, np.ndarray]] = []
        roles = {target: "target"} if target is not None else {}
        for role, value in (("prediction", prediction), ("score", score)):
            if value is None:
                continue
            if isinstance(value, str):
                roles[value] = role
            else:
                column = _as_column(value)
                if len(column) != rows:
                    raise ValueError(f"{role} has {len(column)} values for {rows} rows")
                extra.append((role, role, column))
        missing_roles = [n for n in roles if n not in names]
        if missing_roles:
            raise ValueError(f"no column named {', '.join(map(repr, missing_roles))}")
        forced_cat = _names_set(categorical)
        forced_num = _names_set(numeric)
        unknown = (forced_cat | forced_num) - set(names) - {e[0] for e in extra}
        if unknown:
            raise ValueError(f"no column named {', '.join(map(repr, sorted(unknown)))}")
        features = []
        columns_with_roles = [
            *((n, roles.get(n, "feature"), c) for n, c in zip(names, columns)),
            *extra,
        ]
        for name, role, column in columns_with_roles:
            if name in forced_cat or (name not in forced_num and _is_categorical(column)):
                features.append(_categorical_profile(name, role, column, top_categories))
            else:
                features.append(_numeric_profile(name, role, column, bins))
        model = None
        if multivariate:
            numeric_inputs = [
                (f.name, numeric_column(c)[0])
                for f, (_, _, c) in zip(features, columns_with_roles)
                if f.kind == "numeric" and f.role == "feature" and f.count
            ]
            model = fit_multivariate(
                [n for n, _ in numeric_inputs], [c for _, c in numeric_inputs]
            )
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return cls(tuple(features), rows, created, multivariate=model)

    def with_constraints(self, constraints: Mapping[str, Iterable[Constraint]]) -> Profile:
        """A copy with constraints attached to features (saved in the JSON).

        >>> from mlotel.drift import Range
        >>> p = Profile.from_data({"age": [20.0, 30.0]}).with_constraints({"age": [Range(0, 120)]})
        >>> p["age"].constraints
        (Range(min=0, max=120, name='range'),)
        """
        unknown = set(constraints) - {f.name for f in self.features}
        if unknown:
            raise ValueError(f"no column named {', '.join(map(repr, sorted(unknown)))}")
        return replace(
            self,
            features=tuple(
                replace(f, constraints=(*f.constraints, *constraints.get(f.name, ())))
                for f in self.features
            ),
        )

    # --- merging ----------------------------------------------------------------
    def merge(self, other: Profile) -> Profile:
        """The profile of both datasets together.

        Counts, missing values, min/max, mean and std merge exactly; numeric bin
        counts merge when both parts share bin edges (profile the second part with
        :meth:`binned_like`); categories merge by name. Quantiles are the
        count-weighted mean of the parts' (an approximation).
        """
        if [f.name for f in self.features] != [f.name for f in other.features]:
            raise ValueError("profiles to merge must have the same columns in the same order")
        merged = [_merge_feature(a, b) for a, b in zip(self.features, other.features)]
        # The multivariate model is fitted on one dataset's rows; it does not merge.
        return replace(
            self, features=tuple(merged), rows=self.rows + other.rows, multivariate=None
        )

    @classmethod
    def binned_like(
        cls, data: Any, like: Profile, feature_names: Sequence[str] | None = None
    ) -> Profile:
        """Profile ``data`` on the bins and column types of ``like`` (for merging parts)."""
        names, columns = _columns_of(data, feature_names)
        by_name = dict(zip(names, columns))
        features = []
        for ref in like.features:
            if ref.name not in by_name:
                raise ValueError(f"no column named {ref.name!r}")
            column = by_name[ref.name]
            if ref.kind == "numeric":
                part = _numeric_profile(ref.name, ref.role, column, 1)
                if part.count:
                    values = numeric_column(column)[0]
                    finite = values[np.isfinite(values)]
                    edges = np.asarray(ref.edges)
                    counts = np.bincount(
                        np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1
                    )
                    part = replace(
                        part, edges=ref.edges, bin_counts=tuple(int(c) for c in counts.tolist())
                    )
                else:
                    part = replace(part, edges=ref.edges, bin_counts=(0,) * (len(ref.edges) + 1))
                features.append(replace(part, constraints=ref.constraints))
            else:
                part = _categorical_profile(ref.name, ref.role, column, len(ref.categories) or 1)
                features.append(replace(part, constraints=ref.constraints))
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return cls(tuple(features), len(columns[0]) if columns else 0, created)

    # --- JSON -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The profile as JSON-ready data (the file format :meth:`save` writes)."""
        data: dict[str, Any] = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "created": self.created,
            "rows": self.rows,
            "features": [f.to_dict() for f in self.features],
        }
        if self.multivariate is not None:
            data["multivariate"] = self.multivariate.to_dict()
        return data

    def to_json(self) -> str:
        """The profile as strict JSON text, as :meth:`save` writes it."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the profile as JSON (atomically: a temp file renamed into place)."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "profile") -> Profile:
        """The profile :meth:`to_dict` described; :class:`ProfileError` names ``source``."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ProfileError(f'{source}: not an mlotel profile (no "format": "{FORMAT}")')
        version = data.get("schema_version")
        if not isinstance(version, int):
            raise ProfileError(f"{source}: schema_version missing or not an integer")
        if version > SCHEMA_VERSION:
            raise ProfileError(
                f"{source}: profile schema_version {version} is newer than this mlotel "
                f"reads ({SCHEMA_VERSION}); upgrade mlotel"
            )
        features = []
        for i, item in enumerate(data.get("features") or []):
            try:
                features.append(FeatureProfile.from_dict(item))
            except KeyError as exc:
                raise ProfileError(f"{source}: features[{i}] lacks field {exc}") from None
            except (TypeError, ValueError) as exc:
                raise ProfileError(f"{source}: features[{i}]: {exc}") from None
        if not features:
            raise ProfileError(f"{source}: the profile has no features")
        model = None
        if version >= 2 and data.get("multivariate") is not None:
            try:
                model = MultivariateProfile.from_dict(data["multivariate"])
            except KeyError as exc:
                raise ProfileError(f"{source}: multivariate lacks field {exc}") from None
            except (TypeError, ValueError) as exc:
                raise ProfileError(f"{source}: {exc}") from None
            numeric = {f.name for f in features if f.kind == "numeric"}
            if not set(model.features) <= numeric:
                raise ProfileError(f"{source}: multivariate names features that are not numeric")
        return cls(
            tuple(features),
            int(data.get("rows", 0)),
            str(data.get("created", "")),
            schema_version=version,
            multivariate=model,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "profile") -> Profile:
        """The profile of JSON text; :class:`ProfileError` names ``source`` and the problem."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ProfileError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Profile:
        """Read a profile file; :class:`ProfileError` names the file and the problem."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{path}: cannot read the profile ({exc})") from None
        return cls.from_json(text, str(path))


def _merge_feature(a: FeatureProfile, b: FeatureProfile) -> FeatureProfile:
    if a.kind != b.kind or a.role != b.role:
        raise ValueError(f"column {a.name!r} has different types in the two profiles")
    constraints = tuple(dict.fromkeys((*a.constraints, *b.constraints)))
    if a.kind == "categorical":
        counts: dict[str, int] = {}
        for part in (a, b):
            for key, n in zip(part.categories, part.bin_counts):
                counts[key] = counts.get(key, 0) + n
        # "other" mass of each part whose categories are not among the other's top.
        other = a.bin_counts[-1] + b.bin_counts[-1] if a.bin_counts and b.bin_counts else 0
        known = set(a.known_categories or ()) | set(b.known_categories or ())
        complete = a.known_categories is not None and b.known_categories is not None
        top = max(len(a.categories), len(b.categories), 1)
        merged = _categorical_from_counts(
            a.name,
            a.role,
            counts,
            a.missing + b.missing,
            top,
            a.value_type if a.value_type == b.value_type else "text",
            constraints,
            complete,
        )
        moved = merged.bin_counts[-1]  # categories that fell off the merged top
        known_all = (
            None
            if merged.known_categories is None
            else tuple(sorted((known | set(merged.known_categories)) - set(merged.categories)))
        )
        return replace(
            merged,
            count=merged.count + other,
            bin_counts=(*merged.bin_counts[:-1], moved + other),
            known_categories=known_all,
        )
    if a.count and b.count and a.edges != b.edges:
        raise ValueError(
            f"column {a.name!r} has different bin edges in the two profiles; profile the "
            "second part with Profile.binned_like(data, first_profile)"
        )
    if not b.count:
        return replace(
            a,
            missing=a.missing + b.missing,
            non_finite=a.non_finite + b.non_finite,
            constraints=constraints,
        )
    if not a.count:
        return replace(
            b,
            missing=a.missing + b.missing,
            non_finite=a.non_finite + b.non_finite,
            constraints=constraints,
        )
    assert a.mean is not None and b.mean is not None and a.std is not None and b.std is not None
    n = a.count + b.count
    delta = b.mean - a.mean
    mean = a.mean + delta * b.count / n
    # Chan et al.'s pairwise update of the sum of squared deviations.
    m2 = a.std**2 * a.count + b.std**2 * b.count + delta**2 * a.count * b.count / n
    quantiles = {
        q: (a.quantiles[q] * a.count + b.quantiles[q] * b.count) / n
        for q in a.quantiles
        if q in b.quantiles
    }
    return replace(
        a,
        count=n,
        missing=a.missing + b.missing,
        non_finite=a.non_finite + b.non_finite,
        min=min(a.min, b.min) if a.min is not None and b.min is not None else None,
        max=max(a.max, b.max) if a.max is not None and b.max is not None else None,
        mean=mean,
        std=math.sqrt(max(m2 / n, 0.0)),
        quantiles=quantiles,
        bin_counts=tuple(x + y for x, y in zip(a.bin_counts, b.bin_counts)),
        constraints=constraints,
    )


# --- profiles of datasets: the same profile from mergeable summaries ---------------------


class ProfileJob(Job):
    """A profile computed in passes over chunks of data (see :class:`mlotel.drift.Job`).

    The options are :meth:`Profile.from_data`'s (roles name columns). Three passes: counts,
    moments and categories; fine histograms of the numeric columns with more than 10,000
    values; the values of the few fine buckets holding the quantiles. The profile equals
    the in-memory one (means and standard deviations to rounding).

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> chunks = [{"x": rng.exponential(size=30_000)} for _ in range(2)]
    >>> job = ProfileJob(bins=5)
    >>> while (step := job.next_pass()) is not None:
    ...     job.add(*[step.summarize(chunk) for chunk in chunks])
    >>> whole = Profile.from_data({"x": np.concatenate([c["x"] for c in chunks])}, bins=5)
    >>> job.result()["x"].edges == whole["x"].edges
    True
    """

    def __init__(
        self,
        *,
        categorical: Sequence[str] | None = None,
        numeric: Sequence[str] | None = None,
        target: str | None = None,
        prediction: str | None = None,
        score: str | None = None,
        bins: int | None = None,
        top_categories: int = 20,
        columns: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if (bins is not None and bins < 1) or top_categories < 1:
            raise ValueError("bins and top_categories must be at least 1")
        self.forced_cat = _names_set(categorical)
        self.forced_num = _names_set(numeric)
        for role, name in (("prediction", prediction), ("score", score)):
            if name is not None and not isinstance(name, str):
                raise ValueError(f"{role} must name a column when profiling a dataset")
        self.roles = {
            name: role
            for role, name in (("target", target), ("prediction", prediction), ("score", score))
            if name is not None
        }
        self.bins = bins
        self.top_categories = top_categories
        self.columns = None if columns is None else tuple(str(c) for c in columns)
        self._plans: dict[str, ColumnPlan] = {}

    def _probs(self, values: int) -> list[float]:
        """The quantiles a numeric column of ``values`` finite values needs: the profile's
        and its bin edges (``bins``, or :func:`auto_bins` of its size)."""
        bins = self.bins if self.bins is not None else auto_bins(values)
        return [*QUANTILES, *(np.arange(1, bins) / bins).tolist()]

    def _numeric(self, sketch: ColumnSketch) -> bool:
        name = sketch.name
        if name in self.forced_cat:
            return False
        if name in self.forced_num:
            return True
        if sketch.kind == "int":
            return sketch.distinct is None or len(sketch.distinct) > MAX_INT_CATEGORIES
        return sketch.kind == "float"

    def _plan(self, step: int) -> ScanPass | None:
        if step == 1:
            # Text named numeric is not parsed: like the in-memory profile, it is refused.
            return ScanPass(1, columns=self.columns, categorical=frozenset(self.forced_cat))
        sketches = self.merged(1, "data").columns
        if step == 2:
            names = list(sketches)
            missing = [n for n in (*self.roles, *self.forced_cat, *self.forced_num)
                       if n not in names]
            if missing:
                raise ValueError(f"no column named {', '.join(map(repr, sorted(missing)))}")
            for name, sketch in sketches.items():
                if self._numeric(sketch) and sketch.numeric and sketch.raw is None:
                    center, scale, grid = grid_for([sketch])
                    self._plans[name] = ColumnPlan(name, center, scale, grid)
        elif step == 3:
            counted = self.merged(2, "data").columns
            for name, plan in list(self._plans.items()):
                count = sketches[name].count
                counts = counted[name].grid_counts
                buckets = quantile_buckets(self._probs(count), count, counts, plan)
                self._plans[name] = replace(plan, selected=tuple(sorted(buckets)))
        else:
            return None
        if not self._plans:
            return None
        return ScanPass(step, plans=tuple(self._plans.values()))

    def result(self) -> Profile:
        """The profile (call after :meth:`next_pass` returned None)."""
        if not self.done:
            raise ValueError("the job has passes left: run next_pass() until it returns None")
        sketches = self.merged(1, "data")
        features = []
        for name, sketch in sketches.columns.items():
            role = self.roles.get(name, "feature")
            if sketch.kind in ("datetime", "other"):
                raise ValueError(
                    f"column {name!r} holds neither numbers nor categories; leave it out"
                )
            if not self._numeric(sketch):
                features.append(self._categorical(sketch, role))
            elif not sketch.numeric or sketch.not_numeric:
                raise ValueError(f"column {name!r} is numeric but holds non-numeric values")
            elif name not in self._plans:
                values = np.concatenate((
                    sketch.raw if sketch.raw is not None else np.empty(0),
                    np.full(sketch.missing, np.nan),
                    np.full(sketch.non_finite, np.inf),
                ))
                features.append(_numeric_profile(name, role, values, self.bins))
            else:
                features.append(self._numeric_from_counts(sketch, role))
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return Profile(tuple(features), sketches.rows, created)

    def _categorical(self, sketch: ColumnSketch, role: str) -> FeatureProfile:
        tally = sketch.category_tally()
        if tally is None:
            raise ValueError(
                f"column {sketch.name!r} has more than {CATEGORY_CAP:,} distinct values: too "
                "many to profile as categories; leave it out"
            )
        counts: dict[str, int] = {}
        for value, n in tally.items():
            key = category_key(value)
            counts[key] = counts.get(key, 0) + n
        missing = sketch.missing + counts.pop(MISSING, 0)
        value_type = "text" if sketch.kind == "string" else "number"
        return _categorical_from_counts(
            sketch.name, role, counts, missing, self.top_categories, value_type, ()
        )

    def _numeric_from_counts(self, sketch: ColumnSketch, role: str) -> FeatureProfile:
        plan = self._plans[sketch.name]
        assert plan.grid is not None
        first = plan.grid[0]
        grid = self.merged(2, "data").columns[sketch.name].grid_counts
        selected = self.merged(3, "data").columns[sketch.name].selected or {}
        n = sketch.count
        probs = self._probs(n)
        values = grid_quantiles(probs, n, grid, plan, selected)
        quantiles = values[: len(QUANTILES)]
        edges = np.unique(np.asarray(values[len(QUANTILES):], dtype=np.float64))
        edges = edges[edges > sketch.min]
        # Values below each edge: whole buckets below its bucket, plus the collected values
        # of its bucket that are smaller (buckets are monotone in the value).
        cumulative = np.concatenate(([0], np.cumsum(grid)))
        picked = np.array(sorted(selected), dtype=np.float64)
        picked_counts = np.array([selected[v] for v in sorted(selected)], dtype=np.int64)
        picked_bucket = bucket_index((picked - plan.center) / plan.scale) - first
        edge_bucket = bucket_index((edges - plan.center) / plan.scale) - first
        below = [
            int(cumulative[b]) + int(picked_counts[(picked_bucket == b) & (picked < e)].sum())
            for b, e in zip(edge_bucket.tolist(), edges.tolist())
        ]
        counts = np.diff(np.array([0, *below, n]))
        return FeatureProfile(
            name=sketch.name,
            kind="numeric",
            role=role,
            count=n,
            missing=sketch.missing,
            non_finite=sketch.non_finite,
            min=sketch.min,
            max=sketch.max,
            mean=sketch.mean,
            std=sketch.std,
            quantiles={str(q): float(v) for q, v in zip(QUANTILES, quantiles)},
            edges=tuple(edges.tolist()),
            bin_counts=tuple(int(c) for c in counts.tolist()),
        )


def profile_dataset(
    source: Any, job: ProfileJob, workers: int | None = None, progress: Any = None
) -> Profile:
    """Run ``job`` over ``source`` (paths, an opened dataset, or in-memory data) in
    ``workers`` threads (None: the default count) and return its profile;
    ``progress`` as :func:`run_job`'s."""
    dataset = open_dataset(source) if is_dataset_source(source) else source
    run_job(job, {"data": dataset}, workers=workers, progress=progress)
    return job.result()
