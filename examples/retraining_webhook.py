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
  <token>`` get 401; a token variable or file that is set but empty is refused at
  start-up (it would otherwise turn authentication off);
- bounded: malformed requests get 400 (never a dropped connection), every socket read
  times out (``READ_TIMEOUT_S``), a whole request must arrive within
  ``REQUEST_DEADLINE_S``, and at most ``MAX_CONNECTIONS`` are served at once, so stalled
  or trickling clients cannot hold threads for ever.

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
import contextlib
import hmac
import http.server
import json
import logging
import os
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger("retraining_webhook")

ALERT_NAME = "DataDriftDetected"
MAX_BODY_BYTES = 1 << 20
READ_TIMEOUT_S = 10.0  # one socket read (Alertmanager sends a notification at once)
REQUEST_DEADLINE_S = 30.0  # a whole request, however slowly its bytes trickle in
MAX_CONNECTIONS = 32  # served at once; further connections are closed unanswered
_CONTENT_LENGTH = re.compile(r"[0-9]{1,9}")  # int() would also take "1_0", " 1", "+1"


class ConfigurationError(Exception):
    """The webhook is configured in a way that would be unsafe to run."""


class BadRequest(ValueError):
    """A request body that is not an Alertmanager notification."""


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
        _check_notification(notification)
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


def _check_notification(notification: Any) -> None:
    """Raise BadRequest unless the parts ``handle`` reads have the webhook format's types."""
    if not isinstance(notification, dict) or not isinstance(notification.get("alerts", []), list):
        raise BadRequest("body is not an Alertmanager notification (an object with 'alerts')")
    for alert in notification.get("alerts", []):
        if not isinstance(alert, dict) or not all(
            isinstance(alert.get(field, {}), dict) for field in ("labels", "annotations")
        ):
            raise BadRequest("each alert must be an object with object 'labels'/'annotations'")


class _BoundedServer(http.server.ThreadingHTTPServer):
    """Serves at most ``max_connections`` at once; reports failed requests in one line."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[http.server.BaseHTTPRequestHandler],
        max_connections: int,
    ) -> None:
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            logger.warning(
                "%d connections open: closing one from %s", self.max_connections, client_address
            )
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # the thread did not start: give its slot back
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away or was cut off at the deadline: one line, no traceback.
        logger.warning("request from %s failed: %r", client_address, sys.exc_info()[1])


def make_server(
    trigger: RetrainingTrigger,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str | None = None,
    read_timeout_s: float = READ_TIMEOUT_S,
    request_deadline_s: float = REQUEST_DEADLINE_S,
    max_connections: int = MAX_CONNECTIONS,
) -> http.server.ThreadingHTTPServer:
    """An HTTP server passing Alertmanager's POSTs on /alerts to ``trigger``.

    ``token=None`` serves without authentication; an empty token is refused (it is a
    misconfiguration, not a request to turn authentication off).
    """
    if token is not None and not token.strip():
        raise ConfigurationError("the bearer token is empty: set a token or none at all")
    # Compared as bytes: the header arrives decoded as ISO-8859-1, and compare_digest
    # raises TypeError on str with non-ASCII characters.
    expected = f"Bearer {token}".encode() if token is not None else None

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = read_timeout_s  # every read of this connection's socket

        def setup(self) -> None:
            super().setup()
            # A client trickling a byte per read_timeout_s never trips the read timeout:
            # cut the connection at the request's deadline.
            self._deadline = threading.Timer(request_deadline_s, self._cut_off)
            self._deadline.daemon = True
            self._deadline.start()

        def _cut_off(self) -> None:
            logger.warning(
                "request from %s not complete after %.0f s: closing it",
                self.client_address,
                request_deadline_s,
            )
            with contextlib.suppress(OSError):  # already closed
                self.connection.shutdown(socket.SHUT_RDWR)

        def finish(self) -> None:
            self._deadline.cancel()
            with contextlib.suppress(OSError):  # the client is gone: nothing to flush to
                super().finish()

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/alerts":
                self._answer(404, {"error": "POST Alertmanager notifications to /alerts"})
                return
            if expected is not None and not hmac.compare_digest(
                self.headers.get("Authorization", "").encode("latin-1", "replace"), expected
            ):
                self._answer(401, {"error": "missing or wrong bearer token"})
                return
            declared = self.headers.get("Content-Length", "").strip()
            if not _CONTENT_LENGTH.fullmatch(declared):
                self._answer(400, {"error": "Content-Length missing or not a number"})
                return
            length = int(declared)
            if not 0 < length <= MAX_BODY_BYTES:
                self._answer(400, {"error": "body missing or too large"})
                return
            body = self.rfile.read(length)
            if len(body) < length:
                self._answer(400, {"error": "body shorter than its Content-Length"})
                return
            try:
                notification = json.loads(body)
                results = trigger.handle(notification)
            except BadRequest as exc:
                self._answer(400, {"error": str(exc)})
                return
            except ValueError:  # JSON, or a body that is not UTF-8
                self._answer(400, {"error": "body is not JSON"})
                return
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

    return _BoundedServer((host, port), Handler, max_connections)


def token_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token from RETRAINING_WEBHOOK_TOKEN_FILE or RETRAINING_WEBHOOK_TOKEN.

    None when neither is set (no authentication). Raises ConfigurationError when one is
    set but the token is empty, or the file cannot be read: serving without
    authentication because a secret file came out empty is the failure to prevent.
    """
    env = os.environ if environ is None else environ
    path = env.get("RETRAINING_WEBHOOK_TOKEN_FILE")
    if path is not None:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"RETRAINING_WEBHOOK_TOKEN_FILE={path!r}: {exc}") from exc
        if not token:
            raise ConfigurationError(f"RETRAINING_WEBHOOK_TOKEN_FILE={path!r} is empty")
        return token
    if "RETRAINING_WEBHOOK_TOKEN" in env:
        token = env["RETRAINING_WEBHOOK_TOKEN"].strip()
        if not token:
            raise ConfigurationError("RETRAINING_WEBHOOK_TOKEN is set but empty")
        return token
    return None


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

    try:
        token = token_from_env()
    except ConfigurationError as exc:
        parser.exit(2, f"retraining_webhook: refusing to start: {exc}\n")
    if token is None:
        logger.warning("no RETRAINING_WEBHOOK_TOKEN(_FILE): requests are not authenticated")
    state = Path(os.environ.get("RETRAINING_STATE_FILE", "retraining-state.json"))
    server = make_server(RetrainingTrigger(hook, state), args.host, args.port, token)
    logger.info("listening on http://%s:%d/alerts", *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
