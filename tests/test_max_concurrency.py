"""In a pod, Plato trains in the process's own interpreter, whatever trainer.max_concurrency says."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from plato.config import TomlConfigLoader
from support.sedna_env import AGGREGATOR_ENV, TRAINER_ENV
from support.workers import clean_env

from plato_sedna.config import load_config_file, resolve_config, write_config
from plato_sedna.context import SednaContext

CONFIGS = Path(__file__).parent / "data" / "configs"


def _with_max_concurrency(value: int = 3) -> dict:
    raw = load_config_file(CONFIGS / "fedavg.toml")
    raw["trainer"]["max_concurrency"] = value
    return raw


def test_a_trainer_pod_config_does_not_spawn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Plato's trainer spawns a process per round when trainer.max_concurrency is set (composable.train)."""
    raw = _with_max_concurrency()
    with caplog.at_level(logging.INFO, logger="plato_sedna.config"):
        resolved = resolve_config(raw, SednaContext.from_env(TRAINER_ENV))

    assert "max_concurrency" not in resolved["trainer"]
    assert raw["trainer"]["max_concurrency"] == 3  # the loaded config is left alone
    ignored = [record for record in caplog.records if "max_concurrency is ignored" in record.getMessage()]
    assert len(ignored) == 1 and ignored[0].levelno == logging.INFO
    # what Plato reads back from the written file
    written = TomlConfigLoader(str(write_config(resolved, tmp_path / "resolved.toml"))).load()
    assert "max_concurrency" not in written["trainer"]


def test_plain_plato_keeps_max_concurrency() -> None:
    resolved = resolve_config(_with_max_concurrency(), SednaContext.from_env({}))
    assert resolved["trainer"]["max_concurrency"] == 3


def test_no_line_without_max_concurrency(caplog: pytest.LogCaptureFixture) -> None:
    raw = load_config_file(CONFIGS / "fedavg.toml")
    raw["trainer"].pop("max_concurrency", None)
    with caplog.at_level(logging.INFO, logger="plato_sedna.config"):
        resolved = resolve_config(raw, SednaContext.from_env(TRAINER_ENV))
    assert "max_concurrency" not in resolved["trainer"]
    assert not [record for record in caplog.records if "max_concurrency" in record.getMessage()]


AGGREGATOR_PROBE = """
import os, sys
import plato_sedna
from plato.config import Config
from plato_sedna import launch
Config()
launch._drop_max_concurrency()
print("spawns" if hasattr(Config().trainer, "max_concurrency") else "in-process")
"""


def test_the_aggregator_pod_drops_it_before_its_server_is_built(tmp_path: Path) -> None:
    """Plato's server would start round 1 with max_concurrency trainers and test in a spawned process."""
    resolved = resolve_config(_with_max_concurrency(), SednaContext.from_env(AGGREGATOR_ENV))
    path = write_config(resolved, tmp_path / "resolved.toml")
    env = clean_env(config_file=str(path))
    result = subprocess.run(
        [sys.executable, "-c", AGGREGATOR_PROBE, "-b", str(tmp_path / "base")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "in-process"
    assert "trainer.max_concurrency is ignored in a pod" in result.stdout + result.stderr
