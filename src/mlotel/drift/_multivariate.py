"""Multivariate drift: PCA reconstruction error, fitted and calibrated at profile time.

A change in how features move *together* (a broken correlation) can leave every marginal
distribution as it was, so no per-feature test sees it. Following NannyML's data
reconstruction drift, the profile keeps a PCA basis of the standardized numeric features
(the fewest components that explain 65 % of their variance); a row's error is its
Euclidean distance to that subspace. When the joint distribution changes, rows leave the
subspace and the window's mean error moves.

Calibration is out of sample: the reference rows are shuffled (fixed seed) and split in
two halves; the scaling and the basis come from the first half, the per-row error mean and
standard deviation from the second (held-out) half. The monitor compares a window's mean
error with that mean by a two-sided z-test whose variance counts both samples.

Cost per flushed row: one ``d``-vector standardisation and one ``d x q`` product (``d``
features, at most ``MAX_FEATURES``; ``q < d`` components).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a = rng.normal(size=4000)
>>> columns = [a, a + rng.normal(scale=0.3, size=4000), rng.normal(size=4000)]
>>> fitted = fit_multivariate(["a", "b", "c"], columns)
>>> fitted.components_count, round(fitted.error_mean, 2), round(fitted.error_std, 2)
(1, 0.85, 0.6)
>>> broken = np.column_stack([a, rng.permutation(columns[1]), columns[2]])  # a, b unrelated
>>> round(float(fitted.errors(broken).mean()), 2)
1.24
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["CLIP", "MAX_FEATURES", "MIN_ROWS", "MultivariateProfile", "fit_multivariate"]

MAX_FEATURES = 50
"""At most this many numeric features (the first ones) enter the multivariate model."""
MIN_ROWS = 200
"""Reference rows needed to fit (one half) and calibrate (the other half)."""
EXPLAINED_VARIANCE = 0.65
"""Components kept: the fewest that explain this share of the variance (NannyML's)."""
CLIP = 10.0
"""Standardized values are clipped to +-CLIP, so one absurd value cannot dominate a window."""


@dataclass(frozen=True)
class MultivariateProfile:
    """The PCA model and its held-out calibration, as saved in the profile's JSON."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    components: tuple[tuple[float, ...], ...]
    """``q`` orthonormal rows of length ``len(features)``."""
    explained_variance: float
    error_mean: float
    """Mean per-row error on the held-out half of the reference."""
    error_std: float
    fit_rows: int
    calibration_rows: int
    _mean: np.ndarray = field(init=False, repr=False, compare=False)
    _scale: np.ndarray = field(init=False, repr=False, compare=False)
    _basis_t: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Arrays for errors(), built once (the dataclass fields stay JSON-ready tuples).
        object.__setattr__(self, "_mean", np.asarray(self.mean, dtype=np.float64))
        object.__setattr__(self, "_scale", np.asarray(self.scale, dtype=np.float64))
        basis = np.asarray(self.components, dtype=np.float64).reshape(-1, len(self.features))
        object.__setattr__(self, "_basis_t", np.ascontiguousarray(basis.T))

    @property
    def components_count(self) -> int:
        return len(self.components)

    def errors(self, matrix: np.ndarray) -> np.ndarray:
        """Per-row reconstruction error of ``matrix`` (rows x ``features``); a missing or
        non-finite value counts as the reference mean (NannyML imputes the same way)."""
        z = np.asarray(matrix, dtype=np.float64) - self._mean
        z /= self._scale
        finite = np.isfinite(z)
        if not finite.all():
            z[~finite] = 0.0  # NaN and +-inf: imputed
        np.clip(z, -CLIP, CLIP, out=z)
        projected = z @ self._basis_t
        residual = np.einsum("ij,ij->i", z, z) - np.einsum("ij,ij->i", projected, projected)
        result: np.ndarray = np.sqrt(np.maximum(residual, 0.0))
        return result

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (the profile's ``multivariate`` entry)."""
        return {
            "method": "pca_reconstruction",
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "components": [list(row) for row in self.components],
            "explained_variance": self.explained_variance,
            "error_mean": self.error_mean,
            "error_std": self.error_std,
            "fit_rows": self.fit_rows,
            "calibration_rows": self.calibration_rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultivariateProfile:
        """The model :meth:`to_dict` described; KeyError/ValueError for bad data."""
        features = tuple(str(f) for f in data["features"])
        d = len(features)
        mean = tuple(float(v) for v in data["mean"])
        scale = tuple(float(v) for v in data["scale"])
        components = tuple(tuple(float(v) for v in row) for row in data["components"])
        if len(mean) != d or len(scale) != d or any(len(row) != d for row in components):
            raise ValueError("multivariate: mean, scale and components must match features")
        if not components or len(components) >= d or any(s <= 0 for s in scale):
            raise ValueError("multivariate: needs 1 to len(features) - 1 components, scale > 0")
        return cls(
            features=features,
            mean=mean,
            scale=scale,
            components=components,
            explained_variance=float(data.get("explained_variance", 0.0)),
            error_mean=float(data["error_mean"]),
            error_std=float(data["error_std"]),
            fit_rows=int(data.get("fit_rows", 0)),
            calibration_rows=int(data["calibration_rows"]),
        )


def fit_multivariate(
    names: Sequence[str],
    columns: Sequence[np.ndarray],
    seed: int = 0,
    explained_variance: float = EXPLAINED_VARIANCE,
) -> MultivariateProfile | None:
    """Fit and calibrate the model on numeric reference columns (float arrays, NaN for
    missing); None with fewer than 2 usable features or ``MIN_ROWS`` rows."""
    usable: list[tuple[str, np.ndarray]] = []
    for name, column in zip(names, columns):
        finite = column[np.isfinite(column)]
        if finite.size > 1 and float(finite.std()) > 0 and len(usable) < MAX_FEATURES:
            usable.append((name, column))
    if len(usable) < 2 or len(usable[0][1]) < MIN_ROWS:
        return None
    matrix = np.column_stack([c for _, c in usable]).astype(np.float64)
    rows = len(matrix)
    order = np.random.default_rng(seed).permutation(rows)
    fit, held_out = matrix[order[: rows // 2]], matrix[order[rows // 2 :]]
    finite = np.isfinite(fit)
    counts = finite.sum(axis=0)
    if np.any(counts < 2):
        return None
    mean = np.where(finite, fit, 0.0).sum(axis=0) / counts
    centered = np.where(finite, fit - mean, 0.0)
    scale = np.sqrt((centered**2).sum(axis=0) / counts)
    if np.any(scale <= 0):
        return None
    z = np.clip(centered / scale, -CLIP, CLIP)
    _, singular, vt = np.linalg.svd(z, full_matrices=False)
    variance = singular**2
    cumulative = np.cumsum(variance) / variance.sum()
    q = int(np.searchsorted(cumulative, explained_variance) + 1)
    q = min(max(q, 1), matrix.shape[1] - 1)
    model = MultivariateProfile(
        features=tuple(name for name, _ in usable),
        mean=tuple(mean.tolist()),
        scale=tuple(scale.tolist()),
        components=tuple(tuple(row) for row in vt[:q].tolist()),
        explained_variance=float(cumulative[q - 1]),
        error_mean=0.0,
        error_std=0.0,
        fit_rows=len(fit),
        calibration_rows=len(held_out),
    )
    errors = model.errors(held_out)
    return replace(model, error_mean=float(errors.mean()), error_std=float(errors.std(ddof=1)))
