"""Names, units and bucket boundaries of every signal mlotel emits.

This module is the single source of truth: ``docs/semantic-conventions.md``,
the collector config, dashboards and alert rules use exactly these names, and
``tests/unit/test_semconv_doc.py`` fails when the document and this module
disagree.

>>> from mlotel import semconv
>>> semconv.INFERENCE_DURATION.name
'ml.inference.duration'
>>> semconv.INFERENCE_DURATION.prometheus_name
'ml_inference_duration_seconds'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ATTR_BATCH_SIZE",
    "ATTR_COMPONENT",
    "ATTR_DATA_QUALITY_ISSUE",
    "ATTR_DRIFT_METHOD",
    "ATTR_DROP_REASON",
    "ATTR_ERROR_TYPE",
    "ATTR_FEATURES",
    "ATTR_FEATURE_BIN",
    "ATTR_FEATURE_NAME",
    "ATTR_GEN_AI_OPERATION_NAME",
    "ATTR_GEN_AI_PROVIDER_NAME",
    "ATTR_GEN_AI_REQUEST_MAX_TOKENS",
    "ATTR_GEN_AI_REQUEST_MODEL",
    "ATTR_GEN_AI_SYSTEM",
    "ATTR_GEN_AI_TOKEN_TYPE",
    "ATTR_GEN_AI_USAGE_INPUT_TOKENS",
    "ATTR_GEN_AI_USAGE_OUTPUT_TOKENS",
    "ATTR_INPUT_DTYPE",
    "ATTR_METRIC_NAME",
    "ATTR_MODEL_DEVICE",
    "ATTR_MODEL_FRAMEWORK",
    "ATTR_MODEL_NAME",
    "ATTR_MODEL_VERSION",
    "ATTR_OPERATION_NAME",
    "ATTR_OUTCOME_ACTUAL",
    "ATTR_OUTCOME_STATUS",
    "ATTR_PAYLOAD_TRUNCATED",
    "ATTR_PREDICTION",
    "ATTR_PREDICTION_CLASS",
    "ATTR_PREDICTION_ID",
    "ATTR_PREDICTION_IDS",
    "ATTR_PREDICTION_SCORE",
    "BATCH_SIZE_BUCKETS",
    "DATASET_DRIFT_DETECTED",
    "DATASET_DRIFT_SHARE",
    "DRIFT_METHOD_FEATURES",
    "DRIFT_METHOD_MULTIVARIATE",
    "DATA_QUALITY_ISSUES",
    "DURATION_BUCKETS",
    "EVENT_OUTCOME",
    "EVENT_PREDICTION",
    "FEATURE_BIN_COUNT",
    "FEATURE_BIN_SCORE",
    "FEATURE_DRIFT",
    "FEATURE_DRIFT_DETECTED",
    "FEATURE_DRIFT_LIMIT",
    "FEATURE_REFERENCE_SHARE",
    "FEATURE_REFERENCE_SIZE",
    "FRAMEWORKS",
    "GEN_AI_CLIENT_OPERATION_DURATION",
    "GEN_AI_CLIENT_TOKEN_USAGE",
    "GEN_AI_DURATION_BUCKETS",
    "GEN_AI_OPERATION_GENERATE",
    "GEN_AI_PROVIDER",
    "GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN",
    "GEN_AI_SERVER_TIME_TO_FIRST_TOKEN",
    "GEN_AI_TIME_PER_OUTPUT_TOKEN_BUCKETS",
    "GEN_AI_TIME_TO_FIRST_TOKEN_BUCKETS",
    "GEN_AI_TOKEN_BUCKETS",
    "INFERENCE_BATCH_SIZE",
    "INFERENCE_DURATION",
    "INSTRUMENTS",
    "INTERNAL_DROPPED",
    "INTERNAL_ERRORS",
    "MODEL_PERFORMANCE",
    "NON_PREDICTION_OPERATIONS",
    "OTHER_CLASS",
    "OUTCOMES",
    "OUTCOME_STATUSES",
    "PREDICTIONS",
    "PREDICTION_DRIFT",
    "PREDICTION_DRIFT_DETECTED",
    "PREDICTION_SCORE",
    "REDACTED",
    "SCORE_BUCKETS",
    "SCOPE_NAME",
    "Instrument",
    "framework_of",
]

SCOPE_NAME = "mlotel"
"""Instrumentation scope name of every span, metric and log record."""

# --- attributes ---------------------------------------------------------------
ATTR_MODEL_NAME = "ml.model.name"
ATTR_MODEL_VERSION = "ml.model.version"
ATTR_MODEL_FRAMEWORK = "ml.model.framework"
ATTR_OPERATION_NAME = "ml.operation.name"
ATTR_BATCH_SIZE = "ml.batch.size"
ATTR_MODEL_DEVICE = "ml.model.device"
ATTR_INPUT_DTYPE = "ml.input.dtype"
ATTR_PREDICTION_ID = "ml.prediction.id"
ATTR_PREDICTION_IDS = "ml.prediction.ids"
ATTR_PREDICTION_CLASS = "ml.prediction.class"
ATTR_FEATURES = "ml.features"
ATTR_PREDICTION = "ml.prediction"
ATTR_PREDICTION_SCORE = "ml.prediction.score"
ATTR_PAYLOAD_TRUNCATED = "ml.payload.truncated"
ATTR_FEATURE_NAME = "ml.feature.name"
ATTR_FEATURE_BIN = "ml.feature.bin"
ATTR_DRIFT_METHOD = "ml.drift.method"
ATTR_DATA_QUALITY_ISSUE = "ml.data_quality.issue"
ATTR_METRIC_NAME = "ml.metric.name"
ATTR_OUTCOME_STATUS = "ml.outcome.status"
ATTR_OUTCOME_ACTUAL = "ml.outcome.actual"
ATTR_ERROR_TYPE = "error.type"
ATTR_COMPONENT = "mlotel.component"
ATTR_DROP_REASON = "mlotel.drop.reason"

# OpenTelemetry GenAI conventions (Development status; docs/integrations.md says which
# version is followed and how OTEL_SEMCONV_STABILITY_OPT_IN switches it).
ATTR_GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
ATTR_GEN_AI_SYSTEM = "gen_ai.system"  # semantic conventions <= v1.36.0 (the default)
ATTR_GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"  # its replacement (gen_ai_latest_experimental)
ATTR_GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
ATTR_GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
ATTR_GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
ATTR_GEN_AI_TOKEN_TYPE = "gen_ai.token.type"

GEN_AI_PROVIDER = "transformers"
"""``gen_ai.system`` / ``gen_ai.provider.name`` of models run in-process by Hugging Face
transformers (no well-known value fits a local model; the conventions allow a custom one)."""

GEN_AI_OPERATION_GENERATE = "text_completion"
"""``gen_ai.operation.name`` of ``generate()`` and text-generation pipelines: tokens in,
tokens out (a chat template, if any, was applied before mlotel sees the tokens)."""

EVENT_PREDICTION = "ml.prediction"
"""``event_name`` of the structured log record emitted per prediction call."""

EVENT_OUTCOME = "ml.outcome"
"""``event_name`` of the log record emitted when a ground-truth outcome is joined."""

OUTCOME_STATUSES: tuple[str, str, str, str, str] = (
    "matched", "unknown_id", "late", "duplicate", "invalid",
)  # fmt: skip
"""Values of ``ml.outcome.status``, in this order: joined; id never seen or evicted from
the store; prediction older than ``outcome_ttl``; row already matched; actual unusable
(None, NaN, another type than the predictions)."""

DRIFT_METHOD_FEATURES = "features"
"""``ml.drift.method`` of ``ml.dataset.drift.detected``: any input feature flagged."""
DRIFT_METHOD_MULTIVARIATE = "multivariate"
"""``ml.drift.method`` of ``ml.dataset.drift.detected``: the joint-distribution test."""

OTHER_CLASS = "__other__"
"""Class label that replaces labels beyond the ``max_classes`` cap."""

REDACTED = "[REDACTED]"
"""Value logged in place of a redacted feature."""

NON_PREDICTION_OPERATIONS = frozenset({"transform", "score_samples", "decision_function", "embed"})
"""Values of ``ml.operation.name`` whose outputs are no predictions: no classes or scores
are read from them, they get no prediction ids, and outcomes cannot join them."""

FRAMEWORKS: dict[str, str] = {
    "sklearn": "sklearn",
    "torch": "pytorch",
    "transformers": "transformers",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "onnxruntime": "onnxruntime",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "catboost": "catboost",
}
"""Top-level module of a model's class -> its ``ml.model.framework`` value."""


def framework_of(cls: type) -> str | None:
    """``ml.model.framework`` of a model class: the first known library in its MRO.

    >>> class Net: ...
    >>> Net.__module__ = "torch.nn.custom"
    >>> framework_of(Net), framework_of(int)
    ('pytorch', None)
    """
    for klass in cls.__mro__:
        found = FRAMEWORKS.get(klass.__module__.partition(".")[0])
        if found is not None:
            return found
    return None

# --- buckets ------------------------------------------------------------------
DURATION_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS: tuple[float, ...] = tuple(float(2**i) for i in range(0, 17))  # 1 … 65536
SCORE_BUCKETS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# The GenAI conventions' advice for each of their histograms.
GEN_AI_TOKEN_BUCKETS: tuple[float, ...] = tuple(float(4**i) for i in range(14))  # 1 … 67108864
GEN_AI_DURATION_BUCKETS: tuple[float, ...] = tuple(0.01 * 2**i for i in range(14))  # .01 … 81.92
GEN_AI_TIME_TO_FIRST_TOKEN_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
GEN_AI_TIME_PER_OUTPUT_TOKEN_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
)  # fmt: skip


@dataclass(frozen=True)
class Instrument:
    """One metric instrument: its OTel name, kind, unit and Prometheus names.

    ``prometheus_name`` is the base series name both export paths produce (the
    Python Prometheus exporter and the collector's translator agree because
    dimensionless instruments carry no unit and ``{...}`` units are dropped).
    """

    name: str
    kind: str  # "histogram" | "counter" | "gauge"
    unit: str
    description: str
    buckets: tuple[float, ...] | None = None

    @property
    def prometheus_name(self) -> str:
        base = self.name.replace(".", "_")
        if self.unit == "s":
            base += "_seconds"
        if self.kind == "counter":
            base += "_total"
        return base


INFERENCE_DURATION = Instrument(
    "ml.inference.duration", "histogram", "s",
    "Wall-clock duration of one inference call.", DURATION_BUCKETS,
)  # fmt: skip
INFERENCE_BATCH_SIZE = Instrument(
    "ml.inference.batch.size", "histogram", "{row}",
    "Rows per inference call.", BATCH_SIZE_BUCKETS,
)  # fmt: skip
PREDICTIONS = Instrument(
    "ml.predictions", "counter", "{prediction}",
    "Predicted rows, by class for classifiers.",
)  # fmt: skip
PREDICTION_SCORE = Instrument(
    "ml.prediction.score", "histogram", "",
    "Highest class probability of each predicted row.", SCORE_BUCKETS,
)  # fmt: skip
INTERNAL_ERRORS = Instrument(
    "mlotel.internal.errors", "counter", "{error}",
    "Faults inside mlotel that were contained (the predict call went on).",
)  # fmt: skip
INTERNAL_DROPPED = Instrument(
    "mlotel.internal.dropped", "counter", "{value}",
    "Values mlotel dropped or collapsed on purpose (caps, sampling is not counted).",
)  # fmt: skip

FEATURE_DRIFT = Instrument(
    "ml.feature.drift", "gauge", "",
    "Drift of one feature's current window from the reference, by method.",
)  # fmt: skip
DATASET_DRIFT_SHARE = Instrument(
    "ml.dataset.drift.share", "gauge", "",
    "Share of monitored features whose drift is over its threshold.",
)  # fmt: skip
PREDICTION_DRIFT = Instrument(
    "ml.prediction.drift", "gauge", "",
    "Drift of the predictions' current window from the reference, by method.",
)  # fmt: skip
FEATURE_DRIFT_DETECTED = Instrument(
    "ml.feature.drift.detected", "gauge", "",
    "1 when the drift decision flags the feature at its last decision window, else 0.",
)  # fmt: skip
PREDICTION_DRIFT_DETECTED = Instrument(
    "ml.prediction.drift.detected", "gauge", "",
    "1 when the drift decision flags the prediction (or score) column, else 0.",
)  # fmt: skip
DATASET_DRIFT_DETECTED = Instrument(
    "ml.dataset.drift.detected", "gauge", "",
    "1 when the model's inputs drifted, by method: any feature flagged, or multivariate.",
)  # fmt: skip
FEATURE_BIN_COUNT = Instrument(
    "ml.feature.bin.count", "counter", "{value}",
    "Values observed per reference bin of a feature (summable across replicas).",
)  # fmt: skip
FEATURE_REFERENCE_SHARE = Instrument(
    "ml.feature.reference.share", "gauge", "",
    "Share of the reference data in one bin of a feature.",
)  # fmt: skip
FEATURE_BIN_SCORE = Instrument(
    "ml.feature.bin.score", "gauge", "",
    "Location score of one reference bin of a numeric feature (for the fleet decision).",
)  # fmt: skip
FEATURE_REFERENCE_SIZE = Instrument(
    "ml.feature.reference.size", "gauge", "",
    "Values of a feature in the reference profile (for the fleet decision).",
)  # fmt: skip
FEATURE_DRIFT_LIMIT = Instrument(
    "ml.feature.drift.limit", "gauge", "",
    "What the fleet decision compares with, by method: critical location |z|, critical "
    "chi-square, effect floor.",
)  # fmt: skip
DATA_QUALITY_ISSUES = Instrument(
    "ml.data_quality.issues", "counter", "{value}",
    "Input values with a data-quality issue (missing, non-finite, out of range, ...).",
)  # fmt: skip
MODEL_PERFORMANCE = Instrument(
    "ml.model.performance", "gauge", "",
    "Model performance over the outcome window (or a label-free estimate), by metric.",
)  # fmt: skip
OUTCOMES = Instrument(
    "ml.outcomes", "counter", "{outcome}",
    "Ground-truth outcomes received, by join status.",
)  # fmt: skip

GEN_AI_CLIENT_TOKEN_USAGE = Instrument(
    "gen_ai.client.token.usage", "histogram", "{token}",
    "Input and output tokens of one generation call (gen_ai.token.type says which).",
    GEN_AI_TOKEN_BUCKETS,
)  # fmt: skip
GEN_AI_CLIENT_OPERATION_DURATION = Instrument(
    "gen_ai.client.operation.duration", "histogram", "s",
    "Duration of one generation call (the same value as ml.inference.duration).",
    GEN_AI_DURATION_BUCKETS,
)  # fmt: skip
GEN_AI_SERVER_TIME_TO_FIRST_TOKEN = Instrument(
    "gen_ai.server.time_to_first_token", "histogram", "s",
    "Time from the start of a generation call to its first output token's logits.",
    GEN_AI_TIME_TO_FIRST_TOKEN_BUCKETS,
)  # fmt: skip
GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN = Instrument(
    "gen_ai.server.time_per_output_token", "histogram", "s",
    "Decoding time per output token after the first (per decoding step for a batch).",
    GEN_AI_TIME_PER_OUTPUT_TOKEN_BUCKETS,
)  # fmt: skip

INSTRUMENTS: tuple[Instrument, ...] = (
    INFERENCE_DURATION,
    INFERENCE_BATCH_SIZE,
    PREDICTIONS,
    PREDICTION_SCORE,
    FEATURE_DRIFT,
    FEATURE_DRIFT_DETECTED,
    DATASET_DRIFT_SHARE,
    DATASET_DRIFT_DETECTED,
    PREDICTION_DRIFT,
    PREDICTION_DRIFT_DETECTED,
    FEATURE_BIN_COUNT,
    FEATURE_REFERENCE_SHARE,
    FEATURE_BIN_SCORE,
    FEATURE_REFERENCE_SIZE,
    FEATURE_DRIFT_LIMIT,
    DATA_QUALITY_ISSUES,
    MODEL_PERFORMANCE,
    OUTCOMES,
    GEN_AI_CLIENT_TOKEN_USAGE,
    GEN_AI_CLIENT_OPERATION_DURATION,
    GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,
    GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN,
    INTERNAL_ERRORS,
    INTERNAL_DROPPED,
)
"""Every metric instrument mlotel defines, in documentation order."""
