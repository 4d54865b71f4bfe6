"""A small GAN job offline: 64x64 RGB images of scikit-learn's digits, and random InceptionV3 weights for FID."""

from __future__ import annotations

from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[2] / "demos" / "quickstart"
SIDE = 64
PALETTE = [(230, 60, 60), (60, 200, 80), (70, 90, 230), (220, 200, 50), (200, 80, 200),
           (60, 200, 210), (240, 140, 40), (150, 150, 150), (120, 60, 30), (250, 250, 250)]


def write_digit_images(folder: Path, per_edge: int = 48, test: int = 32) -> None:
    """``images/*.png`` (each digit upscaled to 64x64, drawn in its class's colour), ``edge1.txt``, ``edge2.txt``, ``test.txt``."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for index in range(2 * per_edge + test):
        intensity = np.kron(digits.images[index] / 16.0, np.ones((SIDE // 8, SIDE // 8)))
        colour = np.array(PALETTE[int(digits.target[index])], dtype=float)
        pixels = (intensity[:, :, None] * colour).astype(np.uint8)
        name = f"images/{index:05d}.png"
        Image.fromarray(pixels, "RGB").save(folder / name)
        lines.append(f"{name} {int(digits.target[index])}\n")
    (folder / "edge1.txt").write_text("".join(lines[:per_edge]))
    (folder / "edge2.txt").write_text("".join(lines[per_edge : 2 * per_edge]))
    (folder / "test.txt").write_text("".join(lines[2 * per_edge :]))


def write_random_inception_weights(path: Path) -> Path:
    """An InceptionV3 state dict in torchvision's layout with random weights, its batch norms calibrated.

    Random weights alone make features vanish or explode through 90-odd layers;
    batch-norm statistics gathered on random images keep each layer's output in
    range, so the features differ from image to image and the FID measures a
    (meaningless but real) distance between image sets.
    """
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a cumulative average over the calibration batches
    aux, model.AuxLogits = model.AuxLogits, None  # its pooling needs larger images; FID drops it anyway
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.rand(16, 3, 76, 76) * 2 - 1)
    model.AuxLogits = aux
    torch.save(model.state_dict(), path)
    return path


def gan_config(fid_weights: Path) -> str:
    """The quickstart's config made a GAN's: DCGAN on 64x64 images, Plato's GAN trainer and algorithm, no accuracy target."""
    text = (QUICKSTART / "fedavg.toml").read_text()
    for old, new in (
        ('partition_size = 350\n', 'partition_size = 48\nimage_size = 64\n'),
        ('type = "basic"\nrounds = 10\ntarget_accuracy = 0.97\nepochs = 2\nbatch_size = 32\n',
         f'type = "gan"\nrounds = 1\nepochs = 1\nbatch_size = 16\nfid_weights_url = "{fid_weights}"\n'),
        ('[algorithm]\ntype = "fedavg"\n', '[algorithm]\ntype = "fedavg_gan"\n'),
        ('architecture = "lenet5"\nnum_classes = 10\n', 'architecture = "dcgan"\n'),
        ("lr = 0.003\n", "lr = 0.0002\n"),
    ):
        assert old in text, old  # the quickstart changed: update this recipe
        text = text.replace(old, new)
    return text


def write_gan_job(folder: Path, fid_weights: Path) -> Path:
    """The quickstart's job with the GAN config (gan.toml) and data beside it; returns job.yaml."""
    folder.mkdir(parents=True)
    write_digit_images(folder / "data")
    (folder / "gan.toml").write_text(gan_config(fid_weights))
    text = (QUICKSTART / "job.yaml").read_text().replace("/config/fedavg.toml", "/config/gan.toml")
    text = text.replace("plato.sedna.io/model-name: lenet5", "plato.sedna.io/model-name: dcgan")
    text = text.replace('              - name: rounds\n                value: "10"\n', '              - name: rounds\n                value: "1"\n')
    (folder / "job.yaml").write_text(text)
    return folder / "job.yaml"
