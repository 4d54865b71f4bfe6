"""Tests for plato_sedna.local.manifests: parsing, validation, worker env and commands."""

import dataclasses
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from plato_sedna.errors import ResourceError
from plato_sedna.local.container import local_command
from plato_sedna.local.environment import local_url, worker_env
from plato_sedna.local.manifests import (
    DatasetSpec,
    JobSpec,
    ModelSpec,
    WorkerSpec,
    load_job,
)

DATA = Path(__file__).parent / "data" / "local"
MNIST_JOB = DATA / "mnist-job.yaml"
PORT = 40123


def mnist_documents() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(MNIST_JOB.read_text()))


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name)


def job_doc(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return find(documents, "FederatedLearningJob", "mnist-fl")


def write_job(folder: Path, documents: list[dict[str, Any]]) -> Path:
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def load_variant(tmp_path: Path, mutate: Callable[[list[dict[str, Any]]], None]) -> JobSpec:
    documents = mnist_documents()
    mutate(documents)
    return load_job(write_job(tmp_path, documents))


# ---- parsing -------------------------------------------------------------------------------


def test_load_multi_document_job() -> None:
    job = load_job(MNIST_JOB)

    assert (job.name, job.namespace) == ("mnist-fl", "default")
    assert job.ref == "FederatedLearningJob default/mnist-fl"
    assert job.source_dir == DATA.resolve()
    assert job.source_file == MNIST_JOB.resolve()
    assert job.model == ModelSpec("mnist-model", "default", "models/mnist.pth", "pth", {})
    assert job.pretrained_model == ModelSpec(
        "lenet5-pretrained", "default", "pretrained/lenet5.pth", "pth", {}
    )
    assert (job.transmitter, job.agg_data_path) == ("ws", None)
    assert dict(job.annotations) == {"plato.sedna.io/description": "two trainers, FedAvg"}
    assert job.aggregator == WorkerSpec(
        key="aggregator",
        kind="aggregator",
        dataset=None,
        command=("plato",),
        args=("-c", "/config/fedavg.toml"),
        env=(("rounds", "3"),),
    )
    assert [t.key for t in job.trainers] == ["trainer-1", "trainer-2"]
    assert [t.kind for t in job.trainers] == ["trainer", "trainer"]
    assert job.trainers[0].dataset == DatasetSpec(
        "edge1", "default", "data/edge1/train.txt", "txt", "edge-node-1", {}
    )
    assert dict(job.trainers[1].dataset.annotations) == {"plato.sedna.io/num-classes": "10"}
    assert job.trainers[0].env == (("epochs", "2"), ("batch_size", "32"))
    assert job.trainers[1].env == (("epochs", "2"),)
    assert job.workers == (job.aggregator, *job.trainers)


def test_records_are_frozen() -> None:
    job = load_job(MNIST_JOB)
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.trainers[0].dataset.url = "/elsewhere"  # type: ignore[misc, union-attr]


def test_directory_form_reads_every_yaml_file_and_ignores_the_rest() -> None:
    job = load_job(DATA / "split")

    assert (job.name, job.namespace) == ("split-fl", "fl")
    assert job.source_dir == (DATA / "split").resolve()
    assert job.source_file == (DATA / "split" / "03-job.yaml").resolve()
    assert job.model.url == "s3://models/fl/model.pth"
    assert job.trainers[0].dataset.namespace == "fl"
    assert job.pretrained_model is None
    assert (job.aggregator.command, job.aggregator.args, job.aggregator.env) == ((), (), ())


def test_s3_transmitter_wins_over_ws() -> None:
    job = load_job(DATA / "split")
    assert (job.transmitter, job.agg_data_path) == ("s3", "s3://sedna/fl/aggregation_data")


def test_job_name_picks_one_of_several_jobs(tmp_path: Path) -> None:
    documents = mnist_documents()
    second = yaml.safe_load(yaml.safe_dump(job_doc(documents)))
    second["metadata"].update(name="mnist-fl-2", namespace="default")
    path = write_job(tmp_path, [*documents, second])

    assert load_job(path, "mnist-fl-2").name == "mnist-fl-2"
    assert load_job(path, "default/mnist-fl").name == "mnist-fl"
    with pytest.raises(
        ResourceError,
        match=r"no FederatedLearningJob nope in .*default/mnist-fl, default/mnist-fl-2",
    ):
        load_job(path, "nope")


# ---- validation ----------------------------------------------------------------------------


def test_dangling_dataset_reference_names_job_field_file_and_fix(tmp_path: Path) -> None:
    def drop_edge2(documents: list[dict[str, Any]]) -> None:
        documents.remove(find(documents, "Dataset", "edge2"))

    with pytest.raises(ResourceError) as caught:
        load_variant(tmp_path, drop_edge2)
    assert str(caught.value) == (
        "FederatedLearningJob default/mnist-fl: spec.trainingWorkers[1].dataset.name 'edge2' "
        f"has no Dataset default/edge2 in {tmp_path / 'job.yaml'}; "
        "add a Dataset manifest named edge2 or fix the reference"
    )


def _set(path: list[Any], value: Any) -> Callable[[list[dict[str, Any]]], None]:
    """A mutation setting (or, with value None, deleting) path in the mnist job's documents."""

    def mutate(documents: list[dict[str, Any]]) -> None:
        kind, name, *keys = path
        node: Any = find(documents, kind, name)
        for key in keys[:-1]:
            node = node[key]
        if value is None:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return mutate


WORKERS = ["FederatedLearningJob", "mnist-fl", "spec", "trainingWorkers"]
AGGREGATOR = ["FederatedLearningJob", "mnist-fl", "spec", "aggregationWorker"]
TRAINER_2_CONTAINER = [*WORKERS, 1, "template", "spec", "containers", 0]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            _set(["Dataset", "edge1", "spec", "nodeName"], None),
            "Dataset default/edge1: spec.nodeName is missing",
        ),
        (
            _set(["Dataset", "edge1", "spec", "url"], ""),
            "Dataset default/edge1: spec.url is missing",
        ),
        (
            _set(["Dataset", "edge2", "spec", "format"], None),
            "Dataset default/edge2: spec.format is missing",
        ),
        (
            _set(["Model", "mnist-model", "spec", "url"], None),
            "Model default/mnist-model: spec.url is missing",
        ),
        (
            _set(["Model", "mnist-model", "spec", "format"], None),
            "Model default/mnist-model: spec.format is missing",
        ),
        (
            _set([*AGGREGATOR, "model", "name"], None),
            "FederatedLearningJob default/mnist-fl: spec.aggregationWorker.model.name is missing",
        ),
        (
            _set([*AGGREGATOR, "model", "name"], "other-model"),
            "spec.aggregationWorker.model.name 'other-model' has no Model default/other-model",
        ),
        (
            _set(["FederatedLearningJob", "mnist-fl", "spec", "pretrainedModel", "name"], "gone"),
            "spec.pretrainedModel.name 'gone' has no Model default/gone",
        ),
        (
            _set([*AGGREGATOR, "template", "spec", "containers"], []),
            "spec.aggregationWorker.template.spec.containers is missing or empty",
        ),
        (
            _set(WORKERS, []),
            "FederatedLearningJob default/mnist-fl: spec.trainingWorkers is missing or empty",
        ),
        (_set([*WORKERS, 0, "dataset"], None), "spec.trainingWorkers[0].dataset.name is missing"),
        (
            _set([*WORKERS, 1, "template"], None),
            "spec.trainingWorkers[1].template.spec.containers is missing",
        ),
        (
            _set(["Dataset", "edge1", "apiVersion"], "sedna.io/v1"),
            "Dataset default/edge1: apiVersion is 'sedna.io/v1' in",
        ),
        (
            _set(["FederatedLearningJob", "mnist-fl", "apiVersion"], "sedna.io/v1beta1"),
            "set apiVersion: sedna.io/v1alpha1",
        ),
        (
            _set(
                [*TRAINER_2_CONTAINER, "env"],
                [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s"}}}],
            ),
            "env[0].valueFrom (variable TOKEN of worker trainer-2) cannot be resolved locally",
        ),
        (
            _set([*TRAINER_2_CONTAINER, "env"], [{"name": "epochs", "value": 2}]),
            "env[0].value must be a string, not 2 in",
        ),
        (
            _set([*TRAINER_2_CONTAINER, "envFrom"], [{"configMapRef": {"name": "c"}}]),
            "containers[0].envFrom of worker trainer-2 cannot be resolved locally",
        ),
        (_set([*TRAINER_2_CONTAINER, "args"], ["-i", 2]), "args[1] must be a string, not 2"),
        (
            _set(["FederatedLearningJob", "mnist-fl", "spec", "transmitter"], {"s3": {}}),
            "spec.transmitter.s3.aggDataPath is missing",
        ),
        (_set(["Dataset", "edge1", "metadata", "namespace"], "other"), "found one in other"),
    ],
)
def test_invalid_manifests_are_reported_with_resource_and_fix(
    tmp_path: Path, mutate: Callable[[list[dict[str, Any]]], None], expected: str
) -> None:
    with pytest.raises(ResourceError) as caught:
        load_variant(tmp_path, mutate)
    message = str(caught.value)
    assert expected in message
    assert "job.yaml" in message
    assert "; " in message  # the fix follows the problem


def test_two_jobs_without_a_choice_are_an_error(tmp_path: Path) -> None:
    documents = mnist_documents()
    second = yaml.safe_load(yaml.safe_dump(job_doc(documents)))
    second["metadata"]["name"] = "mnist-fl-2"
    with pytest.raises(ResourceError) as caught:
        load_job(write_job(tmp_path, [*documents, second]))
    assert "FederatedLearningJob default/mnist-fl, FederatedLearningJob default/mnist-fl-2" in str(
        caught.value
    )
    assert "--job" in str(caught.value)


def test_resource_defined_twice_is_an_error(tmp_path: Path) -> None:
    documents = mnist_documents()
    with pytest.raises(ResourceError, match="Dataset default/edge1 is defined twice"):
        load_job(write_job(tmp_path, [find(documents, "Dataset", "edge1"), *documents]))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("kind: [unclosed", "is not valid YAML"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "holds no FederatedLearningJob"),
        (
            "apiVersion: sedna.io/v1alpha1\nkind: Dataset\nmetadata: {name: Bad_Name}\n",
            "metadata.name 'Bad_Name'",
        ),
    ],
)
def test_unusable_files_are_reported(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(content)
    with pytest.raises(ResourceError, match=re.escape(expected)):
        load_job(path)


def test_missing_path_and_empty_folder_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ResourceError, match="nope.yaml does not exist"):
        load_job(tmp_path / "nope.yaml")
    with pytest.raises(ResourceError, match=r"holds no \*\.yaml or \*\.yml file"):
        load_job(tmp_path)


# ---- worker environment ------------------------------------------------------------------

# What `plato-sedna run` adds beside Sedna's variables: where the manifests are, thread budget.
LOCAL_RUN_KEYS = {"PLATO_SEDNA_MANIFESTS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PLATO_SEDNA_TOKEN"}
AGGREGATOR_KEYS = {
    "NAMESPACE",
    "WORKER_NAME",
    "JOB_NAME",
    "AGG_BIND_PORT",
    "PARTICIPANTS_COUNT",
    "TRANSMITTER",
    "MODEL_URL",
    "PRETRAINED_MODEL_URL",
    "PYTHONUNBUFFERED",
} | LOCAL_RUN_KEYS
TRAINER_KEYS = {
    "AGG_PORT",
    "AGG_IP",
    "WORKER_NAME",
    "JOB_NAME",
    "PARTICIPANTS_COUNT",
    "NAMESPACE",
    "MODEL_NAME",
    "DATASET_NAME",
    "TRAIN_DATASET_URL",
    "MODEL_URL",
    "PRETRAINED_MODEL_URL",
    "TRANSMITTER",
    "PYTHONUNBUFFERED",
} | LOCAL_RUN_KEYS


def test_aggregator_env_is_what_sedna_injects_on_loopback(tmp_path: Path) -> None:
    job = load_job(MNIST_JOB)
    env = worker_env(job, job.aggregator, agg_port=PORT, workdir=tmp_path, inherited={})

    assert set(env) == AGGREGATOR_KEYS | {"rounds"}
    assert re.fullmatch(r"aggworker-[a-z0-9]{5}", env["WORKER_NAME"])
    assert env["AGG_BIND_PORT"] == str(PORT)
    assert (env["NAMESPACE"], env["JOB_NAME"], env["PARTICIPANTS_COUNT"]) == (
        "default",
        "mnist-fl",
        "2",
    )
    assert env["TRANSMITTER"] == "ws"
    assert env["MODEL_URL"] == str(
        tmp_path.resolve() / "models" / "mnist.pth"
    )  # output: under the workdir
    assert env["PRETRAINED_MODEL_URL"] == str(
        DATA.resolve() / "pretrained" / "lenet5.pth"
    )  # input: beside
    assert (env["rounds"], env["PYTHONUNBUFFERED"]) == ("3", "1")


def test_trainer_env_is_what_sedna_injects_on_loopback(tmp_path: Path) -> None:
    job = load_job(MNIST_JOB)
    first, second = (
        worker_env(job, t, agg_port=PORT, workdir=tmp_path, inherited={}) for t in job.trainers
    )

    assert set(first) == TRAINER_KEYS | {"epochs", "batch_size"}
    assert set(second) == TRAINER_KEYS | {"epochs"}
    assert (first["AGG_IP"], first["AGG_PORT"]) == ("127.0.0.1", str(PORT))
    assert re.fullmatch(r"trainworker-[a-z0-9]{5}", first["WORKER_NAME"])
    assert first["WORKER_NAME"] != second["WORKER_NAME"]
    assert (first["MODEL_NAME"], first["DATASET_NAME"], second["DATASET_NAME"]) == (
        "mnist-model",
        "edge1",
        "edge2",
    )
    assert first["PARTICIPANTS_COUNT"] == "2"
    assert first["TRAIN_DATASET_URL"] == str(DATA.resolve() / "data" / "edge1" / "train.txt")
    assert second["TRAIN_DATASET_URL"] == "/srv/data/edge2/train.txt"  # absolute: unchanged
    assert first["MODEL_URL"] == str(tmp_path.resolve() / "models" / "mnist.pth")
    assert (first["epochs"], first["batch_size"]) == ("2", "32")


def test_local_url_keeps_urls_and_absolute_paths_and_marks_folders(tmp_path: Path) -> None:
    assert local_url("s3://bucket/a.txt", tmp_path) == "s3://bucket/a.txt"
    assert local_url("https://host/a.zip", tmp_path) == "https://host/a.zip"
    assert local_url("/data/a.txt", tmp_path) == "/data/a.txt"
    assert local_url("data/a.txt", tmp_path) == f"{tmp_path.resolve()}/data/a.txt"
    assert local_url("model/", tmp_path) == f"{tmp_path.resolve()}/model/"


def test_s3_transmitter_and_remote_urls(tmp_path: Path) -> None:
    job = load_job(DATA / "split")
    aggregator = worker_env(job, job.aggregator, agg_port=PORT, workdir=tmp_path, inherited={})
    trainer = worker_env(job, job.trainers[0], agg_port=PORT, workdir=tmp_path, inherited={})

    for env in (aggregator, trainer):
        assert (env["TRANSMITTER"], env["AGG_DATA_PATH"]) == (
            "s3",
            "s3://sedna/fl/aggregation_data",
        )
        assert env["MODEL_URL"] == "s3://models/fl/model.pth"
        assert "PRETRAINED_MODEL_URL" not in env
    assert set(aggregator) == AGGREGATOR_KEYS - {"PRETRAINED_MODEL_URL"} | {"AGG_DATA_PATH"}
    assert trainer["TRAIN_DATASET_URL"] == str((DATA / "split" / "data" / "edge1.txt").resolve())


def test_injected_values_win_over_the_template_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = load_job(MNIST_JOB)
    trainer = dataclasses.replace(
        job.trainers[0], env=(("AGG_IP", "10.1.2.3"), ("TEST_DATASET_URL", "test.txt"))
    )

    with caplog.at_level(logging.WARNING, logger="plato_sedna.local.environment"):
        env = worker_env(job, trainer, agg_port=PORT, workdir=tmp_path, inherited={})

    assert env["AGG_IP"] == "127.0.0.1"
    # Sedna-managed but not injected for FL: the template sets it, an input beside the manifests.
    assert env["TEST_DATASET_URL"] == str(DATA.resolve() / "test.txt")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "trainer-1" in warnings[0] and "AGG_IP" in warnings[0]


def test_shell_variables_sedna_manages_do_not_leak(tmp_path: Path) -> None:
    job = load_job(MNIST_JOB)
    shell = {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "AGG_IP": "10.0.0.9",
        "MODEL_URL": "/tmp/x",
        "SEDNA_ROLE": "trainer",
        "config_file": "/etc/plato.toml",
        "S3_ENDPOINT_URL": "http://s3",
        "ACCESS_KEY_ID": "key",
        "SECRET_ACCESS_KEY": "secret",
        "DATA_PATH_PREFIX": "/home/data",
        "LC_SERVER": "http://lc",
        "TEST_DATASET_URL": "/t.txt",
        "EPOCHS": "9",
        "PYTHONUNBUFFERED": "0",
    }
    env = worker_env(job, job.aggregator, agg_port=PORT, workdir=tmp_path, inherited=shell)

    assert set(env) == AGGREGATOR_KEYS | {"rounds", "PATH", "HOME"}
    assert (env["PATH"], env["HOME"], env["PYTHONUNBUFFERED"]) == ("/usr/bin", "/home/me", "1")


def test_env_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGG_IP", "10.0.0.9")
    monkeypatch.setenv("PLATO_SEDNA_TEST_MARKER", "kept")
    job = load_job(MNIST_JOB)
    env = worker_env(job, job.aggregator, agg_port=PORT, workdir=tmp_path)
    assert "AGG_IP" not in env
    assert env["PLATO_SEDNA_TEST_MARKER"] == "kept"


# ---- commands ------------------------------------------------------------------------------


def command_of(
    job: JobSpec, command: tuple[str, ...], args: tuple[str, ...] = ()
) -> tuple[str, ...]:
    return local_command(job, dataclasses.replace(job.trainers[0], command=command, args=args))


def test_plato_entrypoint_with_a_configmap_path_falls_back_beside_the_manifests() -> None:
    job = load_job(MNIST_JOB)
    expected = (sys.executable, "-m", "plato_sedna", "-c", str(DATA.resolve() / "fedavg.toml"))
    assert local_command(job, job.aggregator) == expected
    assert local_command(job, job.trainers[1]) == expected


def test_config_flag_forms_and_other_args(tmp_path: Path) -> None:
    job = load_job(MNIST_JOB)
    config = str(DATA.resolve() / "fedavg.toml")
    existing = tmp_path / "mine.toml"
    existing.write_text("")

    assert command_of(job, (), ("--config=fedavg.toml", "-i", "1"))[3:] == (
        f"--config={config}",
        "-i",
        "1",
    )
    assert command_of(job, ("plato", "--config"), ("fedavg.toml",))[3:] == ("--config", config)
    assert command_of(job, ("/usr/local/bin/plato",), ("-c", str(existing)))[3:] == (
        "-c",
        str(existing),
    )


def test_empty_command_is_the_plato_entrypoint() -> None:
    job = load_job(DATA / "split")
    assert local_command(job, job.aggregator) == (sys.executable, "-m", "plato_sedna")


def test_python_commands_run_this_interpreter(tmp_path: Path) -> None:
    job = load_job(MNIST_JOB)
    script = DATA / "fake_worker.py"
    config = str(DATA.resolve() / "fedavg.toml")

    assert command_of(job, ("python", "fake_worker.py"), ("-c", "fedavg.toml")) == (
        sys.executable,
        str(DATA.resolve() / "fake_worker.py"),
        "-c",
        config,
    )
    assert command_of(job, ("python3", "-u", "/app/fake_worker.py")) == (
        sys.executable,
        "-u",
        str(script.resolve()),
    )
    assert command_of(job, ("python3.13", "-m", "plato_sedna"), ("-c", "/config/fedavg.toml")) == (
        sys.executable,
        "-m",
        "plato_sedna",
        "-c",
        config,
    )
    assert command_of(job, ("python", "-c", "print(1)")) == (sys.executable, "-c", "print(1)")


def test_unsupported_command_is_an_error() -> None:
    job = load_job(MNIST_JOB)
    with pytest.raises(ResourceError) as caught:
        command_of(job, ("sh", "-c", "plato -c /config/fedavg.toml"))
    assert "cannot run container command 'sh' of worker trainer-1 locally" in str(
        caught.value
    ) and "supports the `plato` entrypoint and `python`" in str(caught.value)


def test_config_file_found_nowhere_is_an_error() -> None:
    job = load_job(MNIST_JOB)
    with pytest.raises(
        ResourceError, match=r"config file '/config/other.toml' of worker trainer-1 does not exist"
    ):
        command_of(job, ("plato",), ("-c", "/config/other.toml"))
    with pytest.raises(
        ResourceError, match=r"config file 'missing.toml' of worker trainer-1 is not in"
    ):
        command_of(job, ("plato",), ("-c", "missing.toml"))
