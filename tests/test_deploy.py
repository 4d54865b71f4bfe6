"""deploy/: the RBAC a worker needs, and the CRD upgrades that keep the seed proposal's fields.

The fake apiserver authorises requests by the Role in deploy/rbac.yaml, and stores
objects pruned by their CRD's structural schema, as kube-apiserver does.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml
from support.fake_apiserver import FakeApiServer, make_tls

from plato_sedna import resources, runtime_config
from plato_sedna.context import SERVICEACCOUNT_DIR_ENV, SednaContext
from plato_sedna.crd_schemas import apply_patch, crd_documents, crd_patches

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
QUICKSTART_JOB = REPO / "demos" / "quickstart" / "job.yaml"
TOKEN = "rbac-test-token"
JOB = "digits-fedavg"
NAME_LABEL = "federatedlearningjob.sedna.io/name"
STOP_CONDITION = {
    "operator": "or",
    "conditions": [{"metric": "rounds", "operator": ">=", "threshold": 3}, {"metric": "deltaLoss", "operator": "<", "threshold": 0.01}],
}
TRIGGER = {"condition": {"metric": "num_of_ready_clients", "operator": ">=", "threshold": 1}, "timeoutSeconds": 60}


def rbac() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "rbac.yaml").read_text())}


def quickstart_objects() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(QUICKSTART_JOB.read_text()) if doc]


def with_proposal_fields(objects: list[dict]) -> list[dict]:
    """The quickstart's objects with the seed proposal's spec fields, as the extended CRDs keep them."""
    objects = copy.deepcopy(objects)
    for obj in objects:
        if obj["kind"] == "FederatedLearningJob":
            obj["spec"] |= {"stopCondition": STOP_CONDITION, "aggregationTrigger": TRIGGER}
        elif obj["kind"] == "Dataset":
            obj["spec"] |= {"num_classes": 10, "image_size": 28}
        else:
            obj["spec"] |= {"model_name": "lenet5"}
    return objects


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory):
    return make_tls(tmp_path_factory.mktemp("tls"))


def _serve(server: FakeApiServer, objects: list[dict]) -> FakeApiServer:
    for obj in objects:
        server.add(obj)
    for node in ("edge1", "edge2"):
        server.add_pod(f"{JOB}-train-{node}", "default", {NAME_LABEL: JOB}, node=node, ip="10.0.1.1")
    return server


@pytest.fixture
def in_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Point the process at an apiserver as a pod's env would; yields a function that does so."""

    def point_at(server: FakeApiServer) -> FakeApiServer:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", server.host)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))
        monkeypatch.setenv(SERVICEACCOUNT_DIR_ENV, str(server.service_account(tmp_path / "sa")))
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
        return server

    return point_at


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """The [sedna] table of a trainer of the quickstart job."""
    table = {"role": "trainer", "job_name": JOB, "namespace": "default", "dataset_name": "digits-edge1"}
    monkeypatch.setattr(runtime_config, "sedna", lambda key, default=None: table.get(key, default))
    resources.reset()
    yield table
    resources.reset()


def _read_everything() -> dict:
    context = SednaContext(role="aggregator", job_name=JOB, namespace="default")
    return {
        "model": resources.aggregation_model(),
        "dataset": resources.pod_dataset(),
        "pods": resources.job_pods(),
        "job": resources.job_facts(context),
    }


# ---------------------------------------------------------------------------
# RBAC


def test_rbac_binds_the_role_to_the_service_account() -> None:
    documents = rbac()
    assert set(documents) == {"ServiceAccount", "Role", "RoleBinding"}
    binding = documents["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": documents["Role"]["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": documents["ServiceAccount"]["metadata"]["name"]}]


def test_the_role_allows_every_read_and_grants_nothing_unused(
    tls, in_cluster, worker: dict, caplog: pytest.LogCaptureFixture
) -> None:
    rules = rbac()["Role"]["rules"]
    with _serve(FakeApiServer(tls, TOKEN), quickstart_objects()) as server:
        in_cluster(server)
        server.enforce_role(rules)

        found = _read_everything()

    assert all(value is not None for value in found.values()), found
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert all(line.endswith(" 200") for line in server.requests), server.requests
    granted = {(group, plural, verb) for rule in rules for group in rule["apiGroups"] for plural in rule["resources"] for verb in rule["verbs"]}
    assert {_rbac_request(line) for line in server.requests} == granted


def _rbac_request(line: str) -> tuple[str, str, str]:
    """(apiGroup, resource, verb) of a recorded ``GET <path> <status>`` line."""
    path = line.split()[1].split("?")[0]
    parts = path.strip("/").split("/")
    after_namespace = parts[parts.index("namespaces") + 2 :]
    group = "sedna.io" if parts[0] == "apis" else ""
    return group, after_namespace[0], "get" if len(after_namespace) == 2 else "list"


def test_without_the_role_every_read_falls_back_with_one_warning(
    tls, in_cluster, worker: dict, caplog: pytest.LogCaptureFixture
) -> None:
    with _serve(FakeApiServer(tls, TOKEN), quickstart_objects()) as server:
        in_cluster(server)
        server.enforce_role([])

        found = _read_everything()

    assert all(value is None for value in found.values()), found
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "'get' on federatedlearningjobs.sedna.io" in warning and "deploy/rbac.yaml" in warning


# ---------------------------------------------------------------------------
# CRD upgrades


def _kept(before, after) -> bool:
    """Every field of ``before`` is in ``after``, unchanged; ``after`` may have more, at any depth."""
    if isinstance(before, dict):
        return isinstance(after, dict) and all(key in after and _kept(value, after[key]) for key, value in before.items())
    return before == after


def test_patches_only_add_to_sednas_crds() -> None:
    patches = crd_patches()
    assert sorted(p.name for p in (DEPLOY / "crds").glob("*.patch.yaml")) == sorted(f"{n}.patch.yaml" for n in patches)
    assert set(patches) == {"datasets", "models", "federatedlearningjobs"}
    for plural, operations in patches.items():
        original = crd_documents()[plural]
        upgraded = apply_patch(original, operations)
        spec_path = ("spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec", "properties")
        before, after = original, upgraded
        for step in spec_path:
            before, after = before[step], after[step]
        assert _kept(before, after)  # Sedna's fields unchanged (nested fields may be added, e.g. platoConfig)
        assert all(op["op"] == "add" for op in operations)
        assert upgraded["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["required"] == ["spec"]


def test_sednas_crds_prune_the_proposal_fields_and_the_extended_ones_keep_them(tls) -> None:
    objects = with_proposal_fields(quickstart_objects())
    with FakeApiServer(tls, TOKEN) as sedna, FakeApiServer(tls, TOKEN, extended_crds=True) as extended:
        pruned = [sedna.add(obj) for obj in objects]
        kept = [extended.add(obj) for obj in objects]
    job_spec = {obj["kind"]: obj["spec"] for obj in pruned}["FederatedLearningJob"]
    assert "stopCondition" not in job_spec and "aggregationTrigger" not in job_spec
    kept_by_name = {obj["metadata"]["name"]: obj["spec"] for obj in kept}
    assert kept_by_name[JOB]["stopCondition"] == STOP_CONDITION
    assert kept_by_name["digits-edge1"]["num_classes"] == 10
    assert kept_by_name["digits-lenet5"]["model_name"] == "lenet5"


@pytest.mark.parametrize(
    "bad",
    [
        {"conditions": [{"metric": "f1", "threshold": 0.9}]},
        {"operator": "xor", "conditions": [{"metric": "rounds", "threshold": 3}]},
        {"conditions": []},
    ],
    ids=["metric", "operator", "empty"],
)
def test_the_extended_crd_rejects_a_bad_stop_condition(bad: dict) -> None:
    crd = apply_patch(crd_documents()["federatedlearningjobs"], crd_patches()["federatedlearningjobs"])
    job = next(obj for obj in quickstart_objects() if obj["kind"] == "FederatedLearningJob")
    job["spec"]["stopCondition"] = bad
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]).validate(job)


def test_stop_condition_and_participants_come_from_the_extended_job_in_the_api(tls, in_cluster, worker: dict) -> None:
    with _serve(FakeApiServer(tls, TOKEN, extended_crds=True), with_proposal_fields(quickstart_objects())) as server:
        in_cluster(server)
        facts = resources.job_facts(SednaContext(role="aggregator", job_name=JOB, namespace="default"))

    assert facts.participants_count == 2
    assert facts.server_tables["stop_condition"] == {"operator": "or", "rounds": 3, "delta_loss": 0.01}
    assert facts.server_tables["aggregation_trigger"] == {"min_clients": 1, "timeout_s": 60.0}


def test_on_sednas_crds_the_annotation_carries_the_stop_condition(tls, in_cluster, worker: dict) -> None:
    objects = quickstart_objects()
    job = next(obj for obj in objects if obj["kind"] == "FederatedLearningJob")
    job["metadata"]["annotations"] = {"plato.sedna.io/stop-condition": yaml.safe_dump(STOP_CONDITION)}
    with _serve(FakeApiServer(tls, TOKEN), objects) as server:
        in_cluster(server)
        facts = resources.job_facts(SednaContext(role="aggregator", job_name=JOB, namespace="default"))

    assert facts.server_tables == {"stop_condition": {"operator": "or", "rounds": 3, "delta_loss": 0.01}}


def test_a_models_spec_field_names_its_architecture_on_the_extended_crd(tls, tmp_path: Path) -> None:
    from support.build_model import build_model
    from support.processes import free_port, plain_env

    objects = quickstart_objects()
    model = next(obj for obj in objects if obj["kind"] == "Model")
    del model["metadata"]["annotations"]
    model["spec"]["model_name"] = "lenet5"
    config = tmp_path / "fedavg.toml"
    config.write_text((REPO / "demos" / "quickstart" / "fedavg.toml").read_text().replace('architecture = "lenet5"\n', ""))
    with _serve(FakeApiServer(tls, TOKEN, extended_crds=True), objects) as server:
        env = plain_env(
            AGG_BIND_PORT=str(free_port()), JOB_NAME=JOB, NAMESPACE="default", PARTICIPANTS_COUNT="2",
            MODEL_URL=str(tmp_path / "model.pth"), KUBERNETES_SERVICE_HOST=server.host,
            KUBERNETES_SERVICE_PORT=str(server.port), KUBECONFIG=str(tmp_path / "no-kubeconfig"),
            **{SERVICEACCOUNT_DIR_ENV: str(server.service_account(tmp_path / "sa"))},
        )
        result = build_model(config, tmp_path, env)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "built plato.models.lenet5" in result.stdout
