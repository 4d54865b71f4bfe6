"""Bytes on the socket and round time per round, TRANSMITTER=ws vs s3, for the quickstart model and a ~25 MB one."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "demos" / "quickstart"
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(QUICKSTART))

from support.processes import plain_env
from support.s3_server import S3Server
from test_s3_transmitter_e2e import with_s3_transmitter

# lenet5's last layer is 84 x num_classes: 75 000 classes make it ~6.4 M parameters, ~25 MB.
MODELS = {"quickstart": 10, "25MB": 75_000}
TRANSMITTERS = ("ws", "s3")
METER_ENV = "BENCH_SOCKET_METER"
JOB_DONE_EVENT = "plato_sedna_job_done"  # servers.sedna.JOB_DONE_EVENT

# Loaded by every Python process of a run (PYTHONPATH): wraps socket.io's emit on both
# sides and appends one JSON line per emitted event with the bytes it carries.
SITECUSTOMIZE = '''
import os

if os.environ.get("BENCH_SOCKET_METER"):
    import json
    import time

    import socketio

    _LOG = os.path.join(os.environ["BENCH_SOCKET_METER"], f"{os.getpid()}.jsonl")

    def _size(value):
        if isinstance(value, (bytes, bytearray, memoryview)):
            return len(value)  # a binary attachment
        if isinstance(value, dict):
            return sum(_size(key) + _size(item) for key, item in value.items())
        if isinstance(value, (list, tuple)):
            return sum(_size(item) for item in value)
        return len(json.dumps(value, default=str))

    def _metered(cls, side):
        emit = cls.emit

        async def metered_emit(self, event, data=None, *args, **kwargs):
            record = {"t": time.time(), "side": side, "event": event, "bytes": len(event) + _size(data)}
            if event == "payload_to_arrive":
                record["round"] = data["response"]["current_round"]
            with open(_LOG, "a") as log:
                log.write(json.dumps(record) + "\\n")
            return await emit(self, event, data, *args, **kwargs)

        cls.emit = metered_emit

    _metered(socketio.AsyncServer, "aggregator")
    _metered(socketio.AsyncClient, "trainer")
'''


@dataclass
class RoundTraffic:
    """One round: socket bytes each way and its wall time (start of this round to the next)."""

    down: int = 0
    up: int = 0
    seconds: float = 0.0


def prepare_job(folder: Path, data: Path, num_classes: int, rounds: int) -> Path:
    """The quickstart job in ``folder``: ``rounds`` rounds always run, lenet5 with ``num_classes`` outputs."""
    folder.mkdir()
    (folder / "data").symlink_to(data, target_is_directory=True)
    config = (QUICKSTART / "fedavg.toml").read_text()
    config = config.replace("target_accuracy = 0.97", "target_accuracy = 1.0")
    (folder / "fedavg.toml").write_text(config.replace("num_classes = 10", f"num_classes = {num_classes}"))
    job = folder / "job.yaml"
    job.write_text((QUICKSTART / "job.yaml").read_text().replace('value: "10"', f'value: "{rounds}"'))
    return job


def run_job(job: Path, workdir: Path, meter: Path, hooks: Path, timeout_s: float) -> None:
    """`plato-sedna run` with the socket meter loaded in every process."""
    meter.mkdir()
    env = plain_env(**{METER_ENV: str(meter)})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hooks), env.get("PYTHONPATH")]))
    command = [str(Path(sys.executable).parent / "plato-sedna"), "run", str(job), "--workdir", str(workdir)]
    result = subprocess.run(command + ["--timeout", str(timeout_s)], env=env, capture_output=True, text=True, timeout=timeout_s + 60)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def read_records(meter: Path) -> list[dict]:
    lines = (line for path in meter.glob("*.jsonl") for line in path.read_text().splitlines())
    return sorted((json.loads(line) for line in lines), key=lambda record: record["t"])


def per_round(records: Iterable[dict]) -> list[RoundTraffic]:
    """Bytes and seconds of each round, from the aggregator's first ``payload_to_arrive`` of
    that round to that of the next (the last round ends when the job-done event is sent)."""
    records = list(records)
    starts: dict[int, float] = {}
    for record in records:
        if "round" in record:
            starts.setdefault(record["round"], record["t"])
    end = next(record["t"] for record in records if record["event"] == JOB_DONE_EVENT)
    bounds = sorted(starts.values()) + [end]
    rounds = [RoundTraffic(seconds=bounds[i + 1] - bounds[i]) for i in range(len(starts))]
    for record in records:
        index = sum(1 for start in bounds[:-1] if start <= record["t"]) - 1
        if 0 <= index < len(rounds) and record["t"] < end:
            direction = "down" if record["side"] == "aggregator" else "up"
            setattr(rounds[index], direction, getattr(rounds[index], direction) + record["bytes"])
    return rounds


def model_megabytes(num_classes: int) -> float:
    from plato.models import lenet5

    model = lenet5.Model(num_classes=num_classes)
    return sum(tensor.numel() * tensor.element_size() for tensor in model.state_dict().values()) / 1024**2


def print_side_by_side(name: str, megabytes: float, traffic: dict[str, list[RoundTraffic]]) -> None:
    print(f"\n{name}: lenet5, {megabytes:.2f} MB of weights, 2 trainers")
    header = " | ".join(f"{t}: socket down B  socket up B  round s" for t in TRANSMITTERS)
    print(f"round | {header}")
    rows = zip(*(traffic[t] for t in TRANSMITTERS))
    for number, row in enumerate(rows, start=1):
        cells = " | ".join(f"{r.down:>17,} {r.up:>12,} {r.seconds:>8.2f}" for r in row)
        print(f"{number:>5} | {cells}")
    means = " | ".join(
        f"{sum(r.down for r in traffic[t]) // len(traffic[t]):>17,} "
        f"{sum(r.up for r in traffic[t]) // len(traffic[t]):>12,} "
        f"{sum(r.seconds for r in traffic[t]) / len(traffic[t]):>8.2f}"
        for t in TRANSMITTERS
    )
    print(f" mean | {means}")


def main(argv: list[str] | None = None) -> int:
    """Run each model with each transmitter and print the rounds side by side."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per run (default 3)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="models to run")
    parser.add_argument("--run-timeout", type=float, default=600, help="seconds before a run is stopped")
    args = parser.parse_args(argv)
    from prepare_data import prepare

    with tempfile.TemporaryDirectory(prefix="bench_transmitter_") as folder, S3Server() as s3:
        work = Path(folder)
        hooks = work / "hooks"
        hooks.mkdir()
        (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
        data = work / "data"
        data.mkdir()
        prepare(data)
        s3.client().create_bucket(Bucket="bench")
        for name in args.models:
            traffic = {}
            for transmitter in TRANSMITTERS:
                run = work / f"{name}-{transmitter}"
                run.mkdir()
                job = prepare_job(run / "job", data, MODELS[name], args.rounds)
                if transmitter == "s3":
                    with_s3_transmitter(job, f"s3://bench/{name}", s3.endpoint_url)
                run_job(job, run / "workdir", run / "meter", hooks, args.run_timeout)
                traffic[transmitter] = per_round(read_records(run / "meter"))
                shutil.rmtree(run / "workdir", ignore_errors=True)
            print_side_by_side(name, model_megabytes(MODELS[name]), traffic)
    return 0


if __name__ == "__main__":
    sys.exit(main())
