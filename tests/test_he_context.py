"""fedavg_he in pods: one CKKS context for the whole job, from a Secret, never made per pod (issue #12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import QUICKSTART
from support.workers import free_port
from test_algorithm_catalog import TRAINER_ENV, plato_cli, resolve
from test_quickstart_e2e import run_job
from test_render_validate import objects, plato_sedna, render_quickstart

from plato_sedna.context import HE_CONTEXT_FILE_ENV
from plato_sedna.errors import ConfigError
from plato_sedna.he_context import read_context, use_context_file, write_context


def test_he_context_command_writes_one_private_context_and_keeps_it(tmp_path: Path) -> None:
    import tenseal

    path = tmp_path / "keys" / "he.ctx"
    result = plato_sedna("he-context", str(path), "--secret", "digits-he", "--namespace", "edge")

    assert result.returncode == 0, result.stderr
    assert "kubectl -n edge create secret generic digits-he --from-file=context=" in result.stdout
    assert path.stat().st_mode & 0o077 == 0
    context = tenseal.context_from(path.read_bytes())
    assert context.is_private()
    first = path.read_bytes()
    again = plato_sedna("he-context", str(path))
    assert again.returncode == 2 and "exists" in again.stderr and path.read_bytes() == first
    assert plato_sedna("he-context", str(path), "--force").returncode == 0
    assert path.read_bytes() != first  # a new key pair


def test_a_bad_context_file_is_refused_with_the_variable_and_the_fix(tmp_path: Path) -> None:
    import tenseal

    with pytest.raises(ConfigError, match=rf"{HE_CONTEXT_FILE_ENV} is not set; make one with `plato-sedna he-context"):
        read_context(None)
    with pytest.raises(ConfigError, match=r"cannot be read .*mount the job's CKKS context Secret"):
        read_context(str(tmp_path / "absent"))
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00not a context" * 10)
    with pytest.raises(ConfigError, match=r"is not a TenSEAL CKKS context"):
        read_context(str(garbage))
    public = tenseal.context_from(write_context(tmp_path / "he.ctx").read_bytes())
    public.make_context_public()
    (tmp_path / "public").write_bytes(public.serialize())
    with pytest.raises(ConfigError, match=r"public context without the secret key"):
        read_context(str(tmp_path / "public"))


def test_plato_encrypts_and_decrypts_under_the_job_context(tmp_path: Path) -> None:
    import numpy as np
    import tenseal
    from plato.utils import homo_enc

    path = write_context(tmp_path / "he.ctx")
    use_context_file(str(path))
    job_context = homo_enc.get_ckks_context()
    values = np.linspace(-1, 1, 10)
    ciphertext = tenseal.ckks_vector(job_context, values).serialize()

    other = tenseal.context_from(path.read_bytes())  # another worker, same file
    decrypted = tenseal.ckks_vector_from(other, ciphertext).decrypt()
    assert np.allclose(decrypted, values, atol=1e-4)
    assert not (tmp_path / ".ckks_context").exists() and not Path(".ckks_context").exists()


def test_the_env_alone_sets_plato_he_processors() -> None:
    config = resolve({**TRAINER_ENV, "aggregation_algorithm": "fedavg_he"})
    assert config["server"]["type"] == "fedavg_he"
    assert config["clients"]["outbound_processors"] == ["model_encrypt"]
    assert config["clients"]["inbound_processors"] == ["model_decrypt"]


def test_plato_registers_he_processors_for_trainers_too() -> None:
    from plato.processors import registry

    assert {"model_encrypt", "model_decrypt"} <= set(registry.registered_processors)


def test_a_trainer_pod_without_the_context_stops_at_start(tmp_path: Path) -> None:
    result = plato_cli(tmp_path, AGG_IP="127.0.0.1", AGG_PORT=str(free_port()), PARTICIPANTS_COUNT="2",
                       DATASET_NAME="digits-edge1", aggregation_algorithm="fedavg_he")

    assert result.returncode == 2
    assert f"plato: error: fedavg_he needs the job's CKKS context in every worker, and {HE_CONTEXT_FILE_ENV} is not set" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".ckks_context").exists()  # no key of its own


def test_render_needs_the_secret_and_validate_names_a_template_without_it(tmp_path: Path, digits_data: Path) -> None:
    refused = plato_sedna(
        "render", "-c", str(QUICKSTART / "fedavg.toml"), "--trainer", "edge1=data/edge1.txt", "--model-url", "m.pth",
        "--env", "aggregation_algorithm=fedavg_he", "-o", str(tmp_path / "refused"),
    )
    assert refused.returncode == 2 and "fedavg_he needs the job's CKKS context in every pod: give --he-secret NAME" in refused.stderr

    job_file = render_quickstart(
        tmp_path / "manifests", digits_data, "--env", "aggregation_algorithm=fedavg_he", "--he-secret", "digits-he")
    documents = objects(job_file)
    container = documents[-1]["spec"]["trainingWorkers"][1]["template"]["spec"]["containers"][0]
    container["env"] = [v for v in container["env"] if v["name"] != HE_CONTEXT_FILE_ENV]
    job_file.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    validated = plato_sedna("validate", str(job_file))
    assert validated.returncode == 1
    assert f"trainingWorkers[1].template.spec.containers[0].env: aggregation_algorithm=fedavg_he needs {HE_CONTEXT_FILE_ENV}" in validated.stdout
    assert "trainingWorkers[0]" not in validated.stdout


@pytest.mark.slow
def test_a_fedavg_he_job_runs_from_rendered_manifests_under_one_context(tmp_path: Path, digits_data: Path) -> None:
    job_file = render_quickstart(
        tmp_path / "manifests", digits_data, "--he-secret", "digits-he",
        "--env", "aggregation_algorithm=fedavg_he", "--env", "rounds=2",
    )
    validated = plato_sedna("validate", str(job_file))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    spec = objects(job_file)[-1]["spec"]
    for template in [spec["aggregationWorker"]["template"], *(w["template"] for w in spec["trainingWorkers"])]:
        pod = template["spec"]
        env = {v["name"]: v["value"] for v in pod["containers"][0]["env"]}
        assert env[HE_CONTEXT_FILE_ENV] == "/etc/plato-sedna/he/context"
        assert {"secretName": "digits-he", "items": [{"key": "context", "path": "context"}]} in [
            v.get("secret") for v in pod["volumes"]]

    workdir = tmp_path / "run"
    result = run_job(job_file, workdir)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == 2 and summary["accuracy"] >= 0.5
    run_context = workdir / "he" / "context"
    for worker in summary["workers"]:
        log = (workdir / worker / "worker.log").read_text()
        assert f"fedavg_he: the job's CKKS context from {run_context}" in log, worker
    assert not list(workdir.rglob(".ckks_context"))  # no worker made keys of its own
    assert "Encrypt the model weights" in (workdir / "trainer-1" / "worker.log").read_text()
    # The uploads are CKKS ciphertexts: far larger than lenet5's ~250 kB of float32 weights each.
    history = json.loads((Path(summary["model_url"]).parent / "metrics.json").read_text())["history"]
    assert all(entry["bytes_received"] > 2 * 2_000_000 for entry in history)
