"""Fake MNIST IDX files from scikit-learn's digits, and a minimal plain Plato config."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Mapping
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def plain_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` minus every variable Sedna (or `plato-sedna run`) sets, one thread per process.

    Concurrent training processes on a small machine must not each take every core.
    """
    from plato_sedna.local.manifests import inherited_env

    env = inherited_env(os.environ if environ is None else environ)
    env = {name: value for name, value in env.items() if not name.startswith("PLATO_SEDNA_")}
    env["OMP_NUM_THREADS"] = "1"
    return env
