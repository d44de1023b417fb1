"""One self-contained HTML page for a drift report, rendered from the report's JSON data.

:func:`render_html` takes the dict that ``DriftReport.to_dict()`` returns (the data
``--json`` writes), so the page shows exactly what the JSON holds and this module needs
nothing else of the report. The page works offline: styles inline, charts inline SVG, no
script, no font, no image to fetch (a Content-Security-Policy forbids any), one file.

Layout, from the top: the verdict and summary cards (dataset drift, the decision used,
target and prediction drift, performance, data quality); the columns table, drifted
columns first; model performance (reference vs current, confusion matrices); target and
prediction drift; per column its statistics side by side (reference and current rows)
and a full-width chart of both distributions with labelled axes; the data-quality table.
Hovering a bar shows its numbers (SVG ``<title>``, no script needed).

>>> import pandas as pd
>>> from mlotel.drift import report
>>> ref = pd.DataFrame({"c": ["a", "b"] * 50, "x": [float(i % 7) for i in range(100)]})
>>> page = render_html(report(ref, ref.assign(c="a")).to_dict())
>>> page.startswith("<!DOCTYPE html>"), page.count('class="dist-plot"'), "<script" in page
(True, 2, False)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["render_html"]

Data = Mapping[str, Any]

# Evidently 0.7 DataDriftPreset's default tests and their default thresholds: the page
# claims Evidently's tests only when every tested column used one of these as is.
_EVIDENTLY_DEFAULTS = {"ks": 0.05, "wasserstein": 0.1, "chisquare": 0.05, "z": 0.05,
                       "jensenshannon": 0.1}  # fmt: skip
# How each test decides when the JSON does not say (drift_rule): p-values drift when small.
_P_VALUE_RULES = {"ks": "≤", "chisquare": "<", "z": "<"}
_RULE_SIGNS = {"p_value_at_most": "≤", "p_value_below": "<", "score_at_least": "≥"}

_REFERENCE_COLOUR, _CURRENT_COLOUR = "#868e96", "#e8590c"
_W, _H = 1100, 250  # chart viewBox; the SVG scales to the page width (about 1:1)
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 12, 12, 62

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
*{box-sizing:border-box}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1240px;margin:0 auto;padding:24px 24px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 10px}
h3{font-size:16px;margin:0}
.muted{color:#59636e}.small{font-size:12px}
section.panel,figure.feature{background:#fff;border:1px solid #d1d9e0;border-radius:8px;
padding:16px 18px;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px;
margin:16px 0}
.card{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:12px 14px;
min-width:0;overflow-wrap:anywhere}
.card .label{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#59636e}
.card .value{font-size:20px;font-weight:650;margin:2px 0;line-height:1.25}
.card.drift{border-color:#e8590c;background:#fff4e6}.card.ok{border-color:#2f9e44;
background:#ebfbee}.card.none{background:#f1f3f5}
.verdict{font-size:15px;margin:0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e1e4e8;padding:6px 8px;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:#f6f8fa;font-weight:600}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}
tr.drifted td:first-child{box-shadow:inset 3px 0 #e8590c}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;
white-space:nowrap}
.badge.drift{background:#ffe8cc;color:#c2410c}.badge.ok{background:#d3f9d8;color:#2b8a3e}
.badge.none{background:#e9ecef;color:#495057}.badge.role{background:#dbe4ff;color:#364fc7}
.worse{color:#c92a2a}.better{color:#2b8a3e}
.feature-head{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:baseline;margin-bottom:10px}
.stats-wrap{overflow-x:auto;margin-bottom:8px}
table.stats td,table.stats th{padding:3px 8px;white-space:nowrap;overflow-wrap:normal}
table.stats tbody th{font-weight:600;color:#59636e}
svg.dist-plot{display:block;width:100%;height:auto}
.legend{font-size:12px;color:#59636e}.swatch{display:inline-block;width:10px;height:10px;
border-radius:2px;margin:0 4px 0 10px;vertical-align:-1px}
#performance-metrics{width:auto;min-width:min(100%,720px)}
.matrices{display:flex;flex-wrap:wrap;gap:24px}.matrices table{width:auto}
.matrix td{text-align:right;min-width:52px}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
"""


# --- numbers ----------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 4) -> str:
    """``0.0123``, ``45.6789``, ``36,571``, ``1.235e+07``, ``3.56e-53``: readable at a glance.

    >>> [_number(v) for v in (0.01234, 45.67891, 36571.4, 12345678.0, 3.563e-53, None)]
    ['0.0123', '45.6789', '36,571', '1.235e+07', '3.563e-53', '—']
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    magnitude = abs(value)
    if value != 0 and magnitude < 10 ** -(digits - 1):
        return f"{value:.{digits - 1}e}"
    if magnitude >= 1e6:
        return f"{value:.{digits}g}"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    """``12.3%``; shares under 0.1 % keep two significant digits (``0.042%``), never ``0.0%``.

    >>> _share(0.1234), _share(0.00042), _share(0.0), _share(None)
    ('12.3%', '0.042%', '0.0%', '—')
    """
    if value is None:
        return "—"
    if 0 < abs(value) < 0.001:
        return f"{100 * value:.2g}%"
    return f"{value:.1%}"


def _tick_text(value: float, step: float) -> str:
    """A tick label with as many decimals as the tick step needs (no float noise)."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e6 or magnitude < 1e-3:
        return f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 2
    text = f"{value:,.{min(decimals, 6)}f}"
    return text


def _log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten inside [low, high] (with 2x and 5x when they are fewer than three).

    >>> _log_ticks(246.0, 1.1e6)
    [1000.0, 10000.0, 100000.0, 1000000.0]
    """
    first, last = math.ceil(math.log10(low) - 1e-12), math.floor(math.log10(high) + 1e-12)
    decades = [10.0**k for k in range(first, last + 1)]
    if len(decades) >= 3:
        return decades
    return sorted(
        m * 10.0**k
        for k in range(first - 1, last + 1)
        for m in (1, 2, 5)
        if low <= m * 10.0**k <= high
    )


def _nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) inside [low, high].

    >>> _nice_ticks(0.0, 0.37, 4)
    [0.0, 0.1, 0.2, 0.30000000000000004]
    """
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(value)
        value = first + len(ticks) * step
    return ticks


# --- the decision ------------------------------------------------------------------------------


def _rule(column: Data) -> str:
    """``≤``, ``<`` (p-values) or ``≥`` (distances): how the column's score decides."""
    sign = _RULE_SIGNS.get(column.get("drift_rule") or "")
    if sign:
        return sign
    test = column.get("stattest") or ""
    if test in _P_VALUE_RULES:
        return _P_VALUE_RULES[test]
    return "≤" if "p_value" in (column.get("stattest_display_name") or "").lower() else "≥"


def _is_p_value(column: Data) -> bool:
    return _rule(column) in ("≤", "<")


def _score_kind(column: Data) -> str:
    test = column.get("stattest") or "score"
    return f"{test} p-value" if _is_p_value(column) else test


def _tests_used(data: Data) -> str:
    """The tests and thresholds the tested columns used, as the page states them.

    >>> def tested(test, threshold):
    ...     return {"status": "tested", "stattest": test, "threshold": threshold}
    >>> print(_tests_used({"columns": {"a": tested("ks", 0.05), "b": tested("ks", 0.05)}}))
    ... # doctest: +NORMALIZE_WHITESPACE
    Tests: ks p-value ≤ 0.05 (2 columns): Evidently 0.7 DataDriftPreset's tests at their
    default thresholds.
    >>> _tests_used({"columns": {"a": tested("psi", 0.2)}})
    'Tests: psi ≥ 0.2 (1 column).'
    """
    used: dict[tuple[str, float, str], int] = {}
    for column in data["columns"].values():
        if column["status"] == "tested" and column.get("stattest") and (
            column.get("threshold") is not None
        ):
            key = (column["stattest"], column["threshold"], _rule(column))
            used[key] = used.get(key, 0) + 1
    if not used:
        return "No column was tested."
    parts = []
    for (test, threshold, rule), count in sorted(used.items(), key=lambda item: -item[1]):
        kind = f"{test} p-value {rule}" if rule in ("≤", "<") else f"{test} {rule}"
        parts.append(f"{kind} {threshold:g} ({count} column{'' if count == 1 else 's'})")
    text = "Tests: " + ", ".join(parts)
    if all(_EVIDENTLY_DEFAULTS.get(test) == threshold for test, threshold, _ in used):
        text += ": Evidently 0.7 DataDriftPreset's tests at their default thresholds"
    return text + "."


def _decision(data: Data) -> tuple[str, str, str]:
    """(short name, one line, the dataset rule) of the decision the report used, from its
    keys: ``method`` (``calibrated``: mlotel's calibrated tests with ``false_alarm_rate``;
    ``evidently`` or absent: each column's test and threshold) and the columns' tests.

    >>> _decision({"method": "calibrated", "false_alarm_rate": 0.01, "columns": {}})[1]
    'decision: mlotel calibrated tests, false-alarm rate 0.01 over all columns'
    """
    method = data.get("method") or "evidently"
    if method == "calibrated":
        rate = data.get("false_alarm_rate")
        line = "decision: mlotel calibrated tests" + (
            f", false-alarm rate {rate:g} over all columns" if rate is not None else ""
        )
        return "mlotel calibrated tests", line, "the data set drifts when any column drifts"
    share = data.get("drift_share_threshold")
    rule = (
        f"the data set drifts when ≥ {share:.0%} of the tested columns drift"
        if share is not None
        else "the data set drifts when its share of drifted columns is reached"
    )
    if method != "evidently":
        return str(method), f"decision: {method}", rule
    line = "decision: one test per column (listed below)" + (
        f", dataset drift when the share of drifted columns is at least {share:g}"
        if share is not None
        else ""
    )
    tested = [c for c in data["columns"].values() if c["status"] == "tested"]
    if tested and all(
        _EVIDENTLY_DEFAULTS.get(c.get("stattest") or "") == c.get("threshold") for c in tested
    ):
        return "Evidently 0.7 tests", line, rule
    return "per-column tests", line, rule


# --- ordering ----------------------------------------------------------------------------------


def _severity(column: Data) -> float:
    score, threshold = column.get("score"), column.get("threshold")
    if score is None or threshold is None:
        return 0.0
    if _is_p_value(column):
        return threshold / score if score > 0 else math.inf
    return score / threshold if threshold > 0 else math.inf


def _ordered(columns: Mapping[str, Data]) -> list[tuple[int, str, Data]]:
    """(original index, name, column): drifted first (furthest past the threshold first),
    then the other tested columns, then the untested ones, each in the data's order."""
    items = list(enumerate(columns.items()))

    def key(item: tuple[int, tuple[str, Data]]) -> tuple[int, float, int]:
        index, (_, column) = item
        if column.get("drift_detected"):
            return (0, -_severity(column), index)
        return (1 if column["status"] == "tested" else 2, 0.0, index)

    return [(i, name, column) for i, (name, column) in sorted(items, key=key)]


def _slug(name: str, index: int, prefix: str = "column") -> str:
    return f"{prefix}-{index}-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "col")


def _badge(column: Data) -> str:
    if column.get("drift_detected"):
        return '<span class="badge drift">drift</span>'
    if column["status"] == "tested":
        return '<span class="badge ok">no drift</span>'
    return f'<span class="badge none">{escape(column["status"])}</span>'


def _test_text(column: Data) -> str:
    if not column.get("stattest"):
        return escape(column.get("message") or column["status"])
    bound = column.get("score_error_bound")
    plus = f" ± {_number(bound)}" if bound else ""
    threshold = column.get("threshold")
    return escape(
        f"{_score_kind(column)} {_number(column.get('score'))}{plus} "
        f"({_rule(column)} {_number(threshold, 3) if threshold is not None else '—'} drifts)"
    )


# --- overview ----------------------------------------------------------------------------------


def _card(label: str, value: str, detail: str, css: str = "", ident: str = "") -> str:
    ident_attr = f' id="{ident}"' if ident else ""
    return (
        f'<div class="card {css}"{ident_attr}><div class="label">{escape(label)}</div>'
        f'<div class="value">{value}</div><div class="small">{detail}</div></div>'
    )


def _role_card(label: str, column: Data | None) -> str:
    if column is None:
        return ""
    css = "drift" if column.get("drift_detected") else ("ok" if column["status"] == "tested"
                                                         else "none")  # fmt: skip
    value = (
        "drift" if column.get("drift_detected")
        else "no drift" if column["status"] == "tested" else escape(column["status"])
    )  # fmt: skip
    return _card(label, value, f"{escape(column['column'])}: {_test_text(column)}", css)


def _quality_issues(data: Data) -> list[str]:
    """Columns with a data-quality finding: missing on a side, empty, of another type, new
    categories, values outside the reference range, or 1 point more missing values."""
    absent = ("missing_in_current", "missing_in_reference", "type_mismatch", "empty_current",
              "empty_reference")  # fmt: skip
    issues = []
    for name, column in data["columns"].items():
        quality = column.get("data_quality") or {}
        found = column["status"] in absent or bool(
            quality.get("new_category_count")
            or (quality.get("out_of_range_share") or 0) > 0
            or _missing_rise(quality) > 0.01
        )
        if found:
            issues.append(name)
    return issues


def _missing_rise(quality: Data) -> float:
    ref, cur = quality.get("reference") or {}, quality.get("current") or {}
    return (cur.get("missing_share") or 0.0) - (ref.get("missing_share") or 0.0)


_METRIC_NAMES = {
    "accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1",
    "f1_macro": "F1 (macro)", "log_loss": "Log loss", "roc_auc": "ROC AUC", "mae": "MAE",
    "rmse": "RMSE", "r2": "R²",
}  # fmt: skip
_LOWER_IS_BETTER = {"log_loss", "mae", "rmse"}


def _overview(data: Data) -> str:
    tested = data["number_of_tested_columns"]
    if data.get("drift_share") is None:
        verdict = _card(
            "Dataset drift",
            "not tested",
            '<p class="verdict">No column could be tested: see the statuses below.</p>',
            "none",
            "verdict",
        )
    else:
        drifted = data["number_of_drifted_columns"]
        verdict = _card(
            "Dataset drift",
            "DETECTED" if data["dataset_drift"] else "not detected",
            f'<p class="verdict">{drifted} of {tested} tested columns drifted '
            f"(share {data['drift_share']:.2f}).</p>",
            "drift" if data["dataset_drift"] else "ok",
            "verdict",
        )
    what, _, rule = _decision(data)
    cards = [
        verdict,
        _card("Decision", escape(what), escape(rule[0].upper() + rule[1:]) + "."),
        _role_card("Target drift", data.get("target_drift")),
        _role_card("Prediction drift", data.get("prediction_drift")),
        _role_card("Score drift", data.get("score_drift")),
    ]
    performance = data.get("performance")
    if performance is not None and performance.get("metrics"):
        name = performance["metrics"][0]
        ref, cur = (
            (performance.get(side) or {}).get("metrics", {}).get(name)
            for side in ("reference", "current")
        )
        cards.append(
            _card(
                f"Performance: {_METRIC_NAMES.get(name, name)}",
                f"{_number(ref)} → {_number(cur)}",
                _change(name, ref, cur) + " (reference → current)",
            )
        )
    issues = _quality_issues(data)
    listed = f": {escape(', '.join(issues[:6]))}{'…' if len(issues) > 6 else ''}" if issues else ""
    cards.append(
        _card(
            "Data quality",
            f"{len(issues)} column{'' if len(issues) == 1 else 's'}",
            "missing on a side, new categories, values outside the reference range or more "
            f"missing values{listed}",
        )
    )
    return f'<div class="cards" id="overview">{"".join(c for c in cards if c)}</div>'


def _change(name: str, ref: float | None, cur: float | None) -> str:
    if ref is None or cur is None:
        return "—"
    delta = cur - ref
    if delta == 0:
        return "±0"
    worse = (delta > 0) == (name in _LOWER_IS_BETTER)
    return f'<span class="{"worse" if worse else "better"}">{delta:+.4f}</span>'


# --- the columns table -------------------------------------------------------------------------


def _side_summary(column: Data, side: str) -> str:
    quality = column.get("data_quality") or {}
    values = quality.get(side) or {}
    if column.get("column_type") == "numerical" and values.get("mean") is not None:
        std = values.get("std")
        return f"{_number(values['mean'])}" + (f" ± {_number(std)}" if std is not None else "")
    if values.get("top") is not None:
        return f"{escape(values['top'])} ({_share(values.get('top_share'))})"
    return "—"


def _summary_table(data: Data) -> str:
    rows = []
    for index, name, column in _ordered(data["columns"]):
        tested = column["status"] == "tested"
        status = "" if tested else (
            f' <span class="muted" title="{escape(column.get("message") or "")}">'
            f"({escape(column['status'])})</span>"
        )
        link = (
            f'<a href="#{_slug(name, index)}">{escape(name)}</a>'
            if column.get("distribution") else escape(name)
        )  # fmt: skip
        rows.append(
            f'<tr class="{"drifted" if column.get("drift_detected") else "column"}" '
            f'data-column="{escape(name)}" data-status="{escape(column["status"])}">'
            f"<td>{link}{status}</td><td>{escape(column['column_type'])}</td>"
            f"<td>{_badge(column)}</td>"
            f"<td>{escape(column.get('stattest') or '—')}</td>"
            f'<td class="num">{_number(column.get("score"))}</td>'
            f'<td class="num">{_rule(column) if column.get("stattest") else ""} '
            f"{_number(column.get('threshold'), 3)}</td>"
            f'<td class="num">{_side_summary(column, "reference")}</td>'
            f'<td class="num">{_side_summary(column, "current")}</td></tr>'
        )
    return (
        '<section class="panel"><table id="drift-summary"><thead><tr><th>Column</th>'
        '<th>Type</th><th>Drift</th><th>Test</th><th class="num">Score</th>'
        '<th class="num">Drifts at</th><th class="num">Reference (mean ± std, or top)</th>'
        '<th class="num">Current</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


# --- per-column details ------------------------------------------------------------------------


def _stats_rows(column: Data) -> list[tuple[str, str, str]]:
    """(statistic, reference, current) rows of a column's side-by-side table."""
    quality = column.get("data_quality") or {}
    ref, cur = quality.get("reference") or {}, quality.get("current") or {}

    def count(value: Any) -> str:
        return "—" if value is None else f"{value:,}"

    def missing(side: Data) -> str:
        return f"{side.get('missing', 0):,} ({_share(side.get('missing_share'))})"

    def top(side: Data) -> str:
        if side.get("top") is None:
            return "—"
        return f"{escape(side['top'])} ({_share(side.get('top_share'))})"

    def both(key: str, show: Any = _number) -> tuple[str, str, str]:
        return key, show(ref.get(key)) if ref else "—", show(cur.get(key)) if cur else "—"

    rows: list[tuple[str, str, str]] = [
        both("rows", count),
        ("missing", missing(ref) if ref else "—", missing(cur) if cur else "—"),
    ]
    if column.get("column_type") == "numerical":
        if ref.get("non_finite") or cur.get("non_finite"):
            rows.append(("±inf", count(ref.get("non_finite")), count(cur.get("non_finite"))))
        rows += [both("mean"), both("std"), both("min")]
        ref_q, cur_q = ref.get("quantiles") or {}, cur.get("quantiles") or {}
        for key, label in (("0.05", "5 %"), ("0.25", "25 %"), ("0.5", "median"),
                           ("0.75", "75 %"), ("0.95", "95 %")):  # fmt: skip
            rows.append((label, _number(ref_q.get(key)), _number(cur_q.get(key))))
        rows.append(both("max"))
        if quality.get("out_of_range_share") is not None:
            rows.append(("outside ref. range", "", _share(quality["out_of_range_share"])))
        return rows
    rows.append(both("distinct", count))
    rows.append(("most frequent", top(ref) if ref else "—", top(cur) if cur else "—"))
    new = quality.get("new_category_count")
    if new:
        shown = ", ".join(escape(v) for v in quality.get("new_categories", [])[:5])
        more = "…" if new > 5 else ""
        share = _share(quality.get("new_category_share"))
        rows.append(("new categories", "", f"{new:,} ({share}): {shown}{more}"))
    return rows


def _stats_table(column: Data) -> str:
    """Reference and current statistics side by side: one column per statistic, one row
    per data set, so each pair of numbers sits one above the other."""
    rows = _stats_rows(column)
    head = "".join(f'<th class="num">{escape(label)}</th>' for label, _, _ in rows)
    body = "".join(
        f'<tr data-side="{side}"><th>{side}</th>'
        + "".join(f'<td class="num">{values[i]}</td>' for values in rows)
        + "</tr>"
        for i, side in ((1, "reference"), (2, "current"))
    )
    return (
        f'<div class="stats-wrap"><table class="stats"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _legend() -> str:
    return (
        f'<span class="legend"><span class="swatch" style="background:{_REFERENCE_COLOUR}">'
        f'</span>reference<span class="swatch" style="background:{_CURRENT_COLOUR}"></span>'
        "current</span>"
    )


def _detail(name: str, column: Data, ident: str, role: str | None = None) -> str:
    role_badge = f'<span class="badge role">{escape(role)}</span> ' if role else ""
    chart = (
        _plot(name, column["distribution"])
        if column.get("distribution")
        else f'<p class="muted">{escape(column.get("message") or "No values to plot.")}</p>'
    )
    return (
        f'<figure class="feature" id="{ident}" data-column="{escape(name)}">'
        f'<div class="feature-head"><h3>{role_badge}{escape(name)}</h3>{_badge(column)}'
        f'<span class="muted">{escape(column["column_type"])} · {_test_text(column)}</span>'
        f"{_legend()}</div>{_stats_table(column)}{chart}</figure>"
    )


def _details(data: Data) -> str:
    figures = [
        _detail(name, column, _slug(name, index))
        for index, name, column in _ordered(data["columns"])
        if column.get("distribution") or column.get("data_quality")
    ]
    return "".join(figures) or '<p class="muted">No column could be plotted.</p>'


def _roles(data: Data) -> str:
    parts = []
    for key, role in (("target_drift", "target"), ("prediction_drift", "prediction"),
                      ("score_drift", "score")):  # fmt: skip
        column = data.get(key)
        if column is not None:
            parts.append(_detail(column["column"], column, f"{role}-drift", role))
    if not parts:
        return ""
    return (
        '<h2 id="target-prediction">Target and prediction drift</h2>'
        '<p class="muted">Tested like the features (same tests and thresholds); not counted '
        "in the dataset drift share.</p>" + "".join(parts)
    )


# --- performance -------------------------------------------------------------------------------


def _performance(data: Data) -> str:
    section = data.get("performance")
    if section is None:
        return ""
    ref, cur = section.get("reference"), section.get("current")
    head = (
        f"{escape(section['task'])}: target <b>{escape(section['target'])}</b>, prediction "
        f"<b>{escape(section['prediction'])}</b>"
        + (f", score <b>{escape(section['score'])}</b>" if section.get("score") else "")
        + (
            f", positive label <b>{escape(section['positive_label'])}</b>"
            if section.get("positive_label") is not None
            else ""
        )
    )
    rows = []
    for name in section.get("metrics", []):
        values = [(side or {}).get("metrics", {}).get(name) for side in (ref, cur)]
        bounds = [
            (side or {}).get("roc_auc_error_bound") if name == "roc_auc" else None
            for side in (ref, cur)
        ]
        cells = "".join(
            f'<td class="num">{_number(v)}{f" ± {_number(b)}" if b else ""}</td>'
            for v, b in zip(values, bounds)
        )
        rows.append(
            f'<tr data-metric="{escape(name)}"><th>{escape(_METRIC_NAMES.get(name, name))}'
            f"{' (lower is better)' if name in _LOWER_IS_BETTER else ''}</th>{cells}"
            f'<td class="num">{_change(name, *values)}</td></tr>'
        )
    counts = "".join(
        f'<td class="num">{side["rows"]:,}'
        + (f' <span class="muted">(+{side["skipped_rows"]:,} skipped)</span>'
           if side["skipped_rows"] else "")
        + "</td>" if side else '<td class="num">—</td>'
        for side in (ref, cur)
    )  # fmt: skip
    table = (
        '<table id="performance-metrics"><thead><tr><th>Metric</th><th class="num">reference'
        '</th><th class="num">current</th><th class="num">change</th></tr></thead><tbody>'
        f'<tr><th>rows used</th>{counts}<td></td></tr>{"".join(rows)}</tbody></table>'
    )
    matrices = [
        _matrix(label, side["confusion_matrix"], section.get("labels", []))
        for label, side in (("reference", ref), ("current", cur))
        if side and side.get("confusion_matrix")
    ]
    note = (
        f'<p class="muted">{escape(section["message"])}</p>' if section.get("message") else ""
    )
    matrix_html = (
        '<h3 style="margin-top:16px">Confusion matrices (rows: actual, columns: predicted)</h3>'
        f'<div class="matrices">{"".join(matrices)}</div>'
        if matrices
        else ""
    )
    return (
        '<h2 id="performance">Model performance</h2><section class="panel">'
        f'<p style="margin-top:0">{head}</p>{table}{matrix_html}{note}</section>'
    )


def _matrix(side: str, matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    total = sum(sum(row) for row in matrix) or 1
    head = "".join(f'<th class="num">{escape(str(label))}</th>' for label in labels)
    body = []
    for label, row in zip(labels, matrix):
        cells = []
        for j, value in enumerate(row):
            alpha = 0.08 + 0.6 * value / total
            colour = "47,158,68" if labels[j] == label else "232,89,12"
            cells.append(
                f'<td style="background:rgba({colour},{alpha:.2f})">{value:,}</td>'
            )
        body.append(f"<tr><th>{escape(str(label))}</th>{''.join(cells)}</tr>")
    return (
        f'<div><div class="small muted">{side}</div><table class="matrix" data-side="{side}">'
        f"<thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


# --- data quality ------------------------------------------------------------------------------


def _quality(data: Data) -> str:
    rows = []
    for name, column in data["columns"].items():
        quality = column.get("data_quality")
        if quality is None:
            rows.append(
                f"<tr><td>{escape(name)}</td>"
                f'<td colspan="5" class="muted">{escape(column.get("message") or "")}</td></tr>'
            )
            continue
        ref, cur = quality.get("reference"), quality.get("current")
        notes = []
        if ref is not None and ref.get("constant"):
            notes.append("constant in reference")
        if cur is not None and cur.get("constant"):
            notes.append("constant in current")
        if quality.get("new_category_count"):
            count = quality["new_category_count"]
            shown = ", ".join(escape(v) for v in quality.get("new_categories", [])[:5])
            more = "…" if count > 5 else ""
            notes.append(
                f"{count} new categor{'y' if count == 1 else 'ies'} "
                f"({_share(quality.get('new_category_share'))} of current): {shown}{more}"
            )
        if quality.get("out_of_range_share"):
            notes.append(
                f"{_share(quality['out_of_range_share'])} of current outside reference range"
            )
        if (ref or {}).get("non_finite") or (cur or {}).get("non_finite"):
            notes.append(
                f"±inf: {(ref or {}).get('non_finite', 0)} reference, "
                f"{(cur or {}).get('non_finite', 0)} current"
            )

        def span(side: Data | None) -> str:
            if not side or side.get("min") is None:
                return "—"
            return f"{_number(side['min'])} … {_number(side.get('max'))}"

        rows.append(
            f'<tr data-column="{escape(name)}"><td>{escape(name)}</td>'
            f'<td class="num">{_share((ref or {}).get("missing_share"))}</td>'
            f'<td class="num">{_share((cur or {}).get("missing_share"))}</td>'
            f'<td class="num">{span(ref)}</td><td class="num">{span(cur)}</td>'
            f"<td>{'; '.join(notes) or '—'}</td></tr>"
        )
    return (
        '<section class="panel"><table id="data-quality"><thead><tr><th>Column</th>'
        '<th class="num">Missing (ref)</th><th class="num">Missing (cur)</th>'
        '<th class="num">Range (ref)</th><th class="num">Range (cur)</th><th>Notes</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


# --- charts ------------------------------------------------------------------------------------


def _plot(name: str, distribution: Data) -> str:
    """Grouped bars, reference (grey) and current (orange), per bin or category, with a
    y axis of shares and an x axis of values (histograms) or category labels."""
    labels = list(distribution["labels"])
    reference = [v or 0.0 for v in distribution["reference"]]
    current = [v or 0.0 for v in distribution["current"]]
    n = max(len(labels), 1)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    highest = max([*reference, *current, 1e-12])
    y_ticks = _nice_ticks(0.0, highest, 4)
    top = max(highest, y_ticks[-1])
    bottom = _TOP + plot_h
    step = 100 * (y_ticks[1] - y_ticks[0]) if len(y_ticks) > 1 else 1.0
    decimals = next((d for d in range(4) if abs(round(step, d) - step) < 1e-9), 4)
    parts = []
    for tick in y_ticks:  # gridlines and share labels
        y = bottom - plot_h * tick / top
        text = f"{100 * tick:.{decimals}f}%"
        parts.append(
            f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" '
            f'stroke="#e9ecef"/><text class="tick y" x="{_LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end" font-size="13" fill="#59636e">{text}</text>'
        )
    group = plot_w / n
    bar = max(group * 0.4, 0.6)
    for i, label in enumerate(labels):
        x0 = _LEFT + i * group + group * 0.1
        for offset, side, shares, colour in (
            (0.0, "reference", reference, _REFERENCE_COLOUR),
            (bar, "current", current, _CURRENT_COLOUR),
        ):
            height = plot_h * shares[i] / top
            parts.append(
                f'<rect class="bar {side}" x="{x0 + offset:.2f}" y="{bottom - height:.2f}" '
                f'width="{bar:.2f}" height="{height:.2f}" fill="{colour}">'
                f"<title>{escape(label)} — {side}: {shares[i]:.2%}</title></rect>"
            )
    parts.append(
        f'<line x1="{_LEFT}" y1="{bottom}" x2="{_LEFT + plot_w}" y2="{bottom}" stroke="#495057"/>'
    )
    edges = distribution.get("edges")
    if distribution["kind"] == "histogram" and edges and None not in (edges[0], edges[-1]):
        low, high = float(edges[0]), float(edges[-1])
        log = distribution.get("scale") == "log" and low > 0
        if log:
            ticks = _log_ticks(low, high)
            step = 0.0
            where = [(math.log10(t) - math.log10(low)) / (math.log10(high) - math.log10(low))
                     for t in ticks]  # fmt: skip
        else:
            ticks = _nice_ticks(low, high, 8)
            step = ticks[1] - ticks[0] if len(ticks) > 1 else abs(high - low) or 1.0
            where = [(t - low) / (high - low) if high > low else 0.5 for t in ticks]
        for tick, fraction in zip(ticks, where):
            x = _LEFT + plot_w * fraction
            text = _number(tick).removesuffix(".0000") if log else _tick_text(tick, step)
            parts.append(
                f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" '
                f'stroke="#495057"/><text class="tick x" x="{x:.1f}" y="{bottom + 20}" '
                f'text-anchor="middle" font-size="13" fill="#59636e">{escape(text)}</text>'
            )
        spacing = "log-spaced" if log else "equal-width"
        x_title = f"{name} ({n} {spacing} bins from {_number(low)} to {_number(high)})"
    else:
        rotate = n > 8 or max((len(label) for label in labels), default=0) * 7 > group
        for i, label in enumerate(labels):
            text = label if len(label) <= 18 else label[:17] + "…"
            cx = _LEFT + i * group + group / 2
            if rotate:
                parts.append(
                    f'<text class="tick x" x="{cx:.1f}" y="{bottom + 14}" font-size="12" '
                    f'fill="#59636e" text-anchor="end" transform="rotate(-30 {cx:.1f} '
                    f'{bottom + 14})">{escape(text)}</text>'
                )
            else:
                parts.append(
                    f'<text class="tick x" x="{cx:.1f}" y="{bottom + 20}" font-size="12" '
                    f'fill="#59636e" text-anchor="middle">{escape(text)}</text>'
                )
        x_title = f"{name} (category)"
    parts.append(
        f'<text class="axis-title x" x="{_LEFT + plot_w / 2:.1f}" y="{_H - 8}" '
        f'text-anchor="middle" font-size="14" fill="#1f2328">{escape(x_title)}</text>'
        f'<text class="axis-title y" x="14" y="{_TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'font-size="14" fill="#1f2328" transform="rotate(-90 14 {_TOP + plot_h / 2:.1f})">'
        "share of rows</text>"
    )
    label = escape(f"{name}: reference vs current distribution")
    return (
        f'<svg class="dist-plot" data-column="{escape(name)}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {_W} {_H}" preserveAspectRatio="xMidYMid meet">{"".join(parts)}</svg>'
    )


# --- the page ----------------------------------------------------------------------------------


def render_html(data: Data) -> str:
    """The report (``DriftReport.to_dict()``, or the JSON it wrote, loaded) as one HTML
    document (UTF-8 text)."""
    mapping = data.get("column_mapping") or {}
    monitored = any(mapping.get(role) for role in ("target", "prediction", "score"))
    title = "Model monitoring report" if monitored else "Data drift report"
    untested = data["number_of_columns"] - data["number_of_tested_columns"]
    meta = (
        f"Reference: {data['reference_rows']:,} rows · Current: {data['current_rows']:,} rows · "
        f"{data['number_of_columns']} columns"
        f"{f' ({untested} not tested)' if untested else ''} · mlotel "
        f"{escape(str(data.get('mlotel_version') or ''))} · "
        f'<span id="decision">{escape(_decision(data)[1])}</span>'
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body><main>"
        f'<h1>{title}</h1><p class="muted">{meta}</p>'
        f'<p id="tests" class="muted">{escape(_tests_used(data))}</p>'
        f"{_overview(data)}"
        f'<h2 id="summary">Columns, drifted first</h2>{_summary_table(data)}'
        f"{_performance(data)}{_roles(data)}"
        f'<h2 id="distributions">Columns in detail</h2>'
        f'<p class="muted">Per column: its statistics on both data sets, and each data '
        f"set's share of non-missing values per bin or category.</p>{_details(data)}"
        f'<h2 id="quality">Data quality</h2>{_quality(data)}'
        "</main></body></html>\n"
    )
