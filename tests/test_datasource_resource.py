"""sednaDataResource in a Plato process: the Dataset manifest's url and annotations, Plato's datasets."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import QUICKSTART
from support.build_model import run_in_fresh_process

BUILD_DATASOURCE = """
import json, sys
sys.argv = ["plato", "-c", sys.argv[1], "-b", sys.argv[2]]
from plato.config import Config
Config()
import plato_sedna
from plato.datasources import registry
source = registry.get()
image, target = source.get_train_set()[0]
print(json.dumps({
    "sizes": [source.num_train_examples(), source.num_test_examples()],
    "classes": source.classes(), "targets": sorted(set(source.targets())),
    "shape": list(image.shape), "input_shape": list(source.input_shape()),
}))
"""

CONFIG = """
[clients]
total_clients = 1
per_round = 1
[server]
address = "127.0.0.1"
port = 8000
[data]
datasource = "sednaDataResource"
test_split = 0.25
[trainer]
rounds = 1
epochs = 1
batch_size = 4
model_name = "lenet5"
[algorithm]
type = "fedavg"
[sedna]
dataset_name = "digits-edge1"
job_name = "digits-fedavg"
manifests = "{manifests}"
"""


def write_folders(root: Path) -> None:
    from PIL import Image

    for name in ("cat", "dog", "owl"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (8, 8), 30 * i).save(root / name / f"{i}.png")


def test_the_dataset_manifest_says_where_and_how(tmp_path: Path) -> None:
    write_folders(tmp_path / "jobs" / "pets")
    documents = list(yaml.safe_load_all((QUICKSTART / "job.yaml").read_text()))
    edge1 = next(d for d in documents if d["metadata"]["name"] == "digits-edge1")
    edge1["spec"]["url"] = "pets"  # relative: to the manifests' folder
    edge1["metadata"]["annotations"] = {
        "plato.sedna.io/format": "folders",
        "plato.sedna.io/image-size": "4",
    }
    job = tmp_path / "jobs" / "job.yaml"
    job.write_text(yaml.safe_dump_all(documents))
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(manifests=job))

    result = run_in_fresh_process(BUILD_DATASOURCE, config, tmp_path, timeout=120)

    assert result.returncode == 0, result.stderr[-3000:]
    built = json.loads(result.stdout.strip().splitlines()[-1])
    assert built["sizes"] == [9, 3]  # one of each class held out
    assert built["classes"] == ["cat", "dog", "owl"] and built["targets"] == [0, 1, 2]
    assert built["shape"] == built["input_shape"] == [1, 4, 4]
    assert (
        "sednaDataResource: 9 training and 3 test samples, 3 classes (Dataset default/digits-edge1)"
        in result.stderr
    )
