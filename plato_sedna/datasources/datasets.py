"""Torch-style datasets over Samples: nothing is read until an item is asked for."""

from __future__ import annotations

from pathlib import Path

from plato_sedna.datasources.entries import EntryLocator
from plato_sedna.datasources.formats.yolo import label_path, read_label_rows
from plato_sedna.datasources.samples import Samples
from plato_sedna.errors import ResourceError

_PLAIN_MODES = ("L", "LA", "RGB", "RGBA")


def image_tensor(image):
    """A PIL image as a ``(channels, height, width)`` float tensor in [0, 1], as torchvision's
    ``to_tensor`` makes it (without importing torchvision, which costs seconds)."""
    import numpy
    import torch

    if image.mode not in _PLAIN_MODES:
        one_band = len(image.getbands()) == 1 and image.mode != "P"
        image = image.convert("L" if one_band else "RGB")
    pixels = numpy.asarray(image, dtype=numpy.float32) / 255.0
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return torch.from_numpy(numpy.ascontiguousarray(pixels.transpose(2, 0, 1)))


class SampleDataset:
    """``len``, ``targets`` and ``classes`` of some Samples (what Plato's samplers read)."""

    def __init__(self, samples: Samples) -> None:
        self.samples = samples
        self.classes = list(samples.classes)

    @property
    def targets(self) -> list[int]:
        return list(self.samples.targets)

    def __len__(self) -> int:
        return len(self.samples)


class TextDataset(SampleDataset):
    """Items ``(text, target)`` of a text table."""

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.samples.entries[index], self.samples.targets[index]


class ImageDataset(SampleDataset):
    """Items ``(image tensor, target)``; a remote entry is fetched (and cached) on first use.

    Parameters
    ----------
    samples : Samples
        The images and their targets.
    image_size : int | None
        Resize every image to ``image_size`` x ``image_size`` (None: keep its size).
    data_path_prefix : str | None
        Sedna's ``DATA_PATH_PREFIX``, for absolute entries missing as written.
    storage : optional
        What fetches remote entries (default: the worker's storage).
    """

    def __init__(
        self,
        samples: Samples,
        image_size: int | None = None,
        data_path_prefix: str | None = None,
        storage=None,
    ) -> None:
        super().__init__(samples)
        self.image_size = image_size
        self.locator = EntryLocator(samples.origin, data_path_prefix, storage)

    def __getitem__(self, index: int):
        return self.image(index), self.samples.targets[index]

    def image_path(self, index: int) -> Path:
        return self.locator.local_path(
            self.samples.entries[index], self.samples.lines[index]
        )

    def image(self, index: int):
        """The image at ``index`` as a float tensor (its own channels).

        Raises
        ------
        ResourceError
            When the file is unreadable or not an image; names the dataset, file and line.
        """
        from PIL import Image, UnidentifiedImageError

        path = self.image_path(index)
        try:
            with Image.open(path) as image:
                image.load()
                if self.image_size:
                    image = image.resize((self.image_size, self.image_size))
                return image_tensor(image)
        except (UnidentifiedImageError, OSError, ImportError) as error:
            # ImportError: once ultralytics is imported, its Image.open patch answers an
            # unreadable file by importing pi_heif, which is not installed
            origin, line = self.samples.origin, self.samples.lines[index]
            raise ResourceError(
                f"{origin.where(line)}: {self.samples.entries[index]} cannot be read as an image "
                f"({path}: {error.__class__.__name__}); fix or remove the file"
            ) from error


class YoloDataset(ImageDataset):
    """Items ``(image tensor, label rows)``: rows ``class cx cy w h`` as an ``(n, 5+)`` tensor."""

    def __getitem__(self, index: int):
        import torch

        rows = self.label_rows(index)
        width = max((len(row) for row in rows), default=5)
        return self.image(index), torch.tensor(rows, dtype=torch.float32).reshape(
            -1, width
        )

    def label_rows(self, index: int) -> list[tuple[float, ...]]:
        path = label_path(self.image_path(index))
        return read_label_rows(path, len(self.classes), self.samples.origin.dataset)
