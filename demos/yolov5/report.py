"""After `plato-sedna run demos/yolov5/job.yaml`: a per-round mAP plot and the final model's detections.

Writes, into the run's workdir (where summary.json is):

    map_per_round.png   mAP50 (the round's accuracy) and mAP50-95 of the global model per round
    detections.png      the published model (loaded with ultralytics.YOLO) on one val image

mAP50-95 comes from the aggregator's ``runtime/results/detection_metrics.csv`` (written
by the yolov5 trainer); without it the plot has mAP50 from the model's metrics.json.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_WORKDIR = Path("runs") / "yolov5-fedavg"
DEFAULT_IMAGE = HERE / "data" / "val" / "images" / "val" / "0000.png"
DRAWN_SIDE = 384


def map_history(workdir: Path, summary: dict) -> dict[str, list[float]]:
    """``round``, ``mAP50`` and (when recorded) ``mAP50-95`` per round of the global model."""
    aggregator_log = Path(summary["workers"]["aggregator"]["log"])
    recorded = aggregator_log.parent / "runtime" / "results" / "detection_metrics.csv"
    if recorded.is_file():
        with recorded.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        return {
            "round": [int(row["round"]) for row in rows],
            "mAP50": [float(row["mAP50"]) for row in rows],
            "mAP50-95": [float(row["mAP50-95"]) for row in rows],
        }
    metrics = json.loads(
        (Path(summary["model_url"]).parent / "metrics.json").read_text()
    )
    history = metrics.get("history", [])
    return {
        "round": [r["round"] for r in history],
        "mAP50": [r["accuracy"] for r in history],
    }


def plot_map(history: dict[str, list[float]], target: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axis = pyplot.subplots(figsize=(6.4, 4.0), dpi=100)
    try:
        for key, style in (("mAP50", "o-"), ("mAP50-95", "s--")):
            if key in history:
                axis.plot(history["round"], history[key], style, label=key)
        axis.set_xlabel("round")
        axis.set_ylabel("mAP of the global model")
        axis.set_ylim(bottom=0)
        axis.set_title(title)
        axis.legend()
        figure.tight_layout()
        figure.savefig(target, format="png")
    finally:
        pyplot.close(figure)
    return target


def draw_detections(
    model_path: Path, image: Path, target: Path, imgsz: int, conf: float
) -> int:
    """Predict on ``image`` with the published model; returns the number of boxes drawn."""
    from plato_sedna.trainers import yolo_offline

    yolo_offline.prepare(target.parent / "ultralytics")
    from PIL import Image
    from ultralytics import YOLO

    with Image.open(image) as opened:
        picture = opened.convert("RGB")
    # Drawn on an enlarged copy so that labels fit; the model still sees imgsz pixels.
    scale = max(1, DRAWN_SIDE // max(picture.size))
    picture = picture.resize(
        (picture.width * scale, picture.height * scale), Image.NEAREST
    )
    result = YOLO(str(model_path)).predict(
        picture, imgsz=imgsz, conf=conf, device="cpu", verbose=False
    )[0]
    drawn = result.plot()  # BGR, as OpenCV draws
    Image.fromarray(drawn[..., ::-1]).save(target)
    return len(result.boxes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", nargs="?", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument(
        "--image", type=Path, default=DEFAULT_IMAGE, help="the image to detect on"
    )
    parser.add_argument(
        "--imgsz",
        type=int,
        default=96,
        help="inference size (the config's data.image_size)",
    )
    parser.add_argument(
        "--conf", type=float, default=0.25, help="confidence threshold of drawn boxes"
    )
    args = parser.parse_args()
    summary = json.loads((args.workdir / "summary.json").read_text())
    plot = plot_map(
        map_history(args.workdir, summary),
        args.workdir / "map_per_round.png",
        summary["job"],
    )
    boxes = draw_detections(
        Path(summary["model_url"]),
        args.image,
        args.workdir / "detections.png",
        args.imgsz,
        args.conf,
    )
    print(f"mAP per round: {plot}")
    print(f"detections ({boxes} boxes): {args.workdir / 'detections.png'}")


if __name__ == "__main__":
    main()
