"""Build the model a worker's resolved config names, in a fresh process, as a pod would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BUILD_MODEL_SCRIPT = """
import os, sys
import plato_sedna
from plato_sedna.config import load_config_file, resolve_config, write_config
from plato_sedna.context import SednaContext

resolved = resolve_config(load_config_file(sys.argv[1]), SednaContext.from_env(os.environ))
path = write_config(resolved, "config.resolved.toml")
os.environ["config_file"] = str(path)
sys.argv = ["plato", "-c", str(path)]
from plato.config import Config
Config()
from plato.models import registry
print("built", type(registry.get()).__module__)
"""


def build_model(config: Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the script; its stdout says ``built <module of the model's class>``."""
    return subprocess.run(
        [sys.executable, "-c", BUILD_MODEL_SCRIPT, str(config)],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_in_fresh_process(
    script: str, config: Path, folder: Path, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python -c script CONFIG FOLDER/base`` in ``folder``, one thread, this repo importable.

    For scripts that build a component from a config as a worker process would and print
    a JSON line last.
    """
    import os

    repo = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-c", script, str(config), str(folder / "base")],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env if env is not None else {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)},
    )
