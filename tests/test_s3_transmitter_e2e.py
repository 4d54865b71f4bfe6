"""`plato-sedna run` with TRANSMITTER=s3 against a real S3 API on loopback: same model as ws, nothing left behind."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.s3_server import ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY, free_port
from support.workers import aggregator_env, start_plato, stop, trainer_env
from test_quickstart_e2e import run_job

from plato_sedna.errors import ResourceError

pytest_plugins = ("support.storage_fixtures",)

# Both runs start from the same weights (the job's pretrainedModel) and Plato's samplers
# are seeded (data.random_seed), so with one math thread per worker (support.processes)
# and two updates (a + b == b + a in floating point) FedAvg gives the same model.
# The tolerance only allows for a different summation order should that ever change.
MODEL_ATOL = 1e-6
STARTUP_TIMEOUT_S = 120
INIT_MODEL = """---
apiVersion: sedna.io/v1alpha1
kind: Model
metadata:
  name: digits-lenet5-init
  annotations:
    plato.sedna.io/model-name: lenet5
spec:
  url: init/lenet5.pth
  format: pth
"""


def two_rounds_from_fixed_weights(job_yaml: Path) -> None:
    """The quickstart job, 2 rounds, starting from weights written with a fixed seed."""
    import torch
    from plato.models import lenet5

    torch.manual_seed(0)
    (job_yaml.parent / "init").mkdir()
    torch.save(lenet5.Model(num_classes=10).state_dict(), job_yaml.parent / "init" / "lenet5.pth")
    text = job_yaml.read_text().replace('value: "10"', 'value: "2"')
    text = text.replace("spec:\n  aggregationWorker:", "spec:\n  pretrainedModel:\n    name: digits-lenet5-init\n  aggregationWorker:")
    job_yaml.write_text(text + INIT_MODEL)


def with_s3_transmitter(job_yaml: Path, agg_data_path: str, endpoint_url: str) -> None:
    """spec.transmitter.s3, and the credential Secret's variables in every worker's env."""
    text = job_yaml.read_text().replace(
        "\n  aggregationWorker:", f"\n  transmitter:\n    s3:\n      aggDataPath: {agg_data_path}\n  aggregationWorker:"
    )
    variables = transmitter_env(agg_data_path, endpoint_url)
    for injected in ("TRANSMITTER", "AGG_DATA_PATH"):  # plato-sedna run injects these from the spec
        del variables[injected]

    def add_credentials(match: re.Match) -> str:
        indent = match.group(2)
        entries = "".join(f'{indent}- name: {name}\n{indent}  value: "{value}"\n' for name, value in variables.items())
        return match.group(1) + entries + indent  # the indent of the entry that followed env:

    job_yaml.write_text(re.sub(r"( *env:\n)( *)(?=- name:)", add_credentials, text))


def transmitter_env(agg_data_path: str, endpoint_url: str) -> dict[str, str]:
    """What Sedna injects for spec.transmitter.s3 with a credential Secret."""
    return {
        "TRANSMITTER": "s3",
        "AGG_DATA_PATH": agg_data_path,
        "S3_ENDPOINT_URL": endpoint_url,
        "ACCESS_KEY_ID": ANY_ACCESS_KEY_ID,
        "SECRET_ACCESS_KEY": ANY_SECRET_ACCESS_KEY,
    }


def copy_job(job_yaml: Path, name: str) -> Path:
    folder = job_yaml.parent.parent / name
    folder.mkdir()
    for item in job_yaml.parent.iterdir():
        (folder / item.name).symlink_to(item.resolve(), target_is_directory=item.is_dir())
    copy = folder / job_yaml.name
    copy.unlink()
    copy.write_text(job_yaml.read_text())
    return copy


def run_jobs_side_by_side(runs: dict[str, tuple[Path, Path]], rounds: int) -> dict:
    """Run each (job.yaml, workdir) at once; each must succeed after ``rounds`` rounds."""
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        results = dict(zip(runs, pool.map(lambda run: run_job(*run), runs.values())))
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: " + result.stdout[-3000:] + result.stderr[-3000:]
        summary = json.loads((runs[name][1] / "summary.json").read_text())
        assert summary["status"] == "succeeded" and summary["rounds"] == rounds, name
    return results


def bucket_keys(s3_client, bucket: str) -> list[str]:
    return [item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_s3_run_gives_the_ws_model_and_leaves_no_payloads(quickstart_job: Path, tmp_path: Path, s3_server, s3_client, s3_bucket) -> None:
    import torch

    two_rounds_from_fixed_weights(quickstart_job)
    s3_job = copy_job(quickstart_job, "s3")
    with_s3_transmitter(s3_job, f"s3://{s3_bucket}/fl/aggregation_data", s3_server.endpoint_url)
    runs = {"ws": (quickstart_job, tmp_path / "run-ws"), "s3": (s3_job, tmp_path / "run-s3")}

    results = run_jobs_side_by_side(runs, rounds=2)
    models = {name: torch.load(workdir / "model" / "digits-lenet5.pth", weights_only=True) for name, (_, workdir) in runs.items()}
    for key, weights in models["ws"].items():
        assert torch.allclose(models["s3"][key], weights, atol=MODEL_ATOL, rtol=0), key

    assert bucket_keys(s3_client, s3_bucket) == []
    workdir = runs["s3"][1]
    aggregator = (workdir / "aggregator" / "worker.log").read_text()
    assert len(re.findall(r"Sent [\d.]+ MB of payload data to client #\d through S3", aggregator)) == 4
    assert len(re.findall(r"Took s3://\S+/client_payload_\S+ \([\d.]+ MB\) and deleted it", aggregator)) == 4
    # Every object was deleted once read: the sweep at the end finds none.
    assert f"Swept s3://{s3_bucket}/fl/aggregation_data/default/digits-fedavg/: 0 leftover" in aggregator
    for trainer in ("trainer-1", "trainer-2"):
        log = (workdir / trainer / "worker.log").read_text()
        assert len(re.findall(r"Took s3://\S+/server_payload_\S+ \([\d.]+ MB\) and deleted it", log)) == 2
        assert ANY_SECRET_ACCESS_KEY not in log
    assert ANY_SECRET_ACCESS_KEY not in aggregator + results["s3"].stdout + results["s3"].stderr


def test_unusable_transmitter_stops_both_roles_at_start(tmp_path: Path, digits_data: Path, s3_server) -> None:
    """The aggregator with a missing bucket, a trainer with an endpoint nobody serves: both exit
    non-zero before any training, saying which endpoint and bucket, never the secret."""
    config = QUICKSTART / "fedavg.toml"
    port = free_port()
    wrong_endpoint = f"http://127.0.0.1:{free_port()}"
    cases = {
        "aggregator": (s3_server.endpoint_url, "no-such-bucket", aggregator_env(port, 1, tmp_path / "model.pth", digits_data / "test.txt")),
        "trainer": (wrong_endpoint, "any-bucket", trainer_env(port, 1, "digits-edge1", digits_data / "edge1.txt")),
    }
    processes = {}
    for role, (endpoint, bucket, env) in cases.items():
        env |= transmitter_env(f"s3://{bucket}/fl", endpoint)
        processes[role] = start_plato(config, tmp_path / role, env)
    try:
        exit_codes = {role: process.wait(STARTUP_TIMEOUT_S) for role, process in processes.items()}
    finally:
        stop(*processes.values())

    for role, (endpoint, bucket, _) in cases.items():
        log = (tmp_path / role / "worker.log").read_text()
        assert exit_codes[role] == ResourceError.exit_code, log[-3000:]
        assert "plato: error: the S3 transmitter cannot use AGG_DATA_PATH" in log
        assert endpoint in log and repr(bucket) in log
        assert ANY_SECRET_ACCESS_KEY not in log
        assert "Starting a server" not in log and "Connected to the aggregator" not in log
