"""Prometheus metrics of a running job, served by the aggregator (``[server] metrics_port``).

Text exposition format on ``http://<pod>:<port>/metrics``: the round, accuracy, loss,
connected trainers, payload bytes per round and in total, and the round's duration,
each labelled with the job. Port 0 picks a free port (logged).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOGGER = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# name -> (type, help)
METRICS: Mapping[str, tuple[str, str]] = {
    "plato_sedna_round": ("gauge", "The last aggregated round."),
    "plato_sedna_accuracy": ("gauge", "The global model's accuracy after the last round."),
    "plato_sedna_loss": ("gauge", "The trainers' mean training loss in the last round."),
    "plato_sedna_connected_trainers": ("gauge", "Trainers connected to the aggregator."),
    "plato_sedna_round_duration_seconds": ("gauge", "Wall time of the last round."),
    "plato_sedna_round_bytes_sent": ("gauge", "Payload bytes sent to trainers in the last round."),
    "plato_sedna_round_bytes_received": ("gauge", "Payload bytes received from trainers in the last round."),
    "plato_sedna_bytes_sent_total": ("counter", "Payload bytes sent to trainers since the start."),
    "plato_sedna_bytes_received_total": ("counter", "Payload bytes received from trainers since the start."),
}


@dataclass
class JobMetrics:
    """The latest values, read by the HTTP thread while the server updates them."""

    job: str
    values: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, **values: float | None) -> None:
        unknown = set(values) - {name.removeprefix("plato_sedna_") for name in METRICS}
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}")
        with self.lock:
            for name, value in values.items():
                if value is not None:
                    self.values[f"plato_sedna_{name}"] = float(value)

    def exposition(self) -> str:
        """The metrics in Prometheus' text format."""
        label = self.job.replace("\\", "\\\\").replace('"', '\\"')
        lines = []
        with self.lock:
            for name, (kind, help_text) in METRICS.items():
                if name in self.values:
                    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                    lines.append(f'{name}{{job="{label}"}} {self.values[name]:g}')
        return "".join(line + "\n" for line in lines)


class MetricsEndpoint:
    """A daemon HTTP server answering ``GET /metrics`` with :class:`JobMetrics`."""

    def __init__(self, metrics: JobMetrics, port: int, host: str = "0.0.0.0") -> None:
        self.metrics = metrics
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "only /metrics is served")
                    return
                body = endpoint.metrics.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args) -> None:
                LOGGER.debug("metrics: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    def start(self) -> MetricsEndpoint:
        self._thread.start()
        LOGGER.info("Prometheus metrics on http://0.0.0.0:%d/metrics", self.port)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()  # waits for serve_forever, so only once it runs
        self._server.server_close()
