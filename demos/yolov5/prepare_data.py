"""Write the YOLOv5 demo's detection data: a generated shapes set offline, or coco128 with a network.

Layout (under ``data/`` beside this script, or the folder given as argument), one
ultralytics dataset per edge node and one for the aggregator's tests::

    edge1/data.yaml  edge1/images/{train,val}/*.png  edge1/labels/{train,val}/*.txt
    edge2/...
    val/data.yaml    val/images/val/*.png            val/labels/val/*.txt

``--source shapes`` (the default, offline): coloured circles, squares and triangles
on noisy backgrounds, one to three per image, with YOLO labels (``class cx cy w h``,
normalised). ``--source coco128`` downloads ultralytics' coco128 (128 images, 80
classes) and splits it across the edge nodes; its val set is coco128 itself, as in
ultralytics' own coco128.yaml.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

EDGE_NODES = ("edge1", "edge2")
CLASSES = ("circle", "square", "triangle")
SEED = 0
COCO128_URL = (
    "https://github.com/ultralytics/assets/releases/download/v0.0.0/coco128.zip"
)


def _background(rng: random.Random, side: int):
    import numpy as np

    base = np.array([rng.randint(0, 90) for _ in range(3)], dtype=np.int16)
    noise = np.random.default_rng(rng.randint(0, 2**31)).integers(
        -25, 26, (side, side, 3)
    )
    return (base + noise).clip(0, 255).astype(np.uint8)


def _draw_shape(
    draw, cls: int, box: tuple[int, int, int, int], colour: tuple[int, int, int]
) -> None:
    x0, y0, x1, y1 = box
    if cls == 0:
        draw.ellipse(box, fill=colour)
    elif cls == 1:
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=colour)


def _shapes_image(rng: random.Random, side: int):
    """One image and its label rows: shapes that do not overlap, each 25-45 % of the side."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(_background(rng, side))
    draw = ImageDraw.Draw(image)
    rows, boxes = [], []
    for _ in range(rng.randint(1, 3)):
        size = rng.randint(side // 4, side * 45 // 100)
        for _attempt in range(20):
            x0, y0 = rng.randint(0, side - size), rng.randint(0, side - size)
            box = (x0, y0, x0 + size, y0 + size)
            if all(
                box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1]
                for b in boxes
            ):
                break
        else:
            continue
        cls = rng.randrange(len(CLASSES))
        _draw_shape(draw, cls, box, tuple(rng.randint(150, 255) for _ in range(3)))
        boxes.append(box)
        rows.append(
            (
                cls,
                (x0 + size / 2) / side,
                (y0 + size / 2) / side,
                size / side,
                size / side,
            )
        )
    return image, rows


def _write_split(
    root: Path, split: str, count: int, rng: random.Random, side: int
) -> None:
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for number in range(count):
        image, rows = _shapes_image(rng, side)
        image.save(root / "images" / split / f"{number:04d}.png")
        text = "".join(
            f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in rows
        )
        (root / "labels" / split / f"{number:04d}.txt").write_text(
            text, encoding="utf-8"
        )


def write_data_yaml(root: Path, names, train: str, val: str) -> None:
    """An ultralytics data YAML without ``path`` (its own folder is the root)."""
    import yaml

    config = {"train": train, "val": val, "names": dict(enumerate(names))}
    (root / "data.yaml").write_text(
        yaml.safe_dump(config, sort_keys=False), encoding="utf-8"
    )


def prepare_shapes(
    out_dir: Path, per_edge: int = 48, val: int = 32, side: int = 80
) -> dict[str, int]:
    """The generated set: ``per_edge`` training images (+ a quarter as local val) per edge node."""
    rng = random.Random(SEED)
    counts = {}
    for node in EDGE_NODES:
        root = out_dir / node
        _write_split(root, "train", per_edge, rng, side)
        _write_split(root, "val", max(1, per_edge // 4), rng, side)
        write_data_yaml(root, CLASSES, "images/train", "images/val")
        counts[node] = per_edge
    _write_split(out_dir / "val", "val", val, rng, side)
    write_data_yaml(out_dir / "val", CLASSES, "images/val", "images/val")
    counts["val"] = val
    return counts


def prepare_coco128(out_dir: Path) -> dict[str, int]:
    """coco128 (downloaded once) split across the edge nodes; needs a network."""
    import yaml
    from ultralytics.utils import ROOT

    names = yaml.safe_load((ROOT / "cfg" / "datasets" / "coco128.yaml").read_text())[
        "names"
    ]
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "coco128.zip"
        urllib.request.urlretrieve(COCO128_URL, archive)
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(scratch)
        source = Path(scratch) / "coco128"
        images = sorted((source / "images" / "train2017").glob("*.jpg"))
        counts = {}
        for position, node in enumerate(EDGE_NODES):
            mine = images[position :: len(EDGE_NODES)]
            _copy_with_labels(mine, source, out_dir / node, "train")
            write_data_yaml(
                out_dir / node,
                [names[i] for i in range(len(names))],
                "images/train",
                "images/train",
            )
            counts[node] = len(mine)
        _copy_with_labels(images, source, out_dir / "val", "val")
        write_data_yaml(
            out_dir / "val",
            [names[i] for i in range(len(names))],
            "images/val",
            "images/val",
        )
        counts["val"] = len(images)
    return counts


def _copy_with_labels(images: list[Path], source: Path, root: Path, split: str) -> None:
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for image in images:
        shutil.copy(image, root / "images" / split / image.name)
        label = source / "labels" / "train2017" / f"{image.stem}.txt"
        if label.is_file():  # an image without a label file has no objects
            shutil.copy(label, root / "labels" / split / label.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "out_dir", nargs="?", type=Path, default=Path(__file__).parent / "data"
    )
    parser.add_argument("--source", choices=("shapes", "coco128"), default="shapes")
    parser.add_argument(
        "--per-edge", type=int, default=48, help="shapes: training images per edge node"
    )
    parser.add_argument(
        "--val", type=int, default=32, help="shapes: images in the aggregator's val set"
    )
    parser.add_argument(
        "--side", type=int, default=80, help="shapes: image side in pixels"
    )
    args = parser.parse_args()
    if args.source == "coco128":
        counts = prepare_coco128(args.out_dir)
    else:
        counts = prepare_shapes(args.out_dir, args.per_edge, args.val, args.side)
    print(
        f"{args.source} written to {args.out_dir}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )


if __name__ == "__main__":
    main()
