"""The cross-process join: performance from exported ``ml.prediction`` log records.

When ground truth arrives in another process (a label-ingestion job, a nightly
batch), the predictions are already in the payload log records: each carries
``ml.prediction.id`` (the call id), the predicted labels/values of its logged
rows (``ml.prediction``), their top scores (``ml.prediction.score``) and, when
the caller supplied them, the row ids (``ml.prediction.ids``). Row ``i`` of a
record has the id ``"<ml.prediction.id>-<i>"`` unless ``ml.prediction.ids``
says otherwise: the same ids ``mlotel.last_prediction_ids()`` returned in the
serving process. These helpers read OTLP-JSON lines files (the embedded files
sink, or the collector's ``file`` exporter) and compute the same metrics as
``ml.model.performance``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import semconv
from ._metrics import classification_metrics, regression_metrics, score_metrics

__all__ = ["performance_from_logs", "predictions_from_logs"]

PathLike = str | os.PathLike[str]


def _value(node: Mapping[str, Any]) -> Any:
    """A Python value from an OTLP/JSON ``AnyValue``."""
    if "stringValue" in node:
        return node["stringValue"]
    if "intValue" in node:
        return int(node["intValue"])  # int64 is a JSON string in OTLP/JSON
    if "doubleValue" in node:
        return float(node["doubleValue"])  # also "NaN" / "Infinity" strings
    if "boolValue" in node:
        return bool(node["boolValue"])
    if "arrayValue" in node:
        return [_value(v) for v in node["arrayValue"].get("values", [])]
    if "kvlistValue" in node:
        return {
            kv["key"]: _value(kv.get("value", {})) for kv in node["kvlistValue"].get("values", [])
        }
    return None


def _files(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for path in map(Path, paths):
        rotated = path.with_name(path.name + ".1")
        if rotated.exists():  # the older half of a rotated file first
            found.append(rotated)
        found.append(path)
    return found


def predictions_from_logs(paths: PathLike | Iterable[PathLike]) -> Iterator[dict[str, Any]]:
    """One dict per logged prediction row of OTLP-JSON lines log files.

    Keys: ``id``, ``model_name``, ``model_version``, ``prediction``, ``score``
    (None without one), ``trace_id``, ``span_id``, ``time_unix_nano``. A file
    ``logs.jsonl`` is read after its rotated ``logs.jsonl.1``; lines that are not
    OTLP/JSON are skipped.

    >>> import tempfile, pathlib, mlotel
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = mlotel.configure(exporter="embedded", prometheus=False, output_dir=folder,
    ...                          set_global=False, payload_sample_rate=1.0)  # log every call
    ...     predict = mlotel.instrument(lambda rows: [2 * r[0] for r in rows], model_name="x2")
    ...     _ = predict([[1.0], [3.0]])
    ...     ids = mlotel.last_prediction_ids()
    ...     _ = mlotel.shutdown()
    ...     rows = list(predictions_from_logs(pathlib.Path(folder) / "logs.jsonl"))
    >>> [(row["model_name"], row["prediction"], row["id"] == id_) for row, id_ in zip(rows, ids)]
    [('x2', 2.0, True), ('x2', 6.0, True)]
    """
    for path in _files(paths):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    request = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(request, dict):
                    continue
                for resource_logs in request.get("resourceLogs", []):
                    for scope_logs in resource_logs.get("scopeLogs", []):
                        for record in scope_logs.get("logRecords", []):
                            yield from _rows_of(record)


def _rows_of(record: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    fields = {a["key"]: _value(a.get("value", {})) for a in record.get("attributes", [])}
    body = _value(record.get("body", {})) if record.get("body") else None
    if isinstance(body, dict):
        fields.update(body)
    call_id = fields.get(semconv.ATTR_PREDICTION_ID)
    if record.get("eventName", semconv.EVENT_PREDICTION) != semconv.EVENT_PREDICTION:
        return
    if call_id is None or semconv.ATTR_PREDICTION not in fields:
        return
    predictions = fields[semconv.ATTR_PREDICTION]
    scores = fields.get(semconv.ATTR_PREDICTION_SCORE)
    single = not isinstance(predictions, list)
    if single:
        predictions = [predictions]
        scores = None if scores is None else [scores]
    row_ids = fields.get(semconv.ATTR_PREDICTION_IDS)
    if not isinstance(row_ids, list) or len(row_ids) != len(predictions):
        row_ids = [f"{call_id}-{row}" for row in range(len(predictions))]
    if not isinstance(scores, list) or len(scores) != len(predictions):
        scores = [None] * len(predictions)
    shared = {
        "model_name": fields.get(semconv.ATTR_MODEL_NAME),
        "model_version": fields.get(semconv.ATTR_MODEL_VERSION),
        "trace_id": record.get("traceId"),
        "span_id": record.get("spanId"),
        "time_unix_nano": int(record.get("timeUnixNano", 0)),
    }
    for row_id, prediction, score in zip(row_ids, predictions, scores):
        yield {"id": str(row_id), "prediction": prediction, "score": score, **shared}


def performance_from_logs(
    paths: PathLike | Iterable[PathLike],
    outcomes: Mapping[Any, Any] | Iterable[tuple[Any, Any]],
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    task: str = "auto",
    positive_label: Any = None,
) -> dict[str, float]:
    """The ``ml.model.performance`` metrics of exported predictions joined to outcomes.

    ``outcomes`` maps row ids to actual labels/values (a dict or ``(id, actual)``
    pairs; a later pair for the same id wins). Rows without an outcome, and
    outcomes whose prediction is not in the files, are left out; the result also
    holds ``matched`` (rows joined). ``task`` is ``classification``,
    ``regression`` or ``auto`` (float predictions mean regression). Binary
    metrics use ``positive_label``, by default the larger of the two labels
    (scikit-learn's ``classes_[1]``); log loss and ROC AUC need a logged score.

    >>> import tempfile, pathlib, mlotel
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> _ = mlotel.configure(exporter="embedded", prometheus=False, output_dir=out,
    ...                      set_global=False, payload_sample_rate=1.0)  # log every call
    >>> predict = mlotel.instrument(lambda rows: [r[0] > 0 for r in rows], model_name="sign")
    >>> predict([[1.0], [-2.0], [3.0]])
    [True, False, True]
    >>> ids = mlotel.last_prediction_ids()
    >>> mlotel.shutdown()  # the label job reads the files this process wrote
    True
    >>> metrics = performance_from_logs(out / "logs.jsonl", zip(ids, [True, True, True]))
    >>> metrics["accuracy"], metrics["matched"]
    (0.6666666666666666, 3.0)
    """
    actual_of = dict(outcomes.items() if isinstance(outcomes, Mapping) else outcomes)
    actual_of = {str(k): v for k, v in actual_of.items()}
    predicted: list[Any] = []
    actual: list[Any] = []
    scores: list[Any] = []
    for row in predictions_from_logs(paths):
        if model_name is not None and row["model_name"] != model_name:
            continue
        if model_version is not None and row["model_version"] != model_version:
            continue
        truth = actual_of.pop(row["id"], None)  # first logged copy of a row joins once
        if truth is None or (isinstance(truth, float) and math.isnan(truth)):
            continue
        predicted.append(row["prediction"])
        actual.append(truth)
        scores.append(row["score"])
    if not predicted:
        return {"matched": 0.0}
    regression = task == "regression" or (
        task == "auto"
        and any(isinstance(p, float) for p in predicted)
        and not all(isinstance(a, str) for a in actual)
    )
    if regression:
        metrics = regression_metrics(np.asarray(predicted, float), np.asarray(actual, float))
        return {**metrics, "matched": float(len(predicted))}
    vocabulary: dict[Any, int] = {}
    pred_codes = np.array([vocabulary.setdefault(p, len(vocabulary)) for p in predicted])
    true_codes = np.array([vocabulary.setdefault(a, len(vocabulary)) for a in actual])
    positive = None
    if positive_label is not None:
        positive = vocabulary.get(positive_label)
    elif len(vocabulary) == 2:
        try:
            positive = vocabulary[max(vocabulary)]
        except TypeError:
            positive = None
    metrics = classification_metrics(pred_codes, true_codes, positive)
    score_array = np.array([math.nan if s is None else float(s) for s in scores])
    scored = np.isfinite(score_array)
    if positive is not None and scored.any():
        # The logged score is the top class's probability: P(positive) is it, or 1 - it.
        proba = np.where(pred_codes == positive, score_array, 1.0 - score_array)
        metrics.update(score_metrics(true_codes[scored] == positive, proba[scored]))
    return {**metrics, "matched": float(len(predicted))}
