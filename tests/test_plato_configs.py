"""Plato's own MNIST configs with includes, as written (tests/data/upstream/plato/MNIST-1.41).

render bundles mnist_iid.toml beside each, validate of the rendered job is clean, the
FedProx optimizer 1.41 lacks is named, and plain `plato -c fedavg_lenet5.toml` runs the
file as Plato's launcher would (offline: fake MNIST under the base path; the rounds and
epochs shortened by the env, as a user trying it would).
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest
from support.fake_mnist import write_fake_mnist
from support.processes import plain_env, reap_clients, start_run, wait_run
from test_render_includes import objects, render_here, validate_here

PLATO_141 = Path(__file__).parent / "data" / "upstream" / "plato" / "MNIST-1.41"
RUNNABLE = ("fedavg_lenet5.toml", "fedavg_lenet5_dp.toml", "fedavg_lenet5_timm_globalLR.toml")


@pytest.mark.parametrize("name", RUNNABLE)
def test_render_bundles_the_include_and_validate_passes(name: str, tmp_path: Path, capsys) -> None:
    job_file = render_here(PLATO_141 / name, tmp_path / "out")
    config_map = objects(job_file)["ConfigMap"]
    assert set(config_map["data"]) == {name, "mnist_iid.toml"}
    assert (tmp_path / "out" / "mnist_iid.toml").read_text() == (PLATO_141 / "mnist_iid.toml").read_text()
    status, output = validate_here(capsys, str(job_file))
    assert status == 0, output
    assert "error" not in output.lower(), output


def test_validate_names_the_optimizer_plato_141_lacks(tmp_path: Path, capsys) -> None:
    status, output = validate_here(capsys, str(PLATO_141 / "fedprox_lenet5.toml"))
    assert status != 0
    assert "FedProx" in output, output


@pytest.mark.slow  # plain Plato: a server and two spawned clients on 20000 samples each, about 60 s
def test_plain_plato_runs_fedavg_lenet5_with_its_include(tmp_path: Path) -> None:
    for name in ("fedavg_lenet5.toml", "mnist_iid.toml"):
        shutil.copy(PLATO_141 / name, tmp_path / name)
    base = tmp_path / "runtime"
    write_fake_mnist(base)
    log = tmp_path / "plato.log"
    server = start_run(
        [sys.executable, "-m", "plato_sedna", "-c", str(tmp_path / "fedavg_lenet5.toml"), "-b", str(base), "-u"],
        tmp_path,
        log,
        plain_env(rounds="1", epochs="1"),
    )
    try:
        returncode = wait_run(server, timeout=400)
    finally:
        reap_clients(server)
    assert returncode == 0, log.read_text()[-4000:]
    (results,) = (base / "results").glob("*.csv")
    rows = list(csv.DictReader(results.open()))
    assert [row["round"] for row in rows] == ["1"]
    assert 0.0 <= float(rows[0]["accuracy"]) <= 1.0
