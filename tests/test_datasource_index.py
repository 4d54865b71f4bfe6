"""Sedna txt indexes: formats, class names, errors that say what to fix, the held-out split."""

from __future__ import annotations

from pathlib import Path

import pytest

from plato_sedna.datasources.index import read_txt_index
from plato_sedna.errors import ResourceError


def write_index(folder: Path, lines: list[str], files: list[str]) -> Path:
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    index = folder / "train.txt"
    index.write_text("\n".join(lines) + "\n")
    return index


def test_space_and_comma_separated_lines_relative_to_the_index(tmp_path: Path) -> None:
    index = write_index(
        tmp_path,
        ["# comment", "a/1.png 0", "", "a/2.png,2", "b/3.png , 1"],
        ["a/1.png", "a/2.png", "b/3.png"],
    )
    samples = read_txt_index(index)

    assert samples.paths == (tmp_path / "a/1.png", tmp_path / "a/2.png", tmp_path / "b/3.png")
    assert samples.targets == (0, 2, 1)
    assert samples.classes == ("0", "1", "2")


def test_class_names_are_numbered_in_sorted_order(tmp_path: Path) -> None:
    index = write_index(tmp_path, ["x.png defect", "y.png ok", "z.png defect"], ["x.png", "y.png", "z.png"])
    samples = read_txt_index(index)

    assert samples.classes == ("defect", "ok")
    assert samples.targets == (0, 1, 0)


def test_missing_files_are_listed_with_their_lines(tmp_path: Path) -> None:
    index = write_index(tmp_path, ["here.png 0", "gone.png 1"], ["here.png"])

    with pytest.raises(ResourceError, match=r"1 listed file\(s\) do not exist \(line 2: gone.png\)"):
        read_txt_index(index)


def test_unlabelled_lines_and_missing_index(tmp_path: Path) -> None:
    index = write_index(tmp_path, ["a.png"], ["a.png"])
    with pytest.raises(ResourceError, match=r"line\(s\) without a label \(lines 1\)"):
        read_txt_index(index)
    with pytest.raises(ResourceError, match="does not exist; check the Dataset's url"):
        read_txt_index(tmp_path / "absent.txt")


def test_held_out_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    from plato_sedna.datasources.sedna_resource import split_held_out

    names = [f"{i}.png" for i in range(50)]
    samples = read_txt_index(write_index(tmp_path, [f"{n} {i % 3}" for i, n in enumerate(names)], names))

    train, test = split_held_out(samples, 0.2, seed=7)
    again_train, again_test = split_held_out(samples, 0.2, seed=7)

    assert (train, test) == (again_train, again_test)
    assert len(test) == 10 and len(train) == 40
    assert not set(train.paths) & set(test.paths)
    assert train.classes == test.classes == samples.classes
