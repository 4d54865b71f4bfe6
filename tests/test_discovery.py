"""A trainer whose AGG_IP is stale finds the aggregator through the job's Service name.

In a cluster `<JOB_NAME>-aggregation.<NAMESPACE>` resolves through cluster DNS. Here the
trainer runs in its own mount namespace with a hosts file that resolves that name to
loopback, as cluster DNS would, while AGG_IP names a host that does not resolve.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.processes import start_run
from support.workers import aggregator_env, free_port, stop, trainer_env

CONFIG = QUICKSTART / "fedavg.toml"
SERVICE = "digits-aggregation.default"  # JOB_NAME=digits, NAMESPACE=default in trainer_env
STALE_AGG_IP = "aggregator-of-a-deleted-pod.invalid"  # .invalid never resolves (RFC 6761)
WITH_HOSTS_FILE = 'mount --bind "$0" /etc/hosts && exec "$@"'


def _can_bind_mount_hosts(tmp_path: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    hosts = tmp_path / "probe-hosts"
    hosts.write_text(f"127.0.0.1 {SERVICE}\n")
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", WITH_HOSTS_FILE, str(hosts), "getent", "hosts", SERVICE],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_stale_agg_ip_falls_back_to_the_service_name(tmp_path: Path, digits_data: Path) -> None:
    if not _can_bind_mount_hosts(tmp_path):
        pytest.skip("needs root and unshare to give the trainer its own /etc/hosts")
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n127.0.0.1 {SERVICE}\n")
    port = free_port()
    aggregator_dir, trainer_dir = tmp_path / "aggregator", tmp_path / "trainer"
    for folder in (aggregator_dir, trainer_dir):
        folder.mkdir()
    plato = [sys.executable, "-m", "plato_sedna", "-c", str(CONFIG)]
    aggregator = start_run(
        plato,
        aggregator_dir,
        aggregator_dir / "worker.log",
        aggregator_env(port, 1, tmp_path / "model.pth", digits_data / "test.txt", rounds="1"),
    )
    trainer_variables = trainer_env(port, 1, "digits-edge1", digits_data / "edge1.txt") | {"AGG_IP": STALE_AGG_IP}
    trainer = start_run(
        ["unshare", "--mount", "sh", "-c", WITH_HOSTS_FILE, str(hosts), *plato],
        trainer_dir,
        trainer_dir / "worker.log",
        trainer_variables,
    )
    try:
        assert aggregator.wait(240) == 0, (aggregator_dir / "worker.log").read_text()[-3000:]
        assert trainer.wait(60) == 0, (trainer_dir / "worker.log").read_text()[-3000:]
    finally:
        stop(aggregator, trainer)
    log = (trainer_dir / "worker.log").read_text()
    assert f"Connected to the aggregator at http://{SERVICE}:{port}" in log
