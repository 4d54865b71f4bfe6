"""What a MistNet trainer uploads once: its bit-packed features and labels, and the dataset the aggregator trains on."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class FeatureUpload:
    """One trainer's features at the cut, one bit per activation, packed 8 to a byte.

    packed : uint8 array (samples, ceil(bits / 8))
    labels : int64 array (samples,)
    feature_shape : the shape of one sample's features (e.g. (120, 1, 1))
    """

    packed: np.ndarray
    labels: np.ndarray
    feature_shape: tuple[int, ...]

    @classmethod
    def from_bits(cls, bits: Sequence[torch.Tensor], labels: Sequence[torch.Tensor]) -> FeatureUpload:
        """From batches of boolean features (samples first) and their labels."""
        if not bits:
            return cls(np.zeros((0, 0), np.uint8), np.zeros(0, np.int64), ())
        feature_shape = tuple(bits[0].shape[1:])
        packed = [np.packbits(batch.reshape(batch.shape[0], -1).numpy(), axis=1) for batch in bits]
        return cls(
            np.concatenate(packed),
            np.concatenate([batch.cpu().numpy().astype(np.int64) for batch in labels]),
            feature_shape,
        )

    @property
    def num_samples(self) -> int:
        return int(self.labels.shape[0])

    @property
    def bits_per_sample(self) -> int:
        return int(np.prod(self.feature_shape)) if self.feature_shape else 0

    def features(self) -> torch.Tensor:
        """The features as a float 0/1 tensor of shape (samples, *feature_shape)."""
        bits = np.unpackbits(self.packed, axis=1, count=self.bits_per_sample)
        return torch.from_numpy(bits.astype(np.float32)).reshape(self.num_samples, *self.feature_shape)



@dataclass(frozen=True)
class TrainerUpload:
    """Everything a MistNet trainer sends: its training features, and held-out ones to test on.

    ``held_out`` is present when the aggregator has no test set of its own (no
    ``TEST_DATASET_URL``): the trainer then holds out part of its data, as it
    would to test a FedAvg model, and sends its features, noised the same way.
    """

    train: FeatureUpload
    held_out: FeatureUpload | None = None

    def size_bytes(self) -> int:
        """Bytes of this upload as Plato sends it (pickled)."""
        return len(pickle.dumps(self))


class FeatureSet(torch.utils.data.Dataset):
    """All trainers' uploads as one dataset of (features, label)."""

    def __init__(self, uploads: Sequence[FeatureUpload]) -> None:
        uploads = [upload for upload in uploads if upload.num_samples]
        shapes = {upload.feature_shape for upload in uploads}
        if len(shapes) > 1:
            raise ValueError(f"trainers uploaded features of different shapes {sorted(shapes)}; they cut the model differently")
        self.inputs = torch.cat([upload.features() for upload in uploads]) if uploads else torch.zeros(0)
        self.targets = torch.from_numpy(np.concatenate([upload.labels for upload in uploads])) if uploads else torch.zeros(0, dtype=torch.int64)

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]
