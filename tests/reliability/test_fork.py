"""Pre-fork servers: each forked child reports as its own process with its own counts.

The forking happens in a subprocess (so the pytest process never forks); the
OTLP receiver runs here and the subprocess exports to it (HTTP and gRPC).
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlotel import semconv
from support.otlp_receiver import OTLPReceiver, log_fields
from support.scripts import json_lines, run_script

PARENT_CALLS = 3
CHILD_CALLS = {"a": 5, "b": 7}
TAGS = {"parent": 0.0, "a": 1.0, "b": 2.0}  # feature f1 marks which process predicted

_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, time, traceback
    import numpy as np
    import mlotel

    endpoint, protocol = sys.argv[1], sys.argv[2]
    plan = json.loads(sys.argv[3])
    mlotel.configure(
        exporter="otlp",
        otlp_endpoint=endpoint,
        otlp_protocol=protocol,
        service_name="forking-server",
        set_global=False,
        metric_export_interval=0.3,
        payload_sample_rate=1.0,
    )

    @mlotel.instrument(model_name="forked", model_version="1")
    def predict(rows):
        return rows[:, 0] + 1.0

    def run(calls, tag):
        for i in range(calls):
            out = predict(np.array([[float(i), tag]]))
            assert out.tolist() == [i + 1.0], out

    run(plan["parent_calls"], plan["tags"]["parent"])  # not flushed before the forks
    children = {}
    for label, calls in plan["children"].items():
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run(calls, plan["tags"][label])
                if not mlotel.shutdown(timeout=10.0):
                    code = 3
            except BaseException:
                traceback.print_exc()
                code = 4
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[label] = pid

    exit_codes = {}
    deadline = time.monotonic() + 30.0
    for label, pid in children.items():
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                exit_codes[label] = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                exit_codes[label] = "killed after 30 s"
                break
            time.sleep(0.02)

    run(1, plan["tags"]["parent"])  # the parent keeps working after forking
    shutdown_ok = mlotel.shutdown(timeout=10.0)
    print(json.dumps({
        "parent": os.getpid(),
        "children": children,
        "exit_codes": exit_codes,
        "shutdown_ok": shutdown_ok,
    }), flush=True)
    """
)


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


def _latest_by_pid(rx: OTLPReceiver, name: str) -> dict[int, Any]:
    """The newest cumulative point of metric ``name`` per exporting process."""
    latest: dict[int, Any] = {}
    for resource, metric in rx.metrics():
        if metric.name != name:
            continue
        kind = metric.WhichOneof("data")
        assert kind is not None
        if kind == "sum":
            assert metric.sum.aggregation_temporality == 2  # CUMULATIVE
        elif kind == "histogram":
            assert metric.histogram.aggregation_temporality == 2
        for point in getattr(metric, kind).data_points:
            pid = resource["process.pid"]
            if pid not in latest or point.time_unix_nano >= latest[pid].time_unix_nano:
                latest[pid] = point
    return latest


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_forked_children_report_their_own_pid_and_counts(
    receiver: OTLPReceiver, protocol: str, tmp_path: Path
) -> None:
    plan = {"parent_calls": PARENT_CALLS, "children": CHILD_CALLS, "tags": TAGS}
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    proc = run_script(
        _SCRIPT, tmp_path, endpoint, protocol, json.dumps(plan), name="forking_server.py"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    report = json_lines(proc.stdout)[-1]
    assert report["exit_codes"] == {"a": 0, "b": 0}, proc.stderr[-4000:]
    assert report["shutdown_ok"] is True
    parent_pid = report["parent"]
    pids = {"parent": parent_pid, **report["children"]}
    assert len(set(pids.values())) == 3
    label_of = {pid: label for label, pid in pids.items()}
    calls = {"parent": PARENT_CALLS + 1, **CHILD_CALLS}

    # Every process shut down (and so flushed) before the subprocess exited.
    assert receiver.errors == []
    assert {r.transport for r in receiver.requests()} == {"grpc" if protocol == "grpc" else "http"}

    # --- spans: one per call, attributed to the process that made it ---
    spans = receiver.spans()
    span_pids = Counter(resource["process.pid"] for resource, _ in spans)
    assert span_pids == {pids[label]: n for label, n in calls.items()}, span_pids
    instance_ids: dict[int, set[str]] = {}
    for resource, span in spans:
        assert span.name == "predict forked"
        assert resource["service.name"] == "forking-server"
        instance_ids.setdefault(resource["process.pid"], set()).add(resource["service.instance.id"])
    # one instance id per process, and each process its own
    assert all(len(ids) == 1 for ids in instance_ids.values()), instance_ids
    assert len(set().union(*instance_ids.values())) == 3
    assert len({span.span_id for _, span in spans}) == len(spans)  # no span sent twice

    # --- log records: in the process that predicted, linked to its spans ---
    span_ids_by_pid: dict[int, set[bytes]] = {}
    for resource, span in spans:
        span_ids_by_pid.setdefault(resource["process.pid"], set()).add(span.span_id)
    log_pids: Counter[int] = Counter()
    for resource, record in receiver.logs():
        pid = resource["process.pid"]
        log_pids[pid] += 1
        features = log_fields(record)[semconv.ATTR_FEATURES]
        assert features["f1"] == TAGS[label_of[pid]], (label_of[pid], features)
        assert record.span_id in span_ids_by_pid[pid]
    assert log_pids == span_pids

    # --- metrics: each process counts only its own calls (children start at zero) ---
    durations = _latest_by_pid(receiver, semconv.INFERENCE_DURATION.name)
    assert {label_of[pid]: p.count for pid, p in durations.items()} == calls
    predictions = _latest_by_pid(receiver, semconv.PREDICTIONS.name)
    assert {label_of[pid]: p.as_int for pid, p in predictions.items()} == calls
    for pid, point in durations.items():
        assert sum(point.bucket_counts) == calls[label_of[pid]]
    # A child's cumulative series starts after the fork, not at the parent's start.
    parent_start = durations[parent_pid].start_time_unix_nano
    for label in CHILD_CALLS:
        assert durations[pids[label]].start_time_unix_nano > parent_start


_READERS_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
    import mlotel

    endpoint = sys.argv[1]
    pushed = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint + "/v1/metrics"), export_interval_millis=300
    )
    in_memory = InMemoryMetricReader()
    mlotel.configure(
        exporter="none", local_sink="none", prometheus=False, set_global=False,
        service_name="readers-server", metric_readers=[pushed, in_memory],
    )

    @mlotel.instrument(model_name="forked-readers")
    def predict(rows):
        return rows[:, 0] + 1.0

    def calls_seen():
        data = in_memory.get_metrics_data()
        return sum(
            point.count
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for metric in scope.metrics if metric.name == "ml.inference.duration"
            for point in metric.data.data_points
        )

    for i in range(2):
        predict(np.array([[float(i), 0.0]]))
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for i in range(5):
                predict(np.array([[float(i), 1.0]]))
            seen = calls_seen()  # the app's in-memory reader, read in the child
            if not mlotel.shutdown(timeout=10.0):
                code = 3
            print(json.dumps({"child": os.getpid(), "child_seen": seen}), flush=True)
        except BaseException:
            import traceback; traceback.print_exc()
            code = 4
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    seen = calls_seen()
    mlotel.shutdown(timeout=10.0)
    print(json.dumps({"parent": os.getpid(), "parent_seen": seen,
                      "child_exit": os.waitstatus_to_exitcode(status)}), flush=True)
    """
)


def test_configured_metric_readers_serve_forked_children(
    receiver: OTLPReceiver, tmp_path: Path
) -> None:
    """Issue 13, item 8: readers given to configure(metric_readers=[...]) get each forked
    child's own metrics (before: a child had no reader at all and exported nothing)."""
    proc = run_script(
        _READERS_SCRIPT, tmp_path, receiver.http_endpoint, name="forking_readers.py"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    reports = json_lines(proc.stdout)
    child = next(r for r in reports if "child" in r)
    parent = next(r for r in reports if "parent" in r)
    assert parent["child_exit"] == 0, proc.stderr[-4000:]
    assert child["child_seen"] == 5  # the in-memory reader, in the child: its own calls
    assert parent["parent_seen"] == 2
    durations = _latest_by_pid(receiver, semconv.INFERENCE_DURATION.name)
    counts = {pid: point.count for pid, point in durations.items()}
    assert counts == {parent["parent"]: 2, child["child"]: 5}, counts
