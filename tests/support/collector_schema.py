"""Value types of every collector config key mlotel's configs use, at otelcol-contrib 0.159.0.

OFFLINE CHECK: otelcol-contrib cannot run on the test machines, so this table stands in
for the collector's own decoder. The collector decodes a config with mapstructure and
``WeaklyTypedInput: false`` (core ``confmap/internal/decoder.go`` at v0.159.0): a YAML
int where the Go struct has a ``string`` (``load_balancing.resolver.dns.port: 4317``)
stops it at start-up, and so does an unknown key (``ErrorUnused``). Its hooks decode
``time.Duration`` from strings, ``[]string`` from a list (or a comma-separated
string), ``encoding.TextUnmarshaler`` types (sizers, levels, error modes) from strings.
``${env:NAME:-default}`` as a whole value is parsed as YAML when it is expanded, but a
``string`` field receives the original text (``useExpandValue`` in the same file).
Since v0.159.0 every ``configoptional.Optional`` section (``sending_queue``,
``sending_queue.batch``, the receivers' protocols and server ``tls``) also takes a bool
``enabled`` (``config/configoptional/optional.go``; gate removed in v0.159.0).

Where the types come from (Go struct types; ``config.schema.yaml`` files are generated
from the structs by the collector's schemagen):

core, open-telemetry/opentelemetry-collector, tag v0.159.0:
  receiver/otlpreceiver/config.schema.yaml, config/configgrpc/config.schema.yaml,
  config/confighttp/config.schema.yaml, config/confignet/config.schema.yaml,
  config/configtls/config.schema.yaml, config/configretry/config.schema.yaml,
  exporter/otlpexporter/config.schema.yaml, exporter/otlphttpexporter/config.schema.yaml,
  exporter/exporterhelper/internal/queuebatch/config.schema.yaml (+ request/sizer.go),
  exporter/exporterhelper/internal/timeout_sender.go, exporter/debugexporter/config.go,
  config/configtelemetry/configtelemetry.go (Level.UnmarshalText: a string, although the
  generated schema says int32), internal/memorylimiter/config.schema.yaml,
  service/telemetry/otelconftelemetry/internal/migration/v0.3.0.go and its testdata
  v0.3.0_metrics_prom_explicit.yaml (prometheus reader: host string, port int).
contrib, open-telemetry/opentelemetry-collector-contrib (stored copies of the newest
config.schema.yaml / config.go, not checked out at the v0.159.0 tag: the repository is
too large to fetch here; the fields used below have had these types for many releases):
  exporter/loadbalancingexporter/config.schema.yaml (dns_resolver.port: string),
  exporter/elasticsearchexporter/config.schema.yaml (mapping.mode: "Deprecated:
  [v0.145.0] Mode is ignored. The default mapping mode is otel"),
  processor/transformprocessor/config.schema.yaml and internal/common/config.schema.yaml,
  pkg/ottl/config.schema.yaml (error_mode: string),
  processor/resourceprocessor/config.schema.yaml and
  internal/coreinternal/attraction/config.schema.yaml (value: any),
  extension/healthcheckextension/config.schema.yaml and internal/healthcheck/config.go
  (legacy config squashes confighttp.ServerConfig: endpoint string, path string).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = [
    "COMPONENT_SCHEMAS",
    "SERVICE_SCHEMA",
    "Deprecated",
    "MapOf",
    "check_value",
    "config_problems",
    "expand_env",
]


@dataclass(frozen=True)
class Leaf:
    """A scalar Go type and the YAML values its decoder accepts."""

    name: str
    accepts: Callable[[Any], bool]
    is_string: bool = False


@dataclass(frozen=True)
class Deprecated:
    """A key the pinned release still parses but ignores: never write it."""

    why: str


@dataclass(frozen=True)
class MapOf:
    """A map with free keys (pipeline ids) and one schema for every value."""

    values: Any


_DURATION_PART = r"(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)"
_DURATION = re.compile(rf"0|-?{_DURATION_PART}({_DURATION_PART})*")  # time.ParseDuration


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


STR = Leaf("string", lambda v: isinstance(v, str), is_string=True)
INT = Leaf("int", _is_int)
UINT = Leaf("uint32", lambda v: _is_int(v) and v >= 0)
FLOAT = Leaf("float64", lambda v: _is_int(v) or isinstance(v, float))
BOOL = Leaf("bool", lambda v: isinstance(v, bool))
# time.Duration: mapstructure would take an int as nanoseconds; a unit-less number in a
# config is always a mistake, so only Go duration strings pass.
DURATION = Leaf("time.Duration", lambda v: isinstance(v, str) and bool(_DURATION.fullmatch(v)))
STR_LIST = Leaf(
    "[]string",
    lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v)),
)
ANY = Leaf("any", lambda v: True)


def enum(name: str, *values: str, case_insensitive: bool = False) -> Leaf:
    """A string TextUnmarshaler that knows only ``values``."""

    def accepts(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        return (value.lower() if case_insensitive else value) in values

    return Leaf(f"{name} {{{', '.join(values)}}}", accepts, is_string=True)


# --- shared parts (core v0.159.0) ---------------------------------------------------

TLS_CLIENT = {  # configtls.ClientConfig (not optional: no `enabled`)
    "insecure": BOOL,
    "insecure_skip_verify": BOOL,
    "server_name_override": STR,
    "ca_file": STR,
    "cert_file": STR,
    "key_file": STR,
    "min_version": STR,
    "max_version": STR,
    "reload_interval": DURATION,
}
TLS_SERVER = {  # configoptional.Optional[configtls.ServerConfig]
    "enabled": BOOL,
    "ca_file": STR,
    "cert_file": STR,
    "key_file": STR,
    "client_ca_file": STR,
    "client_ca_file_reload": BOOL,
    "min_version": STR,
    "max_version": STR,
    "reload_interval": DURATION,
}
SIZER = enum("request.SizerType", "requests", "items", "bytes")
QUEUE = {  # configoptional.Optional[exporterhelper.QueueBatchConfig]
    "enabled": BOOL,
    "wait_for_result": BOOL,
    "sizer": SIZER,
    "queue_size": INT,
    "block_on_overflow": BOOL,
    "storage": STR,
    "num_consumers": INT,
    "batch": {  # configoptional.Optional[queuebatch.BatchConfig]
        "enabled": BOOL,
        "flush_timeout": DURATION,
        "sizer": SIZER,
        "min_size": INT,
        "max_size": INT,
    },
}
RETRY = {  # configretry.BackOffConfig
    "enabled": BOOL,
    "initial_interval": DURATION,
    "max_interval": DURATION,
    "max_elapsed_time": DURATION,
    "multiplier": FLOAT,
    "randomization_factor": FLOAT,
}
OTLP_GRPC_EXPORTER = {  # otlpexporter.Config: TimeoutConfig + configgrpc.ClientConfig
    "timeout": DURATION,
    "sending_queue": QUEUE,
    "retry_on_failure": RETRY,
    "endpoint": STR,
    "authority": STR,
    "balancer_name": STR,
    "compression": STR,
    "wait_for_ready": BOOL,
    "read_buffer_size": INT,
    "write_buffer_size": INT,
    "tls": TLS_CLIENT,
}
OTLP_HTTP_EXPORTER = {  # otlphttpexporter.Config: confighttp.ClientConfig
    "endpoint": STR,
    "traces_endpoint": STR,
    "metrics_endpoint": STR,
    "logs_endpoint": STR,
    "encoding": enum("EncodingType", "proto", "json"),
    "compression": STR,
    "timeout": DURATION,
    "tls": TLS_CLIENT,
    "sending_queue": QUEUE,
    "retry_on_failure": RETRY,
}
GRPC_SERVER = {  # configoptional.Optional[configgrpc.ServerConfig] (+ confignet.AddrConfig)
    "enabled": BOOL,
    "endpoint": STR,
    "transport": STR,
    "tls": TLS_SERVER,
    "max_recv_msg_size_mib": INT,
    "max_concurrent_streams": UINT,
    "include_metadata": BOOL,
}
HTTP_SERVER = {  # configoptional.Optional[otlpreceiver.HTTPConfig] (confighttp.ServerConfig)
    "enabled": BOOL,
    "endpoint": STR,
    "tls": TLS_SERVER,
    "include_metadata": BOOL,
    "max_request_body_size": INT,
    "traces_url_path": STR,
    "metrics_url_path": STR,
    "logs_url_path": STR,
}
TELEMETRY_LEVEL = enum(
    "configtelemetry.Level", "none", "basic", "normal", "detailed", case_insensitive=True
)
ERROR_MODE = enum("ottl.ErrorMode", "ignore", "silent", "propagate")
CONTEXT_STATEMENTS = {  # transformprocessor internal/common.ContextStatements
    "context": STR,
    "statements": STR_LIST,
    "conditions": STR_LIST,
    "error_mode": ERROR_MODE,
}

COMPONENT_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("extensions", "health_check"): {"endpoint": STR, "path": STR},
    ("receivers", "otlp"): {"protocols": {"grpc": GRPC_SERVER, "http": HTTP_SERVER}},
    ("processors", "memory_limiter"): {
        "check_interval": DURATION,
        "limit_mib": UINT,
        "spike_limit_mib": UINT,
        "limit_percentage": UINT,
        "spike_limit_percentage": UINT,
    },
    ("processors", "resource"): {
        "attributes": [
            {
                "key": STR,
                "value": ANY,
                "default_value": ANY,
                "action": enum(
                    "attraction.Action",
                    *("insert", "update", "upsert", "delete", "hash", "extract", "convert"),
                    case_insensitive=True,
                ),
                "from_attribute": STR,
                "from_context": STR,
                "pattern": STR,
                "converted_type": STR,
            }
        ]
    },
    ("processors", "transform"): {
        "error_mode": ERROR_MODE,
        "log_statements": [CONTEXT_STATEMENTS],
        "trace_statements": [CONTEXT_STATEMENTS],
        "metric_statements": [CONTEXT_STATEMENTS],
    },
    ("exporters", "otlp_grpc"): OTLP_GRPC_EXPORTER,
    ("exporters", "otlp_http"): OTLP_HTTP_EXPORTER,
    ("exporters", "debug"): {
        "verbosity": enum("configtelemetry.Level", "basic", "normal", "detailed"),
        "sampling_initial": INT,
        "sampling_thereafter": INT,
        "use_internal_logger": BOOL,
    },
    ("exporters", "elasticsearch"): {
        "endpoints": STR_LIST,
        "cloudid": STR,
        "user": STR,
        "password": STR,  # configopaque.String
        "api_key": STR,  # configopaque.String
        "logs_index": STR,
        "timeout": DURATION,
        "tls": TLS_CLIENT,
        "sending_queue": QUEUE,
        "mapping": {
            "mode": Deprecated("contrib v0.145.0: ignored, `otel` is the default mapping"),
            "allowed_modes": STR_LIST,
        },
    },
    ("exporters", "load_balancing"): {
        "routing_key": enum(
            "routing_key", "traceID", "service", "metric", "resource", "streamID", "attributes"
        ),
        "routing_attributes": STR_LIST,
        "timeout": DURATION,
        "sending_queue": QUEUE,
        "retry_on_failure": RETRY,
        "protocol": {"otlp": OTLP_GRPC_EXPORTER},
        "resolver": {
            "static": {"hostnames": STR_LIST},
            "dns": {"hostname": STR, "port": STR, "interval": DURATION, "timeout": DURATION},
        },
    },
}

SERVICE_SCHEMA: dict[str, Any] = {
    "extensions": STR_LIST,
    "pipelines": MapOf({"receivers": STR_LIST, "processors": STR_LIST, "exporters": STR_LIST}),
    "telemetry": {
        "metrics": {
            "level": TELEMETRY_LEVEL,
            "readers": [{"pull": {"exporter": {"prometheus": {"host": STR, "port": INT}}}}],
        }
    },
}

_ENV_WHOLE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?\}", re.S)
_ENV_ANY = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _check_leaf(value: Any, leaf: Leaf, path: str) -> str | None:
    if isinstance(value, str):
        whole = _ENV_WHOLE.fullmatch(value)
        if whole:
            if leaf.is_string:
                return None  # a string field receives the expanded text as it is
            default = whole.group(2)
            if default is None:
                return None  # set by the deployment: not knowable offline
            parsed = yaml.safe_load(default) if default else None
            if parsed is None or leaf.accepts(parsed):
                return None
            return f"{path}: default {default!r} of {value} is not a {leaf.name}"
        if _ENV_ANY.search(value) and not leaf.is_string:
            return f"{path}: {value!r} expands to a string, the field is a {leaf.name}"
    if leaf.accepts(value):
        return None
    return f"{path}: {value!r} ({type(value).__name__}) is not a {leaf.name}"


def check_value(value: Any, schema: Any, path: str) -> list[str]:
    """Every place where ``value`` does not decode into ``schema``."""
    if isinstance(schema, Deprecated):
        return [f"{path}: deprecated and ignored ({schema.why}): remove it"]
    if isinstance(schema, Leaf):
        problem = _check_leaf(value, schema, path)
        return [problem] if problem else []
    if isinstance(schema, MapOf):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping, got {type(value).__name__}"]
        return [p for k, v in value.items() for p in check_value(v, schema.values, f"{path}.{k}")]
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [p for i, v in enumerate(value) for p in check_value(v, schema[0], f"{path}[{i}]")]
    if value is None:  # an empty section decodes to its defaults
        return []
    if not isinstance(value, dict):
        return [f"{path}: expected a mapping, got {value!r}"]
    problems = []
    for key, sub in value.items():
        if key not in schema:
            problems.append(
                f"{path}.{key}: not in tests/support/collector_schema.py: read its type in the "
                f"component's config struct at the pinned version and add it"
            )
            continue
        problems += check_value(sub, schema[key], f"{path}.{key}")
    return problems


def config_problems(config: dict[str, Any]) -> list[str]:
    """Type problems of a whole collector config (components and service)."""
    problems = []
    for kind in ("receivers", "processors", "exporters", "extensions", "connectors"):
        for component_id, body in (config.get(kind) or {}).items():
            component_type = component_id.split("/", 1)[0]
            schema = COMPONENT_SCHEMAS.get((kind, component_type))
            if schema is None:
                problems.append(f"{kind}.{component_id}: no schema table for {component_type!r}")
                continue
            problems += check_value(body, schema, f"{kind}.{component_id}")
    problems += check_value(config.get("service"), SERVICE_SCHEMA, "service")
    return problems


def expand_env(node: Any, environ: dict[str, str]) -> Any:
    """The config as the collector sees it once ``${env:...}`` is expanded.

    A whole-value reference is parsed as YAML (as confmap does); a reference inside a
    longer string is pasted in as text.
    """
    if isinstance(node, dict):
        return {k: expand_env(v, environ) for k, v in node.items()}
    if isinstance(node, list):
        return [expand_env(v, environ) for v in node]
    if not isinstance(node, str):
        return node

    def text(match: re.Match[str]) -> str:
        return environ.get(match.group(1), match.group(2) or "")

    whole = _ENV_WHOLE.fullmatch(node)
    if whole:
        expanded = text(whole)
        return yaml.safe_load(expanded) if expanded else None
    return _ENV_ANY.sub(text, node)
