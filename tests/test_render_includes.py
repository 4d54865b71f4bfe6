"""`plato-sedna render` bundles the files a config includes; `validate` finds them where the pods will.

Plato's own MNIST configs (tests/data/upstream/plato/MNIST, kept as written) include
``mnist_iid.toml``; the rendered ConfigMap and folder must hold it, mounted so the top
config finds it at the same relative name. ``render --config-url`` names the config in
``spec.aggregationWorker.platoConfig.url`` instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import QUICKSTART

from plato_sedna.config import load_config_file
from plato_sedna.tools import render, validate

REPO = Path(__file__).resolve().parent.parent
MNIST = REPO / "tests" / "data" / "upstream" / "plato" / "MNIST"
CONFIGS = REPO / "tests" / "data" / "configs"
TRAINERS = ("--trainer", "edge1=data/edge1.txt", "--trainer", "edge2=data/edge2.txt", "--model-url", "model/m.pth")


def render_here(config: Path | None, folder: Path, *extra: str) -> Path:
    arguments = ["-c", str(config)] if config is not None else []
    assert render.main([*arguments, *TRAINERS, "-o", str(folder), *extra]) == 0
    return folder / "job.yaml"


def objects(job_file: Path) -> dict[str, dict]:
    return {obj["kind"]: obj for obj in yaml.safe_load_all(job_file.read_text()) if obj}


def validate_here(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    status = validate.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def problem_lines(output: str) -> list[str]:
    """The error lines (not warnings, notes or the summary)."""
    return [
        line for line in output.splitlines()
        if ": " in line and "problem(s) in" not in line and ": warning: " not in line and ": note: " not in line
    ]


@pytest.mark.parametrize("name", ["fedavg_lenet5.toml", "fedprox_lenet5.toml", "fedavg_lenet5_dp.toml"])
def test_plato_mnist_configs_render_with_their_include(name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    job_file = render_here(MNIST / name, tmp_path / "out")

    rendered = objects(job_file)
    data = rendered["ConfigMap"]["data"]
    assert set(data) == {name, "mnist_iid.toml"}
    assert data["mnist_iid.toml"] == (MNIST / "mnist_iid.toml").read_text()
    assert data[name] == (MNIST / name).read_text()  # kept as written, include line and all
    volume = rendered["FederatedLearningJob"]["spec"]["aggregationWorker"]["template"]["spec"]["volumes"][0]
    assert "items" not in volume["configMap"]  # every key is its own name under /config
    assert (tmp_path / "out" / "mnist_iid.toml").read_text() == (MNIST / "mnist_iid.toml").read_text()

    status, output = validate_here(capsys, str(job_file))
    from_file_status, from_file = validate_here(capsys, str(MNIST / name))

    # The include resolves from the ConfigMap and from beside the config: what is left are
    # the names Plato 1.41 lacks (these configs are from Plato's main branch, after 1.41).
    assert "mnist_iid" not in output and "Traceback" not in output
    errors = problem_lines(output)
    assert errors and all("is not known to Plato" in line for line in errors), output
    assert "Torchvision is a datasource of Plato's main branch" in output and 'datasource = "MNIST"' in output
    assert "mnist_iid" not in from_file and from_file_status == status == 1
    assert [line.split(": ", 2)[-1] for line in problem_lines(from_file)] == [line.split(": ", 2)[-1] for line in errors]


def test_plato_sedna_run_finds_the_included_file_beside_the_mounted_config(tmp_path: Path) -> None:
    from plato_sedna.local.container import local_command
    from plato_sedna.local.manifests import load_job

    job_file = render_here(MNIST / "fedavg_lenet5.toml", tmp_path / "out")
    job = load_job(job_file)
    argv = local_command(job, job.trainers[0])

    config = Path(argv[argv.index("-c") + 1])
    assert config == (tmp_path / "out" / "fedavg_lenet5.toml").resolve() or config == tmp_path / "out" / "fedavg_lenet5.toml"
    assert load_config_file(config)["data"]["sampler"] == "iid"  # from mnist_iid.toml beside it


def _split_quickstart(folder: Path) -> Path:
    """The quickstart config with its [data] table in parts/data.toml and the rest in base.toml."""
    text = (QUICKSTART / "fedavg.toml").read_text()
    head, sep, tail = text.partition("[data]")
    assert sep
    data, next_table, rest = tail.partition("\n[")
    (folder / "parts").mkdir(parents=True)
    (folder / "parts" / "data.toml").write_text(data.strip() + "\n")
    (folder / "base.toml").write_text(head + next_table + rest)
    top = folder / "job_config.toml"
    top.write_text('include = "base.toml"\n\n[data]\ninclude = "parts/data.toml"\n')
    return top


def test_includes_in_a_subfolder_and_at_any_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    top = _split_quickstart(tmp_path / "src")
    job_file = render_here(top, tmp_path / "out", "--name", "split")

    rendered = objects(job_file)
    assert set(rendered["ConfigMap"]["data"]) == {"job_config.toml", "base.toml", "parts__data.toml"}
    volume = rendered["FederatedLearningJob"]["spec"]["trainingWorkers"][0]["template"]["spec"]["volumes"][0]
    assert {"key": "parts__data.toml", "path": "parts/data.toml"} in volume["configMap"]["items"]
    assert {item["path"] for item in volume["configMap"]["items"]} == {"job_config.toml", "base.toml", "parts/data.toml"}
    assert load_config_file(tmp_path / "out" / "job_config.toml") == load_config_file(QUICKSTART / "fedavg.toml")
    assert validate_here(capsys, str(job_file))[0] == 0

    # a ConfigMap without an included file: validate names it (and does not look beside)
    for file in ("parts/data.toml", "job_config.toml", "base.toml"):
        (tmp_path / "out" / file).unlink()
    job_file.write_text(job_file.read_text().replace("parts__data.toml:", "other.toml:", 1))
    status, output = validate_here(capsys, str(job_file))
    assert status == 1
    assert "job_config.toml includes parts/data.toml, which ConfigMap default/split-config does not hold" in output


def test_old_yaml_include_is_bundled_as_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    job_file = render_here(CONFIGS / "fedavg_include.yml", tmp_path / "out")

    data = objects(job_file)["ConfigMap"]["data"]
    assert set(data) == {"fedavg_include.yml", "fedavg_data.yml"}
    assert "!include fedavg_data.yml" in data["fedavg_include.yml"]
    status, output = validate_here(capsys, str(job_file))
    assert "fedavg_data" not in output and "Traceback" not in output, output


def test_an_include_above_the_config_folder_is_flattened(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "fedavg.toml").write_text((QUICKSTART / "fedavg.toml").read_text())
    (tmp_path / "jobs").mkdir()
    top = tmp_path / "jobs" / "mine.toml"
    top.write_text('include = "../common/fedavg.toml"\n')

    job_file = render_here(top, tmp_path / "out")

    assert set(objects(job_file)["ConfigMap"]["data"]) == {"mine.toml"}
    assert load_config_file(tmp_path / "out" / "mine.toml") == load_config_file(top)


# ---------------------------------------------------------------------------
# platoConfig.url


def test_config_url_replaces_the_config_map(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = "s3://configs/digits/fedavg.toml"
    job_file = render_here(QUICKSTART / "fedavg.toml", tmp_path / "out", "--config-url", url, "--name", "digits")

    rendered = objects(job_file)
    assert "ConfigMap" not in rendered
    spec = rendered["FederatedLearningJob"]["spec"]
    assert spec["aggregationWorker"]["platoConfig"] == {"url": url}
    containers = [spec["aggregationWorker"]["template"]["spec"]["containers"][0]]
    containers += [worker["template"]["spec"]["containers"][0] for worker in spec["trainingWorkers"]]
    assert all("args" not in container and "volumeMounts" not in container for container in containers)
    env = {v["name"]: v["value"] for v in containers[1]["env"]}
    assert env["learning_rate"] == "0.003"  # the hyperparameters still come from -c
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["job.yaml"]

    assert validate_here(capsys, "--extended-crds", str(job_file))[0] == 0
    status, output = validate_here(capsys, str(job_file))
    assert status == 1 and "spec.aggregationWorker.platoConfig: not in Sedna's FederatedLearningJob CRD" in output


def test_a_relative_config_url_is_written_and_checked_beside_the_job(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    job_file = render_here(MNIST / "fedavg_lenet5.toml", tmp_path / "out", "--config-url", "configs/mnist.toml")

    assert (tmp_path / "out" / "configs" / "mnist.toml").read_text() == (MNIST / "fedavg_lenet5.toml").read_text()
    assert (tmp_path / "out" / "configs" / "mnist_iid.toml").is_file()
    status, output = validate_here(capsys, "--extended-crds", str(job_file))
    assert status == 1 and "config configs/mnist.toml" not in output  # checked as the file beside
    assert "data.datasource = 'Torchvision'" in output and "mnist_iid" not in output

    (tmp_path / "out" / "configs" / "mnist.toml").unlink()
    status, output = validate_here(capsys, "--extended-crds", str(job_file))
    assert status == 0 and "warning: configs/mnist.toml is not beside job.yaml" in output


def test_a_config_url_of_another_scheme_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    arguments = ["-c", str(QUICKSTART / "fedavg.toml"), *TRAINERS, "-o", str(tmp_path / "out")]
    assert render.main([*arguments, "--config-url", "ftp://host/fedavg.toml"]) == 2
    assert "unsupported URL scheme 'ftp'" in capsys.readouterr().err

    job_file = render_here(QUICKSTART / "fedavg.toml", tmp_path / "out", "--config-url", "https://example.com/f.toml")
    job_file.write_text(job_file.read_text().replace("https://example.com/f.toml", "ftp://example.com/f.toml"))
    status, output = validate_here(capsys, "--extended-crds", str(job_file))
    assert status == 1 and "spec.aggregationWorker.platoConfig.url: 'ftp://example.com/f.toml': unsupported URL scheme" in output
