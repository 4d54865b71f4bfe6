"""Metrics for dashboards: the aggregator's Prometheus endpoint, scraped during a real run."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from support.processes import PLATO_SEDNA, free_port
from support.workers import clean_env

from plato_sedna.errors import ConfigError
from plato_sedna.local.plot import write_progress_plot
from plato_sedna.servers.metrics_endpoint import JobMetrics, MetricsEndpoint
from plato_sedna.servers.sedna import _metrics_endpoint

SAMPLE = re.compile(r'^(plato_sedna_[a-z_]+)\{job="((?:[^"\\]|\\.)*)"\} (\S+)$')


def parse_exposition(text: str) -> dict[str, float]:
    """Samples of Prometheus' text format; every line must be a comment or a well-formed sample."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        samples[match[1]] = float(match[3])
    return samples


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse_exposition(answer.read().decode())


def test_the_endpoint_serves_the_latest_values() -> None:
    metrics = JobMetrics(job='digits "fedavg"')
    endpoint = MetricsEndpoint(metrics, 0, host="127.0.0.1").start()
    try:
        assert scrape(endpoint.port) == {}
        metrics.update(round=2, accuracy=0.5, loss=None, bytes_sent_total=1234)
        assert scrape(endpoint.port) == {"plato_sedna_round": 2, "plato_sedna_accuracy": 0.5, "plato_sedna_bytes_sent_total": 1234}
        assert 'job="digits \\"fedavg\\""' in metrics.exposition()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/other", timeout=5)
    finally:
        endpoint.stop()


def test_a_bad_or_busy_port_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="server.metrics_port = 'x' is not a port"):
        _metrics_endpoint(JobMetrics("job"), "x")
    busy = MetricsEndpoint(JobMetrics("job"), 0)
    try:
        with pytest.raises(ConfigError, match=f"server.metrics_port = {busy.port} cannot be used"):
            _metrics_endpoint(JobMetrics("job"), busy.port)
    finally:
        busy.stop()


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    from PIL import Image

    path = write_progress_plot([1, 2, 3], [0.5, 0.8, None], [1.2, None, 0.4], tmp_path / "progress.png", "default/job")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100
    assert write_progress_plot([], [], [], tmp_path / "none.png", "x") is None


def test_metrics_scraped_during_a_run(quickstart_job: Path, tmp_path: Path) -> None:
    port = free_port()
    config = quickstart_job.parent / "fedavg.toml"
    config.write_text(config.read_text().replace("[server]\n", f"[server]\nmetrics_port = {port}\n", 1))
    quickstart_job.write_text(quickstart_job.read_text().replace('value: "10"', 'value: "3"'))
    workdir = tmp_path / "run"
    run = subprocess.Popen(
        [*PLATO_SEDNA,
         "run", str(quickstart_job), "--workdir", str(workdir), "--timeout", "300"],
        env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    seen: list[dict[str, float]] = []
    try:
        deadline = time.monotonic() + 300
        while run.poll() is None and time.monotonic() < deadline:
            try:
                samples = scrape(port)
            except OSError:
                samples = {}
            if samples.get("plato_sedna_round", 0) >= 1:
                seen.append(samples)
            time.sleep(0.3)
        assert run.wait(60) == 0
    finally:
        if run.poll() is None:
            run.kill()
    assert seen, "the endpoint never answered with a round"
    first = seen[0]
    assert first["plato_sedna_connected_trainers"] == 2
    assert 0 <= first["plato_sedna_accuracy"] <= 1 and first["plato_sedna_loss"] > 0
    assert first["plato_sedna_round_bytes_sent"] > 100_000 and first["plato_sedna_round_bytes_received"] > 100_000
    assert first["plato_sedna_round_duration_seconds"] > 0
    assert seen[-1]["plato_sedna_bytes_sent_total"] >= first["plato_sedna_bytes_sent_total"]
    rounds = [s["plato_sedna_round"] for s in seen]
    assert rounds == sorted(rounds) and rounds[-1] == 3
