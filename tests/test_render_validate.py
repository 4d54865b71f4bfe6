"""`plato-sedna render` and `plato-sedna validate`: manifests from a config, checked, and run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import QUICKSTART
from support.processes import PLATO_SEDNA
from support.workers import clean_env
from test_quickstart_e2e import run_job

from plato_sedna.tools.rbac import rbac_objects

REPO = Path(__file__).resolve().parent.parent


def plato_sedna(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PLATO_SEDNA, *args],
        env=clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def render_quickstart(folder: Path, digits_data: Path, *extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").symlink_to(digits_data, target_is_directory=True)
    result = plato_sedna(
        "render", "-c", str(QUICKSTART / "fedavg.toml"),
        "--trainer", "edge1=data/edge1.txt", "--trainer", "edge2=data/edge2.txt",
        "--model-url", "model/digits-lenet5.pth", "--test-dataset-url", "data/test.txt",
        "--name", "digits-fedavg", "--aggregator-node", "cloud", "-o", str(folder), *extra,
    )
    assert result.returncode == 0, result.stderr
    return folder / "job.yaml"


def objects(job_file: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(job_file.read_text()) if doc]


def test_rendered_quickstart_validates_and_runs(tmp_path: Path, digits_data: Path) -> None:
    job_file = render_quickstart(tmp_path / "manifests", digits_data, "--env", "rounds=2")

    validated = plato_sedna("validate", str(job_file))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    kinds = [obj["kind"] for obj in objects(job_file)]
    assert kinds == ["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Dataset", "Dataset", "Model", "FederatedLearningJob"]
    job = objects(job_file)[-1]
    aggregator_env = {v["name"]: v["value"] for v in job["spec"]["aggregationWorker"]["template"]["spec"]["containers"][0]["env"]}
    assert aggregator_env["rounds"] == "2" and aggregator_env["target_accuracy"] == "0.97"
    trainer = job["spec"]["trainingWorkers"][0]["template"]["spec"]
    assert trainer["nodeName"] == "edge1" and trainer["serviceAccountName"] == "plato-sedna"
    assert {v["name"]: v["value"] for v in trainer["containers"][0]["env"]}["learning_rate"] == "0.003"

    workdir = tmp_path / "run"
    result = run_job(job_file, workdir)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert (summary["status"], summary["rounds"]) == ("succeeded", 2)


def test_deploy_rbac_is_what_render_writes() -> None:
    assert list(yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text())) == rbac_objects()


def test_s3_secret_template_and_transmitter(tmp_path: Path, digits_data: Path) -> None:
    job_file = render_quickstart(
        tmp_path / "manifests", digits_data,
        "--s3-secret", "minio-credentials", "--s3-endpoint", "minio.sedna:9000", "--s3-http",
        "--agg-data-path", "s3://sedna/fl/aggregation", "--model-url", "s3://sedna/models/lenet5.pth",
    )
    rendered = {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects(job_file)}
    secret = rendered[("Secret", "minio-credentials")]
    assert secret["metadata"]["annotations"] == {"s3-endpoint": "minio.sedna:9000", "s3-usehttps": "0"}
    assert set(secret["stringData"]) == {"ACCESS_KEY_ID", "SECRET_ACCESS_KEY"}
    assert rendered[("Model", "digits-fedavg-model")]["spec"]["credentialName"] == "minio-credentials"
    assert "credentialName" not in rendered[("Dataset", "digits-fedavg-edge1")]["spec"]  # a local path
    assert rendered[("FederatedLearningJob", "digits-fedavg")]["spec"]["transmitter"] == {
        "s3": {"aggDataPath": "s3://sedna/fl/aggregation", "credentialName": "minio-credentials"}
    }
    assert plato_sedna("validate", str(job_file)).returncode == 0


def test_render_refuses_bad_input_clearly(tmp_path: Path) -> None:
    result = plato_sedna("render", "-c", str(QUICKSTART / "fedavg.toml"), "--trainer", "Edge_1=x.txt", "--model-url", "m.pth", "-o", str(tmp_path))
    assert result.returncode == 2
    assert "trainer node 'Edge_1' is not a Kubernetes name" in result.stderr and "Traceback" not in result.stderr
    result = plato_sedna("render", "-c", str(tmp_path / "none.toml"), "--trainer", "edge1=x.txt", "--model-url", "m.pth")
    assert result.returncode == 2 and "none.toml" in result.stderr and "Traceback" not in result.stderr


def _broken(job_file: Path, old: str, new: str) -> Path:
    text = job_file.read_text()
    assert old in text, old
    job_file.write_text(text.replace(old, new, 1))
    return job_file


BROKEN = [
    ("missing-dataset", "  name: digits-fedavg-edge2\n  namespace: default\nspec:\n  url: data/edge2.txt", "  name: digits-fedavg-other\n  namespace: default\nspec:\n  url: data/edge2.txt",
     "spec.trainingWorkers[1].dataset.name: Dataset default/digits-fedavg-edge2 is not in the files given"),
    ("wrong-api-version", "apiVersion: sedna.io/v1alpha1\nkind: Model", "apiVersion: sedna.io/v1beta1\nkind: Model",
     "Model default/digits-fedavg-model: apiVersion 'sedna.io/v1beta1' is not served by Sedna; use sedna.io/v1alpha1"),
    ("bad-env-value", "- name: epochs\n            value: '2'", "- name: epochs\n            value: ten",
     "spec.trainingWorkers[0].template.spec.containers[0].env[0]: epochs='ten' is not"),
    ("unknown-datasource", 'datasource = "sednaDataResource"', 'datasource = "sednaDataResorce"',
     "data.datasource = 'sednaDataResorce' is not known to Plato or plato_sedna"),
    ("missing-image", "image: plato-sedna:0.1.0", "image: ''",
     "spec.aggregationWorker.template.spec.containers[0].image: is missing"),
    ("schema", "  format: pth\n", "",
     "Model default/digits-fedavg-model: spec: 'format' is a required property"),
    ("pruned-field", "  nodeName: edge1\n", "  nodeName: edge1\n  num_classes: 10\n",
     "spec.num_classes: not in Sedna's Dataset CRD"),
    ("bad-stop-condition", "  name: digits-fedavg\n  namespace: default\nspec:",
     "  name: digits-fedavg\n  namespace: default\n  annotations:\n    plato.sedna.io/stop-condition: '{conditions: [{metric: f1, threshold: 1}]}'\nspec:",
     "annotation plato.sedna.io/stop-condition.conditions[0].metric is 'f1'"),
    ("config-not-found", "  fedavg.toml: |", "  other.toml: |",
     "the config /config/fedavg.toml is neither in a ConfigMap of these files nor beside job.yaml"),
]


@pytest.fixture(scope="module")
def rendered_text(tmp_path_factory: pytest.TempPathFactory, digits_data: Path) -> str:
    return render_quickstart(tmp_path_factory.mktemp("rendered"), digits_data).read_text()


def validate_here(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """``plato-sedna validate`` in this process (the command is the same function): (exit status, output)."""
    from plato_sedna.tools.validate import main

    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_validate_reports_every_broken_manifest(tmp_path: Path, rendered_text: str, capsys: pytest.CaptureFixture) -> None:
    for name, old, new, message in BROKEN:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "job.yaml").write_text(rendered_text)
        file = _broken(folder / "job.yaml", old, new)
        if name != "config-not-found":
            (folder / "fedavg.toml").write_text((QUICKSTART / "fedavg.toml").read_text())

        status, output = validate_here(capsys, str(file))

        assert status == 1, (name, output)
        assert message in output, (name, output)
        assert str(file) in output and "Traceback" not in output
    # and as a command, a manifest and a config: every problem printed, exit status 1
    config = tmp_path / "fedavg.toml"
    config.write_text((QUICKSTART / "fedavg.toml").read_text().replace('type = "fedavg"', 'type = "fedsgd"'))
    result = plato_sedna("validate", str(tmp_path / "missing-dataset" / "job.yaml"), str(config))
    assert result.returncode == 1 and "2 problem(s) in 2 file(s)" in result.stderr, result.stdout
    # the same object defined differently in two files is a problem too
    status, output = validate_here(capsys, str(tmp_path / "schema" / "job.yaml"), str(tmp_path / "pruned-field" / "job.yaml"))
    assert status == 1 and "is also defined, differently, in" in output


def test_validate_checks_a_config_on_its_own_and_the_extended_crds(
    tmp_path: Path, rendered_text: str, capsys: pytest.CaptureFixture
) -> None:
    config = tmp_path / "fedavg.toml"
    config.write_text((QUICKSTART / "fedavg.toml").read_text().replace('type = "fedavg"', 'type = "fedsgd"'))
    status, output = validate_here(capsys, str(config))
    assert status == 1 and "algorithm.type = 'fedsgd' is not known" in output

    job_file = tmp_path / "job.yaml"
    job_file.write_text(rendered_text.replace("  nodeName: edge1\n", "  nodeName: edge1\n  num_classes: 10\n", 1))
    (tmp_path / "fedavg.toml").write_text((QUICKSTART / "fedavg.toml").read_text())
    assert validate_here(capsys, str(job_file))[0] == 1
    assert validate_here(capsys, "--extended-crds", str(job_file)) == (0, "ok: 1 manifest file(s), 0 config(s)\n")


DEMO_RENDERS = {
    "yolov5": (
        "fedavg.toml",
        ["--trainer", "edge1=data/edge1/data.yaml", "--trainer", "edge2=data/edge2/data.yaml",
         "--model-url", "model/yolov5n-shapes.pt", "--model-format", "ultralytics", "--architecture", "yolov5n.yaml",
         "--test-dataset-url", "data/val/data.yaml"],
    ),
    "huggingface": (
        "fedavg.toml",
        ["--trainer", "edge1=data/edge1.csv", "--trainer", "edge2=data/edge2.jsonl",
         "--model-url", "model/topics-classifier/", "--model-format", "huggingface",
         "--pretrained-model-url", "data/tiny-bert/", "--test-dataset-url", "data/test.csv"],
    ),
}


@pytest.mark.parametrize("demo", sorted(DEMO_RENDERS))
def test_the_demos_render_and_validate(demo: str, tmp_path: Path) -> None:
    config, arguments = DEMO_RENDERS[demo]
    folder = tmp_path / demo
    result = plato_sedna("render", "-c", str(REPO / "demos" / demo / config), "--name", f"{demo}-job", "-o", str(folder), *arguments)
    assert result.returncode == 0, result.stderr

    validated = plato_sedna("validate", str(folder / "job.yaml"))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    datasets = [obj for obj in objects(folder / "job.yaml") if obj["kind"] == "Dataset"]
    assert all(d["spec"]["format"] in ("txt", "csv") for d in datasets)  # what Sedna's LocalController counts
    if demo == "huggingface":
        jsonl = next(d for d in datasets if d["spec"]["url"].endswith(".jsonl"))
        assert jsonl["metadata"]["annotations"] == {"plato.sedna.io/format": "jsonl"}
        assert {m["spec"]["format"] for m in objects(folder / "job.yaml") if m["kind"] == "Model"} == {"huggingface"}
