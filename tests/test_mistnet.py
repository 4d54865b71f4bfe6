"""MistNet's parts: settings, the split, randomized response, the upload; bad input through the real launcher."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from support.workers import aggregator_env, free_port, trainer_env

from plato_sedna.algorithms.mistnet_settings import MistNetSettings
from plato_sedna.errors import ConfigError

QUICKSTART = Path(__file__).resolve().parents[1] / "demos" / "quickstart"
LENET5_LAYERS = "0:conv1, 1:relu1, 2:pool1, 3:conv2, 4:relu2, 5:pool2, 6:conv3, 7:relu3, 8:flatten, 9:fc4, 10:relu4, 11:fc5"


# Randomized response


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 2.0])
def test_randomized_response_keeps_each_bit_with_p(epsilon: float) -> None:
    import torch

    from plato_sedna.algorithms.randomized_response import randomized_response

    p = MistNetSettings(cut_layer="relu3", epsilon=epsilon).keep_probability
    generator = torch.Generator().manual_seed(7)
    bits = torch.rand(4_000_000, generator=generator) < 0.3
    perturbed = randomized_response(bits, p, generator)

    kept = perturbed == bits
    # 4M bits: the standard error of a rate is below 0.0003; 0.002 is > 6 of them.
    assert kept.float().mean().item() == pytest.approx(p, abs=0.002)
    assert kept[bits].float().mean().item() == pytest.approx(p, abs=0.003)  # ones kept with p
    assert kept[~bits].float().mean().item() == pytest.approx(p, abs=0.002)  # zeros kept with p


def test_epsilon_follows_the_papers_convention() -> None:
    """The MistNet paper's legends: epsilon 0.5, 1, 2 give p = 0.62, 0.73, 0.88."""
    probabilities = [MistNetSettings("relu3", epsilon).keep_probability for epsilon in (0.5, 1, 2)]
    assert [round(p, 2) for p in probabilities] == [0.62, 0.73, 0.88]
    assert MistNetSettings("relu3").keep_probability == 1.0
    assert math.log(probabilities[0] / (1 - probabilities[0])) == pytest.approx(0.5)


# Settings


def test_settings_from_the_proposal_keys_and_old_platos_location() -> None:
    assert MistNetSettings.from_tables({"cut_layer": "4", "epsilon": "100"}) == MistNetSettings(4, 100.0)
    assert MistNetSettings.from_tables({}, {"cut_layer": "relu3"}).cut_layer == "relu3"
    assert MistNetSettings.from_tables({"cut_layer": "relu3"}).epsilon is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"cut_layer": "relu3", "epsilon": -1}, "algorithm.epsilon = -1.0 is negative"),
        ({"cut_layer": "relu3", "epsilon": "lots"}, "algorithm.epsilon = 'lots' is not a number"),
        ({"cut_layer": 2.5}, "algorithm.cut_layer = 2.5 is neither a layer name nor an index"),
    ],
)
def test_bad_settings_are_named(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MistNetSettings.from_tables(table)


# The split


def test_lenet5_splits_at_a_name_or_index_and_the_halves_compose() -> None:
    import torch
    from plato.models import lenet5

    from plato_sedna.algorithms.model_split import split_model

    model = lenet5.Model(num_classes=10).eval()
    by_name, by_index = split_model(model, "relu3"), split_model(model, 7)
    assert by_name.cut_name == by_index.cut_name == "relu3"
    assert by_name.back.layer_names == ["flatten", "fc4", "relu4", "fc5"]
    assert by_name.front_state_keys() == {f"conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")}
    inputs = torch.randn(3, 1, 28, 28)
    assert by_name.front(inputs).shape == (3, 120, 1, 1)
    composed = by_name.back(by_name.front(inputs))
    assert torch.allclose(torch.log_softmax(composed, dim=1), model(inputs), atol=1e-6)


def test_training_the_back_trains_the_model_and_leaves_the_front() -> None:
    import torch

    from plato_sedna.algorithms.model_split import split_model

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    split = split_model(model, 1)
    assert split.front_state_keys() == {"0.weight", "0.bias"}
    before = {key: value.clone() for key, value in model.state_dict().items()}
    optimizer = torch.optim.SGD(split.back.parameters(), lr=0.5)
    split.back(torch.ones(5, 8)).sum().backward()
    optimizer.step()
    after = model.state_dict()
    assert torch.equal(after["0.weight"], before["0.weight"])
    assert not torch.equal(after["2.weight"], before["2.weight"])


@pytest.mark.parametrize(
    ("cut_layer", "message"),
    [
        ("conv9", f"algorithm.cut_layer = 'conv9' is not a layer of lenet5; its layers are: {LENET5_LAYERS}"),
        (12, "algorithm.cut_layer = 12 is not a layer of lenet5"),
        ("fc5", "is lenet5's last layer: nothing would be left for the aggregator to train"),
        (None, f"algorithm.cut_layer is not set; MistNet needs one of lenet5's layers: {LENET5_LAYERS}"),
    ],
)
def test_a_cut_the_model_lacks_lists_its_layers(cut_layer, message: str) -> None:
    from plato.models import lenet5

    from plato_sedna.algorithms.model_split import split_model

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        split_model(lenet5.Model(), cut_layer, "lenet5")


# The upload


def test_features_travel_as_bits_and_come_back_equal() -> None:
    import torch

    from plato_sedna.algorithms.features import FeatureSet, FeatureUpload, TrainerUpload

    generator = torch.Generator().manual_seed(3)
    batches = [torch.rand(n, 120, 1, 1, generator=generator) > 0.5 for n in (32, 7)]
    labels = [torch.randint(0, 10, (n,), generator=generator) for n in (32, 7)]
    upload = FeatureUpload.from_bits(batches, labels)

    assert upload.packed.shape == (39, 15) and upload.num_samples == 39
    assert torch.equal(upload.features(), torch.cat(batches).float())
    dataset = FeatureSet([upload, upload])
    assert len(dataset) == 78 and dataset[40][1] == labels[0][1]
    assert TrainerUpload(upload).size_bytes() < 39 * 120 * 4 // 5  # a fifth of float32 features, labels included


# Bad input through the real launcher


def _config_with_model(tmp_path: Path, **algorithm: object) -> Path:
    """demos/quickstart/mistnet.yml with the architecture named (no Model manifest here) and algorithm keys replaced."""
    import yaml

    config = yaml.safe_load((QUICKSTART / "mistnet.yml").read_text())
    config["parameters"]["model"] = {"architecture": "lenet5", "num_classes": 10}
    config["algorithm"].update(algorithm)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "mistnet.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _launch(config: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "plato_sedna", "-c", str(config)]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_bad_input_stops_workers_at_start_with_one_line(digits_data: Path, tmp_path: Path) -> None:
    """An aggregator without pretrained weights and with a cut layer lenet5 lacks; a trainer with a negative epsilon."""
    port = free_port()
    aggregator = _launch(
        _config_with_model(tmp_path / "aggregator", cut_layer="conv9"),
        aggregator_env(port, 2, tmp_path / "model" / "lenet5.pth", digits_data / "test.txt"),
        tmp_path / "aggregator",
    )
    trainer = _launch(
        _config_with_model(tmp_path / "trainer", epsilon=-0.5),
        trainer_env(port, 2, "digits-edge1", digits_data / "edge1.txt", CONNECT_TIMEOUT="5"),
        tmp_path / "trainer",
    )
    (_, aggregator_err), (_, trainer_err) = aggregator.communicate(timeout=240), trainer.communicate(timeout=240)

    assert aggregator.returncode == 2, aggregator_err[-3000:]
    assert "MistNet without pretrained weights: the front is randomly initialised" in aggregator_err
    assert "plato: error: algorithm.cut_layer = 'conv9' is not a layer of" in aggregator_err
    assert LENET5_LAYERS in aggregator_err
    assert trainer.returncode == 2, trainer_err[-3000:]
    assert "plato: error: algorithm.epsilon = -0.5 is negative; set a privacy budget >= 0" in trainer_err
    assert "Traceback" not in aggregator_err + trainer_err
