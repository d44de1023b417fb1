"""Reading the shipped collector/ files: dashboard panels and queries, PromQL names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "COLLECTOR",
    "DASHBOARDS",
    "PROMETHEUS_DIR",
    "dashboard_panels",
    "dashboard_queries",
    "shipped_rule_files",
    "split_names",
]

COLLECTOR = Path(__file__).resolve().parents[2] / "collector"
DASHBOARDS = sorted((COLLECTOR / "grafana" / "dashboards").glob("*.json"))
PROMETHEUS_DIR = COLLECTOR / "prometheus"


def shipped_rule_files() -> list[Path]:
    """The rule files the shipped prometheus.yml loads (its globs, resolved)."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    files: list[Path] = []
    for pattern in config["rule_files"]:
        files.extend(sorted(PROMETHEUS_DIR.glob(pattern)))
    return files


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every panel target of every dashboard."""
    queries = []
    for path in DASHBOARDS:
        for panel in dashboard_panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                queries.append((path.name, panel["title"], target["expr"]))
    return queries


_MATCHERS = re.compile(r"\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def split_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) an expression refers to (for mlotel's simple PromQL)."""
    labels: set[str] = set()
    for matchers in _MATCHERS.findall(expr):
        labels |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in _GROUPING.findall(expr):
        labels |= {name.strip() for name in grouping.split(",") if name.strip()}
    bare = _GROUPING.sub(" ", _MATCHERS.sub(" ", re.sub(r'"[^"]*"', '""', expr)))
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    label_values = re.findall(r"label_values\([^,]*,\s*(\w+)\)", expr)
    labels |= set(label_values)
    metrics = {
        token
        for token in _IDENT.findall(bare)
        if token.startswith(("ml", "mlotel", "gen_ai_")) and token not in label_values
    }
    return metrics, labels
