"""Bad input to `plato`: a clear one-line error and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.workers import clean_env, free_port


def run_plato(config: Path | str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plato_sedna", "-c", str(config)],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def aggregator(**extra: str) -> dict[str, str]:
    return {"AGG_BIND_PORT": str(free_port()), "PARTICIPANTS_COUNT": "2", **extra}


@pytest.mark.parametrize(
    ("variable", "value"),
    [("epochs", "ten"), ("EPOCHS", "ten"), ("learning_rate", "fast"), ("PARTICIPANTS_COUNT", "two")],
)
def test_bad_env_value_names_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    result = run_plato(QUICKSTART / "fedavg.toml", tmp_path, **aggregator(**{variable: value}))

    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"plato: error: {variable}='{value}'")
    assert "Traceback" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_plato(tmp_path / "absent.toml", tmp_path)

    assert result.returncode == 2
    assert "absent.toml does not exist" in result.stderr and "Traceback" not in result.stderr


def test_unknown_datasource_is_reported_at_start(tmp_path: Path) -> None:
    config = tmp_path / "typo.toml"
    config.write_text((QUICKSTART / "fedavg.toml").read_text().replace("sednaDataResource", "sednaDataResorce"))

    result = run_plato(config, tmp_path, **aggregator())

    assert result.returncode == 2
    assert "data.datasource = 'sednaDataResorce' is not known" in result.stderr
    assert "sednaDataResource" in result.stderr  # the registered names are listed
    assert "Traceback" not in result.stderr


def test_trainer_with_missing_dataset_fails_before_connecting(tmp_path: Path) -> None:
    result = run_plato(
        QUICKSTART / "fedavg.toml",
        tmp_path,
        AGG_IP="127.0.0.1",
        AGG_PORT=str(free_port()),
        PARTICIPANTS_COUNT="2",
        DATASET_NAME="edge9",
        TRAIN_DATASET_URL=str(tmp_path / "nowhere" / "train.txt"),
    )

    assert result.returncode == 2
    assert "train.txt does not exist" in result.stderr and "TRAIN_DATASET_URL" in result.stderr
    assert "Traceback" not in result.stderr
