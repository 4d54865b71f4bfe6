"""MistNet in plain Plato (`plato -c demos/quickstart/mistnet.yml`, no Sedna env: simulated clients),
and the model it saves inferring with the accuracy the aggregator reported (the cut's
binarisation in the forward, and in an ONNX export).

Both simulated clients read the same Dataset (edge1's index; `all_inclusive`), as
a plain run has one TRAIN_DATASET_URL; the pretrained front is made in the test.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.processes import plain_env, reap_clients, start_run, wait_run
from test_mistnet_e2e import pretrain_lenet5


def accuracy_on_index(model, index: Path) -> float:
    """``model``'s accuracy on the images of a Sedna txt index, in eval mode."""
    import torch
    from PIL import Image

    from plato_sedna.datasources.datasets import image_tensor

    lines = [line.split() for line in index.read_text().splitlines() if line.strip()]
    images = torch.stack([image_tensor(Image.open(index.parent / path)) for path, _ in lines])
    labels = torch.tensor([int(label) for _, label in lines])
    with torch.no_grad():
        return (model.eval()(images).argmax(1) == labels).float().mean().item()


@pytest.mark.slow  # plain Plato: a server and two spawned clients, about 90 s on 2 cores
def test_plain_plato_runs_the_quickstart_mistnet_config(tmp_path: Path, digits_data: Path) -> None:
    import torch
    from plato.models import lenet5

    from plato_sedna.algorithms.model_split import split_model

    pretrained = pretrain_lenet5(digits_data / "edge1.txt", tmp_path / "lenet5.pth")
    log = tmp_path / "plato.log"
    server = start_run(
        [sys.executable, "-m", "plato_sedna", "-c", str(QUICKSTART / "mistnet.yml")],
        tmp_path,
        log,
        plain_env(
            TRAIN_DATASET_URL=str(digits_data / "edge1.txt"),
            TEST_DATASET_URL=str(digits_data / "test.txt"),
            PRETRAINED_MODEL_URL=str(pretrained),
        ),
    )
    try:
        returncode = wait_run(server, timeout=300)
    finally:
        reap_clients(server)
    output = log.read_text()
    assert returncode == 0, output[-4000:]
    assert output.count("MistNet features of 719 samples") == 2  # each simulated client uploaded once
    (results_csv,) = (tmp_path / "runtime" / "results").glob("*.csv")
    rows = list(csv.DictReader(results_csv.open()))
    assert [row["round"] for row in rows] == ["1"]
    reported = float(rows[0]["accuracy"])
    assert reported >= 0.8
    assert "tested on the aggregator's test set, through front -> binarise -> back" in output

    # The saved model is a state dict: loading it and cutting again gives the forward the aggregator tested.
    state = torch.load(tmp_path / "runtime" / "models" / "pretrained" / "sednaModelResource.pth", weights_only=True)
    model = lenet5.Model(num_classes=10)
    model.load_state_dict(state)
    probe = torch.rand(4, 1, 28, 28)
    unbinarised = model.eval()(probe)
    split_model(model, "relu3")
    assert not torch.allclose(model(probe), unbinarised)  # the forward now binarises relu3's output
    assert accuracy_on_index(model, digits_data / "test.txt") == pytest.approx(reported, abs=1e-6)


def test_the_cuts_binarisation_is_in_the_models_forward_and_its_onnx_export(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime
    import torch
    from plato.models import lenet5

    from plato_sedna.algorithms.model_split import split_model
    from plato_sedna.models import formats

    torch.manual_seed(0)
    model = lenet5.Model(num_classes=10).eval()
    probe = torch.rand(1, 1, 28, 28)
    split = split_model(model, "relu3")
    expected = split.back((split.front(probe) > 0).float())
    assert torch.allclose(model(probe), torch.log_softmax(expected, dim=1), atol=1e-6)
    split_model(model, "conv3")  # cutting again moves the binarisation, never stacks it
    assert sum(len(m._forward_hooks) for m in model.modules()) == 1

    split_model(model, "relu3")
    formats.write(model, "onnx", tmp_path / "lenet5.onnx", (1, 28, 28))
    session = onnxruntime.InferenceSession(str(tmp_path / "lenet5.onnx"))
    (exported,) = session.run(None, {session.get_inputs()[0].name: probe.numpy()})
    assert np.allclose(exported, model(probe).detach().numpy(), atol=1e-5)
