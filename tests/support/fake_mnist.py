"""Offline plain-Plato runs: fake MNIST IDX files, a minimal config, and both launchers."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np

IMAGE_MAGIC = 2051  # IDX: unsigned bytes, 3 dimensions
LABEL_MAGIC = 2049  # IDX: unsigned bytes, 1 dimension
SIDE = 28


def _digits_as_mnist(count: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` 28x28 uint8 digits (8x8 upscaled 3x, centred), cycling from `offset`."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    picks = (np.arange(count) + offset) % len(digits.images)
    small = digits.images[picks] * (255.0 / 16.0)
    large = small.repeat(3, axis=1).repeat(3, axis=2)
    images = np.zeros((count, SIDE, SIDE), dtype=np.uint8)
    images[:, 2:26, 2:26] = large.round().astype(np.uint8)
    return images, digits.target[picks].astype(np.uint8)


def _write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    header = struct.pack(f">{1 + array.ndim}i", magic, *array.shape)
    path.write_bytes(header + array.tobytes())


def write_fake_mnist(base: Path, train: int = 600, test: int = 200) -> None:
    """Write `<base>/data/MNIST/raw/*-ubyte` and the sentinel so Plato's MNIST loads offline.

    Plato's default `data_path` is `<base>/data`; torchvision only checks that the four
    unpacked raw files exist (no `.gz`, no `processed/`). Train and test samples are
    disjoint as long as `train + test <= 1797` (the size of the digits set).
    """
    mnist_dir = Path(base) / "data" / "MNIST"
    raw_dir = mnist_dir / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    for split, count, offset in (("train", train, 0), ("t10k", test, train)):
        images, labels = _digits_as_mnist(count, offset)
        _write_idx(raw_dir / f"{split}-images-idx3-ubyte", IMAGE_MAGIC, images)
        _write_idx(raw_dir / f"{split}-labels-idx1-ubyte", LABEL_MAGIC, labels)
    (mnist_dir / ".download_complete").touch()


PLAIN_CONFIG = """\
[clients]
type = "simple"
total_clients = 2
per_round = 2
do_test = false

[server]
address = "127.0.0.1"
port = {port}

[data]
datasource = "MNIST"
partition_size = {partition_size}
sampler = "iid"
random_seed = 1

[trainer]
type = "basic"
rounds = {rounds}
epochs = 1
batch_size = 10
optimizer = "SGD"
model_name = "lenet5"

[algorithm]
type = "fedavg"

[parameters]

[parameters.optimizer]
lr = 0.01
momentum = 0.9
weight_decay = 0.0
"""


def write_plain_config(path: Path, port: int, rounds: int = 2, partition_size: int = 300) -> Path:
    """A plain Plato TOML: 2 `simple` clients on fake MNIST, LeNet-5, server on 127.0.0.1:port."""
    path = Path(path)
    path.write_text(PLAIN_CONFIG.format(port=port, rounds=rounds, partition_size=partition_size))
    return path


# Plato's own launcher (its repo's plato.py without the env tweaks). Plato spawns its
# clients with multiprocessing's "spawn", which re-imports a script's __main__: the
# guard is required, or every client starts a server of its own and dies.
PLATO_LAUNCHER = """\
from plato.servers import registry

if __name__ == "__main__":
    registry.get().run()
"""


def write_plato_launcher(path: Path) -> Path:
    """Plato's own launcher as a script file."""
    path = Path(path)
    path.write_text(PLATO_LAUNCHER)
    return path


def plato_own_command(launcher: Path, config: Path, base: Path) -> list[str]:
    """Plato's launcher: `python launcher.py -c config -b base -u`."""
    return [sys.executable, str(launcher), "-c", str(config), "-b", str(base), "-u"]


def plato_sedna_command(config: Path, base: Path) -> list[str]:
    """The plugin's `plato` console script, run as `python -m plato_sedna`."""
    return [sys.executable, "-m", "plato_sedna", "-c", str(config), "-b", str(base), "-u"]


def results_csv(base: Path, pid: int) -> Path:
    """Where Plato's server writes its per-round results: `<base>/results/<server pid>.csv`."""
    return Path(base) / "results" / f"{pid}.csv"
