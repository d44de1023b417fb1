"""Write the monitoring report of docs/drift-report.md's example and a screenshot of its top.

Usage (from the repository root): ``python tests/support/report_screenshot.py OUT.png
[WIDTH HEIGHT]``. The data: the diabetes data set bundled with scikit-learn (as the doc
examples use it), a logistic regression trained on 70 % of it; the current data is the
other 30 % with ``age`` ten years older, scored by the same model. The HTML page is
written next to the PNG (``OUT.html``), then headless Chromium renders it at WIDTH
(default 1440) and keeps the top HEIGHT pixels (default 1800).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from mlotel.drift import report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.chromium import Browser, find_chromium


def main(out: Path, width: int = 1440, height: int = 1800) -> None:
    data = load_diabetes(as_frame=True, scaled=False)
    churned = (data.target > data.target.median()).astype(int).rename("churned")
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, churned, test_size=0.3, random_state=0
    )
    model = LogisticRegression(max_iter=5000).fit(x_train, y_train)
    x_test = x_test.assign(age=x_test["age"] + 10)

    def scored(x: Any, y: Any) -> Any:
        return x.assign(
            churned=y, predicted=model.predict(x), probability=model.predict_proba(x)[:, 1]
        )

    result = report(
        scored(x_train, y_train),
        scored(x_test, y_test),
        target="churned",
        prediction="predicted",
        score="probability",
    )
    page = out.with_suffix(".html")
    result.save_html(page)
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("chromium not found")
    with tempfile.TemporaryDirectory() as work, Browser(chromium, Path(work)) as browser:
        browser.open(page.resolve().as_uri(), width=width)
        browser.screenshot(out, width, height)
    print(f"{page} and {out} ({width} x {height})")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]), *(int(a) for a in args[1:3]))
