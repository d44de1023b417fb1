"""Local sinks of the embedded default: OTLP-JSON lines files a person (or jq) can read.

Each line is one OTLP/JSON export request (``ExportTraceServiceRequest`` or
``ExportLogsServiceRequest``) as the OTLP spec encodes it: lowerCamelCase
fields, hex trace/span ids, integer enums. The collector's ``otlpjsonfile``
receiver can replay these files later. Files rotate at ``max_bytes`` keeping
one ``.1`` backup, so disk use is bounded at twice the cap.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ._otel_logs import LogExporter, LogExportResult

__all__ = ["JsonLinesFile", "JsonLinesLogExporter", "JsonLinesSpanExporter", "otlp_json"]

_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex() if key in _ID_FIELDS else _hex_ids(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def otlp_json(message: Any) -> str:
    """One OTLP/JSON line for a protobuf export request."""
    as_dict = MessageToDict(message, use_integers_for_enums=True)
    return json.dumps(_hex_ids(as_dict), separators=(",", ":"))


class JsonLinesFile:
    """An append-only file that rotates to ``<name>.1`` when it would pass ``max_bytes``."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(data) > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            with open(self.path, "ab") as handle:
                handle.write(data)


class JsonLinesSpanExporter(SpanExporter):
    """Writes spans as OTLP/JSON lines (``traces.jsonl``)."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int) -> None:
        self.file = JsonLinesFile(path, max_bytes)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self.file.write(otlp_json(encode_spans(spans)))
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


class JsonLinesLogExporter(LogExporter):  # type: ignore[misc]
    """Writes log records as OTLP/JSON lines (``logs.jsonl``)."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int) -> None:
        self.file = JsonLinesFile(path, max_bytes)

    def export(self, batch: Sequence[Any]) -> Any:
        try:
            self.file.write(otlp_json(encode_logs(batch)))
        except OSError:
            return LogExportResult.FAILURE
        return LogExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
