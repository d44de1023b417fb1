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
    "otlp_log_exporter",
    "record_fields",
    "set_logger_provider",
]


def otlp_log_exporter(protocol: str, endpoint: str | None) -> Any:
    """The OTLP log exporter for ``protocol`` (``grpc`` or ``http/protobuf``)."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=endpoint) if endpoint else OTLPLogExporter()
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HTTPLogExporter,
    )

    if endpoint:
        return HTTPLogExporter(endpoint=endpoint.rstrip("/") + "/v1/logs")
    return HTTPLogExporter()


def record_fields(record: Any) -> Any:
    """The API-level log record inside an SDK readable record (the SDK nests it)."""
    return getattr(record, "log_record", record)
