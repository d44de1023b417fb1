"""Fleet-wide drift: two replicas fed different data, the real Prometheus server with
the shipped recording rules, and the fleet PSI equal to the PSI of the pooled data."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlotel.drift import PSI_EPSILON, Profile
from mlotel.drift._calibrated import DecisionPlan, ReferenceColumn, column_decision
from support.prometheus_server import PrometheusServer, free_port

RULES = Path(__file__).resolve().parents[2] / "collector" / "prometheus" / "fleet-drift.rules.yml"

REPLICA = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import mlotel

    port, profile_path, data_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    cfg = mlotel.configure(
        service_name="replica", exporter="embedded", prometheus_port=port,
        local_sink="none", set_global=False,
    )
    predict = mlotel.instrument(
        lambda x: np.zeros(len(x)), model_name="fraud", model_version="7",
        reference=profile_path,
    )
    data = np.load(data_path)
    for start in range(0, len(data), 400):
        predict(data[start : start + 400])
    mlotel.force_flush()
    print(cfg.metrics_url, flush=True)
    sys.stdin.read()  # serve until the test closes stdin
    mlotel.shutdown()
    """
)


def _pooled_counts(profile: Profile, feature: str, values: np.ndarray) -> np.ndarray:
    ref = profile[feature]
    if ref.kind == "numeric":
        return np.bincount(
            np.searchsorted(ref.edges, values, side="right"), minlength=len(ref.bin_counts)
        )
    index = {c: i for i, c in enumerate(ref.categories)}
    keys = [str(int(v)) for v in values]
    return np.bincount(
        [index.get(k, len(ref.categories)) for k in keys], minlength=len(ref.bin_counts)
    )


def _pooled_psi(profile: Profile, feature: str, values: np.ndarray) -> float:
    ref = profile[feature]
    if ref.kind == "numeric":
        counts = np.bincount(
            np.searchsorted(ref.edges, values, side="right"), minlength=len(ref.bin_counts)
        )
    else:
        keys = [str(int(v)) for v in values]
        index = {c: i for i, c in enumerate(ref.categories)}
        counts = np.bincount(
            [index.get(k, len(ref.categories)) for k in keys], minlength=len(ref.bin_counts)
        )
    cur = np.maximum(counts / counts.sum(), PSI_EPSILON)
    shares = np.maximum(ref.shares, PSI_EPSILON)
    return float(np.sum((cur - shares) * np.log(cur / shares)))


def _start_replica(script: Path, profile: Path, data: Path) -> tuple[subprocess.Popen[str], str]:
    for _attempt in range(3):  # a free port may be taken before the replica binds it
        proc = subprocess.Popen(
            [sys.executable, str(script), str(free_port()), str(profile), str(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if url.startswith("http://"):
            return proc, url
        proc.kill()
        proc.wait(timeout=10)
    raise AssertionError(f"replica did not start: {proc.stderr.read() if proc.stderr else ''}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def test_fleet_psi_equals_psi_of_the_pooled_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    train = np.column_stack(
        [rng.normal(0, 1, 8000), rng.exponential(2.0, 8000), rng.integers(0, 4, 8000)]
    )
    profile = Profile.from_data(
        {"amount": train[:, 0], "age_days": train[:, 1], "channel": train[:, 2].astype(int)}
    )
    assert profile["channel"].kind == "categorical"
    profile_path = tmp_path / "reference.json"
    profile.save(profile_path)
    # Replica 1 sees shifted amounts; replica 2 a different channel mix and older accounts.
    first = np.column_stack(
        [rng.normal(0.6, 1, 3000), rng.exponential(2.0, 3000), rng.integers(0, 4, 3000)]
    )
    second = np.column_stack(
        [rng.normal(0, 1, 2000), rng.exponential(3.0, 2000), rng.choice([0, 0, 1, 5], 2000)]
    )
    script = tmp_path / "replica.py"
    script.write_text(REPLICA)
    paths = []
    for i, data in enumerate((first, second)):
        paths.append(tmp_path / f"data{i}.npy")
        np.save(paths[-1], data)

    replicas: list[subprocess.Popen[str]] = []
    try:
        urls = []
        for path in paths:
            proc, url = _start_replica(script, profile_path, path)
            replicas.append(proc)
            urls.append(url)
        with PrometheusServer(urls, rule_files=[RULES], job_name="fraud") as prom:
            counts = prom.wait_for_query(
                "ml:feature_value_count:fleet_window",
                predicate=lambda r: len(r) == 3 and all(_value(s) == 5000 for s in r),
            )
            assert {s["metric"]["ml_model_version"] for s in counts} == {"7"}
            fleet = {
                s["metric"]["ml_feature_name"]: _value(s)
                for s in prom.wait_for_query(
                    'ml:feature_psi:fleet{ml_model_name="fraud"}', lambda r: len(r) == 3
                )
            }
            pooled = np.concatenate([first, second])
            expected = {
                name: _pooled_psi(profile, name, pooled[:, j])
                for j, name in enumerate(("amount", "age_days", "channel"))
            }
            assert fleet == pytest.approx(expected, abs=1e-6)
            assert expected["amount"] > 0.05 and expected["channel"] > 0.05
            # The calibrated decision: the SDK's tests on the pooled data give the same
            # statistics, and the fleet flags what they flag.
            plan = DecisionPlan(0.01, columns=3, lags=(1,), multivariate=False)
            decisions = {}
            for j, name in enumerate(("amount", "age_days", "channel")):
                feature = profile[name]
                column = ReferenceColumn(
                    name, np.asarray(feature.bin_counts, float), feature.kind == "numeric"
                )
                counts = _pooled_counts(profile, name, pooled[:, j]).astype(float)
                decision = column_decision(column, [(1, counts)], plan, 0.03, 500)
                decisions[name] = {r.test: r.statistic for r in decision.results}
            z = _by_feature(prom, 'ml:feature_location_z:fleet{ml_model_name="fraud"}', 2)
            chi = _by_feature(prom, 'ml:feature_chisquare:fleet{ml_model_name="fraud"}', 3)
            for name in ("amount", "age_days"):  # numeric: location and chisquare
                assert abs(z[name]) == pytest.approx(decisions[name]["location"], rel=1e-6)
                assert chi[name] == pytest.approx(decisions[name]["chisquare"], rel=1e-6)
            assert z["amount"] > 10 and chi["channel"] > 100
            query = 'ml:feature_drift_detected:fleet{ml_model_name="fraud"}'
            detected = _by_feature(prom, query, 3)
            assert detected == {"amount": 1.0, "age_days": 1.0, "channel": 1.0}
            # The rule file loaded and evaluated without errors.
            groups = {g["name"]: g for g in prom.rules()}
            assert all(r["health"] == "ok" for r in groups["mlotel-fleet-drift"]["rules"]), groups
    finally:
        for proc in replicas:
            _stop(proc)


def _by_feature(prom: PrometheusServer, query: str, count: int) -> dict[str, float]:
    result = prom.wait_for_query(query, lambda r: len(r) == count)
    return {s["metric"]["ml_feature_name"]: _value(s) for s in result}


def _value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])
