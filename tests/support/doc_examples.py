"""Run the ```python blocks of a Markdown file exactly as printed (tests/integration/
test_doc_examples.py starts this script once per file, in a fresh process and an empty
working directory).

The blocks of one file run in order in one namespace, like a reader pasting them into
one session; functions named ``test_*`` that a block defines are then called. Before
the first block, :func:`fixtures` defines the names the examples take as given. Every
one is small real data or a real fitted model, built from the diabetes data set that
ships with scikit-learn (442 patients, 10 features, among them ``age``):

``X_train``, ``y_train``, ``X_test``, ``y_test``, ``X``, ``y_true``
    the features and labels of a 70/30 split (the label, ``churned``: 1 when the
    disease progression is above the median); ``X`` / ``y_true`` are the test split;
``train_df``
    the training split as one DataFrame that still holds its label column
    ``churned``, as most training frames do;
``model``, ``sk_model``, ``my_model``, ``clf``
    scikit-learn ``LogisticRegression`` models fitted on ``X_train``;
``batch``
    eight test rows;
``x``, ``y``, ``s``
    one row's features, its predicted label and its class probabilities;
``reference_df``, ``current_df``
    reference and current data for a drift report (``current_df``: the test rows with
    ``age`` ten years older);
``trigger_retraining``
    an ``on_drift`` callback that keeps the events it gets;

and, only when a block names them (they serve predictions first):

``ids_of_the_day``, ``labels_of_the_day``
    ids of predictions made earlier in this process by model ``churn`` (version ``3``)
    and their true labels;
``outcomes``
    ``{row id: actual}`` of 40 predictions that another process (every call logged)
    wrote to ``mlotel-telemetry/logs.jsonl`` before the blocks run;
``churn-ref.json`` (a file)
    the reference profile of ``train_df`` (``target="churned"``);
``reference_chunks``, ``current_chunks``
    ``reference_df`` and ``current_df`` cut into three pandas chunks each, as an engine's
    partitions would hand them over;
``spark``
    a local Spark session (``local[2]``, UI off, loopback only) with the Parquet
    directory ``lake/train`` (``reference_df``) and the tables ``train``
    (``reference_df``) and ``scoring`` (``current_df``).

Usage: ``python doc_examples.py BLOCKS.json`` where the JSON holds ``{"blocks":
[[name, code], ...], "checks": [expression, ...]}``. Prints one JSON line: the blocks
and tests run, the value of each check, and every warning of the ``mlotel`` logger.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import mlotel

# Run as a script, only tests/support is on the path: tests/ makes `support` importable
# (appended, so nothing a doc example imports can be shadowed by it).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from support.spark import local_spark_session


def fixtures(code: str) -> dict[str, Any]:
    """The names the examples take as given (see the module docstring)."""
    data = load_diabetes(as_frame=True, scaled=False)
    churned = (data.target > data.target.median()).astype(int).rename("churned")
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, churned, test_size=0.3, random_state=0
    )
    train_df = X_train.assign(churned=y_train)

    def fitted() -> LogisticRegression:
        return LogisticRegression(max_iter=5000).fit(X_train, y_train)

    model = fitted()
    events: list[Any] = []
    names: dict[str, Any] = {
        "train_df": train_df,
        "X_train": X_train,
        "y_train": y_train,
        "X_test": X_test,
        "y_test": y_test,
        "X": X_test,
        "y_true": y_test.to_numpy(),
        "model": model,
        "sk_model": fitted(),
        "my_model": fitted(),
        "clf": fitted(),
        "batch": X_test.iloc[:8],
        "x": X_test.iloc[:1],
        "y": model.predict(X_test.iloc[:1]),
        "s": model.predict_proba(X_test.iloc[:1]),
        "reference_df": train_df,
        "current_df": X_test.assign(age=X_test["age"] + 10, churned=y_test),
        "trigger_retraining": events.append,
        "retraining_events": events,
    }
    if re.search(r"\breference_chunks\b|\bcurrent_chunks\b", code):
        names["reference_chunks"] = _chunks(names["reference_df"])
        names["current_chunks"] = _chunks(names["current_df"])
    if re.search(r"\bspark\.", code):
        names["spark"] = _spark(names["reference_df"], names["current_df"])
    if "churn-ref.json" in code:
        mlotel.Profile.from_data(train_df, target="churned").save("churn-ref.json")
    if re.search(r"\boutcomes\b", code):
        # Another process served predictions (every call logged) and exited: the label
        # job (this process) joins its logs; mlotel here starts as in a fresh process.
        served = subprocess.run(
            [sys.executable, "-c", _SERVE, X_test.iloc[:40].to_json(orient="values")],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        names["outcomes"] = dict(zip(json.loads(served.stdout), y_test.iloc[:40].tolist()))
    if re.search(r"\bids_of_the_day\b", code):
        yesterday = mlotel.instrument(model, model_name="churn", model_version="3")
        yesterday.predict(X_test.iloc[40:80])
        names["ids_of_the_day"] = mlotel.last_prediction_ids()
        names["labels_of_the_day"] = y_test.iloc[40:80].tolist()
    return names


def _chunks(frame: Any, parts: int = 3) -> list[Any]:
    size = -(-len(frame) // parts)
    return [frame.iloc[i : i + size] for i in range(0, len(frame), size)]


def _spark(reference: Any, current: Any) -> Any:
    import os

    session = local_spark_session("mlotel-doc-examples")
    reference.to_parquet("lake-train.parquet")
    os.makedirs("lake/train", exist_ok=True)
    os.replace("lake-train.parquet", "lake/train/part-0.parquet")
    session.createDataFrame(reference).createOrReplaceTempView("train")
    session.createDataFrame(current).createOrReplaceTempView("scoring")
    return session


_SERVE = """
import json, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
import mlotel

rows = np.array(json.loads(sys.argv[1]))
model = LogisticRegression().fit(rows, (rows[:, 2] > np.median(rows[:, 2])).astype(int))
mlotel.configure(exporter="embedded", prometheus=False, output_dir="mlotel-telemetry",
                 set_global=False, payload_sample_rate=1.0)
mlotel.instrument(model, model_name="churn", model_version="3").predict_proba(rows)
print(json.dumps(mlotel.last_prediction_ids()))
mlotel.shutdown()
"""


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        spec = json.load(handle)
    warned = _Warnings()
    logging.getLogger("mlotel").addHandler(warned)
    blocks: list[tuple[str, str]] = [tuple(b) for b in spec["blocks"]]
    namespace = fixtures("\n".join(code for _, code in blocks))
    namespace["__name__"] = "__doc_example__"
    tests: list[str] = []
    for name, code in blocks:
        before = set(namespace)
        exec(compile(code, name, "exec"), namespace)  # the block exactly as printed
        for new in sorted(set(namespace) - before):
            if new.startswith("test_") and callable(namespace[new]):
                namespace[new]()
                tests.append(new)
    mlotel.force_flush()  # what the examples' models buffered: drift, outcomes, logs
    checks = [bool(eval(expression, namespace)) for expression in spec["checks"]]
    mlotel.shutdown()
    print(
        json.dumps(
            {
                "blocks": len(blocks),
                "tests": tests,
                "checks": checks,
                "warnings": warned.messages,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
