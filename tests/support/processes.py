"""Test processes: a clean env, free ports, runs in their own session that can be killed whole."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

# `plato-sedna` as a command line, in this interpreter (the venv's console script may be absent).
PLATO_SEDNA = (sys.executable, "-c", "import sys; from plato_sedna.cli import plato_sedna_main as m; sys.exit(m())")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def plain_env(environ: Mapping[str, str] | None = None, **variables: str) -> dict[str, str]:
    """`environ` minus every variable Sedna (or `plato-sedna run`) sets, one thread per process.

    Concurrent training processes on a small machine must not each take every core.
    """
    from plato_sedna.local.environment import inherited_env

    env = inherited_env(os.environ if environ is None else environ)
    env = {name: value for name, value in env.items() if not name.startswith("PLATO_SEDNA_")}
    env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}, **variables)
    return env


def start_run(command: list[str], cwd: Path, log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start a launcher in its own session (so a hang can be killed with its clients)."""
    with open(log, "wb") as log_file:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env) if env is not None else plain_env(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_run(process: subprocess.Popen, timeout: float) -> int:
    """The exit code; on timeout the whole process group is killed and TimeoutExpired raised."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        process.wait()
        raise


def reap_clients(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Give the spawned clients `grace` seconds to leave after the server, then kill them."""
    deadline = time.monotonic() + grace
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    _kill_group(process.pid)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
