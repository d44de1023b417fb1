"""examples/retraining_webhook.py behind the real Alertmanager with the shipped routing."""

from __future__ import annotations

import http.server
import importlib.util
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
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
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ok_calls(self) -> list[tuple[int, str, dict[str, Any]]]:
        return [call for call in self.calls if call[0] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver(tmp_path: Path) -> Iterator[tuple[str, Hook, Path]]:
    """The example server on loopback; its hook fails once with 503 first."""
    hook = Hook([503])
    state = tmp_path / "state.json"
    trigger = webhook.RetrainingTrigger(
        lambda payload: webhook.call_hook_with_retries(hook.url, payload, first_delay_s=0.05),
        state,
    )
    server = webhook.make_server(trigger, port=0, token=TOKEN)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", hook, state
    finally:
        server.shutdown()
        server.server_close()
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
