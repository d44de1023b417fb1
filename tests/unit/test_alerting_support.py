"""The documented time compression of the live alert test (tests/support/alerting.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from support.alerting import alertmanager_test_config, compress_duration, compress_rules


def test_durations_are_divided_by_sixty() -> None:
    assert compress_duration("5m") == "5s"
    assert compress_duration("1h") == "60s"
    assert compress_duration("1h30m") == "90s"
    assert compress_duration("30s") == "500ms"
    with pytest.raises(ValueError):
        compress_duration("5 minutes")


def test_rule_files_keep_everything_but_durations(tmp_path: Path) -> None:
    source = tmp_path / "in.yml"
    source.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "g",
                        "interval": "1m",
                        "rules": [
                            {
                                "alert": "A",
                                "expr": 'max_over_time(x{a="b"}[1h:1m]) - y offset 10m'
                                " + rate(z[5m])",
                                "for": "15m",
                                "labels": {"severity": "warning"},
                            }
                        ],
                    }
                ]
            }
        )
    )
    compress_rules(source, tmp_path / "out.yml")
    group = yaml.safe_load((tmp_path / "out.yml").read_text())["groups"][0]
    rule = group["rules"][0]
    assert group["interval"] == "1s"
    assert rule["for"] == "15s"
    assert rule["labels"] == {"severity": "warning"}
    assert "[60s:1s]" in rule["expr"] and "offset 10s" in rule["expr"]
    assert "rate(z[5s])" in rule["expr"]


def test_alertmanager_override_keeps_routes_and_replaces_receivers() -> None:
    shipped = yaml.safe_load(
        (
            Path(__file__).resolve().parents[2] / "collector/alertmanager/alertmanager.yml"
        ).read_text()
    )
    config = alertmanager_test_config(shipped, "http://127.0.0.1:1")
    assert [r.get("matchers") for r in config["route"]["routes"]] == [
        r.get("matchers") for r in shipped["route"]["routes"]
    ]
    assert config["route"]["group_wait"] == "1s"
    assert config["inhibit_rules"] == shipped["inhibit_rules"]
    assert {r["name"]: r["webhook_configs"][0]["url"] for r in config["receivers"]} == {
        r["name"]: f"http://127.0.0.1:1/{r['name']}" for r in shipped["receivers"]
    }
