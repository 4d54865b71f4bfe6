"""plato-sedna run gives each worker the env and the hostPaths Sedna's GlobalManager would.

tests/data/gm_env/expected.json is written from the GM's Go code (its README names
the functions); --isolate-nodes gives each worker its node's folders at /home/data.
"""

import io
import json
import logging
import re
from pathlib import Path

import pytest
import yaml

from plato_sedna.local.environment import (
    AGG_PORT,
    GM_LC_SERVER,
    aggregation_service,
    hostpath_mounts,
    secret_env,
    worker_env,
)
from plato_sedna.local.isolation import container_url, mount_namespaces
from plato_sedna.local.manifests import load_job
from plato_sedna.local.runner import run_job

GM_ENV = Path(__file__).parent / "data" / "gm_env"
EXPECTED = json.loads((GM_ENV / "expected.json").read_text())
# What a local run adds beside the GM's variables (README.md, docs/run-on-sedna.md).
LOCAL_RUN_KEYS = {"PLATO_SEDNA_MANIFESTS", "PLATO_SEDNA_TOKEN", "PYTHONUNBUFFERED", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}
RANDOM5 = re.compile(r"-[bcdfghjklmnpqrstvwxz2456789]{5}$")  # utilrand's alphabet


def gm_view(env: dict[str, str]) -> dict[str, str]:
    """env without the local run's own variables, the random WORKER_NAME suffix normalised."""
    view = {name: value for name, value in env.items() if name not in LOCAL_RUN_KEYS}
    assert RANDOM5.search(view["WORKER_NAME"]), view["WORKER_NAME"]
    view["WORKER_NAME"] = RANDOM5.sub("-<random5>", view["WORKER_NAME"])
    return view


@pytest.mark.parametrize("role", ["aggregator", "trainer"])
def test_the_injected_env_is_the_gms(tmp_path: Path, role: str) -> None:
    job = load_job(GM_ENV / "job.yaml")
    worker = job.aggregator if role == "aggregator" else job.trainers[0]
    env = worker_env(
        job,
        worker,
        agg_port=AGG_PORT,  # a local run's free port, normalised
        workdir=tmp_path,
        inherited={},
        lc_server=GM_LC_SERVER,  # a local run gives --lc-server
        agg_host=aggregation_service(job),
        container_paths=True,
    )
    expected = {name: value for name, (value, _source) in EXPECTED[role].items()}
    assert gm_view(env) == expected
    mounts = [tuple(pair) for pair in EXPECTED["mounts"][role]]
    assert hostpath_mounts(job, worker, tmp_path) == mounts
    assert worker.restart_policy == EXPECTED["restartPolicy"][0]


def test_container_urls_follow_mount_url_parse() -> None:
    assert container_url("/data/1.txt") == container_url("/data/1.txt")
    file = container_url("/data/1.txt")
    assert (file.env_value, file.host_dir, file.mount_path) == ("/home/data/data/1.txt", "/data/", "/home/data/data/")
    folder = container_url("/data/COCO")  # a folder: its parent is mounted
    assert (folder.env_value, folder.host_dir, folder.mount_path) == ("/home/data/data/COCO", "/data/", "/home/data/data/")
    slash = container_url("/data/COCO/")  # Sedna's quirk: the folder lands one level up
    assert (slash.env_value, slash.host_dir, slash.mount_path) == ("/home/data/data/COCO", "/data/COCO/", "/home/data/data/")
    root = container_url("/model")
    assert (root.host_dir, root.mount_path) == ("/", "/home/data/")
    s3 = container_url("s3://bkt/a/train.txt")
    assert (s3.env_value, s3.host_dir) == ("/downloads/bkt/a/train.txt", None)
    assert container_url("s3://sedna/fl/agg", download_by_initializer=False).env_value == "s3://sedna/fl/agg"


def test_a_secret_without_endpoint_or_missing_gives_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    documents = list(yaml.safe_load_all((GM_ENV / "job.yaml").read_text()))
    del documents[0]["metadata"]["annotations"]["s3-endpoint"]
    (tmp_path / "job.yaml").write_text(yaml.safe_dump_all(documents))
    with caplog.at_level(logging.WARNING):
        assert secret_env(load_job(tmp_path / "job.yaml")) == {}
    assert "no s3-endpoint annotation" in caplog.text
    (tmp_path / "job.yaml").write_text(yaml.safe_dump_all(documents[1:]))
    with caplog.at_level(logging.WARNING):
        assert secret_env(load_job(tmp_path / "job.yaml")) == {}
    assert "Secret fl-ns/mysecret, which the manifests lack" in caplog.text


READER = """\
import json, os, sys
from pathlib import Path
json.dump(dict(os.environ), open("env.json", "w"))
if "AGG_BIND_PORT" in os.environ:
    model = Path(os.environ["MODEL_URL"])
    model.write_bytes(b"weights")
    sys.exit(0)
print("hosts:", [l for l in open("/etc/hosts") if "aggregation" in l])
probe = os.environ["PROBE_HOST_PATH"]
print("host path", probe, "readable:", os.path.exists(probe))
print("data:", open(os.environ["TRAIN_DATASET_URL"]).read().strip())
"""


def isolation_job(folder: Path) -> Path:
    """Two trainers on node edge1: one with edge1's Dataset, one with a Dataset only edge2 holds."""
    folder.mkdir()
    (folder / "reader.py").write_text(READER)
    for node in ("edge1", "edge2"):
        (folder / node).mkdir()
        (folder / node / "train.txt").write_text(f"samples of {node}\n")
    worker = {"image": "plato-sedna:latest", "command": ["python", str(folder / "reader.py")]}

    def template(node: str | None, probe: str) -> dict:
        spec = {"restartPolicy": "Never", "containers": [{**worker, "env": [{"name": "PROBE_HOST_PATH", "value": probe}]}]}
        return {"spec": {**({"nodeName": node} if node else {}), **spec}}

    documents = [
        *(
            {"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset", "metadata": {"name": f"{node}-data"},
             "spec": {"url": f"{node}/train.txt", "format": "txt", "nodeName": node}}
            for node in ("edge1", "edge2")
        ),
        {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": "m"}, "spec": {"url": "models/m.pth", "format": "pth"}},
        {"apiVersion": "sedna.io/v1alpha1", "kind": "FederatedLearningJob", "metadata": {"name": "iso-fl"}, "spec": {
            "aggregationWorker": {"model": {"name": "m"}, "template": template(None, "-")},
            "trainingWorkers": [
                {"dataset": {"name": "edge1-data"}, "template": template(None, str(folder / "edge2" / "train.txt"))},
                {"dataset": {"name": "edge2-data"}, "template": template("edge1", str(folder / "edge1" / "train.txt"))},
            ],
        }},
    ]
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


@pytest.mark.skipif(
    not mount_namespaces().available,
    reason=f"--isolate-nodes needs mount namespaces: {mount_namespaces().reason}",
)
def test_isolated_workers_see_only_their_nodes_folders(tmp_path: Path) -> None:
    path = isolation_job(tmp_path / "job")
    workdir = tmp_path / "run"
    home_data_before = Path("/home/data").exists()
    out = io.StringIO()
    code = run_job(load_job(path), workdir=workdir, out=out, isolate_nodes=True, grace=5.0)
    summary = json.loads((workdir / "summary.json").read_text())
    output = out.getvalue()

    assert code == 1, output
    assert (summary["node_isolation"], summary["node_isolation_reason"]) == (True, None)
    assert summary["agg_ip"] == "iso-fl-aggregation.default"
    assert [summary["workers"][key]["node"] for key in ("aggregator", "trainer-1", "trainer-2")] == [None, "edge1", "edge1"]
    edge1, edge2 = (str((tmp_path / "job" / node).resolve()) for node in ("edge1", "edge2"))

    # trainer-1 (edge1) reads its Dataset at the GM's path; edge2's folder is not there at its own path.
    env = json.loads((workdir / "trainer-1" / "env.json").read_text())
    assert env["TRAIN_DATASET_URL"] == f"/home/data{edge1}/train.txt"
    assert (env["DATA_PATH_PREFIX"], env["AGG_IP"]) == ("/home/data", "iso-fl-aggregation.default")
    log = (workdir / "trainer-1" / "worker.log").read_text()
    assert "data: samples of edge1" in log
    assert f"host path {edge2}/train.txt readable: False" in log
    assert "iso-fl-aggregation.default" in log  # its /etc/hosts names the Service
    assert summary["workers"]["trainer-1"]["exit_code"] == 0

    # trainer-2 runs on edge1 with a Dataset only edge2 holds: the pod's file-not-found.
    log = (workdir / "trainer-2" / "worker.log").read_text()
    assert f"host path {edge1}/train.txt readable: False" in log  # its own node's data only at /home/data
    assert f"FileNotFoundError: [Errno 2] No such file or directory: '/home/data{edge2}/train.txt'" in log
    assert summary["workers"]["trainer-2"]["exit_code"] == 1
    assert "worker trainer-2" in summary["error"]

    # The aggregator published through its /home/data mount to the Model's real folder.
    assert (workdir / "models" / "m.pth").read_bytes() == b"weights"
    assert Path("/home/data").exists() == home_data_before  # the machine's /home is untouched


def test_without_the_flag_summary_says_why(tmp_path: Path) -> None:
    path = isolation_job(tmp_path / "job")
    workdir = tmp_path / "run"
    run_job(load_job(path), workdir=workdir, out=io.StringIO(), grace=5.0)
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["node_isolation"] is False
    assert summary["node_isolation_reason"] == "not asked for (--isolate-nodes)"
    env = json.loads((workdir / "trainer-1" / "env.json").read_text())
    assert "DATA_PATH_PREFIX" not in env and env["TRAIN_DATASET_URL"].endswith("/edge1/train.txt")
