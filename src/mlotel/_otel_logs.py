"""Every import of the OpenTelemetry logs API and SDK lives here.

The logs API is still private upstream (``opentelemetry._logs``,
``opentelemetry.sdk._logs``); keeping it in one module makes the next rename a
one-file change.
"""

from __future__ import annotations

from typing import Any

from opentelemetry._logs import (
    Logger,
    LoggerProvider,
    NoOpLoggerProvider,
    get_logger_provider,
    set_logger_provider,
)
from opentelemetry.sdk._logs import LoggerProvider as SDKLoggerProvider
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs import export as _export
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor

# SDK 1.39+ renamed the exporter classes; prefer the new names, fall back to the old ones.
LogExporter: Any = getattr(_export, "LogRecordExporter", None) or _export.LogExporter
LogExportResult: Any = getattr(_export, "LogRecordExportResult", None) or _export.LogExportResult
InMemoryLogExporter: Any = (
    getattr(_export, "InMemoryLogRecordExporter", None) or _export.InMemoryLogExporter
)
ConsoleLogExporter: Any = (
    getattr(_export, "ConsoleLogRecordExporter", None) or _export.ConsoleLogExporter
)

__all__ = [
    "BatchLogRecordProcessor",
    "ConsoleLogExporter",
    "InMemoryLogExporter",
    "LogExportResult",
    "LogExporter",
    "Logger",
    "LoggerProvider",
    "NoOpLoggerProvider",
    "ReadableLogRecord",
    "SDKLoggerProvider",
    "SimpleLogRecordProcessor",
    "get_logger_provider",
    "OTLP_LOG_EXPORTER_MODULES",
    "record_fields",
    "set_logger_provider",
]


OTLP_LOG_EXPORTER_MODULES = (
    "opentelemetry.exporter.otlp.proto.grpc._log_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
)
"""gRPC and HTTP modules of the OTLP log exporter (private upstream, like the logs SDK)."""


def record_fields(record: Any) -> Any:
    """The API-level log record inside an SDK readable record (the SDK nests it)."""
    return getattr(record, "log_record", record)
