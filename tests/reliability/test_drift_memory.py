"""Bounded memory: a million rows through a 20-feature drift monitor (in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import gc, json
    import numpy as np
    import mlotel
    from mlotel.drift import DriftMonitor, Profile

    def rss_mib():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0

    rng = np.random.default_rng(0)
    reference = Profile.from_data(
        rng.normal(size=(20_000, 20)), feature_names=[f"f{i}" for i in range(20)]
    )
    mlotel.configure(exporter="none", prometheus=False, local_sink="none", set_global=False)
    predict = mlotel.instrument(lambda x: x[:, 0] > 0, model_name="mem", reference=reference)
    pool = [rng.normal(0.3 * k, 1.0, (1000, 20)) for k in range(8)]

    def stream(calls):
        for i in range(calls):
            predict(pool[i % len(pool)])
        mlotel.force_flush()
        gc.collect()

    stream(100)  # warm up: 100,000 rows
    before = rss_mib()
    stream(1000)  # 1,000,000 rows
    after = rss_mib()
    analyzers = mlotel._lifecycle.current.aggregator("mem", None, None).analyzers
    (analyzer,) = [a for a in analyzers if isinstance(a, DriftMonitor)]
    print(json.dumps({"before": before, "after": after, "rows": analyzer._rows_seen}))
    mlotel.shutdown()
    """
)


def test_a_million_rows_grow_rss_by_less_than_20_mib() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    sizes = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sizes["rows"] == 1_100_000  # every row went through the monitor
    assert sizes["after"] - sizes["before"] < 20.0, sizes
