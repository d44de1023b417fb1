"""One self-contained HTML page for a drift report: no scripts, no network, inline SVG.

Layout: the dataset verdict, the summary table (one row per column: type, status, test,
score, threshold, drift), the data-quality table, then per column a small SVG plot of the
reference and current distributions (grouped bars per bin or per category). Hovering a bar
shows its numbers through SVG ``<title>`` elements, which browsers show without scripts.

>>> from mlotel.drift._report import ColumnDrift, Distribution, DriftReport
>>> dist = Distribution("categories", ("a", "b"), (0.5, 0.5), (0.9, 0.1))
>>> column = ColumnDrift("c", "categorical", "tested", stattest="z", score=0.01,
...                      threshold=0.05, drift_detected=True, distribution=dist)
>>> page = render_html(DriftReport((column,), 10, 10, number_of_tested_columns=1))
>>> page.startswith("<!DOCTYPE html>"), page.count("<svg"), "<script" in page
(True, 1, False)
"""

from __future__ import annotations

import math
import re
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._report import ColumnDrift, Distribution, DriftReport

__all__ = ["render_html"]

# Evidently 0.7 DataDriftPreset's default tests and their default thresholds: the page
# claims Evidently's tests only when every tested column used one of these as is.
_EVIDENTLY_DEFAULTS = {"ks": 0.05, "wasserstein": 0.1, "chisquare": 0.05, "z": 0.05,
                       "jensenshannon": 0.1}  # fmt: skip
_P_VALUE_RULES = {"ks": "≤", "chisquare": "<", "z": "<"}  # drift at a small p-value

_WIDTH, _HEIGHT = 640, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 56
_REFERENCE_COLOUR, _CURRENT_COLOUR = "#8c8c8c", "#d9480f"

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1000px;padding:0 16px;color:#1a1a1a}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
.verdict{font-size:16px;padding:10px 14px;border-radius:6px;margin:12px 0}
.verdict.drift{background:#fff0e6;border:1px solid #d9480f}
.verdict.ok{background:#ebfbee;border:1px solid #2b8a3e}
.verdict.none{background:#f1f3f5;border:1px solid #868e96}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #dee2e6;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f8f9fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drifted td{background:#fff4ec}.yes{color:#c92a2a;font-weight:600}.no{color:#2b8a3e}
.status{color:#868e96}.muted{color:#868e96}
figure{margin:18px 0;padding:8px 0;border-top:1px solid #e9ecef}
figcaption{font-weight:600;margin-bottom:4px}figcaption span{font-weight:400;color:#495057}
.legend{font-size:12px;color:#495057}.swatch{display:inline-block;width:10px;height:10px;
margin:0 4px 0 12px;vertical-align:middle}
"""


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if value != 0 and abs(value) < 10 ** -(digits - 1):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _slug(name: str, index: int) -> str:
    return f"feature-{index}-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "col")


def _summary(report: DriftReport) -> str:
    rows = []
    for index, column in enumerate(report.columns):
        tested = column.status == "tested"
        drift = (
            '<span class="yes">drift</span>'
            if column.drift_detected
            else ('<span class="no">no drift</span>' if tested else "—")
        )
        status = escape(column.status) if tested else (
            f'<span class="status" title="{escape(column.message or "")}">'
            f"{escape(column.status)}</span>"
        )
        name = escape(column.name)
        link = f'<a href="#{_slug(column.name, index)}">{name}</a>' if column.distribution else name
        rows.append(
            f'<tr class="{"drifted" if column.drift_detected else "column"}" '
            f'data-column="{name}" data-status="{escape(column.status)}">'
            f"<td>{link}</td><td>{escape(column.column_type)}</td><td>{status}</td>"
            f"<td>{escape(column.stattest_display_name or column.stattest or '—')}</td>"
            f'<td class="num">{_number(column.score)}</td>'
            f'<td class="num">{_number(column.threshold, 3)}</td><td>{drift}</td></tr>'
        )
    return (
        '<table id="drift-summary"><thead><tr><th>Column</th><th>Type</th><th>Status</th>'
        "<th>Test</th><th>Score</th><th>Threshold</th><th>Drift</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _quality(report: DriftReport) -> str:
    rows = []
    for column in report.columns:
        quality = column.quality
        if quality is None:
            rows.append(
                f"<tr><td>{escape(column.name)}</td>"
                f'<td colspan="6" class="muted">{escape(column.message or "")}</td></tr>'
            )
            continue
        ref, cur = quality.reference, quality.current
        notes = []
        if ref is not None and ref.constant:
            notes.append("constant in reference")
        if cur is not None and cur.constant:
            notes.append("constant in current")
        if quality.new_category_count:
            shown = ", ".join(escape(v) for v in quality.new_categories[:5])
            more = "…" if quality.new_category_count > 5 else ""
            notes.append(
                f"{quality.new_category_count} new categor"
                f"{'y' if quality.new_category_count == 1 else 'ies'} "
                f"({_share(quality.new_category_share)} of current): {shown}{more}"
            )
        if quality.out_of_range_share:
            notes.append(f"{_share(quality.out_of_range_share)} of current outside reference range")
        if (ref is not None and ref.non_finite) or (cur is not None and cur.non_finite):
            notes.append(
                f"±inf: {ref.non_finite if ref else 0} reference, {cur.non_finite if cur else 0}"
                " current"
            )

        def span(side: object) -> str:
            low = getattr(side, "min", None)
            high = getattr(side, "max", None)
            return "—" if low is None else f"{_number(low)} … {_number(high)}"

        rows.append(
            f'<tr data-column="{escape(column.name)}"><td>{escape(column.name)}</td>'
            f'<td class="num">{_share(ref.missing_share if ref else None)}</td>'
            f'<td class="num">{_share(cur.missing_share if cur else None)}</td>'
            f'<td class="num">{span(ref)}</td><td class="num">{span(cur)}</td>'
            f"<td>{'; '.join(notes) or '—'}</td></tr>"
        )
    return (
        '<table id="data-quality"><thead><tr><th>Column</th><th>Missing (ref)</th>'
        "<th>Missing (cur)</th><th>Range (ref)</th><th>Range (cur)</th><th>Notes</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _plot(column: ColumnDrift, distribution: Distribution) -> str:
    """Grouped bars: reference (grey) and current (orange) share per bin or category."""
    n = len(distribution.labels)
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    top = max([*distribution.reference, *distribution.current, 1e-12])
    group = plot_w / max(n, 1)
    bar = max(group * 0.4, 0.5)
    parts = [
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" '
        'stroke="#495057"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" stroke="#495057"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end" font-size="10">'
        f"{top:.0%}</text>",
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end" font-size="10">0%</text>',
    ]
    for i, label in enumerate(distribution.labels):
        x0 = _LEFT + i * group + group * 0.1
        for offset, side, shares, colour in (
            (0.0, "reference", distribution.reference, _REFERENCE_COLOUR),
            (bar, "current", distribution.current, _CURRENT_COLOUR),
        ):
            height = plot_h * shares[i] / top
            parts.append(
                f'<rect class="bar {side}" x="{x0 + offset:.2f}" y="{_TOP + plot_h - height:.2f}" '
                f'width="{bar:.2f}" height="{height:.2f}" fill="{colour}">'
                f"<title>{escape(label)} — {side}: {shares[i]:.2%}</title></rect>"
            )
        if distribution.kind == "categories":
            text = label if len(label) <= 14 else label[:13] + "…"
            cx = x0 + bar
            parts.append(
                f'<text x="{cx:.2f}" y="{_TOP + plot_h + 10}" font-size="10" text-anchor="end" '
                f'transform="rotate(-35 {cx:.2f} {_TOP + plot_h + 10})">{escape(text)}</text>'
            )
    if distribution.kind == "histogram" and distribution.edges is not None:
        for x, value, anchor in (
            (_LEFT, distribution.edges[0], "start"),
            (_LEFT + plot_w, distribution.edges[-1], "end"),
        ):
            parts.append(
                f'<text x="{x}" y="{_TOP + plot_h + 14}" font-size="10" '
                f'text-anchor="{anchor}">{value:.4g}</text>'
            )
    label = escape(f"{column.name}: reference vs current distribution")
    return (
        f'<svg class="dist-plot" data-column="{escape(column.name)}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" '
        f'height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}">{"".join(parts)}</svg>'
    )


def _figures(report: DriftReport) -> str:
    figures = []
    for index, column in enumerate(report.columns):
        if column.distribution is None:
            continue
        verdict = (
            "drift detected"
            if column.drift_detected
            else ("no drift" if column.status == "tested" else column.status)
        )
        test = (
            f"{column.stattest_display_name or column.stattest}: {_number(column.score)} "
            f"(threshold {_number(column.threshold, 3)}), {verdict}"
            if column.stattest
            else verdict
        )
        figures.append(
            f'<figure class="feature" id="{_slug(column.name, index)}">'
            f"<figcaption>{escape(column.name)} <span>— {escape(test)}</span></figcaption>"
            f"{_plot(column, column.distribution)}</figure>"
        )
    return "".join(figures) or '<p class="muted">No column could be plotted.</p>'


def _tests_used(report: DriftReport) -> str:
    """The tests and thresholds the tested columns used, as the page states them.

    >>> from mlotel.drift._report import ColumnDrift, DriftReport
    >>> def tested(test, threshold):
    ...     return ColumnDrift("c", "numerical", "tested", stattest=test, threshold=threshold)
    >>> report = DriftReport((tested("ks", 0.05), tested("ks", 0.05)), 1, 1)
    >>> print(_tests_used(report))  # doctest: +NORMALIZE_WHITESPACE
    Tests: ks p-value ≤ 0.05 (2 columns): Evidently 0.7 DataDriftPreset's tests at their
    default thresholds.
    >>> _tests_used(DriftReport((tested("psi", 0.2),), 1, 1))
    'Tests: psi ≥ 0.2 (1 column).'
    """
    used: dict[tuple[str, float], int] = {}
    for column in report.columns:
        if column.status == "tested" and column.stattest and column.threshold is not None:
            key = (column.stattest, column.threshold)
            used[key] = used.get(key, 0) + 1
    if not used:
        return "No column was tested."
    parts = []
    for (test, threshold), count in sorted(used.items(), key=lambda item: -item[1]):
        rule = _P_VALUE_RULES.get(test)
        kind = f"{test} p-value {rule}" if rule else f"{test} ≥"
        parts.append(f"{kind} {threshold:g} ({count} column{'' if count == 1 else 's'})")
    text = "Tests: " + ", ".join(parts)
    if all(_EVIDENTLY_DEFAULTS.get(test) == threshold for test, threshold in used):
        text += ": Evidently 0.7 DataDriftPreset's tests at their default thresholds"
    return text + "."


def render_html(report: DriftReport) -> str:
    """The report as one HTML document (UTF-8 text)."""
    if report.drift_share is None:
        verdict_class, verdict = "none", "No column could be tested: see the statuses below."
    else:
        verdict_class = "drift" if report.dataset_drift else "ok"
        rule = (
            "dataset drift when any column drifts"
            if report.method == "calibrated"
            else f"dataset drift at ≥ {report.drift_share_threshold:.2f}"
        )
        verdict = (
            f"Dataset drift {'DETECTED' if report.dataset_drift else 'not detected'}: "
            f"{report.number_of_drifted_columns} of {report.number_of_tested_columns} tested "
            f"columns drifted (share {report.drift_share:.2f}; {rule})."
        )
    decision = (
        f"decision: mlotel calibrated tests, false-alarm rate {report.false_alarm_rate:g} "
        "over all columns"
        if report.method == "calibrated"
        else "decision: one test per column (listed below), dataset drift when the share of "
        f"drifted columns is at least {report.drift_share_threshold:g}"
    )
    untested = len(report.columns) - report.number_of_tested_columns
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Data drift report</title><style>{_STYLE}</style></head><body>"
        "<h1>Data drift report</h1>"
        f'<p class="muted">Reference: {report.reference_rows} rows · Current: '
        f"{report.current_rows} rows · {len(report.columns)} columns"
        f"{f' ({untested} not tested)' if untested else ''} · mlotel "
        f'{escape(report.mlotel_version)} · <span id="decision">{escape(decision)}</span></p>'
        f'<p id="tests" class="muted">{escape(_tests_used(report))}</p>'
        f'<p id="verdict" class="verdict {verdict_class}">{escape(verdict)}</p>'
        f'<h2 id="summary">Drift by column</h2>{_summary(report)}'
        f'<h2 id="quality">Data quality</h2>{_quality(report)}'
        '<h2 id="distributions">Distributions</h2><p class="legend">'
        f'<span class="swatch" style="background:{_REFERENCE_COLOUR}"></span>reference'
        f'<span class="swatch" style="background:{_CURRENT_COLOUR}"></span>current'
        " (share of each sample's non-missing values per bin or category)</p>"
        f"{_figures(report)}</body></html>\n"
    )
