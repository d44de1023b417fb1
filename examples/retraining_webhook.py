"""Alertmanager webhook receiver that triggers retraining when data drift is detected.

Alertmanager (collector/alertmanager/alertmanager.yml, receiver ``retraining``) posts
its notifications here. For every *firing* ``DataDriftDetected`` alert this server
calls a retraining hook once per alert episode:

- idempotent: the key is the alert's fingerprint plus its ``startsAt``, so Alertmanager's
  repeats (``repeat_interval``), a second Alertmanager of an HA pair and our own retries
  never start a second retraining for the same episode; keys done are kept in a JSON
  state file so a restart does not forget them;
- retried: the hook is called with exponential backoff on connection errors and 5xx
  answers; when it still fails the server answers 502, so Alertmanager retries the
  whole notification later (the key is only marked done after the hook succeeded);
- authenticated: with a token configured, requests without ``Authorization: Bearer
  <token>`` get 401.

The hook is an HTTP POST of ``{"model", "version", "reason", "idempotency_key",
"alert"}`` JSON (with an ``Idempotency-Key`` header) to ``RETRAINING_HOOK_URL``: the
trigger endpoint of your pipeline (an Airflow DAG run, a Kubeflow/Argo workflow, a CI
job). Without a URL it runs dry and only logs what it would trigger.

Standard library only, so it runs in a bare ``python:3.12-slim`` container::

    RETRAINING_HOOK_URL=https://ci.example/retrain python examples/retraining_webhook.py

Environment: RETRAINING_HOOK_URL, RETRAINING_WEBHOOK_TOKEN or
RETRAINING_WEBHOOK_TOKEN_FILE, RETRAINING_STATE_FILE (default
./retraining-state.json).
"""

from __future__ import annotations

import argparse
import hmac
import http.server
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger("retraining_webhook")

ALERT_NAME = "DataDriftDetected"
MAX_BODY_BYTES = 1 << 20


class HookError(Exception):
    """The retraining hook failed after all retries."""


def call_hook_with_retries(
    url: str,
    payload: dict[str, Any],
    attempts: int = 4,
    first_delay_s: float = 0.5,
    timeout_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """POST ``payload`` to ``url``; retry connection errors and 5xx with backoff."""
    body = json.dumps(payload).encode()
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": str(payload["idempotency_key"]),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s):
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # the hook refused the request: retrying will not help
                raise HookError(f"hook answered {exc.code}") from exc
            error: Exception = exc
        except (urllib.error.URLError, OSError) as exc:
            error = exc
        logger.warning("retraining hook attempt %d/%d failed: %s", attempt, attempts, error)
        if attempt < attempts:
            sleep(delay)
            delay *= 2
    raise HookError(f"hook failed after {attempts} attempts")


class RetrainingTrigger:
    """Decides which alerts trigger retraining, once per episode, and remembers it."""

    def __init__(
        self, hook: Callable[[dict[str, Any]], None], state_file: Path | None = None
    ) -> None:
        self.hook = hook
        self.state_file = state_file
        self._lock = threading.Lock()
        self._done: set[str] = set()
        if state_file is not None and state_file.exists():
            self._done = set(json.loads(state_file.read_text()))

    def handle(self, notification: dict[str, Any]) -> list[dict[str, str]]:
        """Process one Alertmanager notification; returns what happened per alert.

        Raises HookError when a hook call failed (nothing is marked done for it).
        """
        results = []
        for alert in notification.get("alerts", []):
            labels = alert.get("labels", {})
            key = f"{alert.get('fingerprint', '')}:{alert.get('startsAt', '')}"
            if labels.get("alertname") != ALERT_NAME or alert.get("status") != "firing":
                results.append({"key": key, "action": "ignored"})
                continue
            # One lock around check, call and mark: two concurrent deliveries of the
            # same episode (HA Alertmanagers) start one retraining.
            with self._lock:
                if key in self._done:
                    results.append({"key": key, "action": "duplicate"})
                    continue
                self.hook(
                    {
                        "model": labels.get("ml_model_name", ""),
                        "version": labels.get("ml_model_version", ""),
                        "reason": alert.get("annotations", {}).get("summary", ALERT_NAME),
                        "idempotency_key": key,
                        "alert": alert,
                    }
                )
                self._done.add(key)
                self._save()
            results.append({"key": key, "action": "triggered"})
        return results

    def _save(self) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(self._done)))
        tmp.replace(self.state_file)  # atomic: a crash never leaves half a file


def make_server(
    trigger: RetrainingTrigger, host: str = "127.0.0.1", port: int = 8080, token: str = ""
) -> http.server.ThreadingHTTPServer:
    """An HTTP server passing Alertmanager's POSTs on /alerts to ``trigger``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/alerts":
                self._answer(404, {"error": "POST Alertmanager notifications to /alerts"})
                return
            if token and not hmac.compare_digest(
                self.headers.get("Authorization", ""), f"Bearer {token}"
            ):
                self._answer(401, {"error": "missing or wrong bearer token"})
                return
            length = int(self.headers.get("Content-Length", "0"))
            if not 0 < length <= MAX_BODY_BYTES:
                self._answer(400, {"error": "body missing or too large"})
                return
            try:
                notification = json.loads(self.rfile.read(length))
            except ValueError:
                self._answer(400, {"error": "body is not JSON"})
                return
            try:
                results = trigger.handle(notification)
            except HookError as exc:
                logger.error("retraining hook failed: %s (Alertmanager will retry)", exc)
                self._answer(502, {"error": str(exc)})
                return
            for result in results:
                logger.info("alert %s: %s", result["key"], result["action"])
            self._answer(200, {"results": results})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return http.server.ThreadingHTTPServer((host, port), Handler)


def _token_from_env() -> str:
    path = os.environ.get("RETRAINING_WEBHOOK_TOKEN_FILE", "")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get("RETRAINING_WEBHOOK_TOKEN", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    url = os.environ.get("RETRAINING_HOOK_URL", "")

    def hook(payload: dict[str, Any]) -> None:
        if url:
            call_hook_with_retries(url, payload)
        logger.info(
            "%s retraining of %s %s (%s)",
            "triggered" if url else "dry run: would trigger",
            payload["model"],
            payload["version"],
            payload["reason"],
        )

    state = Path(os.environ.get("RETRAINING_STATE_FILE", "retraining-state.json"))
    server = make_server(RetrainingTrigger(hook, state), args.host, args.port, _token_from_env())
    logger.info("listening on http://%s:%d/alerts", args.host, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
