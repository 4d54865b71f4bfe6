"""Trainers sharing one Dataset each take the partition Plato's simulation gives their `-i N`."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest
from conftest import QUICKSTART
from support.processes import free_port, plain_env, start_run
from support.workers import (
    aggregator_env,
    start_plato,
    stop,
    trainer_env,
    wait_for_text,
)

from plato_sedna.config import resolve_config
from plato_sedna.context import SednaContext
from plato_sedna.errors import ConfigError
from plato_sedna.partitioning import claimed_id, client_id_arg, place_trainer
from plato_sedna.resources import JobFacts
from plato_sedna.servers.identity import TrainerRoster

NONIID = QUICKSTART / "noniid"
TRAINER = {"AGG_IP": "127.0.0.1", "PARTICIPANTS_COUNT": "3", "DATASET_NAME": "digits-train"}
PARTITION_LINE = re.compile(
    r"Client #(\d+) trains on a noniid partition of digits-train: (\d+) samples, label histogram (\{[^}]*\})"
)
# Plain Plato, as its simulation builds client N's data: the same config and datasource,
# Plato's own registries; prints {N: {label: count}} of each partition.
EXPECTED_PARTITIONS = r"""
import json, os, sys
from collections import Counter
from pathlib import Path
import plato_sedna  # registers sednaDataResource
from plato_sedna.config import load_config_file, resolve_config, write_config
from plato_sedna.context import SednaContext
config_file, base, ids = sys.argv[1], sys.argv[2], [int(n) for n in sys.argv[3:]]
resolved = resolve_config(load_config_file(config_file), SednaContext.from_env(os.environ))
os.environ["config_file"] = str(write_config(resolved, Path(base) / "config.toml"))
sys.argv = ["plato", "-c", os.environ["config_file"], "-b", base]
from plato.config import Config
Config()
from plato.datasources import registry as datasources
from plato.samplers import registry as samplers
partitions = {}
for client_id in ids:
    datasource = datasources.get(client_id=client_id)
    targets = datasource.targets()
    indices = list(samplers.get(datasource, client_id).get())
    partitions[client_id] = dict(sorted(Counter(int(targets[i]) for i in indices).items()))
print(json.dumps(partitions))
"""


def noniid_config(**data: object) -> dict:
    base = {"datasource": "sednaDataResource", "sampler": "noniid", "partition_size": 300, "random_seed": 1}
    return {
        "clients": {"total_clients": 3},
        "server": {},
        "data": {key: value for key, value in (base | data).items() if value is not None},
        "trainer": {"rounds": 1},
        "algorithm": {"type": "fedavg"},
    }


def job(*dataset_names: str) -> JobFacts:
    return JobFacts("FederatedLearningJob default/digits-noniid", len(dataset_names), MappingProxyType({}),
                    dataset_names=dataset_names)


SHARED = job("digits-train", "digits-train", "digits-train")
OWN = job("digits-train", "digits-edge2", "digits-edge3")


def trainer(**env: str) -> SednaContext:
    return SednaContext.from_env(TRAINER | env)


# The decision


def test_a_trainer_on_a_shared_dataset_takes_the_partition_of_its_id() -> None:
    context = place_trainer(trainer(), noniid_config(), 2, SHARED)

    assert context.shared_dataset_id == 2 and context.trainer_identity == "digits-train#2"
    resolved = resolve_config(noniid_config(), context, SHARED)
    assert resolved["data"]["sampler"] == "noniid"  # Plato's sampler partitions the shared set
    assert resolved["sedna"]["identity"] == "digits-train#2" and resolved["sedna"]["shared_dataset_id"] == 2
    assert resolved["clients"]["total_clients"] == 3


def test_a_trainer_with_its_own_dataset_trains_on_all_of_it() -> None:
    context = place_trainer(trainer(), noniid_config(), 1, OWN)

    assert context.shared_dataset_id is None and context.trainer_identity == "digits-train"
    assert resolve_config(noniid_config(), context, OWN)["data"]["sampler"] == "all_inclusive"


def test_without_the_job_an_id_and_a_partitioning_sampler_mean_a_shared_dataset() -> None:
    assert place_trainer(trainer(), noniid_config(), 3, None).shared_dataset_id == 3
    assert place_trainer(trainer(), noniid_config(), None, None).shared_dataset_id is None
    assert place_trainer(trainer(), noniid_config(sampler="all_inclusive"), 3, None).shared_dataset_id is None


def test_other_roles_are_left_alone() -> None:
    aggregator = SednaContext.from_env({"AGG_BIND_PORT": "7363", "PARTICIPANTS_COUNT": "3"})
    assert place_trainer(aggregator, noniid_config(), None, SHARED) is aggregator


def test_a_whole_set_sampler_on_a_shared_dataset_still_needs_distinct_ids() -> None:
    context = place_trainer(trainer(), noniid_config(sampler="all_inclusive"), 1, SHARED)
    assert context.trainer_identity == "digits-train#1"


@pytest.mark.parametrize(
    ("client_id", "config", "message"),
    [
        (None, noniid_config(), r'3 training workers of FederatedLearningJob default/digits-noniid share Dataset '
                                r'digits-train.*add args: \["-i", "N"\]'),
        (4, noniid_config(), r"-i 4 of the trainer on Dataset digits-train is out of range: .* has 3 training "
                             r"workers; give each one its own -i from 1 to 3"),
        (0, noniid_config(), r"-i 0 .* is out of range"),
        (1, noniid_config(random_seed=None), r"data.random_seed is not set: .*set data.random_seed"),
        (1, noniid_config(partition_size=None), r"data.sampler = 'noniid' needs data.partition_size"),
        (1, noniid_config(sampler="label_quantity_noniid"), r"needs data.per_client_classes_size"),
    ],
)
def test_bad_placements_are_refused_with_the_fix(client_id: int | None, config: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        place_trainer(trainer(), config, client_id, SHARED)


def test_two_trainers_with_one_id_on_a_dataset_are_refused_from_the_manifests() -> None:
    facts = JobFacts("FederatedLearningJob default/digits-noniid", 3, MappingProxyType({}),
                     dataset_names=SHARED.dataset_names, client_ids=(1, 2, 2))
    assert place_trainer(trainer(), noniid_config(), 1, facts).shared_dataset_id == 1
    with pytest.raises(ConfigError, match=r"trainingWorkers\[1\] and \[2\] .* both have -i 2"):
        place_trainer(trainer(), noniid_config(), 2, facts)


def test_the_id_comes_from_the_container_args() -> None:
    assert [client_id_arg(argv) for argv in (["-c", "x.toml", "-i", "3"], ["--id=2"], ["--id", "4"], ["-c", "x"])] == [
        3, 2, 4, None
    ]


def test_a_config_for_another_trainer_count_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    place_trainer(trainer(), noniid_config(sampler="iid") | {"clients": {"total_clients": 5}}, 1, SHARED)
    assert "set clients.total_clients = 3" in caplog.text


# The aggregator's side


def test_the_aggregator_gives_a_partition_exactly_its_id() -> None:
    roster = TrainerRoster(3)
    assert claimed_id("digits-train#2") == 2 and claimed_id("digits-train") is None

    assert roster.refusal("digits-train#2", 2) is None and roster.assign("digits-train#2", 2) == 2
    assert roster.assign("digits-edge9") == 1  # others take the lowest free id
    assert roster.refusal("digits-train#1", 1) == (
        "it takes partition 1 of Dataset digits-train, so it must be client #1, but trainer digits-edge9 "
        "already is; give each trainingWorkers entry its own -i N"
    )
    assert "but the job has 3 trainers" in roster.refusal("digits-train#4", 4)
    assert "but asked for client #1" in roster.refusal("digits-train#3", 1)
    assert roster.refusal("digits-train#3", None) is None and roster.assign("digits-train#3") == 3
    assert roster.assign("digits-train#2", 2) == 2  # a rejoining trainer keeps its id
    assert roster.refusal("digits-edge8", None) == "all 3 trainer slots of this job are taken"


def test_a_full_roster_refuses_newcomers() -> None:
    roster = TrainerRoster(1)
    roster.assign("digits-edge1")
    assert roster.refusal("digits-edge2", None) == "all 1 trainer slots of this job are taken"
    assert roster.refusal("digits-edge1", None) is None


# Render writes the ids


def test_render_gives_trainers_on_one_url_one_dataset_and_their_ids() -> None:
    from plato_sedna.tools.job_objects import JobRequest, job_objects

    url = "s3://bucket/digits/train.txt"
    request = JobRequest(
        name="digits-noniid", config_name="noniid.toml", config_text="", config=noniid_config(),
        trainers=(("edge1", url), ("edge2", url), ("edge3", "data/edge3.txt")), model_url="m.pth",
    )
    objects = job_objects(request)

    datasets = [obj["metadata"]["name"] for obj in objects if obj["kind"] == "Dataset"]
    assert datasets == ["digits-noniid-edge1", "digits-noniid-edge3"]
    (fl_job,) = [obj for obj in objects if obj["kind"] == "FederatedLearningJob"]
    workers = fl_job["spec"]["trainingWorkers"]
    assert [w["dataset"]["name"] for w in workers] == ["digits-noniid-edge1", "digits-noniid-edge1", "digits-noniid-edge3"]
    assert [w["template"]["spec"]["containers"][0]["args"][2:] for w in workers] == [["-i", "1"], ["-i", "2"], []]


# Pods


@pytest.fixture
def noniid_job(tmp_path: Path, digits_data: Path) -> Path:
    """The non-IID demo's job.yaml and config beside the session's digits data (../data)."""
    job_dir = tmp_path / "quickstart" / "noniid"
    job_dir.mkdir(parents=True)
    for name in ("job.yaml", "noniid.toml"):
        shutil.copy(NONIID / name, job_dir / name)
    (tmp_path / "quickstart" / "data").symlink_to(digits_data, target_is_directory=True)
    return job_dir / "job.yaml"


def test_a_trainer_without_its_id_fails_at_start_naming_the_fix(noniid_job: Path, tmp_path: Path) -> None:
    env = trainer_env(free_port(), 3, "digits-train", noniid_job.parent.parent / "data" / "train.txt",
                      JOB_NAME="digits-noniid", PLATO_SEDNA_MANIFESTS=str(noniid_job))
    result = subprocess.run([sys.executable, "-m", "plato_sedna", "-c", str(noniid_job.parent / "noniid.toml")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 2, result.stderr[-3000:]
    assert 'share Dataset digits-train' in result.stderr and 'add args: ["-i", "N"]' in result.stderr
    assert "Traceback" not in result.stderr


def start_expected_partitions(config: Path, train_url: Path, base: Path, ids: list[int]) -> subprocess.Popen:
    """Plain Plato's partitions of ``ids``, computed beside the job (read with :func:`partitions_of`)."""
    base.mkdir(parents=True)
    return subprocess.Popen(
        [sys.executable, "-c", EXPECTED_PARTITIONS, str(config), str(base), *map(str, ids)],
        cwd=base, env=plain_env(TRAIN_DATASET_URL=str(train_url)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def partitions_of(process: subprocess.Popen) -> dict[int, dict[int, int]]:
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr[-3000:]
    partitions = json.loads(stdout.strip().splitlines()[-1])
    return {int(n): {int(label): count for label, count in histogram.items()} for n, histogram in partitions.items()}


@pytest.mark.slow  # four worker processes and a plain Plato: about two minutes on two cores
def test_three_trainers_on_one_dataset_train_on_platos_noniid_partitions(noniid_job: Path, tmp_path: Path) -> None:
    from test_quickstart_e2e import run_job

    text = noniid_job.read_text()
    noniid_job.write_text(text.replace('value: "10"', 'value: "1"').replace('value: "2"', 'value: "1"'))
    workdir = tmp_path / "run"
    train_url = noniid_job.parent.parent / "data" / "train.txt"
    expected = start_expected_partitions(noniid_job.parent / "noniid.toml", train_url, tmp_path / "plain", [1, 2, 3])

    result = run_job(noniid_job, workdir)
    simulated = partitions_of(expected)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert json.loads((workdir / "summary.json").read_text())["status"] == "succeeded"
    trained = {}
    for number in (1, 2, 3):
        lines = PARTITION_LINE.findall((workdir / f"trainer-{number}" / "worker.log").read_text())
        assert lines, f"trainer-{number} logged no partition"
        client_id, samples, histogram = lines[0]
        trained[int(client_id)] = ast.literal_eval(histogram)
        assert int(client_id) == number and int(samples) == sum(trained[number].values()) == 300
    aggregator_log = (workdir / "aggregator" / "worker.log").read_text()
    assert {f"Trainer digits-train#{n} is client #{n}" for n in (1, 2, 3)} <= set(
        re.findall(r"Trainer digits-train#\d is client #\d", aggregator_log)
    )
    assert trained == simulated
    assert len({json.dumps(histogram) for histogram in trained.values()}) == 3  # non-IID: all differ


@pytest.mark.slow  # an aggregator and two trainers: about a minute on two cores
@pytest.mark.extended
def test_a_partition_whose_id_is_taken_is_refused_on_both_sides(
    noniid_job: Path, tmp_path: Path, digits_data: Path
) -> None:
    config, port = noniid_job.parent / "noniid.toml", free_port()
    aggregator_dir, shared_dir = tmp_path / "aggregator", tmp_path / "shared"
    aggregator = start_plato(config, aggregator_dir, aggregator_env(port, 2, tmp_path / "m.pth", digits_data / "test.txt"))
    own = start_plato(config, tmp_path / "edge1", trainer_env(port, 2, "digits-edge1", digits_data / "edge1.txt"))
    shared = None
    try:
        wait_for_text(aggregator_dir / "worker.log", "Trainer digits-edge1 is client #1", 180, aggregator)
        shared_dir.mkdir()
        # No manifests and no API: `-i 1` with a noniid sampler means partition 1 of digits-train.
        shared = start_run(
            [sys.executable, "-m", "plato_sedna", "-c", str(config), "-i", "1"], shared_dir, shared_dir / "worker.log",
            trainer_env(port, 2, "digits-train", digits_data / "train.txt"),
        )
        assert shared.wait(180) == 1
    finally:
        stop(*(process for process in (aggregator, own, shared) if process is not None))

    reason = (
        "it takes partition 1 of Dataset digits-train, so it must be client #1, but trainer digits-edge1 already is"
    )
    assert f"Trainer digits-train#1 rejected: {reason}" in (aggregator_dir / "worker.log").read_text()
    assert f"the aggregator refused it: {reason}" in (shared_dir / "worker.log").read_text()
