"""Write scikit-learn's digits as PNG images with Sedna txt indexes, offline.

Layout (under ``data/`` beside this script, or the folder given as argument)::

    images/00000.png ...   28x28 grayscale, so Plato's lenet5 takes them as is
    edge1.txt edge2.txt    the two edge nodes' training indexes ("images/x.png label")
    train.txt              both together: one Dataset that trainers partition (noniid/)
    test.txt               the held-out test index the aggregator evaluates on
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

IMAGE_SIDE = 28
EDGE_NODES = ("edge1", "edge2")
TEST_FRACTION = 0.2
SEED = 0


def _write_image(pixels, path: Path) -> None:
    import numpy as np
    from PIL import Image

    scaled = (np.asarray(pixels, dtype=np.float32) * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(scaled, mode="L").resize((IMAGE_SIDE, IMAGE_SIDE), Image.BILINEAR)
    image.save(path)


def _write_index(path: Path, entries: list[tuple[str, int]]) -> None:
    path.write_text("".join(f"{name} {label}\n" for name, label in entries), encoding="utf-8")


def prepare(out_dir: Path) -> dict[str, int]:
    """Write the images and indexes into ``out_dir``; returns the sample count per index."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for number, (pixels, label) in enumerate(zip(digits.images, digits.target)):
        name = f"images/{number:05d}.png"
        _write_image(pixels, out_dir / name)
        entries.append((name, int(label)))
    random.Random(SEED).shuffle(entries)
    test_count = round(len(entries) * TEST_FRACTION)
    splits = {"test": entries[:test_count]}
    training = entries[test_count:]
    splits["train"] = training
    for position, node in enumerate(EDGE_NODES):
        splits[node] = training[position :: len(EDGE_NODES)]
    for name, split in splits.items():
        _write_index(out_dir / f"{name}.txt", split)
    return {name: len(split) for name, split in splits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path(__file__).parent / "data")
    counts = prepare(parser.parse_args().out_dir)
    print("digits written: " + ", ".join(f"{name} {count}" for name, count in counts.items()))


if __name__ == "__main__":
    main()
