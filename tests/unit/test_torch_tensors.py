"""Real torch tensors (CPU build installed by scripts/test.sh) as inputs and outputs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import mlotel
from mlotel.testing import capture_telemetry, log_payload


def test_tensor_inputs_and_probability_outputs() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1)).eval()
    x = torch.randn(8, 4, requires_grad=True)
    with capture_telemetry() as captured:
        clf = mlotel.instrument(model, model_name="net")
        out = clf(x)
        assert isinstance(out, torch.Tensor) and out.shape == (8, 3)
        (span,) = captured.spans
        assert span.attributes["ml.batch.size"] == 8
        assert span.attributes["ml.model.framework"] == "pytorch"
        assert captured.histogram_count("ml.prediction.score") == 8
        (point,) = captured.points("ml.prediction.score")
        assert point.sum == pytest.approx(float(out.detach().max(dim=1).values.sum()), rel=1e-5)
        assert sum(p.value for p in captured.points("ml.predictions")) == 8
        payload = log_payload(captured.logs[0])
        assert payload["ml.features"]["f0"][0] == pytest.approx(float(x.detach()[0, 0]))


def test_bfloat16_tensors_are_widened_not_lost() -> None:
    x = torch.randn(2, 3).to(torch.bfloat16)
    with capture_telemetry() as captured:
        mlotel.instrument(lambda t: t.sum(dim=1), model_name="bf16", output="regression")(x)
        payload = log_payload(captured.logs[0])
        assert len(payload["ml.features"]["f0"]) == 2
        assert len(payload["ml.prediction"]) == 2
        assert captured.counter_value("ml.predictions") == 2


def test_mlotel_never_imports_torch() -> None:
    code = (
        "import sys, mlotel, numpy as np\n"
        "from mlotel.testing import capture_telemetry\n"
        "with capture_telemetry():\n"
        "    mlotel.instrument(lambda x: [1], model_name='m')(np.zeros((1, 2)))\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
