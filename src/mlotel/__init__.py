"""mlotel: OpenTelemetry-native observability for ML inference.

>>> import mlotel, mlotel.testing
>>> with mlotel.testing.capture_telemetry() as captured:
...     @mlotel.instrument(model_name="churn", model_version="3.1.0")
...     def predict(features):
...         return [[0.2, 0.8]]
...     _ = predict([[1.0, 2.0]])
>>> captured.spans[0].name, mlotel.testing.log_payload(captured.logs[0])["ml.features"]
('predict churn', {'f0': 1.0, 'f1': 2.0})
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import outcomes, semconv
from ._config import Settings
from ._instrument import InferenceCall, InstrumentedModel, inference, instrument
from ._lifecycle import Configuration, configure, force_flush, shutdown
from ._version import VERSION
from .drift import DriftConfig, Profile
from .exceptions import ConfigError
from .outcomes import (
    last_prediction_ids,
    performance_from_logs,
    prediction_ids,
    predictions_from_logs,
    record_outcome,
    record_outcomes,
)

__all__ = [
    "ConfigError",
    "Configuration",
    "DriftConfig",
    "InferenceCall",
    "InstrumentedModel",
    "Profile",
    "Settings",
    "__version__",
    "auto_instrument",
    "configure",
    "force_flush",
    "inference",
    "instrument",
    "last_prediction_ids",
    "outcomes",
    "performance_from_logs",
    "prediction_ids",
    "predictions_from_logs",
    "record_outcome",
    "record_outcomes",
    "semconv",
    "shutdown",
]

__version__ = VERSION


def auto_instrument(libraries: Iterable[str] | None = None, **options: Any) -> list[str]:
    """Instrument every installed ML library (or those named); returns the ones now on.

    The one-line alternative to running under ``opentelemetry-instrument``; see
    :func:`mlotel.integrations.auto_instrument` and docs/integrations.md. Needs the
    ``opentelemetry-instrumentation`` package (in every integration extra).

    >>> import mlotel
    >>> mlotel.auto_instrument(["sklearn"])  # scikit-learn is installed here
    ['sklearn']
    >>> mlotel.integrations.uninstrument_all()
    """
    from .integrations import auto_instrument as _auto_instrument

    return _auto_instrument(libraries, **options)
