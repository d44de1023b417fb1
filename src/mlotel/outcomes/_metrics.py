"""Performance metrics with numpy only: realised (from outcomes) and estimated (CBPE).

The formulas follow ``sklearn.metrics`` exactly (tests compare them value for
value): zero-division gives 0.0, log loss clips probabilities to
``[eps, 1 - eps]``, ROC AUC counts tied scores as half, R² is 1.0 for a
perfect fit of constant targets and 0.0 otherwise.

Classification inputs are integer class codes (the caller maps labels to
codes); ``positive`` is the code of the positive class for the binary metrics
(``precision``, ``recall``, ``f1``, ``log_loss``, ``roc_auc``), or None for a
multiclass model.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "classification_metrics",
    "class_count_metrics",
    "estimated_metrics",
    "regression_metrics",
    "roc_auc",
    "score_metrics",
]


def _f1(tp: float, fp: float, fn: float) -> float:
    denominator = 2.0 * tp + fp + fn
    return 2.0 * tp / denominator if denominator else 0.0


def roc_auc(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties count half); None with one class.

    >>> roc_auc(np.array([False, False, True, True]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    n_pos = int(np.count_nonzero(is_positive))
    n_neg = len(is_positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    # Average ranks (1-based) of tied runs.
    boundaries = np.flatnonzero(np.diff(ordered)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(ordered)]))
    run_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    u = float(ranks[is_positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def class_count_metrics(
    tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray, n: int, positive: int | None
) -> dict[str, float]:
    """Accuracy, macro F1 and (``positive`` given) precision/recall/F1 from per-class
    integer counts: true positives, predicted and actual rows of each class."""
    tp, predicted, actual = (np.asarray(v, dtype=np.int64) for v in (tp, predicted, actual))
    metrics = {"accuracy": int(tp.sum()) / n}
    present = (predicted + actual) > 0  # sklearn averages over the labels of the data
    metrics["f1_macro"] = float(np.mean([
        _f1(int(t), int(p) - int(t), int(a) - int(t))
        for t, p, a in zip(tp[present], predicted[present], actual[present])
    ]))
    if positive is None:
        return metrics
    t, p, a = int(tp[positive]), int(predicted[positive]), int(actual[positive])
    metrics["precision"] = t / p if p else 0.0
    metrics["recall"] = t / a if a else 0.0
    metrics["f1"] = _f1(t, p - t, a - t)
    return metrics


def score_metrics(is_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Log loss and ROC AUC of positive-class probabilities."""
    eps = np.finfo(np.float64).eps
    of_truth = np.where(is_true, proba, 1.0 - proba)
    metrics = {"log_loss": float(-np.mean(np.log(np.clip(of_truth, eps, 1 - eps))))}
    auc = roc_auc(is_true, proba)
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


def classification_metrics(
    predicted: np.ndarray,
    actual: np.ndarray,
    positive: int | None,
    positive_proba: np.ndarray | None = None,
) -> dict[str, float]:
    """Accuracy, macro F1 and, for binary models, precision/recall/F1 (+ log loss and
    ROC AUC when every row has a positive-class probability).

    >>> m = classification_metrics(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1]), positive=1)
    >>> m["accuracy"], m["precision"], m["recall"]
    (0.75, 0.6666666666666666, 1.0)
    """
    predicted = np.asarray(predicted, dtype=np.int64)
    actual = np.asarray(actual, dtype=np.int64)
    n = len(actual)
    if n == 0:
        return {}
    # codes may be negative (labels past the store's cap): shift them for bincount
    extra = () if positive is None else (positive,)
    low = min(int(predicted.min()), int(actual.min()), 0, *extra)
    pc, ac = predicted - low, actual - low
    k = max(int(pc.max()), int(ac.max()), *(e - low for e in extra)) + 1
    hits = pc == ac
    tp = np.bincount(ac[hits], minlength=k)
    metrics = class_count_metrics(
        tp, np.bincount(pc, minlength=k), np.bincount(ac, minlength=k), n,
        None if positive is None else positive - low,
    )
    if positive is not None and positive_proba is not None and len(positive_proba) == n:
        proba = np.asarray(positive_proba, dtype=np.float64)
        if np.isfinite(proba).all():
            metrics.update(score_metrics(actual == positive, proba))
    return metrics


def regression_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R².

    >>> regression_metrics(np.array([2.5, 0.0, 2.0, 8.0]), np.array([3.0, -0.5, 2.0, 7.0]))
    {'mae': 0.5, 'rmse': 0.6123724356957945, 'r2': 0.9486081370449679}
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if len(actual) == 0:
        return {}
    error = actual - predicted
    residual = float(np.sum(error * error))
    total = float(np.sum((actual - actual.mean()) ** 2))
    # sklearn's force_finite: constant targets give 1.0 for a perfect fit, else 0.0.
    r2 = (1.0 - residual / total) if total else (1.0 if residual == 0.0 else 0.0)
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(residual / len(actual))),
        "r2": r2,
    }


def estimated_metrics(top_score: np.ndarray, positive_proba: np.ndarray | None) -> dict[str, float]:
    """Confidence-based performance estimation (CBPE) without labels.

    For a calibrated classifier predicting its most probable class, row i is
    correct with probability ``top_score[i]``: expected accuracy is their mean.
    For a binary model the expected confusion matrix gives the expected F1:
    a predicted positive adds ``p`` to TP and ``1 - p`` to FP, a predicted
    negative adds ``p`` to FN.

    >>> p = np.array([0.9, 0.2, 0.6])
    >>> round(estimated_metrics(np.maximum(p, 1 - p), p)["estimated_accuracy"], 4)
    0.7667
    """
    top = np.asarray(top_score, dtype=np.float64)
    if len(top) == 0:
        return {}
    metrics = {"estimated_accuracy": float(np.mean(top))}
    if positive_proba is not None and len(positive_proba) == len(top):
        proba = np.asarray(positive_proba, dtype=np.float64)
        predicted_positive = proba > 0.5  # argmax of (1 - p, p); a tie predicts class 0
        tp = float(proba[predicted_positive].sum())
        fp = float((1.0 - proba[predicted_positive]).sum())
        fn = float(proba[~predicted_positive].sum())
        metrics["estimated_f1"] = _f1(tp, fp, fn)
    return metrics
