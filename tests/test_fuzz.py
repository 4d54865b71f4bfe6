"""Property-based fuzzing (hypothesis) of the index readers and the pod env parser.

Whatever a user writes into an index or a pod's env, the outcome is either a
value or one of our errors (ResourceError / ConfigError) that names where the
problem is; never another exception from deep inside, and never a secret in a message.
"""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plato_sedna.context import SednaContext
from plato_sedna.datasources.formats.csv_index import read_csv_index
from plato_sedna.datasources.formats.tables import read_text_table
from plato_sedna.datasources.formats.txt import read_txt_index
from plato_sedna.datasources.formats.yolo import read_label_rows, read_yolo
from plato_sedna.datasources.options import ReadOptions
from plato_sedna.datasources.samples import Origin
from plato_sedna.errors import ConfigError, ResourceError

DATASET = "Dataset default/fuzz"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that an index line may hold: separators, comments, path pieces, odd characters.
INDEX_ALPHABET = st.sampled_from(list(string.ascii_letters + string.digits + " ,\t#./-_\"'\\:é中\x00"))
index_text = st.lists(st.text(INDEX_ALPHABET, max_size=40), max_size=12).map("\n".join)
file_names = st.text(string.ascii_lowercase + string.digits + "_", min_size=1, max_size=12)
# An index labels with class names throughout, or with integers throughout (mixed is refused).
name_labels = st.text(string.ascii_lowercase, min_size=1, max_size=6)
integer_labels = st.integers(0, 30).map(str)


def index_rows(label_strategy):
    return st.lists(st.tuples(file_names, label_strategy), min_size=1, max_size=20, unique_by=lambda row: row[0])


def _expected_targets(samples, rows) -> None:
    """Names map back through ``classes``; integers keep their value."""
    written = [label for _, label in rows]
    if all(label.isdigit() for label in written):
        assert list(samples.targets) == [int(label) for label in written]
    else:
        assert [samples.classes[target] for target in samples.targets] == written


def _read(reader, name: str, content: bytes, files: list[str] = (), **options):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for file in files:
            (root / file).write_bytes(b"x")
        index = root / name
        index.write_bytes(content)
        origin = Origin(DATASET, str(index), str(root))
        return reader(index, origin, ReadOptions(DATASET, **options))


@pytest.mark.parametrize("reader, name", [(read_txt_index, "train.txt"), (read_csv_index, "train.csv")])
@FUZZ
@given(text=index_text, skip_missing=st.booleans())
def test_any_index_text_gives_samples_or_an_error_naming_the_dataset(reader, name, text, skip_missing) -> None:
    try:
        samples = _read(reader, name, text.encode("utf-8"), skip_missing=skip_missing)
    except ResourceError as error:
        assert DATASET in str(error), f"the error does not name the dataset: {error}"
    else:
        assert len(samples.entries) == len(samples.targets) == len(samples.lines)
        assert all(0 <= target < max(1, len(samples.classes)) for target in samples.targets)


@pytest.mark.parametrize("reader, name", [(read_txt_index, "train.txt"), (read_csv_index, "train.csv")])
@FUZZ
@given(content=st.binary(max_size=200))
def test_any_index_bytes_give_samples_or_an_error_naming_the_dataset(reader, name, content) -> None:
    try:
        _read(reader, name, content, skip_missing=True)
    except ResourceError as error:
        assert DATASET in str(error)


@FUZZ
@given(
    rows=st.one_of(index_rows(name_labels), index_rows(integer_labels)),
    separator=st.sampled_from([" ", ",", "\t", " , "]),
    comments=st.booleans(),
)
def test_a_valid_txt_index_reads_back_every_entry_and_label(rows, separator, comments) -> None:
    lines = [f"{path}.png{separator}{label}" for path, label in rows]
    if comments:
        lines = ["# written by a fuzzer", *lines, "", "   "]
    samples = _read(read_txt_index, "train.txt", "\n".join(lines).encode(), files=[f"{path}.png" for path, _ in rows])
    assert [Path(entry).name for entry in samples.entries] == [f"{path}.png" for path, _ in rows]
    _expected_targets(samples, rows)


@FUZZ
@given(rows=st.one_of(index_rows(name_labels), index_rows(integer_labels)))
def test_a_valid_csv_index_reads_back_every_entry_and_label(rows) -> None:
    lines = ["path,label", *(f"{path}.png,{label}" for path, label in rows)]
    samples = _read(read_csv_index, "train.csv", "\n".join(lines).encode(), files=[f"{path}.png" for path, _ in rows])
    assert [Path(entry).name for entry in samples.entries] == [f"{path}.png" for path, _ in rows]
    _expected_targets(samples, rows)


# The env a pod may carry: Sedna's variables and the hyperparameters, with any text.
ENV_NAMES = (
    "AGG_IP", "AGG_PORT", "AGG_BIND_PORT", "PARTICIPANTS_COUNT", "WORKER_NAME", "JOB_NAME",
    "NAMESPACE", "MODEL_URL", "TRAIN_DATASET_URL", "TRANSMITTER", "CONNECT_TIMEOUT", "SEDNA_ROLE",
    "batch_size", "EPOCHS", "rounds", "learning_rate", "target_accuracy", "per_round",
    "aggregation_algorithm", "epsilon", "cut_layer", "delta_loss", "stop_operator",
)
SECRET = "s3cr3t-Fuzz-Key-0123456789"
env_values = st.one_of(
    st.text(max_size=12),
    st.integers(-10, 100_000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " ", "0", "-1", "1e309", "nan", "true", "ws", "s3", "trainer", "aggregator"]),
)


@FUZZ
@given(env=st.dictionaries(st.sampled_from(ENV_NAMES), env_values, max_size=8))
def test_any_pod_env_gives_a_context_or_an_error_naming_the_variable(env) -> None:
    env = {**env, "ACCESS_KEY_ID": SECRET, "SECRET_ACCESS_KEY": SECRET}
    try:
        context = SednaContext.from_env(env)
    except ConfigError as error:
        message = str(error)
        assert any(name.lower() in message.lower() for name in env), f"names no variable: {message}"
        assert SECRET not in message
    else:
        assert context.role in ("aggregator", "trainer", "plain")
        assert SECRET not in repr(context)
        for name, value in context.hyperparameters.items():
            assert value is not None, name


@FUZZ
@given(content=st.one_of(st.binary(max_size=120), index_text.map(str.encode)), kind=st.sampled_from(["csv", "jsonl"]))
def test_any_text_table_gives_samples_or_an_error_naming_the_dataset(content, kind) -> None:
    try:
        _read(lambda path, origin, options: read_text_table(path, origin, options, kind), f"train.{kind}", content)
    except ResourceError as error:
        assert DATASET in str(error)


@FUZZ
@given(content=st.one_of(st.binary(max_size=120), index_text.map(str.encode)))
def test_any_yolo_label_file_gives_rows_or_an_error_naming_the_dataset(content) -> None:
    with tempfile.TemporaryDirectory() as folder:
        labels = Path(folder) / "0001.txt"
        labels.write_bytes(content)
        try:
            rows = read_label_rows(labels, 3, DATASET)
        except ResourceError as error:
            assert DATASET in str(error)
        else:
            assert all(len(row) >= 5 and 0 <= row[0] < 3 for row in rows)


@FUZZ
@given(content=st.one_of(st.binary(max_size=160), index_text.map(str.encode)))
def test_any_yolo_data_yaml_gives_a_layout_or_an_error_naming_the_dataset(content) -> None:
    with tempfile.TemporaryDirectory() as folder:
        data_yaml = Path(folder) / "data.yaml"
        data_yaml.write_bytes(content)
        try:
            read_yolo(data_yaml, ReadOptions(DATASET))
        except ResourceError as error:
            assert DATASET in str(error)
