"""Reading what mlotel's files sink wrote: ``traces*.jsonl`` and ``logs*.jsonl``, one
OTLP/JSON export request per line. Like :class:`support.otlp_receiver.OTLPReceiver`'s
``spans()``/``logs()``, each item comes with its resource; unlike them, both are the
OTLP/JSON dicts as written (camelCase keys, the resource as ``{"attributes": [...]}``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["file_log_records", "file_spans"]

Item = tuple[dict[str, Any], dict[str, Any]]


def _items(folder: Path, pattern: str, group: str, scope: str, item: str) -> list[Item]:
    found: list[Item] = []
    for path in folder.glob(pattern):
        for line in path.read_text().splitlines():
            for resource_group in json.loads(line)[group]:
                resource = resource_group.get("resource", {})
                for scope_group in resource_group[scope]:
                    found.extend((resource, record) for record in scope_group[item])
    return found


def file_spans(folder: Path, pattern: str = "traces*.jsonl") -> list[Item]:
    """(resource, span) of every span in the files matching ``pattern`` in ``folder``
    (by default the main process's ``traces.jsonl`` and forked workers' ``traces.PID.jsonl``)."""
    return _items(folder, pattern, "resourceSpans", "scopeSpans", "spans")


def file_log_records(folder: Path, pattern: str = "logs*.jsonl") -> list[Item]:
    """(resource, log record) of every record in the files matching ``pattern`` in
    ``folder`` (by default ``logs.jsonl`` and forked workers' ``logs.PID.jsonl``)."""
    return _items(folder, pattern, "resourceLogs", "scopeLogs", "logRecords")
