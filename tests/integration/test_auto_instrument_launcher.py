"""Unmodified scripts under the real ``opentelemetry-instrument`` launcher.

The scripts import neither mlotel nor OpenTelemetry: the launcher finds mlotel's
``opentelemetry_instrumentor`` entry points, and inference calls are exported over
OTLP to the tests' loopback receiver.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from support.launcher import run_instrumented
from support.otlp_receiver import OTLPReceiver

SKLEARN_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.random((200, 4))
    y = (X[:, 0] > 0.5).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    cross_val_score(model, X, y, cv=3)
    model.fit(X, y)
    for _ in range(4):
        model.predict(X[:8])
    print("done")
    """
)

TORCH_SCRIPT = textwrap.dedent(
    """
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        optimiser.zero_grad()
        model(torch.randn(32, 4)).pow(2).mean().backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 4))
    print("done")
    """
)


def _run(script: str, tmp_path: Path, rx: OTLPReceiver, **extra_env: str) -> None:
    run_instrumented(script, tmp_path, rx, "auto-ml", **extra_env)


def test_sklearn_script_is_instrumented(tmp_path: Path) -> None:
    with OTLPReceiver() as rx:
        _run(SKLEARN_SCRIPT, tmp_path, rx)
        assert rx.wait_for(lambda: rx.metric_points("ml.inference.duration"))
        spans = [s for _, s in rx.spans() if s.name.startswith("predict ")]
        # four outer Pipeline calls; cross-validation and fit are training
        assert [s.name for s in spans] == ["predict Pipeline"] * 4
        points = rx.metric_points("ml.inference.duration")
        assert points and points[-1].count == 4
        assert all(
            any(
                a.key == "ml.model.name" and a.value.string_value == "Pipeline"
                for a in p.attributes
            )
            for p in points
        )
        assert rx.wait_for(
            lambda: len([r for _, r in rx.logs() if r.event_name == "ml.prediction"]) == 4
        )


def test_torch_script_is_instrumented(tmp_path: Path) -> None:
    with OTLPReceiver() as rx:
        _run(TORCH_SCRIPT, tmp_path, rx)
        assert rx.wait_for(lambda: rx.metric_points("ml.inference.duration"))
        spans = [s for _, s in rx.spans() if s.name.startswith("predict ")]
        assert [s.name for s in spans] == ["predict Sequential"] * 3  # training steps: none
        points = rx.metric_points("ml.inference.duration")
        assert points[-1].count == 3


def test_disabled_instrumentation_is_off(tmp_path: Path) -> None:
    with OTLPReceiver() as rx:
        _run(SKLEARN_SCRIPT, tmp_path, rx, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="sklearn")
        assert not [s for _, s in rx.spans() if s.name.startswith("predict ")]
        assert not rx.metric_points("ml.inference.duration")


XGBOOST_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import xgboost

    X = np.random.default_rng(1).random((50, 3))
    model = xgboost.XGBClassifier(n_estimators=2).fit(X, (X[:, 0] > 0.5).astype(int))
    model.predict(X[:5])
    print("done")
    """
)


def test_xgboost_cpu_distribution_is_loaded(tmp_path: Path) -> None:
    # only the xgboost-cpu wheel is installed: the instrumentor's "any of" check accepts it
    with OTLPReceiver() as rx:
        _run(XGBOOST_SCRIPT, tmp_path, rx)
        assert rx.wait_for(lambda: [s for _, s in rx.spans() if s.name == "predict XGBClassifier"])
