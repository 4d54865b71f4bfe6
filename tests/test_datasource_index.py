"""txt and csv indexes: separators, comments, labels, paths, and errors naming the dataset, file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from plato_sedna.datasources.formats.csv_index import read_csv_index
from plato_sedna.datasources.formats.txt import read_txt_index
from plato_sedna.datasources.labels import ClassHints
from plato_sedna.datasources.options import ReadOptions
from plato_sedna.datasources.samples import Origin
from plato_sedna.errors import ResourceError

DATASET = "Dataset default/edge1"


def write_index(
    folder: Path, lines: list[str], files: list[str], name: str = "train.txt"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_bytes(b"x")
    index = folder / name
    index.write_text("\n".join(lines) + "\n")
    return index


def read(index: Path, **options):
    origin = Origin(DATASET, str(index), str(index.parent))
    reader = read_csv_index if index.suffix == ".csv" else read_txt_index
    return reader(index, origin, ReadOptions(DATASET, **options))


def test_space_and_comma_separated_lines_relative_to_the_index(tmp_path: Path) -> None:
    index = write_index(
        tmp_path,
        [
            "# comment",
            "a/1.png 0",
            "",
            "a/2.png,2",
            "b/3.png , 1",
            "  # indented comment",
            "c d.png,1",
        ],
        ["a/1.png", "a/2.png", "b/3.png", "c d.png"],
    )
    samples = read(index)

    assert list(samples.entries) == ["a/1.png", "a/2.png", "b/3.png", "c d.png"]
    assert list(samples.targets) == [0, 2, 1, 1]
    assert list(samples.lines) == [2, 4, 5, 7]
    assert samples.classes == ("0", "1", "2")


def test_class_names_are_numbered_in_sorted_order_or_as_declared(
    tmp_path: Path,
) -> None:
    index = write_index(
        tmp_path,
        ["x.png defect", "y.png ok", "z.png defect"],
        ["x.png", "y.png", "z.png"],
    )

    assert read(index).classes == ("defect", "ok")
    assert list(read(index).targets) == [0, 1, 0]
    declared = read(index, hints=ClassHints(("ok", "defect")))
    assert declared.classes == ("ok", "defect") and list(declared.targets) == [1, 0, 1]


def test_labels_are_optional_everywhere_or_nowhere(tmp_path: Path) -> None:
    index = write_index(tmp_path, ["a.png", "b.png"], ["a.png", "b.png"])
    samples = read(index)
    assert list(samples.targets) == [0, 0] and samples.classes == ("0",)

    index = write_index(tmp_path, ["a.png 1", "b.png", "a.png"], [])
    with pytest.raises(
        ResourceError,
        match=rf"{DATASET}: .*train.txt, line 2: no label while other lines have one \(2 line",
    ):
        read(index)


def test_absolute_entries_are_read_as_written(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write_index(elsewhere, [], ["img.png"], name="unused.txt")
    index = write_index(tmp_path / "data", [f"{elsewhere / 'img.png'} 0"], [])

    assert list(read(index).entries) == [str(elsewhere / "img.png")]


def test_absolute_entries_are_tried_under_the_data_path_prefix(tmp_path: Path) -> None:
    write_index(tmp_path / "prefix" / "host", [], ["img.png"], name="unused.txt")
    index = write_index(tmp_path / "data", ["/host/img.png 0"], [])

    assert len(read(index, data_path_prefix=str(tmp_path / "prefix"))) == 1
    with pytest.raises(ResourceError, match="1 listed file"):
        read(index)


def test_malformed_lines_name_the_dataset_file_and_line(tmp_path: Path) -> None:
    index = write_index(tmp_path, ["a.png 0", "b.png 0 extra"], ["a.png", "b.png"])
    with pytest.raises(
        ResourceError,
        match=rf"^{DATASET}: {index}, line 2: 'b.png 0 extra' is not 'path label'",
    ):
        read(index)
    index.write_text("a.png,0,1\n")
    with pytest.raises(ResourceError, match="line 1: 'a.png,0,1' is not 'path label'"):
        read(index)
    index.write_bytes(b"a.png 0\n\xff\xfe\n")
    with pytest.raises(ResourceError, match="line 2: not UTF-8 text"):
        read(index)


@pytest.mark.parametrize(
    ("labels", "hints", "message"),
    [
        (
            ["0", "cat"],
            ClassHints(),
            r"line 2: label 'cat' is not an integer, while other labels are \(1 line",
        ),
        (["0", "-1"], ClassHints(), r"line 2: label '-1' is negative"),
        (
            ["0", "cat", "cat"],
            ClassHints(num_classes=2),
            r"line 2: label 'cat' is not an integer \(2 line",
        ),
        (
            ["0", "5"],
            ClassHints(num_classes=2),
            r"line 2: label '5' is not one of the 2 classes \(0, 1\)",
        ),
        (
            ["ok", "bad"],
            ClassHints(("ok", "defect")),
            r"line 2: label 'bad' is not one of the 2 classes \(ok, defect\)",
        ),
    ],
)
def test_wrong_labels(
    tmp_path: Path, labels: list[str], hints: ClassHints, message: str
) -> None:
    names = [f"{i}.png" for i in range(len(labels))]
    index = write_index(
        tmp_path, [f"{n} {label}" for n, label in zip(names, labels)], names
    )

    with pytest.raises(ResourceError, match=rf"^{DATASET}: {index}, {message}"):
        read(index, hints=hints)


def test_missing_files_are_counted_and_the_first_few_listed(tmp_path: Path) -> None:
    lines = ["here.png 0"] + [f"gone{i}.png 1" for i in range(7)]
    index = write_index(tmp_path, lines, ["here.png"])

    with pytest.raises(ResourceError) as raised:
        read(index)
    message = str(raised.value)
    assert message.startswith(
        f"{DATASET}: {index}: 7 listed file(s) do not exist (line 2: gone0.png; line 3:"
    )
    assert "line 6: gone4.png; ...)" in message and "gone5" not in message
    assert "set data.skip_missing = true" in message


def test_skip_missing_drops_them_with_a_warning(tmp_path: Path, caplog) -> None:
    index = write_index(
        tmp_path, ["here.png 0", "gone.png 1", "also.png 1"], ["here.png", "also.png"]
    )

    samples = read(index, skip_missing=True)

    assert list(samples.entries) == ["here.png", "also.png"] and list(
        samples.lines
    ) == [1, 3]
    assert samples.classes == ("0", "1")
    assert "1 listed file(s) do not exist (line 2: gone.png)" in caplog.text
    assert "skipped (data.skip_missing = true)" in caplog.text


def test_paths_that_escape_the_data_root_are_refused(tmp_path: Path) -> None:
    index = write_index(
        tmp_path / "data", ["ok.png 0", "../../etc/passwd 0"], ["ok.png"]
    )

    with pytest.raises(
        ResourceError,
        match=r"line 2: '../../etc/passwd' points outside the dataset's folder",
    ):
        read(index)
    index.write_text("a/../../x.png 0\n")
    with pytest.raises(ResourceError, match="line 1: 'a/../../x.png' points outside"):
        read(index)


def test_unknown_url_schemes_are_refused(tmp_path: Path) -> None:
    index = write_index(tmp_path, ["gs://bucket/a.png 0"], [])

    with pytest.raises(
        ResourceError, match=r"line 1: 'gs://bucket/a.png' has the scheme gs://"
    ):
        read(index)


def test_url_entries_are_kept_for_first_use(tmp_path: Path) -> None:
    index = write_index(tmp_path, ["s3://bucket/a.png 0", "http://host/b.png 1"], [])

    assert list(read(index).entries) == ["s3://bucket/a.png", "http://host/b.png"]


def test_empty_and_missing_indexes(tmp_path: Path) -> None:
    index = write_index(tmp_path, ["# nothing here", ""], [])
    with pytest.raises(
        ResourceError,
        match=rf"^{DATASET}: {index} lists no samples; the dataset is empty",
    ):
        read(index)
    with pytest.raises(ResourceError, match="does not exist; check the Dataset's url"):
        read(tmp_path / "absent.txt")


def test_csv_index_with_its_usual_or_configured_columns(tmp_path: Path) -> None:
    files = ["a.png", "b c.png"]
    index = write_index(
        tmp_path,
        ["id,Image,Label", "1,a.png,1", '2,"b c.png",0'],
        files,
        name="train.csv",
    )
    samples = read(index)
    assert (
        list(samples.entries) == files
        and list(samples.targets) == [1, 0]
        and list(samples.lines) == [2, 3]
    )

    index = write_index(
        tmp_path, ["file_name,kind", "a.png,cat", "b c.png,dog"], [], name="train.csv"
    )
    samples = read(index, path_column="file_name", label_column="kind")
    assert samples.classes == ("cat", "dog")


def test_csv_index_errors(tmp_path: Path) -> None:
    index = write_index(
        tmp_path, ["name,label", "a.png,0"], ["a.png"], name="train.csv"
    )
    with pytest.raises(
        ResourceError,
        match=r"line 1: the header \(name, label\) has no column named one of path",
    ):
        read(index)
    with pytest.raises(
        ResourceError, match=r"has no column 'kind'; set data.label_column"
    ):
        read(index, path_column="name", label_column="kind")
    index = write_index(
        tmp_path, ["path,label", "a.png,0", "a.png,0,3"], [], name="train.csv"
    )
    with pytest.raises(
        ResourceError, match=rf"{index}, line 3: 3 field\(s\) where the header has 2"
    ):
        read(index)
    index.write_text("path,label\n")
    with pytest.raises(ResourceError, match="lists no samples"):
        read(index)
