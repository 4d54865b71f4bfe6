"""`plato-sedna validate` on manifests others wrote (tests/data/upstream, kept as written), and on
any shape a manifest may hold: every problem is a line, never a traceback."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import QUICKSTART

from plato_sedna.tools import render
from plato_sedna.tools.validate import Problem, main, manifest_problems

REPO = Path(__file__).resolve().parent.parent
UPSTREAM = REPO / "tests" / "data" / "upstream"
SEDNA = UPSTREAM / "sedna"
PROPOSAL = UPSTREAM / "proposal"
EXAMPLES = ("surface_defect_detection", "surface_defect_detection_v2", "yolov5_coco128_mistnet")
NODES = {"$CLOUD_NODE": "cloud", "$EDGE1_NODE": "edge1", "$EDGE2_NODE": "edge2"}


def validate_here(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def errors(problems: list[Problem]) -> list[str]:
    return [str(problem) for problem in problems if problem.is_error]


def as_the_shell_gives_it(folder: Path, target: Path, image: str = "plato-sedna:0.1.0") -> Path:
    """A copy of an example folder with the nodes substituted and, in the job, our image."""
    shutil.copytree(folder, target)
    for file in target.glob("*.yaml"):
        content = file.read_text()
        for placeholder, node in NODES.items():
            content = content.replace(placeholder, node)
        if file.name == "job.yaml":
            content = "\n".join(
                line.split("image:")[0] + f"image: {image}" if "image:" in line else line for line in content.splitlines()
            )
        file.write_text(content)
    return target / "job.yaml"


# ---------------------------------------------------------------------------
# Sedna's examples and samples


@pytest.mark.parametrize("example", EXAMPLES)
def test_sednas_example_job_alone_finds_its_objects_beside_it(example: str, capsys: pytest.CaptureFixture) -> None:
    status, output = validate_here(capsys, str(SEDNA / example / "job.yaml"))

    assert status == 0, output
    assert "Traceback" not in output and "could not finish" not in output
    assert "note: Model default/" in output and "model.yaml beside job.yaml" in output
    assert output.count("note: Dataset default/") == 2
    if example == "yolov5_coco128_mistnet":
        assert "note: Secret default/mysecret is in secret.yaml beside job.yaml" in output


@pytest.mark.parametrize("example", EXAMPLES)
def test_sednas_example_with_our_image_and_its_nodes(example: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    job_file = as_the_shell_gives_it(SEDNA / example, tmp_path / example)
    assert validate_here(capsys, *map(str, sorted(job_file.parent.glob("*.yaml"))))[0] == 0

    # a trainer pinned to another node than its Dataset's is an error
    job_file.write_text(job_file.read_text().replace("nodeName: edge2", "nodeName: edge1"))
    status, output = validate_here(capsys, str(job_file))
    assert status == 1
    assert "spec.trainingWorkers[1].template.spec.nodeName: is 'edge1', but Dataset default/" in output
    assert "is on node 'edge2'" in output


def test_a_missing_credential_secret_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    job_file = as_the_shell_gives_it(SEDNA / "yolov5_coco128_mistnet", tmp_path / "yolo")
    (job_file.parent / "secret.yaml").unlink()

    status, output = validate_here(capsys, str(job_file))

    assert status == 0, output
    assert "spec.transmitter.s3.credentialName: warning: Secret default/mysecret is not in the files given" in output


@pytest.mark.parametrize("sample", sorted(path.name for path in (SEDNA / "crd-samples").glob("*.yaml")))
def test_sednas_crd_samples_report_only_their_missing_objects(sample: str) -> None:
    problems = manifest_problems([SEDNA / "crd-samples" / sample])

    # the samples' jobs name Datasets and Models no sample defines; nothing else is wrong
    for line in errors(problems):
        assert "is not in the files given nor beside" in line, line
    assert all("could not finish" not in str(problem) for problem in problems)


def test_sednas_v2_proposal_job_is_lines_not_a_traceback(capsys: pytest.CaptureFixture) -> None:
    status, output = validate_here(capsys, str(SEDNA / "proposal-v2" / "job.yaml"))
    assert status == 1 and "cannot be read as YAML" in output and "Traceback" not in output

    status, output = validate_here(capsys, str(SEDNA / "proposal-v2" / "job-mended.yaml"))
    assert status == 1 and "Traceback" not in output and "could not finish" not in output
    assert "spec.trainingWorkers: is a dict, not a list" in output


# ---------------------------------------------------------------------------
# The proposal's job: transmitter list, trigger, valueless env


def proposal_job(tmp_path: Path, change=None) -> Path:
    job = yaml.safe_load((PROPOSAL / "job-crd-example.yaml").read_text())
    if change is not None:
        change(job)
    folder = tmp_path / "job"
    folder.mkdir(exist_ok=True)
    (folder / "job.yaml").write_text(yaml.safe_dump(job, sort_keys=False))
    return folder / "job.yaml"


def test_the_proposal_job_warns_of_what_the_job_changes_at_start(capsys: pytest.CaptureFixture) -> None:
    status, output = validate_here(capsys, "--extended-crds", str(PROPOSAL / "job-crd-example.yaml"))

    assert "Traceback" not in output and "could not finish" not in output
    assert "containers[0].env[3]: warning: batch_size has no value; the worker treats it as unset" in output
    assert "aggregation trigger: warning: asks for 6 ready clients, but the job has 2 trainer(s)" in output
    assert ("spec.transimitter.transimitter_list: warning: names adaptive_freezing, but aggregation_algorithm=mistnet "
            "exchanges no weights") in output
    # its real errors: the second Dataset is nowhere, the one beside has no url
    lines = [line for line in output.splitlines() if ": " in line and "warning: " not in line and "note: " not in line]
    assert any("edge2-surface-defect-detection-dataset is not in the files given" in line for line in lines)
    assert all("transimitter" not in line and "batch_size" not in line for line in lines), output


def _set_algorithm(value: str):
    def change(job: dict) -> None:
        for container in job["spec"]["aggregationWorker"]["template"]["spec"]["containers"]:
            for variable in container["env"]:
                if variable["name"] == "aggregation_algorithm":
                    variable["value"] = value
    return change


def _transmitters(*names: str, outer: str = "transimitter", inner: str = "transimitter_list"):
    def change(job: dict) -> None:
        job["spec"].pop("transimitter")
        job["spec"][outer] = {inner: [{"name": name} for name in names]}
        _set_algorithm("fedavg")(job)
    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set_algorithm("fedavg_personalized"),
         "names adaptive_freezing, which plato-sedna cannot combine with aggregation_algorithm=fedavg_personalized"),
        (_transmitters("simple", "gossip"), "transimitter_list[1].name is 'gossip', which plato-sedna cannot honour"),
        (_transmitters("adaptive_freezing", "adaptive_sync"), "names both adaptive_freezing and adaptive_sync"),
        (_transmitters("adaptive_sync", "adaptive_freezing", outer="transmitter", inner="transmitter_list"),
         "spec.transmitter.transmitter_list names both adaptive_freezing and adaptive_sync"),
    ],
    ids=["other-algorithm", "unknown-name", "both-adaptive", "sednas-spelling"],
)
def test_transmitter_list_errors(change, message: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status, output = validate_here(capsys, "--extended-crds", str(proposal_job(tmp_path, change)))
    assert status == 1 and message in output, output


def test_a_transmitter_list_with_fedavg_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    job_file = proposal_job(tmp_path, _transmitters("simple", "adaptive_sync", outer="transmitter", inner="transmitter_list"))
    output = validate_here(capsys, "--extended-crds", str(job_file))[1]
    assert "spec.transmitter" not in output, output
    # Sedna's own CRD prunes the list: an error without the extended CRDs
    assert "spec.transmitter.transmitter_list: not in Sedna's FederatedLearningJob CRD" in validate_here(capsys, str(job_file))[1]


# ---------------------------------------------------------------------------
# Config names: optimizer


@pytest.fixture
def rendered_quickstart(tmp_path: Path) -> Path:
    assert render.main([
        "-c", str(QUICKSTART / "fedavg.toml"), "--trainer", "edge1=data/edge1.txt", "--trainer", "edge2=data/edge2.txt",
        "--model-url", "model/m.pth", "--name", "digits", "-o", str(tmp_path / "out"),
    ]) == 0
    return tmp_path / "out" / "job.yaml"


def test_an_unknown_optimizer_is_an_error_naming_the_known_ones(
    rendered_quickstart: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = tmp_path / "fedprox.toml"
    config.write_text((QUICKSTART / "fedavg.toml").read_text().replace('optimizer = "Adam"', 'optimizer = "FedProx"'))
    status, output = validate_here(capsys, str(config))
    assert status == 1
    assert "as trainer: trainer.optimizer = 'FedProx' is not an optimizer Plato knows; known: " in output
    assert "SGD" in output and "AdamW" in output

    # the env of the trainers' templates wins over the file, as in the pods
    job = rendered_quickstart.read_text()
    assert "value: Adam\n" in job
    rendered_quickstart.write_text(job.replace("value: Adam\n", "value: FedProx\n"))
    status, output = validate_here(capsys, str(rendered_quickstart))
    assert status == 1 and "trainer.optimizer = 'FedProx' is not an optimizer Plato knows" in output


def test_an_env_optimizer_without_a_config_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    job_file = as_the_shell_gives_it(SEDNA / "surface_defect_detection", tmp_path / "sdd")
    job = yaml.safe_load(job_file.read_text())
    workers = job["spec"]["trainingWorkers"]
    workers[0]["template"]["spec"]["containers"][0]["env"].append({"name": "optimizer", "value": "FedProx"})
    workers[1]["template"]["spec"]["containers"][0]["env"].append({"name": "optimizer", "value": "auto"})  # ultralytics'
    job_file.write_text(yaml.safe_dump(job))

    status, output = validate_here(capsys, str(job_file))

    assert status == 1
    assert "trainingWorkers[0].template.spec.containers[0].env: env optimizer = 'FedProx' is not an optimizer" in output
    assert "trainingWorkers[1].template" not in output


# ---------------------------------------------------------------------------
# Odd shapes at every level: lines, never a traceback

ODD_VALUES = ("text", ["a", "list"], None, 7, {"odd": {"nested": [1]}}, True, [{"name": 3}])


def _paths(node: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _replaced(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return copy.deepcopy(value)
    changed = copy.deepcopy(document)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = copy.deepcopy(value)
    return changed


def _odd_documents(documents: list) -> Iterator[tuple[str, list]]:
    for number, document in enumerate(documents):
        for path in _paths(document):
            for value in ODD_VALUES:
                odd = [*documents[:number], _replaced(document, path, value), *documents[number + 1:]]
                yield f"document {number} {'.'.join(map(str, path))} = {value!r}", odd


def _check_odd(documents: list, folder: Path, failures: list | None = None) -> int:
    """Validate every odd variant of ``documents``; lines where a reader of another module
    raised on the shape (caught by validate) go to ``failures``."""
    failures = [] if failures is None else failures
    file = folder / "job.yaml"
    checked = 0
    for label, odd in _odd_documents(documents):
        file.write_text(yaml.safe_dump_all(odd))
        try:
            problems = manifest_problems([file])
        except Exception as error:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{label}: validate raised {type(error).__name__}: {error}")
        assert all(isinstance(problem, Problem) for problem in problems), label
        internal = [str(problem) for problem in problems if "could not finish" in problem.message]
        unread = [str(problem) for problem in problems if "cannot be read (" in problem.message]
        assert not internal, f"{label}: {internal}"
        failures.extend(f"{label}: {line}" for line in unread)
        checked += 1
    return checked


def test_odd_shapes_in_the_proposal_job_are_problem_lines(tmp_path: Path) -> None:
    job = yaml.safe_load((PROPOSAL / "job-crd-example.yaml").read_text())
    job["spec"]["aggregationWorker"]["platoConfig"] = {"url": "s3://configs/fedavg.toml"}
    job["spec"]["transmitter"] = {"s3": {"aggDataPath": "s3://a/b", "credentialName": "creds"}}
    dataset = yaml.safe_load((SEDNA / "surface_defect_detection" / "dataset-edge1.yaml").read_text())
    assert _check_odd([job, dataset], tmp_path) > 500


def test_odd_shapes_in_a_rendered_job_with_its_config_map_are_problem_lines(rendered_quickstart: Path, tmp_path: Path) -> None:
    documents = [doc for doc in yaml.safe_load_all(rendered_quickstart.read_text()) if doc]
    keep = [doc for doc in documents if doc["kind"] in ("ConfigMap", "FederatedLearningJob")]
    job = keep[-1]
    job["spec"]["trainingWorkers"] = job["spec"]["trainingWorkers"][:1]  # fewer paths, the same shapes
    job["metadata"]["annotations"] = {"plato.sedna.io/aggregation-trigger": "{condition: {threshold: 1}}"}
    assert _check_odd(keep, tmp_path) > 200


def test_validate_checks_the_models_format_against_its_architecture(tmp_path: Path) -> None:
    """What the aggregator refuses at start, validate says first; Sedna's own pb and ckpt pass."""
    model = {
        "apiVersion": "sedna.io/v1alpha1", "kind": "Model",
        "metadata": {"name": "surface-defect-detection-model", "annotations": {"plato.sedna.io/model-name": "lenet5"}},
        "spec": {"url": "model/m", "format": "h5"},
    }
    job_file = tmp_path / "job.yaml"
    for fmt, refused in (("h5", True), ("pb", False), ("ckpt", False), ("huggingface", True)):
        model["spec"]["format"] = fmt
        text_out = (SEDNA / "surface_defect_detection" / "job.yaml").read_text()
        job_file.write_text(yaml.safe_dump(model) + "---\n" + text_out)
        problems = [str(p) for p in manifest_problems([job_file]) if "spec.format" in str(p)]
        assert bool(problems) == refused, (fmt, problems)
