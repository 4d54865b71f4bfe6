"""Wall time of a plain Plato run through `plato` vs Plato's own launcher, and plato_sedna's import cost."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.fake_mnist import (
    plato_own_command,
    plato_sedna_command,
    write_fake_mnist,
    write_plain_config,
    write_plato_launcher,
)
from support.processes import free_port, plain_env, reap_clients, start_run, wait_run

WALL_TARGET = 1.05
IMPORT_TARGET_S = 0.3
PLATO_REGISTRIES = (
    "plato.servers.registry, plato.clients.registry, "
    "plato.datasources.registry, plato.models.registry"
)
# In-process: the cost `import plato_sedna` adds once Plato's launcher has imported its registries.
IMPORT_AFTER_PLATO = (
    f"import time, {PLATO_REGISTRIES}\n"
    "start = time.perf_counter()\n"
    "import plato_sedna\n"
    "print(time.perf_counter() - start)\n"
)

CommandFor = Callable[[Path, Path], list[str]]


def _timed_run(command_for: CommandFor, folder: Path, rounds: int, timeout_s: float) -> float:
    """Seconds from start to exit of one run in a fresh base on a free port."""
    folder.mkdir()
    base = folder / "base"
    write_fake_mnist(base)
    config = write_plain_config(folder / "config.toml", free_port(), rounds=rounds)
    log = folder / "run.log"
    start = time.perf_counter()
    process = start_run(command_for(config, base), folder, log)
    returncode = wait_run(process, timeout_s)
    wall_s = time.perf_counter() - start
    reap_clients(process)
    if returncode != 0:
        sys.exit(f"{' '.join(command_for(config, base))} exited {returncode}; see {log}")
    return wall_s


def bench_runs(work: Path, runs: int, rounds: int, timeout_s: float) -> tuple[list[float], list[float]]:
    """Alternate Plato's launcher and `plato`, `runs` times each; their wall times."""
    launcher = write_plato_launcher(work / "plato_launcher.py")
    launchers: dict[str, CommandFor] = {
        "Plato": lambda config, base: plato_own_command(launcher, config, base),
        "plato": plato_sedna_command,
    }
    walls: dict[str, list[float]] = {name: [] for name in launchers}
    for index in range(runs):
        for name, command_for in launchers.items():
            wall_s = _timed_run(command_for, work / f"{name}-{index}", rounds, timeout_s)
            walls[name].append(wall_s)
            print(f"run {index + 1}/{runs} {name:<6} {wall_s:7.2f} s", flush=True)
    return walls["Plato"], walls["plato"]


def _python_seconds(code: str, cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of `python -c code` in a fresh interpreter."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, check=True, timeout=300)
    return time.perf_counter() - start


def _python_output(code: str, cwd: Path, env: dict[str, str]) -> float:
    """The number `python -c code` prints, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, check=True, timeout=300,
        capture_output=True, text=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def bench_imports(work: Path, repetitions: int) -> tuple[float, float]:
    """Medians: fresh-interpreter `import plato_sedna` minus `pass`, and in-process after Plato's registries."""
    folder = work / "imports"
    folder.mkdir()
    env = plain_env()
    # Plato's registries call Config() at import, which needs a config file and a base.
    env["config_file"] = str(write_plain_config(folder / "config.toml", free_port()))
    bare, alone, after_plato = [], [], []
    for _ in range(repetitions):
        bare.append(_python_seconds("pass", folder, env))
        alone.append(_python_seconds("import plato_sedna", folder, env))
        after_plato.append(_python_output(IMPORT_AFTER_PLATO, folder, env))
    return statistics.median(alone) - statistics.median(bare), statistics.median(after_plato)


def main(argv: list[str] | None = None) -> int:
    """Print per-run wall times, the median ratio plato/Plato and the import costs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per launcher (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="training rounds per run (default 2)")
    parser.add_argument("--import-reps", type=int, default=5, help="fresh interpreters per import measure")
    parser.add_argument("--run-timeout", type=float, default=600, help="seconds before a run is killed")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_launcher_") as folder:
        work = Path(folder)
        plato_own, plato_sedna = bench_runs(work, args.runs, args.rounds, args.run_timeout)
        import_alone_s, import_after_plato_s = bench_imports(work, args.import_reps)

    ratio = statistics.median(plato_sedna) / statistics.median(plato_own)
    print(f"median wall: Plato {statistics.median(plato_own):.2f} s, plato {statistics.median(plato_sedna):.2f} s")
    print(f"wall-time ratio plato/Plato (median of {args.runs}): {ratio:.3f} (target <= {WALL_TARGET})")
    print(
        f"import plato_sedna after Plato's registries (in-process, median of {args.import_reps}):"
        f" {import_after_plato_s:.3f} s (target <= {IMPORT_TARGET_S})"
    )
    print(
        f"import plato_sedna alone (fresh interpreter minus bare start-up, median of {args.import_reps}):"
        f" {import_alone_s:.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
