"""Each dataset format, read from a local folder, the loopback S3 server and loopback HTTP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from plato_sedna.datasources.datasets import ImageDataset, TextDataset, YoloDataset
from plato_sedna.datasources.reader import read_dataset
from plato_sedna.datasources.settings import DataSettings
from plato_sedna.errors import ResourceError

pytest_plugins = ("support.storage_fixtures",)

DATASET = "Dataset default/edge1"
CLASSES = ("cat", "dog")


def write_png(path: Path, shade: int = 0) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (shade, 0, 0)).save(path)


def class_images(folder: Path, per_class: int = 3) -> list[tuple[str, str]]:
    """``(relative path, class)`` of images written under ``folder/images/<class>/``."""
    made = []
    for name in CLASSES:
        for i in range(per_class):
            relative = f"images/{name}/{i}.png"
            write_png(folder / relative, 40 * i)
            made.append((relative, name))
    return made


def txt_dataset(folder: Path) -> Path:
    made = class_images(folder)
    (folder / "train.txt").write_text(
        "".join(f"{path} {label}\n" for path, label in made)
    )
    return folder / "train.txt"


def csv_dataset(folder: Path) -> Path:
    made = class_images(folder)
    rows = "".join(f"{i},{path},{label}\n" for i, (path, label) in enumerate(made))
    (folder / "train.csv").write_text("id,image,label\n" + rows)
    return folder / "train.csv"


def folder_dataset(folder: Path) -> Path:
    for split, count in (("train", 3), ("test", 1)):
        for name in CLASSES:
            for i in range(count):
                write_png(folder / split / name / f"{i}.png")
    (folder / "train" / "cat" / "notes.md").write_text("not an image")
    return folder


def yolo_dataset(folder: Path) -> Path:
    for split, count in (("train", 4), ("val", 2)):
        for i in range(count):
            write_png(folder / "images" / split / f"{i}.jpg")
            rows = f"{i % 2} 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n" if i else ""
            (folder / "labels" / split).mkdir(parents=True, exist_ok=True)
            (folder / "labels" / split / f"{i}.txt").write_text(rows)
    (folder / "data.yaml").write_text(
        "train: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n"
    )
    return folder


def table_dataset(folder: Path, kind: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        ("good film", "pos"),
        ("dull, too long", "neg"),
        ("fine", "pos"),
        ("bad", "neg"),
        ("ok", "pos"),
    ]
    if kind == "jsonl":
        text = "".join(
            json.dumps({"text": t, "label": label}) + "\n" for t, label in rows
        )
    else:
        text = "text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows)
    (folder / f"reviews.{kind}").write_text(text)
    return folder / f"reviews.{kind}"


def upload(s3_client, bucket: str, folder: Path, prefix: str) -> str:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3_client.upload_file(
            str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}"
        )
    return f"s3://{bucket}/{prefix}/"


def read(url: str, storage, **settings):
    return read_dataset(
        DataSettings(dataset=DATASET, train_url=url, **settings), storage
    )


def serve(folder: Path, web_root: Path, http_server, relative: str) -> str:
    """The url of ``relative`` in ``folder`` on the web server; a folder goes as a zip archive."""
    if relative:
        shutil.copytree(folder, web_root / "edge1", dirs_exist_ok=True)
        return http_server.url(f"edge1/{relative}")
    archive = shutil.make_archive(str(web_root / "edge1"), "zip", folder)
    return http_server.url(Path(archive).name)


@pytest.fixture(params=["local", "s3", "http"])
def place(request, tmp_path: Path):
    """Puts a dataset folder somewhere and answers the url of ``relative`` in it."""

    def put(folder: Path, relative: str = "") -> str:
        if request.param == "local":
            return str(folder / relative) if relative else str(folder)
        if request.param == "http":
            return serve(folder, request.getfixturevalue("web_root"), request.getfixturevalue("http_server"), relative)
        s3_client, s3_bucket = request.getfixturevalue("s3_client"), request.getfixturevalue("s3_bucket")
        return upload(s3_client, s3_bucket, folder, "edge1") + relative

    return put


def test_txt_index(place, storage, tmp_path: Path) -> None:
    txt_dataset(tmp_path / "data")
    parts = read(place(tmp_path / "data", "train.txt"), storage)

    assert parts.kind == "images" and parts.test is None
    assert parts.train.classes == CLASSES and list(parts.train.targets) == [
        0,
        0,
        0,
        1,
        1,
        1,
    ]
    image, target = ImageDataset(parts.train, storage=storage)[4]
    assert tuple(image.shape) == (3, 8, 8) and target == 1


def test_txt_index_in_a_folder(place, storage, tmp_path: Path) -> None:
    txt_dataset(tmp_path / "data")
    parts = read(place(tmp_path / "data"), storage, format="txt")

    assert len(parts.train) == 6


def test_csv_index(place, storage, tmp_path: Path) -> None:
    csv_dataset(tmp_path / "data")
    parts = read(place(tmp_path / "data", "train.csv"), storage)

    assert (
        parts.kind == "images"
        and parts.train.classes == CLASSES
        and len(parts.train) == 6
    )
    assert ImageDataset(parts.train, image_size=4, storage=storage)[0][0].shape[-1] == 4


def test_image_folders_with_train_and_test(
    place, storage, tmp_path: Path, caplog
) -> None:
    folder_dataset(tmp_path / "data")
    parts = read(place(tmp_path / "data"), storage)

    assert parts.kind == "images" and parts.train.classes == CLASSES
    assert (len(parts.train), len(parts.test)) == (6, 2)
    assert list(parts.test.targets) == [0, 1]
    assert (
        "ignored 1 file(s) that are not images by their name (cat/notes.md)"
        in caplog.text
    )
    assert ImageDataset(parts.test, storage=storage)[1][1] == 1


def test_image_folders_declared_classes(storage, tmp_path: Path) -> None:
    folder_dataset(tmp_path / "data")
    parts = read(
        str(tmp_path / "data" / "train"),
        storage,
        format="folders",
        classes=("dog", "cat"),
    )
    assert parts.train.classes == ("dog", "cat") and list(parts.train.targets) == [
        0,
        0,
        0,
        1,
        1,
        1,
    ]
    assert parts.train.entries[0] == "dog/0.png"

    with pytest.raises(
        ResourceError,
        match=r"folder\(s\) dog are not among the dataset's classes \(cat, bird\)",
    ):
        read(str(tmp_path / "data" / "train"), storage, classes=("cat", "bird"))


def test_yolo_layout(place, storage, tmp_path: Path) -> None:
    yolo_dataset(tmp_path / "data")
    parts = read(place(tmp_path / "data"), storage)

    assert parts.kind == "yolo" and parts.layout.names == CLASSES
    assert (len(parts.train), len(parts.test)) == (4, 2)
    # the class an image has most boxes of (lowest on a tie; 0 without boxes)
    assert list(parts.train.targets) == [0, 1, 0, 1]
    image, rows = YoloDataset(parts.train)[1]
    assert tuple(image.shape) == (3, 8, 8) and rows.tolist()[0] == pytest.approx(
        [1, 0.5, 0.5, 0.2, 0.2]
    )
    assert tuple(YoloDataset(parts.train)[0][1].shape) == (0, 5)
    written = parts.layout.write_data_yaml(tmp_path / "run" / "data.yaml")
    import yaml

    config = yaml.safe_load(written.read_text())
    assert config["path"] == str(parts.layout.root) and config["names"] == {
        0: "cat",
        1: "dog",
    }
    assert (Path(config["path"]) / config["train"]).is_dir()


def test_yolo_image_lists_and_bad_labels(storage, tmp_path: Path) -> None:
    yolo_dataset(tmp_path / "data")
    (tmp_path / "data" / "train.txt").write_text(
        "./images/train/1.jpg\n./images/train/2.jpg\n"
    )
    (tmp_path / "data" / "data.yaml").write_text(
        "train: train.txt\nnames: [cat, dog]\n"
    )
    parts = read(str(tmp_path / "data" / "data.yaml"), storage)
    assert len(parts.train) == 2 and parts.test is None

    (tmp_path / "data" / "labels" / "train" / "2.txt").write_text(
        "0 0.5 0.5 0.2 0.2\n7 0.1 0.1 0.1 0.1\n"
    )
    with pytest.raises(
        ResourceError,
        match=r"labels/train/2.txt, line 2: '7 0.1 0.1 0.1 0.1' is not 'class x y w h' with a class in 0..1",
    ):
        read(str(tmp_path / "data" / "data.yaml"), storage)
    (tmp_path / "data" / "data.yaml").write_text(
        "path: ../..\ntrain: images/train\nnames: [cat]\n"
    )
    with pytest.raises(
        ResourceError, match=r"path '../..' points outside the YAML's folder"
    ):
        read(str(tmp_path / "data"), storage)


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_text_tables(place, storage, tmp_path: Path, kind: str) -> None:
    table_dataset(tmp_path / "data", kind)
    parts = read(place(tmp_path / "data", f"reviews.{kind}"), storage)

    assert parts.kind == "text" and parts.train.classes == ("neg", "pos")
    assert TextDataset(parts.train)[1] == ("dull, too long", 0)


def test_text_table_columns_and_bad_rows(storage, tmp_path: Path) -> None:
    table = tmp_path / "t.jsonl"
    table.write_text('{"review": "fine", "stars": 1}\n{"review": "bad", "stars": 0}\n')
    parts = read(str(table), storage, text_column="review", label_column="stars")
    assert TextDataset(parts.train)[0] == ("fine", 1)

    table.write_text('{"text": "fine", "label": 1}\n{"text": "bad", "label": 0\n')
    with pytest.raises(
        ResourceError, match=rf"^{DATASET}: {table}, line 2: not a JSON object"
    ):
        read(str(table), storage)
    table.write_text('{"text": "fine", "label": 1}\n{"label": 0}\n')
    with pytest.raises(ResourceError, match=r"line 2: no text in column 'text'"):
        read(str(table), storage)


def test_remote_index_entries_are_fetched_on_first_use(
    storage, s3_client, s3_bucket, tmp_path: Path
) -> None:
    txt_dataset(tmp_path / "data")
    upload(s3_client, s3_bucket, tmp_path / "data", "edge1")

    parts = read(f"s3://{s3_bucket}/edge1/train.txt", storage)
    assert parts.train.origin.root == f"s3://{s3_bucket}/edge1/"
    files_after_parse = storage.stats.files_downloaded
    dataset = ImageDataset(parts.train, storage=storage)
    dataset[0], dataset[0], dataset[1]

    assert storage.stats.files_downloaded == files_after_parse + 2  # each image once


def test_url_entries_over_http(
    storage, http_server, web_root: Path, tmp_path: Path
) -> None:
    made = class_images(web_root)
    index = tmp_path / "train.txt"
    index.write_text(
        "".join(f"{http_server.url(path)},{label}\n" for path, label in made)
    )

    parts = read(str(index), storage)
    image, target = ImageDataset(parts.train, storage=storage)[5]

    assert tuple(image.shape) == (3, 8, 8) and target == 1
    shutil.rmtree(web_root / "images" / "cat")
    with pytest.raises(
        ResourceError, match=rf"^{DATASET}: {index}, line 1: .*images/cat/0.png"
    ):
        ImageDataset(parts.train, storage=storage)[0]


def test_non_image_files_fail_when_loaded_naming_the_line(
    storage, tmp_path: Path
) -> None:
    index = txt_dataset(tmp_path / "data")
    (tmp_path / "data" / "images" / "dog" / "1.png").write_text("not a png")
    dataset = ImageDataset(read(str(index), storage).train)

    assert dataset[0][1] == 0
    with pytest.raises(
        ResourceError,
        match=rf"{index}, line 5: images/dog/1.png cannot be read as an image",
    ):
        dataset[4]


def test_test_data_is_coded_with_the_train_classes(storage, tmp_path: Path) -> None:
    index = txt_dataset(tmp_path / "data")
    (tmp_path / "data" / "test.txt").write_text("images/dog/0.png dog\n")
    parts = read_dataset(
        DataSettings(
            dataset=DATASET,
            train_url=str(index),
            test_url=str(tmp_path / "data" / "test.txt"),
        ),
        storage,
    )
    assert list(parts.test.targets) == [1] and parts.test.classes == CLASSES


def test_download_url_when_the_data_is_not_here(
    storage, s3_client, s3_bucket, tmp_path: Path
) -> None:
    folder_dataset(tmp_path / "data")
    archive = shutil.make_archive(
        str(tmp_path / "data-archive"), "zip", tmp_path / "data"
    )
    s3_client.upload_file(archive, s3_bucket, "data.zip")

    parts = read(
        str(tmp_path / "absent"), storage, download_url=f"s3://{s3_bucket}/data.zip"
    )

    assert (len(parts.train), len(parts.test)) == (6, 2)


def test_unknown_and_undetectable_formats(storage, tmp_path: Path) -> None:
    index = txt_dataset(tmp_path / "data")
    with pytest.raises(
        ResourceError,
        match=r"data.format = 'parquet' is not a dataset format plato_sedna reads; use one of",
    ):
        read(str(index), storage, format="parquet", source={"format": "data.format"})
    (tmp_path / "data.bin").write_bytes(b"\0")
    with pytest.raises(
        ResourceError,
        match="cannot tell the format of .*data.bin; name it with plato.sedna.io/format",
    ):
        read(str(tmp_path / "data.bin"), storage)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResourceError, match="cannot tell the format of the folder"):
        read(str(tmp_path / "empty"), storage)
    with pytest.raises(
        ResourceError,
        match=rf"^{DATASET}: the data in train_url cannot be read: .*absent",
    ):
        read(str(tmp_path / "absent"), storage)
