"""`plato-sedna run --nodes DIR`: each node's own filesystem, DIR/<node>, for absolute hostPaths.

Node N's hostPath ``/x`` is ``DIR/N/x`` on this machine, bound where Sedna's GlobalManager
mounts it (``/home/data/...``) in each worker's mount namespace; relative urls stay paths
on this machine. The workers here are small Python scripts (no Plato), so the runs are fast.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from plato_sedna.errors import PlatoSednaError
from plato_sedna.local import isolation
from plato_sedna.local.command import build_parser
from plato_sedna.local.environment import hostpath_mounts
from plato_sedna.local.manifests import load_job
from plato_sedna.local.runner import run_job

needs_namespaces = pytest.mark.skipif(
    not isolation.mount_namespaces().available,
    reason=f"--nodes needs mount namespaces: {isolation.mount_namespaces().reason}",
)

WORKER = """\
import json, os, sys
from pathlib import Path

env = {k: os.environ[k] for k in ("TRAIN_DATASET_URL", "MODEL_URL", "DATA_PATH_PREFIX") if k in os.environ}
print("env:", json.dumps(env))
for probe in filter(None, os.environ.get("PROBES", "").split(":")):
    print("readable", probe, os.path.exists(probe))
if "TRAIN_DATASET_URL" in os.environ:
    print("data:", open(os.environ["TRAIN_DATASET_URL"]).read().strip())
else:  # the aggregator publishes
    Path(os.environ["MODEL_URL"]).write_bytes(b"weights")
    Path(os.environ["MODEL_URL"]).with_name("metrics.json").write_text('{"rounds": 1}')
"""


def write_job(folder: Path, probes: list[str], *, relative_edge2: bool = False, agg_node: str | None = "cloud") -> Path:
    """Datasets /data/a.txt (edge1) and /data/b.txt (edge2, or relative b.txt), Model /models/m.pth."""
    folder.mkdir(parents=True)
    script = folder / "worker.py"
    script.write_text(WORKER)
    edge2_url = "b.txt" if relative_edge2 else "/data/b.txt"
    if relative_edge2:
        (folder / "b.txt").write_text("b beside the manifests\n")

    def template(node: str | None) -> dict:
        # Probes in the env: a path in the command would be kept visible (the worker starts with it).
        env = [{"name": "PROBES", "value": ":".join(probes)}]
        container = {"image": "plato-sedna:latest", "command": ["python", str(script)], "env": env}
        return {"spec": {**({"nodeName": node} if node else {}), "restartPolicy": "Never", "containers": [container]}}

    documents = [
        {"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset", "metadata": {"name": "a"},
         "spec": {"url": "/data/a.txt", "format": "txt", "nodeName": "edge1"}},
        {"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset", "metadata": {"name": "b"},
         "spec": {"url": edge2_url, "format": "txt", "nodeName": "edge2"}},
        {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": "m"},
         "spec": {"url": "/models/m.pth", "format": "pth"}},
        {"apiVersion": "sedna.io/v1alpha1", "kind": "FederatedLearningJob", "metadata": {"name": "nodes-fl"}, "spec": {
            "aggregationWorker": {"model": {"name": "m"}, "template": template(agg_node)},
            "trainingWorkers": [
                {"dataset": {"name": "a"}, "template": template("edge1")},
                {"dataset": {"name": "b"}, "template": template("edge2")},
            ],
        }},
    ]
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def make_nodes(root: Path) -> Path:
    for node, name in (("edge1", "a.txt"), ("edge2", "b.txt")):
        (root / node / "data").mkdir(parents=True)
        (root / node / "data" / name).write_text(f"{name[0]} on {node}\n")
    return root


def test_absolute_hostpaths_map_under_the_workers_node(tmp_path: Path) -> None:
    job = load_job(write_job(tmp_path / "job", [], relative_edge2=True))
    edge1, edge2 = job.trainers
    root = tmp_path / "nodes"

    assert isolation.node_path(root, "edge1", "/data/a.txt") == f"{root}/edge1/data/a.txt"
    assert isolation.node_path(root, "edge1", "/") == f"{root}/edge1/"
    assert isolation.node_folder(root, isolation.AGGREGATOR_NODE) == root / "_aggregator"
    mounts = dict(hostpath_mounts(job, edge1, tmp_path / "run", root / "edge1"))
    assert mounts == {f"{root}/edge1/data/": "/home/data/data/", f"{root}/edge1/models/": "/home/data/models/"}
    # A relative url is beside the manifests, on this machine, with or without a node root.
    mounts = dict(hostpath_mounts(job, edge2, tmp_path / "run", root / "edge2"))
    beside = f"{(tmp_path / 'job').resolve()}/"
    assert mounts[beside] == f"/home/data{beside}"


def test_the_option_parses() -> None:
    args = build_parser().parse_args(["job.yaml", "--nodes", "nodes"])
    assert args.node_root == Path("nodes")
    assert build_parser().parse_args(["job.yaml"]).node_root is None


@needs_namespaces
def test_each_worker_sees_its_own_nodes_files_and_the_model_lands_on_the_aggregators_node(tmp_path: Path) -> None:
    nodes = make_nodes(tmp_path / "nodes")
    path = write_job(tmp_path / "job", [str(nodes / "edge2" / "data" / "b.txt"), "/data/a.txt"])
    workdir = tmp_path / "run"
    out = io.StringIO()

    code = run_job(load_job(path), workdir=workdir, out=out, node_root=nodes, grace=5.0)

    summary = json.loads((workdir / "summary.json").read_text())
    assert code == 0, out.getvalue()
    assert summary["node_root"] == str(nodes.resolve())
    assert (summary["node_isolation"], summary["node_isolation_reason"]) == (True, None)
    log = (workdir / "trainer-1" / "worker.log").read_text()
    assert '"TRAIN_DATASET_URL": "/home/data/data/a.txt"' in log and '"DATA_PATH_PREFIX": "/home/data"' in log
    assert "data: a on edge1" in log
    assert f"readable {nodes.resolve()}/edge2/data/b.txt False" in log  # the node root is hidden
    assert "readable /data/a.txt False" in log or Path("/data/a.txt").exists()  # nothing at the real /data
    assert "data: b on edge2" in (workdir / "trainer-2" / "worker.log").read_text()
    # The Model: /models/m.pth on the aggregator's node (cloud), reported as a path here.
    published = nodes.resolve() / "cloud" / "models" / "m.pth"
    assert published.read_bytes() == b"weights"
    assert summary["model_url"] == str(published)
    assert (summary["rounds"], summary["workers"]["aggregator"]["node"]) == (1, "cloud")
    # Every node running a pod that uses the Model has its folder (an output), as in a cluster.
    assert all((nodes / node / "models").is_dir() for node in ("edge1", "edge2"))


@needs_namespaces
def test_a_relative_dataset_url_stays_beside_the_manifests(tmp_path: Path) -> None:
    nodes = make_nodes(tmp_path / "nodes")
    path = write_job(tmp_path / "job", [], relative_edge2=True, agg_node=None)
    workdir = tmp_path / "run"
    out = io.StringIO()

    code = run_job(load_job(path), workdir=workdir, out=out, node_root=nodes, grace=5.0)

    summary = json.loads((workdir / "summary.json").read_text())
    assert code == 0, out.getvalue()
    assert "data: b beside the manifests" in (workdir / "trainer-2" / "worker.log").read_text()
    # An aggregator template without nodeName: its node is DIR/_aggregator.
    assert summary["model_url"] == str(nodes.resolve() / "_aggregator" / "models" / "m.pth")


def test_without_mount_namespaces_the_run_fails_at_start_saying_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = make_nodes(tmp_path / "nodes")
    path = write_job(tmp_path / "job", [])
    workdir = tmp_path / "run"
    monkeypatch.setattr(isolation, "mount_namespaces", lambda: isolation.Namespaces(False, "no unshare here"))

    with pytest.raises(PlatoSednaError, match=r"--nodes .* cannot give: no unshare here\. Run as root"):
        run_job(load_job(path), workdir=workdir, out=io.StringIO(), node_root=nodes)

    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "failed" and "no unshare here" in summary["error"]
    assert summary["node_root"] == str(nodes.resolve())
    assert not any((workdir / key).exists() for key in ("trainer-1", "trainer-2"))  # nothing started


def test_a_missing_node_root_is_refused(tmp_path: Path) -> None:
    path = write_job(tmp_path / "job", [])
    with pytest.raises(PlatoSednaError, match="no such folder"):
        run_job(load_job(path), workdir=tmp_path / "run", out=io.StringIO(), node_root=tmp_path / "absent")
