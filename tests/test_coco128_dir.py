"""Sedna's YOLOv5 example Dataset (``url: /data/1/COCO``, ``format: dir``): coco128 as unzipped,
``COCO/coco128/images/train2017`` beside ``labels/train2017``, with no data YAML."""

from __future__ import annotations

import logging
import random
import runpy
from pathlib import Path

import pytest
import yaml

from plato_sedna.datasources.datasets import YoloDataset
from plato_sedna.datasources.reader import read_dataset
from plato_sedna.datasources.settings import resolve_settings
from plato_sedna.errors import ResourceError
from plato_sedna.local.manifests import dataset_from_object
from plato_sedna.storage import Storage

UPSTREAM = Path(__file__).parent / "data" / "upstream" / "sedna" / "yolov5_coco128_mistnet"
_PREPARE = runpy.run_path(str(Path(__file__).parents[1] / "demos" / "yolov5" / "prepare_data.py"))


def coco128_like(folder: Path, images: int = 6, side: int = 48) -> Path:
    """``folder/COCO`` as ``unzip coco128.zip -d COCO`` leaves it: shapes instead of photos,
    README.txt and LICENSE beside images/ and labels/ (one image without a label file)."""
    root = folder / "COCO" / "coco128"
    (root / "images" / "train2017").mkdir(parents=True)
    (root / "labels" / "train2017").mkdir(parents=True)
    (root / "README.txt").write_text("coco128: the first 128 images of COCO train2017\n")
    (root / "LICENSE").write_text("GPL-3.0\n")
    rng = random.Random(0)
    for number in range(images):
        image, rows = _PREPARE["_shapes_image"](rng, side)
        name = f"{number:012d}"
        image.save(root / "images" / "train2017" / f"{name}.jpg")
        if number == images - 1:
            continue  # an image without objects has no label file
        rows = rows if number else [(2, 0.5, 0.5, 0.3, 0.3)]  # the largest class id: 2
        text = "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in rows)
        (root / "labels" / "train2017" / f"{name}.txt").write_text(text)
    return folder / "COCO"


def upstream_dataset(url: Path, annotations: dict | None = None):
    document = yaml.safe_load((UPSTREAM / "dataset-1.yaml").read_text())
    assert (document["spec"]["url"], document["spec"]["format"]) == ("/data/1/COCO", "dir")
    document["spec"]["url"] = str(url)
    document["spec"]["nodeName"] = "edge1"
    if annotations:
        document["metadata"]["annotations"] = annotations
    return dataset_from_object(document, "dataset-1.yaml")


@pytest.fixture
def storage(tmp_path: Path):
    with Storage(tmp_path / "cache") as opened:
        yield opened


def test_sedna_coco_folder_reads_as_yolo_with_classes_from_the_labels(tmp_path: Path, storage, caplog) -> None:
    coco = coco128_like(tmp_path)
    settings = resolve_settings({}, {"train_url": str(coco)}, upstream_dataset(coco))

    with caplog.at_level(logging.WARNING):
        parts = read_dataset(settings, storage)

    assert parts.kind == "yolo" and parts.test is None  # one split: the test part is held out
    assert len(parts.train) == 6 and parts.layout.root == coco / "coco128"
    assert parts.layout.names == ("0", "1", "2")
    warning = caplog.text
    assert "no data YAML found" in warning and "3 class(es)" in warning
    assert "largest class id 2" in warning and "images/train2017" in warning
    image, rows = YoloDataset(parts.train)[0]
    assert image.shape[0] == 3 and rows.tolist() == [pytest.approx([2, 0.5, 0.5, 0.3, 0.3])]
    assert tuple(YoloDataset(parts.train)[5][1].shape) == (0, 5)  # no label file: no objects

    written = yaml.safe_load(parts.layout.write_data_yaml(tmp_path / "run" / "data.yaml").read_text())
    assert written["names"] == {0: "0", 1: "1", 2: "2"}
    assert (Path(written["path"]) / written["train"]).is_dir() and "val" not in written


def test_num_classes_annotation_gives_the_class_count(tmp_path: Path, storage, caplog) -> None:
    coco = coco128_like(tmp_path)
    dataset = upstream_dataset(coco, {"plato.sedna.io/num-classes": "80"})
    # the url pointed at coco128 itself: its README.txt is not taken for an index
    settings = resolve_settings({}, {"train_url": str(coco / "coco128")}, dataset)

    with caplog.at_level(logging.WARNING):
        parts = read_dataset(settings, storage)

    assert parts.kind == "yolo" and len(parts.layout.names) == 80 == len(parts.train.classes)
    assert "80 class(es) as the Dataset's settings counted them" in caplog.text


def test_proposal_num_classes_field_and_val_split(tmp_path: Path, storage) -> None:
    coco = coco128_like(tmp_path)
    root = coco / "coco128"
    (root / "images" / "train2017").rename(root / "images" / "train")
    (root / "labels" / "train2017").rename(root / "labels" / "train")
    for kind, suffix in (("images", ".jpg"), ("labels", ".txt")):
        (root / kind / "val").mkdir()
        for path in sorted((root / kind / "train").glob(f"*{suffix}"))[:2]:
            path.rename(root / kind / "val" / path.name)
    dataset = upstream_dataset(coco)
    dataset = type(dataset)(**{**dataset.__dict__, "extra": {"num_classes": 5}})

    parts = read_dataset(resolve_settings({}, {}, dataset), storage)

    assert parts.layout.names == tuple("01234")
    assert (len(parts.train), len(parts.test)) == (4, 2)
    assert parts.layout.config["train"] == "images/train" and parts.layout.config["val"] == "images/val"


def test_labels_without_classes_and_no_count_are_refused(tmp_path: Path, storage) -> None:
    coco = coco128_like(tmp_path)
    for label in (coco / "coco128" / "labels" / "train2017").iterdir():
        label.write_text("")

    with pytest.raises(ResourceError, match="name no class; give the number of classes"):
        read_dataset(resolve_settings({}, {"train_url": str(coco)}, upstream_dataset(coco)), storage)


def test_ultralytics_accepts_the_written_data_yaml(tmp_path: Path, storage) -> None:
    check_det_dataset = pytest.importorskip("ultralytics.data.utils").check_det_dataset
    coco = coco128_like(tmp_path)
    parts = read_dataset(resolve_settings({}, {"train_url": str(coco)}, upstream_dataset(coco)), storage)
    data = dict(parts.layout.resolved_config(), val=parts.layout.config["train"])
    path = tmp_path / "run" / "data.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data))

    checked = check_det_dataset(str(path), autodownload=False)

    assert checked["nc"] == 3 and Path(checked["train"]).is_dir()
