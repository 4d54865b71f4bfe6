"""sednaDataResource in plain Plato: simulated clients, Plato's samplers partition it."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.processes import plain_env, reap_clients, start_run, wait_run


@pytest.mark.slow  # plain Plato with simulated clients: about a minute
def test_plain_plato_partitions_a_sedna_dataset(tmp_path: Path, digits_data: Path) -> None:
    log = tmp_path / "plato.log"
    server = start_run(
        [sys.executable, "-m", "plato_sedna", "-c", str(QUICKSTART / "fedavg.toml"), "-u"],
        tmp_path,
        log,
        plain_env(
            TRAIN_DATASET_URL=str(digits_data / "edge1.txt"),
            TEST_DATASET_URL=str(digits_data / "test.txt"),
            rounds="2",
        ),
    )
    try:
        returncode = wait_run(server, timeout=300)
    finally:
        reap_clients(server)  # Plato's simulated clients may outlive its server

    output = log.read_text()
    assert returncode == 0, output[-4000:]
    (results_csv,) = (tmp_path / "runtime" / "results").glob("*.csv")
    rows = list(csv.DictReader(results_csv.open()))
    assert [row["round"] for row in rows] == ["1", "2"]
    assert float(rows[-1]["accuracy"]) > 0.5
    # both simulated clients (spawned processes) found the plugin's datasource
    assert output.count("sednaDataResource: 719 training and 359 test samples") >= 2
