"""MistNet features of a detection set: what a trainer uploads for an ultralytics model, and reading it back.

A trainer loads its images with ultralytics' own loader, without augmentation
(letterboxed to ``imgsz`` square, as validation sees them), runs the frozen front,
and keeps every tensor crossing the cut (see :mod:`plato_sedna.algorithms.yolo_split`)
as bits, packed 8 to a byte, with each image's boxes. The aggregator reads them
back in shuffled batches, unpacking one batch at a time (the unpacked features of
a whole set could be large: 32 bits for every bit uploaded).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from plato_sedna.algorithms.randomized_response import binarize, randomized_response


@dataclass(frozen=True)
class DetectionFeatureUpload:
    """One trainer's features at the cut and its boxes.

    packed : per crossing tensor, a uint8 array (images, ceil(bits / 8))
    shapes : per crossing tensor, one image's shape (channels, height, width)
    boxes : per image, a float32 array (boxes, 5): class, x, y, w, h (normalised centre format)
    """

    packed: tuple[np.ndarray, ...]
    shapes: tuple[tuple[int, ...], ...]
    boxes: tuple[np.ndarray, ...]

    @classmethod
    def from_batches(cls, bits: Sequence[Sequence[torch.Tensor]], boxes: Sequence[np.ndarray]) -> DetectionFeatureUpload:
        """From batches of boolean crossing tensors (one tuple per batch) and each image's boxes."""
        if not bits:
            return cls((), (), ())
        shapes = tuple(tuple(tensor.shape[1:]) for tensor in bits[0])
        packed = tuple(
            np.concatenate([np.packbits(batch[k].reshape(batch[k].shape[0], -1).numpy(), axis=1) for batch in bits])
            for k in range(len(shapes))
        )
        return cls(packed, shapes, tuple(boxes))

    @property
    def num_samples(self) -> int:
        return len(self.boxes)

    @property
    def bits_per_sample(self) -> int:
        return sum(int(np.prod(shape)) for shape in self.shapes)

    def size_bytes(self) -> int:
        return len(pickle.dumps(self))


class DetectionFeatureSet:
    """All trainers' uploads as one set the aggregator draws batches from."""

    def __init__(self, uploads: Sequence[DetectionFeatureUpload]) -> None:
        uploads = [upload for upload in uploads if upload.num_samples]
        shapes = {upload.shapes for upload in uploads}
        if len(shapes) > 1:
            raise ValueError(f"trainers uploaded features of different shapes {sorted(shapes)}; they cut the model differently")
        self.shapes = shapes.pop() if shapes else ()
        self.packed = tuple(np.concatenate([u.packed[k] for u in uploads]) for k in range(len(self.shapes)))
        self.boxes = [rows for upload in uploads for rows in upload.boxes]

    def __len__(self) -> int:
        return len(self.boxes)

    def features(self, indices: np.ndarray) -> list[torch.Tensor]:
        """The chosen images' crossing tensors as float 0/1 tensors."""
        return [
            torch.from_numpy(np.unpackbits(packed[indices], axis=1, count=int(np.prod(shape))).astype(np.float32))
            .reshape(len(indices), *shape)
            for packed, shape in zip(self.packed, self.shapes, strict=True)
        ]

    def targets(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """The chosen images' boxes as ultralytics' loss reads a batch: ``batch_idx``, ``cls``, ``bboxes``."""
        rows = [self.boxes[index] for index in indices]
        stacked = torch.from_numpy(np.concatenate(rows).reshape(-1, 5) if rows else np.zeros((0, 5), np.float32))
        image = torch.cat([torch.full((len(r),), float(n)) for n, r in enumerate(rows)]) if rows else torch.zeros(0)
        return {"batch_idx": image, "cls": stacked[:, :1], "bboxes": stacked[:, 1:]}

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[list[torch.Tensor], dict]]:
        """One epoch of (features, targets) batches, reshuffled each call."""
        order = torch.randperm(len(self), generator=generator).numpy()
        for start in range(0, len(order), batch_size):
            chosen = np.sort(order[start : start + batch_size])
            yield self.features(chosen), self.targets(chosen)


def extract(split, trainset, sampler, *, batch_size: int, device, keep_probability: float | None,
            generator: torch.Generator, work_dir: Path) -> DetectionFeatureUpload:
    """Run ``split.front`` over the sampled images of a YOLO-layout ``trainset``; binarise, add the noise, pack.

    ``keep_probability`` None: binarise only.
    """
    loader = _image_loader(trainset, sampler, batch_size, int(max(split.model.stride)), work_dir)
    front = split.front.to(device).eval()
    bits, boxes = [], []
    with torch.no_grad():
        for batch in loader:
            crossing = front(batch["img"].to(device).float() / 255)
            batch_bits = []
            for tensor in crossing:
                flags = binarize(tensor).cpu()
                batch_bits.append(flags if keep_probability is None else randomized_response(flags, keep_probability, generator))
            bits.append(tuple(batch_bits))
            rows = torch.cat((batch["cls"].view(-1, 1), batch["bboxes"]), 1).float().numpy()
            image = batch["batch_idx"].numpy()
            boxes.extend(rows[image == n] for n in range(len(batch["img"])))
    return DetectionFeatureUpload.from_batches(bits, boxes)


def _image_loader(trainset, sampler, batch_size: int, stride: int, work_dir: Path):
    """Ultralytics' loader over the sampled images, without augmentation, letterboxed to ``imgsz`` square."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset

    from plato_sedna.trainers.yolo_arguments import DEFAULT_IMAGE_SIZE
    from plato_sedna.trainers.yolo_data import data_yaml_for

    data_yaml_for(trainset, sampler, work_dir, "train")
    image_size = int(getattr(trainset, "image_size", None) or DEFAULT_IMAGE_SIZE)
    cfg = get_cfg(overrides={"imgsz": image_size, "rect": False, "task": "detect", "verbose": False})
    names = dict(enumerate(trainset.classes))
    data = {"names": names, "nc": len(names), "channels": 3}
    dataset = build_yolo_dataset(cfg, str(work_dir / "train.txt"), batch_size, data, mode="val", rect=False, stride=stride)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=dataset.collate_fn)
