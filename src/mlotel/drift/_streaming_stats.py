"""Drift statistics on binned distributions (what the streaming monitor publishes).

All functions take reference shares and current counts over the same bins and
are vectorised numpy. The fleet recording rules compute the same PSI in PromQL.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PSI_EPSILON", "bin_centers", "jensenshannon", "psi", "wasserstein_binned"]

PSI_EPSILON = 1e-4
"""Shares below this are raised to it before PSI's log ratio (empty bins would give
infinity). Evidently replaces exact zeros with the same 1e-4; the fleet rules use
``clamp_min(share, 1e-4)``, so one process and the fleet agree exactly."""


def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


def psi(reference_shares: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index ``sum((cur - ref) * ln(cur / ref))``.

    >>> round(psi(np.array([0.5, 0.5]), np.array([50, 50])), 6)
    0.0
    >>> round(psi(np.array([0.5, 0.5]), np.array([90, 10])), 4)
    0.8789
    """
    ref = np.maximum(np.asarray(reference_shares, dtype=np.float64), PSI_EPSILON)
    cur = np.maximum(_shares(current_counts), PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def jensenshannon(reference_shares: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon *distance* (natural log), as ``scipy.spatial.distance.jensenshannon``.

    >>> round(jensenshannon(np.array([1.0, 0.0]), np.array([0, 5])), 6)
    0.832555
    """
    p = _shares(np.asarray(reference_shares, dtype=np.float64))
    q = _shares(current_counts)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0)
    divergence = 0.5 * (kl_p.sum() + kl_q.sum())
    return float(np.sqrt(max(divergence, 0.0)))


def bin_centers(edges: np.ndarray, low: float, high: float) -> np.ndarray:
    """One representative value per numeric bin: midpoints, with the reference's
    min and max closing the open-ended first and last bins.

    >>> bin_centers(np.array([1.0, 2.0]), 0.0, 4.0).tolist()
    [0.5, 1.5, 3.0]
    """
    bounds = np.concatenate([[low], edges, [high]])
    centers: np.ndarray = 0.5 * (bounds[:-1] + bounds[1:])
    return centers


def wasserstein_binned(
    reference_shares: np.ndarray, current_counts: np.ndarray, centers: np.ndarray, scale: float
) -> float:
    """Wasserstein-1 distance between the two binned distributions (mass at the bin
    centers), divided by ``max(scale, 0.001)`` (the reference std, as Evidently's
    normalised Wasserstein). An estimate: the exact value needs the raw values.

    >>> ref, cur, centers = np.array([1.0, 0.0]), np.array([0, 3]), np.array([0.0, 2.0])
    >>> wasserstein_binned(ref, cur, centers, 1.0)
    2.0
    """
    p = _shares(np.asarray(reference_shares, dtype=np.float64))
    q = _shares(current_counts)
    if len(centers) < 2:
        return 0.0
    cdf_gap = np.abs(np.cumsum(p - q))[:-1]
    distance = float(np.sum(cdf_gap * np.diff(centers)))
    return distance / max(scale, 0.001)
