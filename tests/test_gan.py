"""fedavg_gan in pods: Plato's DCGAN as a publishable module, FID from InceptionV3 weights at a URL (issue #12)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from support.gan_data import (
    write_digit_images,
    write_gan_job,
    write_random_inception_weights,
)
from test_algorithm_catalog import AGGREGATOR_ENV, TRAINER_ENV, resolve
from test_quickstart_e2e import run_job

from plato_sedna.errors import ConfigError, ResourceError
from plato_sedna.models.dcgan import Dcgan
from plato_sedna.trainers.gan import FidTestingStrategy


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> Path:
    return write_random_inception_weights(tmp_path_factory.mktemp("fid") / "inception.pth")


def test_dcgan_is_one_module_with_platos_networks_and_fedavg_gan_moves_its_weights() -> None:
    from plato.algorithms import fedavg_gan
    from plato.models import dcgan

    model = Dcgan()
    keys = set(model.state_dict())
    assert {key.split(".")[0] for key in keys} == {"generator", "discriminator"}
    assert keys == {f"generator.{k}" for k in dcgan.Generator().state_dict()} | {
        f"discriminator.{k}" for k in dcgan.Discriminator().state_dict()}
    assert model(torch.randn(2, model.nz, 1, 1)).shape == (2, 3, 64, 64)

    algorithm = fedavg_gan.Algorithm(trainer=SimpleNamespace(model=model))
    other = Dcgan()
    algorithm.load_weights(fedavg_gan.Algorithm(trainer=SimpleNamespace(model=other)).extract_weights())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


def test_sedna_model_resource_builds_dcgan_as_the_module() -> None:
    from plato_sedna.models.architectures import build
    from plato_sedna.models.settings import resolve_settings

    assert isinstance(build(resolve_settings({"architecture": "dcgan"}, None, None)), Dcgan)


class _Generates:
    """A GAN whose generator returns fixed images (in the generator's [-1, 1])."""

    nz = 4

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def generator(self, noise):
        return self.images[: len(noise)]

    def to(self, device):
        return self

    def eval(self):
        return self


def _digits(folder: Path) -> list:
    from PIL import Image

    from plato_sedna.datasources.datasets import image_tensor

    write_digit_images(folder, per_edge=0, test=64)
    return [(image_tensor(Image.open(folder / line.split()[0]).convert("RGB")), 0) for line in (folder / "test.txt").read_text().splitlines()]


@pytest.mark.slow  # InceptionV3 on CPU, twice
def test_fid_is_lower_for_images_like_the_test_set(tmp_path: Path, inception_weights: Path) -> None:
    from plato_sedna.storage import Storage

    strategy = FidTestingStrategy(str(inception_weights), Storage(tmp_path / "cache"))
    assert strategy._inception is None  # nothing loaded before the first test
    testset = _digits(tmp_path / "digits")
    real = torch.stack([image for image, _ in testset[32:]]) * 2 - 1  # other digits, same kind
    noise = torch.rand_like(real) * 2 - 1
    config, context = {"batch_size": 32}, SimpleNamespace(device="cpu")

    like = strategy.test_model(_Generates(real), config, testset[:32], None, context)
    unlike = strategy.test_model(_Generates(noise), config, testset[:32], None, context)

    assert math.isfinite(like) and math.isfinite(unlike)
    assert 0 <= like < unlike


def test_fid_weights_that_are_not_inception_are_named(tmp_path: Path) -> None:
    from plato_sedna.trainers.gan import inception_feature_extractor

    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ResourceError, match=r"other.pth holds no InceptionV3 weights .*trainer.fid_weights_url"):
        inception_feature_extractor(tmp_path / "other.pth")


def _no_target(folder: Path) -> Path:
    """The quickstart config without its target_accuracy."""
    from conftest import QUICKSTART

    path = folder / "fedavg.toml"
    path.write_text((QUICKSTART / "fedavg.toml").read_text().replace("target_accuracy = 0.97\n", ""))
    return path


def test_in_pods_the_env_picks_the_plugins_gan_trainer_and_server(tmp_path: Path) -> None:
    for role, env in (("aggregator", AGGREGATOR_ENV), ("trainer", TRAINER_ENV)):
        config = resolve({**env, "aggregation_algorithm": "fedavg_gan"}, _no_target(tmp_path))
        assert (config["server"]["type"], config["trainer"]["type"], config["algorithm"]["type"]) == (
            "sedna_gan", "sedna_gan", "fedavg_gan"), role
    assert config["clients"]["do_test"] is False  # trainers need no InceptionV3
    plain = resolve({"aggregation_algorithm": "fedavg_gan"})
    assert (plain["server"]["type"], plain["trainer"]["type"]) == ("fedavg_gan", "gan")


def test_an_accuracy_target_or_an_aggregator_without_test_set_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"fedavg_gan reports the generator's FID .*remove target_accuracy"):
        resolve({**TRAINER_ENV, "aggregation_algorithm": "fedavg_gan"})  # the quickstart file has one
    with pytest.raises(ConfigError, match=r"fedavg_gan reports the generator's FID"):
        resolve({**TRAINER_ENV, "aggregation_algorithm": "fedavg_gan", "target_accuracy": "0.5"}, _no_target(tmp_path))
    without_test_set = {key: value for key, value in AGGREGATOR_ENV.items() if key != "TEST_DATASET_URL"}
    with pytest.raises(ConfigError, match=r"measures the generator's FID .*TEST_DATASET_URL"):
        resolve({**without_test_set, "aggregation_algorithm": "fedavg_gan"}, _no_target(tmp_path))


@pytest.mark.slow
def test_a_plato_gan_config_runs_a_job_and_publishes_the_dcgan(tmp_path: Path, inception_weights: Path) -> None:
    job_yaml = write_gan_job(tmp_path / "gan", inception_weights)
    workdir = tmp_path / "run"

    result = run_job(job_yaml, workdir)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == 1
    metrics = json.loads((Path(summary["model_url"]).parent / "metrics.json").read_text())
    assert metrics["accuracy_is"].startswith("FID") and math.isfinite(metrics["accuracy"]) and metrics["accuracy"] > 0
    model = Dcgan()
    model.load_state_dict(torch.load(summary["model_url"], weights_only=True))  # strict: both networks
    aggregator = (workdir / "aggregator" / "worker.log").read_text()
    assert f"FID: InceptionV3 weights from {inception_weights}" in aggregator
    assert "Trainer: sedna_gan" in aggregator
    for trainer in ("trainer-1", "trainer-2"):
        log = (workdir / trainer / "worker.log").read_text()
        assert "FID: InceptionV3" not in log  # trainers do not test
        assert "Discriminator" in log or "disc" in log.lower()
