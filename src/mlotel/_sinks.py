"""Local sinks of the embedded default: OTLP-JSON lines files a person (or jq) can read.

Each line is one OTLP/JSON export request (``ExportTraceServiceRequest`` or
``ExportLogsServiceRequest``) as the OTLP spec encodes it: lowerCamelCase
fields, hex trace/span ids, integer enums. The collector's ``otlpjsonfile``
receiver can replay these files later. Files rotate at ``max_bytes`` keeping
one ``.1`` backup, so disk use is bounded at twice the cap.

The files hold feature payloads: they are private to the process's user whatever the
umask (files 0600; directories the sink creates 0700). A write that fails (a missing
permission, a full disk) drops that batch, returns a failure result to the SDK's
processor, and is counted in ``mlotel.internal.errors{mlotel.component="sink.files"}``
and logged once, naming the file and the setting to change.
"""

from __future__ import annotations

import base64
import json
import os
import stat
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
from ._self_telemetry import tally

__all__ = [
    "FILE_MODE",
    "DIRECTORY_MODE",
    "SINK_COMPONENT",
    "JsonLinesFile",
    "JsonLinesLogExporter",
    "JsonLinesSpanExporter",
    "otlp_json",
]

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
SINK_COMPONENT = "sink.files"

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


def _make_private_directories(directory: Path) -> None:
    """Create ``directory`` and its missing parents with mode 0700 (umask notwithstanding).

    A directory that already exists is left as it is: it may be the user's own.
    """
    missing = []
    for candidate in (directory, *directory.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            candidate.mkdir(mode=DIRECTORY_MODE)
        except FileExistsError:  # created meanwhile by another thread or process
            continue
        os.chmod(candidate, DIRECTORY_MODE)  # mkdir's mode is masked by the umask


class JsonLinesFile:
    """An append-only file that rotates to ``<name>.1`` when it would pass ``max_bytes``.

    The file (and its rotated copy) has mode 0600 whatever the umask:

    >>> import os, stat, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     sink = JsonLinesFile(os.path.join(folder, "new", "x.jsonl"), max_bytes=1024)
    ...     sink.write("{}")
    ...     [oct(stat.S_IMODE(os.stat(p).st_mode)) for p in (sink.path, sink.path.parent)]
    ['0o600', '0o700']
    """

    def __init__(self, path: str | os.PathLike[str], max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        with self._lock:
            _make_private_directories(self.path.parent)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(data) > self.max_bytes:
                rotated = self.path.with_name(self.path.name + ".1")
                os.replace(self.path, rotated)
                os.chmod(rotated, FILE_MODE)  # a file an older version left 0644
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            with open(descriptor, "ab") as handle:
                # The umask can only narrow 0600 at creation, but an existing file keeps
                # its mode (e.g. 0644 from an older version): set it exactly.
                if stat.S_IMODE(os.fstat(descriptor).st_mode) != FILE_MODE:
                    os.chmod(descriptor if os.chmod in os.supports_fd else self.path, FILE_MODE)
                handle.write(data)

    def count_failure(self, exc: BaseException) -> None:
        """Count a batch that could not be written; the first one is logged with the fix."""
        if isinstance(exc, OSError):
            reason = exc.strerror or repr(exc)
            fix = "set output_dir (MLOTEL_OUTPUT_DIR) to a writable directory"
        else:
            reason, fix = repr(exc), "please report this as a bug"
        described = OSError(
            f"cannot write telemetry file {self.path} ({reason}): spans and logs that "
            f"cannot be written are dropped and counted in mlotel.internal.errors"
            f'{{mlotel.component="{SINK_COMPONENT}"}}; {fix}'
        )
        described.__cause__ = exc
        tally.error(SINK_COMPONENT, described)


class JsonLinesSpanExporter(SpanExporter):
    """Writes spans as OTLP/JSON lines (``traces.jsonl``)."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int) -> None:
        self.file = JsonLinesFile(path, max_bytes)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self.file.write(otlp_json(encode_spans(spans)))
        except Exception as exc:  # fail open: counted, never raised into the SDK's thread
            self.file.count_failure(exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


class JsonLinesLogExporter(LogExporter):  # type: ignore[misc]
    """Writes log records as OTLP/JSON lines (``logs.jsonl``)."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int) -> None:
        self.file = JsonLinesFile(path, max_bytes)

    def export(self, batch: Sequence[Any]) -> Any:
        try:
            self.file.write(otlp_json(encode_logs(batch)))
        except Exception as exc:  # fail open: counted, never raised into the SDK's thread
            self.file.count_failure(exc)
            return LogExportResult.FAILURE
        return LogExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
