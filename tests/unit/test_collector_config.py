"""Offline checks of collector/: what cannot run on this machine (otelcol-contrib,
Docker, Grafana) is parsed and cross-checked; what can (promtool, amtool) runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlotel import semconv
from support.collector_files import DASHBOARDS, dashboard_panels, dashboard_queries, split_names
from support.collector_schema import check_value, config_problems, expand_env
from support.file_sink import file_log_records

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = ROOT / "collector"
PROMETHEUS_DIR = COLLECTOR / "prometheus"
OTELCOL_CONFIGS = [COLLECTOR / "otelcol-config.yaml", COLLECTOR / "otelcol-gateway.yaml"]
COMPONENTS = yaml.safe_load((COLLECTOR / "otelcol-contrib-components.yaml").read_text())
COMPOSE = yaml.safe_load((COLLECTOR / "docker-compose.yaml").read_text())

KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")

PROMETHEUS_LABELS = {"le", "job", "instance", "__name__"}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: scripts/test.sh installs it (Debian)", pytrace=False)
    return found


def _type(component_id: str) -> str:
    """Component type of an id such as ``otlp_http/loki``."""
    return component_id.split("/", 1)[0]


# --- otelcol-contrib ----------------------------------------------------------


def test_pinned_version_is_the_one_in_configs_and_compose() -> None:
    version = (COLLECTOR / "otelcol-contrib.version").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert COMPONENTS["version"] == version
    image = COMPOSE["services"]["otel-collector"]["image"]
    assert image == f"otel/opentelemetry-collector-contrib:{version}"
    workflow = (ROOT / ".github" / "workflows" / "stack.yml").read_text()
    assert f"otel/opentelemetry-collector-contrib:{version}" in workflow


@pytest.mark.parametrize("path", OTELCOL_CONFIGS, ids=lambda p: p.name)
def test_collector_pipelines_use_defined_components_of_the_pinned_release(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    service = config["service"]
    assert service["pipelines"], "no pipelines"
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for name, pipeline in service["pipelines"].items():
        assert _type(name) in ("traces", "metrics", "logs", "profiles"), name
        assert pipeline["receivers"] and pipeline["exporters"], name
        # memory_limiter first in every pipeline.
        assert pipeline["processors"][0] == "memory_limiter", name
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in (config.get(kind) or {}), f"{name}: {component} not defined"
                used[kind].add(component)
    for extension in service.get("extensions", []):
        assert extension in config["extensions"], extension
        used["extensions"].add(extension)
    assert "health_check" in {_type(e) for e in used["extensions"]}
    for kind in KINDS:
        for component in config.get(kind) or {}:
            assert component in used[kind], f"{kind}/{component} is defined but unused"
            assert _type(component) in COMPONENTS[kind], (
                f"{kind}: {_type(component)!r} is not a component of otelcol-contrib "
                f"{COMPONENTS['version']} (collector/otelcol-contrib-components.yaml)"
            )
            assert _type(component) not in COMPONENTS["removed"], component
            if kind != "receivers":  # `otlp` is the receiver's current name
                assert _type(component) not in COMPONENTS["deprecated"], component


@pytest.mark.parametrize("path", OTELCOL_CONFIGS, ids=lambda p: p.name)
def test_collector_config_has_no_credentials_and_binds_wide_only_in_container(
    path: Path,
) -> None:
    text = path.read_text()
    config = yaml.safe_load(text)
    for line in text.splitlines():
        key = line.split("#", 1)[0].strip()
        if re.match(r"(password|user|token|api_key|key_file|secret|authorization)\s*:", key, re.I):
            assert re.search(r"\$\{env:[A-Z_]+(:-)?\}", key), f"literal credential: {line}"
    for protocol in config["receivers"]["otlp"]["protocols"].values():
        assert protocol["endpoint"].startswith("0.0.0.0:")
    for mapping in COMPOSE["services"]["otel-collector"]["ports"]:
        assert str(mapping).startswith("127.0.0.1:"), mapping


def test_single_tier_config_fans_out_to_the_documented_backends() -> None:
    config = yaml.safe_load((COLLECTOR / "otelcol-config.yaml").read_text())
    exporters = config["exporters"]
    pipelines = config["service"]["pipelines"]
    assert set(pipelines["metrics"]["exporters"]) >= {"otlp_http/prometheus"}
    assert set(pipelines["logs"]["exporters"]) >= {"otlp_http/loki", "elasticsearch"}
    assert set(pipelines["traces"]["exporters"]) >= {"otlp_grpc/jaeger"}
    assert all("debug" in p["exporters"] for p in pipelines.values())
    # OTel-native documents are the exporter's default; `mapping.mode` is deprecated.
    assert "mode" not in (exporters["elasticsearch"].get("mapping") or {})
    assert "transform/scrub_features" in pipelines["logs"]["processors"]
    statements = config["processors"]["transform/scrub_features"]["log_statements"][0]
    assert all("MLOTEL_SCRUB_FEATURES" in s for s in statements["statements"])
    # Batching is the exporters' sending_queue (see the config's comment), not a processor.
    assert not any(_type(p) == "batch" for p in config["processors"])
    for name, exporter in exporters.items():
        if name != "debug":
            assert exporter["sending_queue"]["batch"], name


def test_gateway_routes_traces_and_logs_by_trace_id() -> None:
    config = yaml.safe_load((COLLECTOR / "otelcol-gateway.yaml").read_text())
    balancer = config["exporters"]["load_balancing"]
    assert balancer["routing_key"] == "traceID"
    assert "dns" in balancer["resolver"]
    pipelines = config["service"]["pipelines"]
    assert "load_balancing" in pipelines["traces"]["exporters"]
    assert "load_balancing" in pipelines["logs"]["exporters"]


def _env_default(value: str) -> str:
    """``${env:NAME:-default}`` -> default; anything else unchanged."""
    match = re.fullmatch(r"\$\{env:[A-Z_]+:-(.*)\}", value)
    return match.group(1) if match else value


def _host_port(url: str) -> tuple[str, int]:
    match = re.fullmatch(r"(?:https?://)?([a-z0-9.-]+):(\d+)(/.*)?", url)
    assert match, url
    return match.group(1), int(match.group(2))


def _container_ports(image: str) -> set[int]:
    """Ports each backend image listens on (from the images' documentation)."""
    known = {
        "prom/prometheus": {9090},
        "grafana/loki": {3100},
        "docker.elastic.co/elasticsearch/elasticsearch": {9200},
        "jaegertracing/jaeger": {4317, 4318, 16686},
        "prom/alertmanager": {9093},
        "grafana/grafana": {3000},
        "otel/opentelemetry-collector-contrib": {4317, 4318, 8888, 13133},
    }
    return known[image.split(":", 1)[0]]


def test_collector_endpoints_match_compose_services_and_ports() -> None:
    config = yaml.safe_load((COLLECTOR / "otelcol-config.yaml").read_text())
    services = COMPOSE["services"]
    expected = {
        "otlp_http/prometheus": ("prometheus", "/api/v1/otlp"),
        "otlp_http/loki": ("loki", "/otlp"),
        "otlp_grpc/jaeger": ("jaeger", None),
    }
    for exporter, (service, path) in expected.items():
        endpoint = _env_default(config["exporters"][exporter]["endpoint"])
        host, port = _host_port(endpoint)
        assert host == service and service in services, endpoint
        assert port in _container_ports(services[service]["image"]), endpoint
        if path:
            assert endpoint.endswith(path), endpoint
    for endpoint in config["exporters"]["elasticsearch"]["endpoints"]:
        host, port = _host_port(_env_default(endpoint))
        assert host == "elasticsearch" and port == 9200
    # The demo exports to the collector's OTLP/HTTP port.
    demo_env = services["mlotel-demo"]["environment"]
    assert _host_port(demo_env["OTEL_EXPORTER_OTLP_ENDPOINT"]) == ("otel-collector", 4318)
    prometheus = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    targets = [
        t
        for job in prometheus["scrape_configs"]
        for s in job["static_configs"]
        for t in s["targets"]
    ]
    assert "otel-collector:8888" in targets
    am_targets = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert _host_port(am_targets[0]) == ("alertmanager", 9093)
    assert "--web.enable-otlp-receiver" in services["prometheus"]["command"]


# --- docker compose ---------------------------------------------------------------


def test_compose_pins_images_and_every_mounted_file_exists() -> None:
    for name, service in COMPOSE["services"].items():
        if "build" in service:
            build = service["build"]
            assert (COLLECTOR / build["context"] / build["dockerfile"]).is_file(), name
            continue
        image = service["image"]
        tag = image.rsplit(":", 1)[-1]
        assert ":" in image and tag != "latest" and re.search(r"\d", tag), image
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COLLECTOR / source).exists(), f"{name}: {source} missing"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} not loopback"
    for name, secret in COMPOSE["secrets"].items():
        default = re.fullmatch(r"\$\{[A-Z_]+:-(.+)\}", secret["file"])
        assert default, f"secret {name} must come from a *_FILE variable"
        assert (COLLECTOR / default.group(1)).is_file()
    assert {
        "otel-collector",
        "prometheus",
        "alertmanager",
        "loki",
        "elasticsearch",
        "jaeger",
        "grafana",
        "mlotel-demo",
    } <= set(COMPOSE["services"])
    major = {
        "prometheus": "v3.",
        "loki": "3.",
        "elasticsearch": "8.",
        "jaeger": "2.",
    }
    for service, prefix in major.items():
        assert COMPOSE["services"][service]["image"].split(":")[-1].startswith(prefix)


# --- Grafana -------------------------------------------------------------------------


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_with_unique_panel_ids_and_variables(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    panels = dashboard_panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"model", "version"} <= variables
    for panel in panels:
        assert {"type", "title", "gridPos"} <= set(panel)
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            for used in re.findall(r"\$(\w+)", target["expr"]):
                assert used in variables or used.startswith("__"), used
            if "ml_model_name" not in target["expr"] and "mlotel_" not in target["expr"]:
                pytest.fail(f"{panel['title']}: query not filtered by model")
    titles = " | ".join(p["title"].lower() for p in panels)
    for needed in (
        "prediction rate",
        "error ratio",
        "latency",
        "batch size",
        "score",
        "class shares",
        "feature drift",
        "dataset drift",
        "data-quality",
        "performance",
        "internal errors",
    ):
        assert needed in titles, needed


def test_grafana_provisioning_links_exemplars_and_logs_to_jaeger() -> None:
    provisioning = COLLECTOR / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "datasources.yaml").read_text())
    by_uid = {d["uid"]: d for d in datasources["datasources"]}
    assert {"prometheus", "loki", "elasticsearch", "jaeger"} <= set(by_uid)
    services = COMPOSE["services"]
    for source in by_uid.values():
        host, port = _host_port(source["url"])
        assert port in _container_ports(services[host]["image"]), source["url"]
    exemplar = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]
    assert exemplar["datasourceUid"] == "jaeger"
    # The exemplar label both paths produce: mlotel's OpenMetrics exposition and
    # Prometheus's OTLP translator (tests/integration/test_exemplars.py checks the first).
    assert exemplar["name"] == "trace_id"
    # ... and the latency panel asks for them, so "open an exemplar trace" has a dot to click.
    board = COLLECTOR / "grafana" / "dashboards" / "ml-model-monitoring.json"
    dashboard = json.loads(board.read_text())
    latency = [
        target
        for panel in dashboard["panels"]
        if panel.get("title", "").startswith("Latency")
        for target in panel.get("targets", [])
    ]
    assert any(t.get("exemplar") is True for t in latency)
    derived = by_uid["loki"]["jsonData"]["derivedFields"][0]
    assert derived["datasourceUid"] == "jaeger" and derived["matcherRegex"] == "trace_id"
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yaml").read_text())
    path = providers["providers"][0]["options"]["path"]
    assert any(v.endswith(f":{path}:ro") for v in services["grafana"]["volumes"])


# --- names: every metric and label of rules and dashboards is semconv's ---------------


def _semconv_series() -> set[str]:
    names = set()
    for instrument in semconv.INSTRUMENTS:
        base = instrument.prometheus_name
        if instrument.kind == "histogram":
            names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
        else:
            names.add(base)
    return names


def _semconv_labels() -> set[str]:
    return {
        getattr(semconv, name).replace(".", "_")
        for name in semconv.__all__
        if name.startswith("ATTR_")
    }


def _rule_documents() -> dict[str, dict[str, Any]]:
    return {
        p.name: yaml.safe_load(p.read_text())
        for p in sorted(PROMETHEUS_DIR.glob("*.yml"))
        if p.name != "prometheus.yml"
    }


def _all_exprs() -> list[tuple[str, str]]:
    exprs = [
        (f"{name}:{rule.get('alert') or rule.get('record')}", str(rule["expr"]))
        for name, document in _rule_documents().items()
        for group in document["groups"]
        for rule in group["rules"]
    ]
    exprs += [(f"{f}:{title}", expr) for f, title, expr in dashboard_queries()]
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] == "query":
                exprs.append((f"{path.name}:${variable['name']}", variable["definition"]))
    return exprs


def test_every_metric_and_label_in_rules_and_dashboards_is_a_semconv_name() -> None:
    known_series = _semconv_series()
    recorded = {
        rule["record"]
        for document in _rule_documents().values()
        for group in document["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    known_labels = _semconv_labels() | PROMETHEUS_LABELS
    seen_metrics: set[str] = set()
    for where, expr in _all_exprs():
        metrics, labels = split_names(expr)
        assert metrics, f"{where}: no metric found in {expr!r}"
        for metric in metrics:
            if ":" in metric:
                assert metric in recorded, f"{where}: {metric} is not a recording rule"
                continue
            seen_metrics.add(metric)
            assert metric in known_series, (
                f"{where}: {metric} is not a Prometheus name of any semconv instrument"
            )
        for label in labels:
            assert label in known_labels or label == "error_type", (
                f"{where}: label {label} is not a semconv attribute"
            )
    # The core names are used; a semconv rename breaks this test.
    for instrument in semconv.INSTRUMENTS:
        assert any(m.startswith(instrument.prometheus_name) for m in seen_metrics), instrument
    assert semconv.ATTR_ERROR_TYPE.replace(".", "_") == "error_type"


def test_name_extraction_sees_metrics_and_labels() -> None:
    metrics, labels = split_names(
        "sum by (ml_model_name, le) (rate(ml_inference_duration_seconds_bucket"
        '{ml_model_version=~"$version", error_type!=""}[5m])) / on (job) group_left '
        "ml_model:inference_calls:rate5m"
    )
    assert metrics == {"ml_inference_duration_seconds_bucket", "ml_model:inference_calls:rate5m"}
    assert labels == {"ml_model_name", "le", "ml_model_version", "error_type", "job"}


# --- Prometheus and Alertmanager tools ---------------------------------------------------


def test_promtool_checks_config_and_rules() -> None:
    promtool = _tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The config's rule_files globs load every rule file of the folder.
    rule_files = sorted(p for p in PROMETHEUS_DIR.glob("*.yml") if p.name != "prometheus.yml")
    for path in rule_files:
        assert path.name in checked.stdout, f"{path.name} not loaded by prometheus.yml"
    rules = subprocess.run(
        [promtool, "check", "rules", *map(str, rule_files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_promtool_unit_tests_pass_and_cover_every_alert_both_ways() -> None:
    promtool = _tool("promtool")
    test_files = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert test_files
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, test_files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(test_files)
    firing: set[str] = set()
    quiet: set[str] = set()
    tested_files: set[str] = set()
    for path in test_files:
        document = yaml.safe_load(path.read_text())
        tested_files |= {Path(f).name for f in document["rule_files"]}
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = {
        rule["alert"]
        for document in _rule_documents().values()
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert alerts - firing == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested not firing"
    assert set(_rule_documents()) <= tested_files, "rule files without promtool tests"


def test_alerts_name_model_and_version_with_severity() -> None:
    alerts = [
        rule
        for group in _rule_documents()["alerts.yml"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    names = {rule["alert"] for rule in alerts}
    assert {
        "HighPredictionErrorRate",
        "HighPredictionLatency",
        "ModelAccuracyDegraded",
        "DataDriftDetected",
        "NoPredictions",
        "PredictionDrift",
        "DataQualityDegraded",
        "MlotelTelemetryErrors",
    } <= names
    for rule in alerts:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["for"], rule["alert"]
        for field in ("summary", "description"):
            text = rule["annotations"][field]
            if rule["alert"] == "MlotelTelemetryErrors":  # no model labels on mlotel's own faults
                assert "$labels.job" in text and "$labels.instance" in text
            else:
                assert "$labels.ml_model_name" in text and "$labels.ml_model_version" in text


def test_amtool_checks_alertmanager_config_and_routes() -> None:
    amtool = _tool("amtool")
    config = COLLECTOR / "alertmanager" / "alertmanager.yml"
    checked = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def route(*labels: str) -> str:
        result = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={config}", *labels],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout.strip()

    assert route("alertname=HighPredictionErrorRate", "severity=critical") == "pager"
    assert route("alertname=NoPredictions", "severity=warning") == "chat"
    assert route("alertname=DataDriftDetected", "severity=warning") == "retraining,chat"
    text = config.read_text()
    assert not re.search(r"(routing_key|api_url|service_key|credentials)\s*:", text)


def test_stack_workflow_queries_are_the_documented_ones() -> None:
    workflow = (ROOT / ".github" / "workflows" / "stack.yml").read_text()
    ran = [
        line.strip().removesuffix(" && exit 0")
        for line in workflow.splitlines()
        if line.strip().startswith("curl ")
    ]
    docs = (ROOT / "docs" / "operations.md").read_text()
    block = docs.split("## Checking the stack", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    documented = [line.strip() for line in block.splitlines() if line.strip()]
    assert ran == documented
    for service in ("9090", "3100", "9200", "16686"):
        assert any(f"127.0.0.1:{service}/" in q for q in ran), service
    for config in ("otelcol-config.yaml", "otelcol-gateway.yaml"):
        assert f"validate --config=/cfg/{config}" in workflow, config


# --- config value types against the pinned release (issue 13, item 15) -----------------
# OFFLINE CHECK: otelcol-contrib does not run here. tests/support/collector_schema.py holds
# the Go types of every key, read from the component sources it names.


@pytest.mark.parametrize("path", OTELCOL_CONFIGS, ids=lambda p: p.name)
def test_collector_config_keys_and_value_types_match_the_pinned_structs(path: Path) -> None:
    problems = config_problems(yaml.safe_load(path.read_text()))
    assert problems == [], "\n".join(problems)


def test_type_table_refuses_what_strict_decoding_refuses() -> None:
    def problems(value: Any, component: str, kind: str = "exporters") -> list[str]:
        return config_problems({kind: {component: value}, "service": {}})

    balancer = {"resolver": {"dns": {"hostname": "backend", "port": 4317}}}
    assert "is not a string" in problems(balancer, "load_balancing")[0]
    balancer["resolver"]["dns"]["port"] = "4317"
    assert problems(balancer, "load_balancing") == []
    # an env reference fills a string field with its text, whatever it looks like
    balancer["resolver"]["dns"]["port"] = "${env:BACKEND_PORT:-4317}"
    assert problems(balancer, "load_balancing") == []
    assert problems({"check_interval": 1}, "memory_limiter", "processors")  # ns, not 1 s
    negative = {"check_interval": "1s", "limit_percentage": -5}
    assert problems(negative, "memory_limiter", "processors")
    assert problems({"tls": {"insecure": "true"}}, "otlp_grpc/x")  # a quoted YAML string
    assert problems({"tls": {"insecure": "${env:X:-true}"}}, "otlp_grpc/x") == []
    assert problems({"tls": {"insecure": "${env:X:-maybe}"}}, "otlp_grpc/x")
    assert problems({"tls": {"enabled": True}}, "otlp_grpc/x")  # client TLS is not optional
    assert problems({"sending_queue": {"sizer": "rows"}}, "otlp_http/x")
    assert problems({"endpont": "x:4317"}, "otlp_grpc/x")  # unknown keys are refused
    assert problems({"mapping": {"mode": "otel"}}, "elasticsearch")
    assert check_value(["a", 1], ["x"], "p")  # lists are checked item by item


# --- the gateway and the backend tier it dials (issue 13, item 16) -------------------------

GATEWAY = COLLECTOR / "otelcol-gateway.yaml"
BACKEND = COLLECTOR / "otelcol-config.yaml"
# What docs/operations.md ("Fleets: the gateway variant") tells the backend tier to set.
BACKEND_TIER_ENV = {
    "OTELCOL_TLS_ENABLED": "true",
    "OTELCOL_TLS_CERT_FILE": "/etc/otelcol/tls/tls.crt",
    "OTELCOL_TLS_KEY_FILE": "/etc/otelcol/tls/tls.key",
}


def _env_names(text: str, required_only: bool = False) -> set[str]:
    return {
        name
        for name, default in re.findall(r"\$\{env:([A-Z_]+)(:-[^}]*)?\}", text)
        if not (required_only and default)
    }


def test_gateway_dials_the_backend_with_the_tls_its_receivers_serve() -> None:
    gateway = yaml.safe_load(GATEWAY.read_text())
    exporters = gateway["exporters"]
    balancer = exporters["load_balancing"]
    metrics_exporter = exporters["otlp_grpc/backend"]
    metrics_endpoint = expand_env(metrics_exporter["endpoint"], {"OTELCOL_BACKEND_HOSTNAME": "b"})
    dials = {
        "load_balancing": (
            balancer["protocol"]["otlp"]["tls"],
            int(balancer["resolver"]["dns"]["port"]),
        ),
        "otlp_grpc/backend": (metrics_exporter["tls"], _host_port(metrics_endpoint)[1]),
    }
    backend = yaml.safe_load(BACKEND.read_text())
    served = expand_env(backend, BACKEND_TIER_ENV)["receivers"]["otlp"]["protocols"]
    for name, (tls, port) in dials.items():
        # TLS on (not insecure), verified against the gateway's CA for the backend tier
        assert not tls.get("insecure", False), name
        assert tls["ca_file"] == "${env:OTELCOL_TLS_CA_FILE}", name
        # gRPC to the backend's gRPC receiver port
        assert port == int(served["grpc"]["endpoint"].rsplit(":", 1)[1]), name
    # pod IPs from DNS: the certificate is checked against the Service name
    assert balancer["protocol"]["otlp"]["tls"]["server_name_override"] == (
        "${env:OTELCOL_BACKEND_HOSTNAME}"
    )
    # Under the backend tier's documented variables both receivers serve TLS with a cert.
    for protocol in ("grpc", "http"):
        tls = served[protocol]["tls"]
        assert tls["enabled"] is True, protocol
        assert tls["cert_file"] and tls["key_file"], protocol
    # Without them (the compose stack) the same file serves plain text, as the demo expects.
    plain = expand_env(backend, {})["receivers"]["otlp"]["protocols"]
    assert all(plain[p]["tls"]["enabled"] is False for p in ("grpc", "http"))
    demo = COMPOSE["services"]["mlotel-demo"]["environment"]
    assert demo["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://")


def test_gateway_and_backend_tier_variables_are_documented() -> None:
    docs = (ROOT / "docs" / "operations.md").read_text()
    fleet = docs.split("**Fleets: the gateway variant.**", 1)[1].split("## Dashboard", 1)[0]
    readme = (COLLECTOR / "README.md").read_text()
    required = _env_names(GATEWAY.read_text(), required_only=True)
    assert {"OTELCOL_BACKEND_HOSTNAME", "OTELCOL_TLS_CA_FILE"} <= required
    for name in required | set(BACKEND_TIER_ENV):
        assert f"`{name}" in fleet, f"{name} missing in docs/operations.md (Fleets)"
        assert f"`{name}" in readme, f"{name} missing in collector/README.md"
    assert "OTELCOL_TLS_ENABLED=true" in fleet and "OTELCOL_TLS_ENABLED=true" in readme
    assert set(BACKEND_TIER_ENV) <= _env_names(BACKEND.read_text())


# --- compose healthchecks (issue 13, item 17) ------------------------------------------------
# OFFLINE CHECK: Docker does not run here. What each image contains was read from its
# build files or its vendor's documentation at the pinned tag:
# - prom/prometheus:v3.14.0: prometheus/prometheus Dockerfile at v3.14.0, FROM
#   quay.io/prometheus/busybox (the default "busybox" variant; distroless images carry
#   a -distroless tag suffix, CHANGELOG 3.x): busybox sh and wget.
# - prom/alertmanager:v0.33.1: prometheus/alertmanager Dockerfile at v0.33.1, FROM
#   quay.io/prometheus/busybox: sh and wget.
# - grafana/grafana:13.2.0: Grafana's "Configure a Grafana Docker image" docs: images are
#   built on Alpine by default (the Ubuntu variant has an -ubuntu suffix): busybox wget.
# - docker.elastic.co/elasticsearch/elasticsearch:8.19.14: Elastic's Docker install docs
#   use curl inside the Elasticsearch container for its compose healthcheck.
# - python:3.12-slim: python.
IMAGE_CLIENTS = {
    "prom/prometheus": {"wget", "sh"},
    "prom/alertmanager": {"wget", "sh"},
    "grafana/grafana": {"wget", "sh"},
    "docker.elastic.co/elasticsearch/elasticsearch": {"curl", "sh", "bash"},
    "python": {"python", "sh"},
}
NEEDS_HEALTHCHECK = ("prometheus", "alertmanager", "grafana", "elasticsearch", "retraining-webhook")


def _compose_seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)", value)
    assert match, value
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]


@pytest.mark.parametrize("name", NEEDS_HEALTHCHECK)
def test_compose_healthcheck_runs_a_client_the_image_has(name: str) -> None:
    service = COMPOSE["services"][name]
    image, tag = service["image"].rsplit(":", 1)
    assert "distroless" not in tag, "a distroless image has no shell or client"
    check = service.get("healthcheck")
    assert check, f"{name}: no healthcheck, so `docker compose up --wait` does not wait for it"
    test = check["test"]
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), test
    program = test[1] if test[0] == "CMD" else "sh"
    assert program in IMAGE_CLIENTS[image], f"{name}: {program} is not in {image}"
    if program in ("wget", "curl"):
        url = test[-1]
        match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/\S*)", url)
        assert match, url
        assert int(match.group(1)) in _container_ports(service["image"]), url
        # fail on HTTP errors: busybox wget exits non-zero on them; curl needs -f
        if program == "curl":
            assert any(flag.startswith("-") and "f" in flag for flag in test[2:-1]), test
        # a bounded probe: the client times out before Docker's own timeout
        flag = "-T" if program == "wget" else "-m"
        assert int(test[test.index(flag) + 1]) < _compose_seconds(check["timeout"]), test
    assert int(check["retries"]) >= 1 and _compose_seconds(check["interval"]) > 0


def test_stack_waits_for_the_healthchecks() -> None:
    workflow = (ROOT / ".github" / "workflows" / "stack.yml").read_text()
    assert re.search(r"docker compose -f collector/docker-compose.yaml up .*--wait", workflow)
    ready_paths = {
        "prometheus": "/-/ready",
        "alertmanager": "/-/ready",
        "grafana": "/api/health",
        "elasticsearch": "/_cluster/health",
    }
    for name, path in ready_paths.items():
        assert path in COMPOSE["services"][name]["healthcheck"]["test"][-1], name


# --- Grafana on Elasticsearch, and the scrub rule (issue 13, item 18) --------------------------


def _any_value(value: dict[str, Any]) -> Any:
    """An OTLP/JSON AnyValue as a plain value."""
    if "kvlistValue" in value:
        return {kv["key"]: _any_value(kv["value"]) for kv in value["kvlistValue"].get("values", [])}
    if "arrayValue" in value:
        return [_any_value(v) for v in value["arrayValue"].get("values", [])]
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    return None


def _elasticsearch_otel_document(
    record: dict[str, Any], resource: dict[str, Any]
) -> dict[str, Any]:
    """MODEL of the contrib elasticsearch exporter's OTel mapping for one log record
    (exporter/elasticsearchexporter/internal/serializer/otelserializer/logs.go):
    a map body goes under body.structured, any other body under body.text; EventName
    becomes event_name; attributes stay under attributes with their dotted keys."""
    body = _any_value(record["body"]) if "body" in record else None
    document: dict[str, Any] = {
        "@timestamp": "2030-01-01T00:00:00.000000000Z",
        "severity_text": record.get("severityText"),
        "trace_id": record.get("traceId"),
        "span_id": record.get("spanId"),
        "attributes": {a["key"]: _any_value(a["value"]) for a in record.get("attributes", [])},
        "resource": {
            "attributes": {a["key"]: _any_value(a["value"]) for a in resource["attributes"]}
        },
    }
    if record.get("eventName"):
        document["event_name"] = record["eventName"]
    if body is not None:
        document["body"] = {"structured" if isinstance(body, (dict, list)) else "text": body}
    return document


def _grafana_flatten(source: dict[str, Any]) -> dict[str, Any]:
    """MODEL of Grafana's Elasticsearch datasource `flatten` of `_source`: nested objects
    become dot-joined keys, so an object-valued field is never a line of its own."""
    flat: dict[str, Any] = {}

    def step(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict) and value:
                step(value, name)
            else:
                flat[name] = value

    step(source, "")
    return flat


def test_grafana_elasticsearch_line_and_level_fields_are_strings_of_every_mlotel_record(
    tmp_path: Path,
) -> None:
    import numpy as np

    import mlotel

    out = tmp_path / "telemetry"
    mlotel.configure(
        exporter="embedded",
        prometheus=False,
        output_dir=str(out),
        set_global=False,
        payload_sample_rate=1.0,  # the successful call's record is checked too
    )
    predict = mlotel.instrument(lambda rows: np.array([1] * len(rows)), model_name="churn")
    predict(np.array([[0.5, 2.0], [1.5, 3.0]]))

    def failing(rows: Any) -> Any:
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        mlotel.instrument(failing, model_name="churn")(np.array([[1.0, 2.0]]))
    assert mlotel.shutdown()
    documents = []
    for resource, record in file_log_records(out, "logs.jsonl"):
        source = _elasticsearch_otel_document(record, resource)
        documents.append(_grafana_flatten(source))
    assert len(documents) == 2
    provisioning = COLLECTOR / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
    datasources = yaml.safe_load(provisioning.read_text())["datasources"]
    settings = next(d for d in datasources if d["type"] == "elasticsearch")["jsonData"]
    for document in documents:
        line = document.get(settings["logMessageField"])
        assert isinstance(line, str) and line, (settings["logMessageField"], sorted(document))
        assert document[settings["logLevelField"]] in ("INFO", "ERROR")
        for link in settings["dataLinks"]:
            assert isinstance(document.get(link["field"]), str), link
        # the payload is there to see, as fields of the line
        assert "body.structured.ml.features.f0" in document
    assert {d[settings["logLevelField"]] for d in documents} == {"INFO", "ERROR"}


SCRUB_REGEXES = [
    "^(email|ssn|phone)$",
    r"^user\.(ssn|e-mail)$",
    r"\bssn\b",
    r"^[\d]{3}-\d+$",
    '^"quoted"$',
    r"a\\b",  # a literal backslash
    "(?i)^pass(word)?$|^tok.*",
    "^pässe$",
]
_OTTL_STRING = re.compile(r'"(?:\\.|[^\\"])*"')  # OTTL's lexer rule for a String token
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _go_unquote(literal: str) -> str:
    """MODEL of Go's strconv.Unquote for a double-quoted literal (OTTL unquotes its string
    tokens with it: participle.Unquote("String") in pkg/ottl's parser)."""
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char in '"\n':
            raise ValueError(f"{char!r} inside a string")
        if char != "\\":
            out.append(char)
            i += 1
            continue
        escape = body[i + 1] if i + 1 < len(body) else ""
        if escape in _GO_ESCAPES:
            out.append(_GO_ESCAPES[escape])
            i += 2
        elif escape in ('"', "\\"):
            out.append(escape)
            i += 2
        elif escape in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[escape]
            digits = body[i + 2 : i + 2 + width]
            if not re.fullmatch(rf"[0-9a-fA-F]{{{width}}}", digits):
                raise ValueError(f"bad \\{escape} escape")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 4
        else:
            raise ValueError(f"invalid escape \\{escape}")
    return "".join(out)


def _ottl_after_expansion(statement: str, value: str) -> tuple[str, list[str]]:
    """(statement with every string literal blanked, the literals unquoted) once the
    collector has pasted ``value`` in for MLOTEL_SCRUB_FEATURES."""
    pasted = re.sub(r"\$\{env:MLOTEL_SCRUB_FEATURES(:-[^}]*)?\}", lambda _: value, statement)
    literals = [_go_unquote(m.group(0)) for m in _OTTL_STRING.finditer(pasted)]
    return _OTTL_STRING.sub('""', pasted), literals


def _scrub_statements() -> list[str]:
    statements = []
    for path in (BACKEND, GATEWAY):
        processor = yaml.safe_load(path.read_text())["processors"]["transform/scrub_features"]
        for group in processor["log_statements"]:
            statements += [s for s in group["statements"] if "MLOTEL_SCRUB_FEATURES" in s]
    assert len(statements) == 4
    return statements


def _documented_converter() -> str:
    docs = (ROOT / "docs" / "operations.md").read_text()
    section = docs.split("**Payload scrubbing.**", 1)[1].split("**Batching**", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0].strip()
    assert block.startswith("export MLOTEL_SCRUB_FEATURES="), block
    return block


@pytest.mark.parametrize("regex", SCRUB_REGEXES)
def test_documented_scrub_converter_gives_ottl_the_regex_back(regex: str) -> None:
    command = _documented_converter()
    example = re.search(r"'([^']*)'\)\"$", command)
    assert example, command
    # Run the documented line as printed, with this regex in place of the example one.
    quoted = regex.replace("'", "'\\''")
    script = command[: example.start(1)] + quoted + command[example.end(1) :]
    result = subprocess.run(
        ["bash", "-c", script + '\nprintf %s "$MLOTEL_SCRUB_FEATURES"'],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    value = result.stdout
    for statement in _scrub_statements():
        skeleton, literals = _ottl_after_expansion(statement, value)
        default_skeleton, _ = _ottl_after_expansion(statement, "a^")
        assert skeleton == default_skeleton  # the statement's structure is untouched
        assert literals[1] == regex  # delete_matching_keys' pattern: the regex itself


def test_unescaped_scrub_values_break_or_change_the_ottl_statement() -> None:
    statement = _scrub_statements()[0]
    with pytest.raises(ValueError, match="invalid escape"):  # the collector would not start
        _ottl_after_expansion(statement, r"^user\.ssn$")
    assert _ottl_after_expansion(statement, r"\bssn\b")[1][1] == "\bssn\b"  # backspaces
    skeleton, _ = _ottl_after_expansion(statement, '^"x"$')
    assert skeleton != _ottl_after_expansion(statement, "a^")[0]  # the string ends early
