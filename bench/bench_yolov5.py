"""Seconds per round and per image: the YOLOv5 demo's two-trainer run vs ultralytics on the union in one process."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demos" / "yolov5"
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(DEMO))

from prepare_data import EDGE_NODES, prepare_shapes
from support.processes import plain_env
from test_yolov5_demo import demo_job

# Run in a fresh interpreter: ultralytics' own training of the same model on all edges' images.
CENTRAL = """
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from plato_sedna.trainers import yolo_offline
yolo_offline.prepare(Path({folder!r}) / "ultralytics")
import torch
torch.set_num_threads({threads})
from ultralytics import YOLO
model = YOLO("yolov5n.yaml")
started = time.perf_counter()
model.train(data={data!r}, epochs={epochs}, imgsz={imgsz}, batch={batch}, nbs={batch}, device="cpu",
            workers=0, plots=False, amp=False, val=False, optimizer="AdamW", lr0=0.004, warmup_epochs=0,
            project={folder!r}, name="central", exist_ok=True, verbose=False)
print(json.dumps({{"seconds": time.perf_counter() - started}}))
"""


def union_yaml(data: Path, target: Path) -> Path:
    """An ultralytics data YAML training on every edge node's images, validating on the val set."""
    import yaml

    names = yaml.safe_load((data / "val" / "data.yaml").read_text())["names"]
    config = {
        "train": [str(data / node / "images" / "train") for node in EDGE_NODES],
        "val": str(data / "val" / "images" / "val"),
        "names": names,
    }
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


def federated_seconds_per_round(folder: Path, data: Path, args) -> tuple[float, float]:
    """Mean seconds of rounds 2..R (round 1 also waits for the trainers to join), and the final mAP50."""
    job = demo_job(
        folder / "job", data, args.rounds, args.epochs, args.batch, args.imgsz
    )
    workdir = folder / "federated"
    command = [
        sys.executable,
        "-c",
        "import sys; from plato_sedna.cli import plato_sedna_main as m; sys.exit(m())",
        "run",
        str(job),
        "--workdir",
        str(workdir),
    ]
    env = plain_env()
    env.pop("OMP_NUM_THREADS")  # plato-sedna run shares the cores among the trainers
    result = subprocess.run(
        command,
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=args.timeout,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"the federated run failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    summary = json.loads((workdir / "summary.json").read_text())
    history = json.loads(
        (Path(summary["model_url"]).parent / "metrics.json").read_text()
    )["history"]
    elapsed = [record["elapsed_s"] for record in history]
    rounds = [b - a for a, b in itertools.pairwise(elapsed)] or elapsed[:1]
    return sum(rounds) / len(rounds), summary["accuracy"]


def central_seconds_per_round(folder: Path, data: Path, args, threads: int) -> float:
    """ultralytics ``YOLO.train`` for rounds x epochs epochs on the union, per round's epochs."""
    code = CENTRAL.format(
        repo=str(REPO),
        folder=str(folder),
        threads=threads,
        data=str(union_yaml(data, folder / "union.yaml")),
        epochs=args.rounds * args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=plain_env(OMP_NUM_THREADS=str(threads)),
        capture_output=True,
        text=True,
        timeout=args.timeout,
    )
    if result.returncode != 0:
        raise SystemExit(f"the central run failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"] / args.rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--per-edge", type=int, default=16, help="training images per edge node"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per round")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--imgsz", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-yolov5-") as scratch:
        folder = Path(scratch)
        prepare_shapes(
            folder / "data",
            per_edge=args.per_edge,
            val=max(4, args.per_edge // 2),
            side=args.imgsz,
        )
        images = (
            args.per_edge * len(EDGE_NODES) * args.epochs
        )  # training images seen per round
        started = time.perf_counter()
        federated, map50 = federated_seconds_per_round(folder, folder / "data", args)
        federated_wall = time.perf_counter() - started
        central = central_seconds_per_round(folder, folder / "data", args, threads)
    print(
        f"data: {args.per_edge} images per edge x {len(EDGE_NODES)} edges, {args.epochs} epoch(s) per round, "
        f"{args.rounds} rounds, imgsz {args.imgsz}, batch {args.batch}, {threads} core(s)"
    )
    print(
        f"federated (2 trainers, plato-sedna run): {federated:.2f} s/round  {federated / images:.4f} s/image"
        f"  (mAP50 {map50:.4f}, whole run {federated_wall:.1f} s)"
    )
    print(
        f"central (ultralytics, one process):     {central:.2f} s/round  {central / images:.4f} s/image"
    )
    print(f"ratio federated/central: {federated / central:.2f}")


if __name__ == "__main__":
    main()
