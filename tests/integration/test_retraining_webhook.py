"""examples/retraining_webhook.py behind the real Alertmanager with the shipped routing."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from support.alerting import AlertmanagerServer, WebhookSink, alertmanager_test_config

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-test-token"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "retraining_webhook", ROOT / "examples" / "retraining_webhook.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


webhook = _load_example()


class Hook:
    """The retraining pipeline's trigger endpoint: answers the queued statuses, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.calls: list[tuple[int, str, dict[str, Any]]] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = hook.statuses.pop(0) if hook.statuses else 200
                hook.calls.append((status, self.headers.get("Idempotency-Key", ""), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/retrain"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def ok_calls(self) -> list[tuple[int, str, dict[str, Any]]]:
        return [call for call in self.calls if call[0] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def _serving(trigger: Any, **limits: Any) -> Iterator[tuple[str, int]]:
    """The example server for ``trigger`` on loopback (``limits``: make_server's read
    timeout, request deadline, connection cap) as (its /alerts URL, its port); shut down
    and closed on the way out, whatever happened."""
    server = webhook.make_server(trigger, port=0, token=TOKEN, **limits)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    port = server.server_address[1]
    try:
        yield f"http://127.0.0.1:{port}/alerts", port
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def receiver(tmp_path: Path) -> Iterator[tuple[str, Hook, Path]]:
    """The example server on loopback; its hook fails once with 503 first."""
    hook = Hook([503])
    state = tmp_path / "state.json"
    trigger = webhook.RetrainingTrigger(
        lambda payload: webhook.call_hook_with_retries(hook.url, payload, first_delay_s=0.05),
        state,
    )
    try:
        with _serving(trigger) as (url, _port):
            yield url, hook, state
    finally:
        hook.close()


def _post(url: str, body: Any, token: str = TOKEN) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _alert(name: str, status: str = "firing", starts: str = "2030-01-01T00:00:00Z") -> Any:
    return {
        "status": status,
        "labels": {"alertname": name, "ml_model_name": "churn", "ml_model_version": "3"},
        "annotations": {"summary": "Model churn 3: 60% of features drifted"},
        "startsAt": starts,
        "fingerprint": "abc123",
    }


def test_alertmanager_routes_drift_to_the_retraining_hook_once(
    receiver: tuple[str, Hook, Path], tmp_path: Path
) -> None:
    url, hook, _state = receiver
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    shipped = yaml.safe_load((ROOT / "collector/alertmanager/alertmanager.yml").read_text())
    with WebhookSink() as sink:
        config = alertmanager_test_config(shipped, sink.url)
        # Only the retraining receiver goes to the example, with the shipped auth.
        shipped_retraining = next(r for r in shipped["receivers"] if r["name"] == "retraining")
        shipped_webhook = shipped_retraining["webhook_configs"][0]
        http_config = shipped_webhook["http_config"]
        http_config["authorization"]["credentials_file"] = str(token_file)
        for entry in config["receivers"]:
            if entry["name"] == "retraining":
                entry["webhook_configs"] = [
                    {"url": url, "send_resolved": False, "http_config": http_config}
                ]
        with AlertmanagerServer(config) as alertmanager:
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            alerts = [
                {
                    "labels": {
                        "alertname": "DataDriftDetected",
                        "severity": "warning",
                        "ml_model_name": "churn",
                        "ml_model_version": "3",
                    },
                    "annotations": {"summary": "Model churn 3: 60% of features drifted"},
                    "startsAt": now,
                }
            ]
            request = urllib.request.Request(
                f"{alertmanager.url}/api/v2/alerts",
                data=json.dumps(alerts).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
            # continue: true -> the warning also reaches the chat receiver.
            sink.wait_for("chat", lambda a: a["labels"]["alertname"] == "DataDriftDetected")
            deadline = time.monotonic() + 30
            while not hook.ok_calls() and time.monotonic() < deadline:
                time.sleep(0.1)
    # First attempt 503, retried with the same idempotency key, then accepted.
    assert [status for status, _, _ in hook.calls] == [503, 200]
    assert len({key for _, key, _ in hook.calls}) == 1
    payload = hook.ok_calls()[0][2]
    assert (payload["model"], payload["version"]) == ("churn", "3")
    assert "drifted" in payload["reason"]
    assert not sink.alerts("pager")


def test_duplicates_restarts_and_other_alerts_do_not_retrain_again(
    receiver: tuple[str, Hook, Path],
) -> None:
    url, hook, state = receiver
    notification = {"alerts": [_alert("DataDriftDetected"), _alert("HighPredictionLatency")]}
    assert _post(url, notification)[1]["results"] == [
        {"key": "abc123:2030-01-01T00:00:00Z", "action": "triggered"},
        {"key": "abc123:2030-01-01T00:00:00Z", "action": "ignored"},
    ]
    # A repeat of the same episode: no second retraining.
    assert _post(url, notification)[1]["results"][0]["action"] == "duplicate"
    # A restarted receiver remembers the episode through its state file.
    again = webhook.RetrainingTrigger(lambda payload: pytest.fail("retrained twice"), state)
    assert again.handle(notification)[0]["action"] == "duplicate"
    # A new episode (new startsAt) retrains; a resolved alert does not.
    new_episode = {"alerts": [_alert("DataDriftDetected", starts="2030-01-02T00:00:00Z")]}
    assert _post(url, new_episode)[1]["results"][0]["action"] == "triggered"
    resolved = {"alerts": [_alert("DataDriftDetected", "resolved", "2030-01-03T00:00:00Z")]}
    assert _post(url, resolved)[1]["results"][0]["action"] == "ignored"
    assert len(hook.ok_calls()) == 2


def test_rejects_wrong_token_and_reports_a_failing_hook(
    receiver: tuple[str, Hook, Path],
) -> None:
    url, hook, _state = receiver
    notification = {"alerts": [_alert("DataDriftDetected")]}
    assert _post(url, notification, token="wrong")[0] == 401
    assert hook.calls == []
    # The hook refuses (4xx, not retried): 502 so Alertmanager retries later, nothing marked.
    hook.statuses = [400]
    status, body = _post(url, notification)
    assert status == 502 and "400" in body["error"]
    assert _post(url, notification)[1]["results"][0]["action"] == "triggered"
    assert [status for status, _, _ in hook.calls] == [400, 200]


# --- hardening (issue 13, item 9): a misconfigured token, malformed and stalled requests ---


def _run_main(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The example as compose runs it; it must refuse before binding, so port 0 is fine."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINING_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "retraining_webhook.py"), "--port", "0"],
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("content", ["", "\n", "  \n\t"], ids=["empty", "newline", "blank"])
def test_refuses_to_start_on_an_empty_token_file(tmp_path: Path, content: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(content)
    # If it started it would serve for ever: the timeout turns that into a failure.
    result = _run_main({"RETRAINING_WEBHOOK_TOKEN_FILE": str(token_file)})
    assert result.returncode == 2, result.stderr
    assert "refusing to start" in result.stderr and "empty" in result.stderr


def test_refuses_to_start_on_a_missing_token_file_or_an_empty_token(tmp_path: Path) -> None:
    missing = _run_main({"RETRAINING_WEBHOOK_TOKEN_FILE": str(tmp_path / "absent")})
    assert missing.returncode == 2 and "absent" in missing.stderr
    empty = _run_main({"RETRAINING_WEBHOOK_TOKEN": ""})
    assert empty.returncode == 2 and "RETRAINING_WEBHOOK_TOKEN" in empty.stderr
    with pytest.raises(webhook.ConfigurationError):
        webhook.make_server(webhook.RetrainingTrigger(lambda payload: None), port=0, token="")


def test_token_from_env() -> None:
    assert webhook.token_from_env({}) is None  # nothing configured: no authentication
    assert webhook.token_from_env({"RETRAINING_WEBHOOK_TOKEN": " t0k \n"}) == "t0k"


def _raw_request(url: str, head: bytes, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """Send bytes http.client would refuse to send; return the status and JSON answer."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head + b"\r\n" + body)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    assert received, "connection closed without an answer"
    status_line, _, rest = received.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.split(b"\r\n\r\n", 1)[1])


def _head(*headers: str) -> bytes:
    lines = ["POST /alerts HTTP/1.1", "Host: localhost", *headers]
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


def test_non_ascii_authorization_is_401_and_the_server_keeps_serving(
    receiver: tuple[str, Hook, Path],
) -> None:
    url, hook, _state = receiver
    body = json.dumps({"alerts": [_alert("DataDriftDetected")]}).encode()
    for authorization in (f"Bearer {TOKEN}é", "Bearer ключ", "Bérarer"):
        head = _head(f"Authorization: {authorization}", f"Content-Length: {len(body)}")
        assert _raw_request(url, head, body)[0] == 401, authorization
    assert hook.calls == []
    assert _post(url, {"alerts": [_alert("DataDriftDetected")]})[0] == 200


@pytest.mark.parametrize(
    "length", ["abc", "1_0", "-1", "1e3", "", "+12", "99999999999999999999"]
)
def test_bad_content_length_is_400(receiver: tuple[str, Hook, Path], length: str) -> None:
    url, hook, _state = receiver
    head = _head(f"Authorization: Bearer {TOKEN}", f"Content-Length: {length}")
    status, answer = _raw_request(url, head, b"{}")
    assert status == 400 and answer["error"]
    assert hook.calls == []


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"alerts": {}}', b'{"alerts": [1]}', b'{"alerts": [{"labels": "x"}]}', b"\xff{"],
    ids=["list", "alerts-object", "alert-number", "labels-string", "not-utf8"],
)
def test_body_that_is_not_a_notification_is_400(
    receiver: tuple[str, Hook, Path], body: bytes
) -> None:
    url, hook, _state = receiver
    head = _head(f"Authorization: Bearer {TOKEN}", f"Content-Length: {len(body)}")
    status, answer = _raw_request(url, head, body)
    assert status == 400 and answer["error"]
    assert hook.calls == []


def _closed_by_server(connection: socket.socket, trickle: bytes, within_s: float) -> bool:
    """Send ``trickle`` a byte at a time (0.1 s apart); True once the server hangs up."""
    connection.settimeout(0.1)
    deadline = time.monotonic() + within_s
    position = 0
    while time.monotonic() < deadline:
        try:
            if position < len(trickle):
                connection.send(trickle[position : position + 1])
                position += 1
            if connection.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: the server closed it
            return True
    return False


@pytest.fixture()
def strict_server() -> Iterator[tuple[str, int]]:
    """The example with short limits: 0.3 s per read, 1.5 s per request, 2 connections."""
    trigger = webhook.RetrainingTrigger(lambda payload: None)
    with _serving(
        trigger, read_timeout_s=0.3, request_deadline_s=1.5, max_connections=2
    ) as served:
        yield served


def test_stalled_and_trickling_clients_are_cut_off(strict_server: tuple[str, int]) -> None:
    url, port = strict_server
    # Half a request line, then silence: the read timeout closes it.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
        stalled.sendall(b"POST /alerts HTTP/1.1\r\nHost: x")
        assert _closed_by_server(stalled, b"", within_s=20)
    # Headers promising a body that never comes: the read timeout again.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as no_body:
        no_body.sendall(_head(f"Authorization: Bearer {TOKEN}", "Content-Length: 100"))
        assert _closed_by_server(no_body, b"", within_s=20)
    # A byte every 0.1 s never trips a 0.3 s read timeout: the request deadline does.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as trickling:
        endless = b"POST /alerts HTTP/1.1\r\n" + b"X-Padding: " + b"a" * 10_000
        assert _closed_by_server(trickling, endless, within_s=20)
    assert _post(url, {"alerts": []})[0] == 200  # and the server still answers


def test_connections_beyond_the_cap_are_closed_unanswered() -> None:
    # Long read timeouts here, so the two held connections stay held until closed.
    trigger = webhook.RetrainingTrigger(lambda payload: None)
    with _serving(
        trigger, read_timeout_s=30, request_deadline_s=30, max_connections=2
    ) as (url, port):
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        try:
            for connection in held:  # both are being served (and stall)
                connection.sendall(b"POST /alerts HTTP/1.1\r\n")
            # Accepted in order: the first two took both slots before this one is accepted.
            with socket.create_connection(("127.0.0.1", port), timeout=10) as third:
                assert third.recv(65536) == b""  # closed at once, no thread spent on it
        finally:
            for connection in held:
                connection.close()
        # Once the held ones are gone the server answers again (retry: slots free up async).
        deadline = time.monotonic() + 20
        while True:
            try:
                assert _post(url, {"alerts": []})[0] == 200
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "server never served again"
                time.sleep(0.1)
