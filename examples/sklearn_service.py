"""A tiny JSON prediction service (stdlib only) with an instrumented scikit-learn model.

    python examples/sklearn_service.py --port 8080 --duration 60
    curl -s -XPOST localhost:8080/predict -d '{"rows": [[5.1, 3.5, 1.4, 0.2]]}'

Metrics: http://127.0.0.1:9464/metrics (MLOTEL_PROMETHEUS_PORT to change);
or set OTEL_EXPORTER_OTLP_ENDPOINT to send everything to a collector.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlotel

iris = load_iris()
model = mlotel.instrument(
    LogisticRegression(max_iter=500).fit(iris.data, iris.target),
    model_name="iris",
    model_version="1",
    feature_names=["sepal_length", "sepal_width", "petal_length", "petal_width"],
)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            labels = model.predict(body["rows"]).tolist()
            status, reply = 200, {"predictions": labels}
        except (ValueError, KeyError, TypeError) as exc:
            status, reply = 400, {"error": str(exc)}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to serve")
    args = parser.parse_args()
    cfg = mlotel.configure(service_name="iris-service")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(
        f"serving on http://127.0.0.1:{server.server_address[1]}/predict; "
        f"metrics at {cfg.metrics_url}",
        flush=True,
    )
    threading.Timer(args.duration, server.shutdown).start()
    server.serve_forever()
    server.server_close()
    mlotel.shutdown()


if __name__ == "__main__":
    main()
