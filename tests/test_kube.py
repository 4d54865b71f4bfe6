"""kube.py and resources.py with the real kubernetes client against a loopback fake apiserver."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml
from support.build_model import build_model
from support.fake_apiserver import FakeApiServer, make_tls
from support.processes import free_port, plain_env

from plato_sedna import kube, resources, runtime_config
from plato_sedna.context import SERVICEACCOUNT_DIR_ENV

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "demos" / "quickstart"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.very-secret-service-account-token"
JOB, MODEL, DATASETS = "digits-fedavg", "digits-lenet5", ("digits-edge1", "digits-edge2")
NAME_LABEL = "federatedlearningjob.sedna.io/name"
TYPE_LABEL = "federatedlearningjob.sedna.io/worker-type"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def apiserver(tls) -> Iterator[FakeApiServer]:
    """The quickstart's Dataset, Model and FederatedLearningJob, with its three pods."""
    with FakeApiServer(tls, TOKEN) as server:
        server.add_manifests(QUICKSTART / "job.yaml")
        server.add_pod(
            f"{JOB}-aggregation-q8x2z",
            "default",
            {NAME_LABEL: JOB, TYPE_LABEL: "aggregation"},
            node="cloud",
            ip="10.0.0.2",
        )
        for index, node in enumerate(("edge1", "edge2"), start=1):
            server.add_pod(
                f"{JOB}-train-{node}",
                "default",
                {NAME_LABEL: JOB, TYPE_LABEL: "train"},
                node=node,
                ip=f"10.0.1.{index}",
            )
        server.add_pod("other-train-x", "default", {NAME_LABEL: "other"}, node="edge1", ip="10.0.9.9")
        yield server


@pytest.fixture
def service_account(tmp_path: Path, apiserver: FakeApiServer) -> Path:
    return apiserver.service_account(tmp_path / "serviceaccount")


@pytest.fixture
def client(service_account: Path, apiserver: FakeApiServer) -> Iterator[kube.KubeClient]:
    connected = kube.connect(service_account, apiserver.host, apiserver.port)
    assert connected is not None
    yield connected
    connected.close()


# ---------------------------------------------------------------------------
# kube.py


def test_reads_job_dataset_model_and_pods(client: kube.KubeClient, apiserver: FakeApiServer) -> None:
    job = client.get_job("default", JOB)
    model = client.get_model("default", MODEL)
    dataset = client.get_dataset("default", "digits-edge2")
    pods = client.list_job_pods("default", JOB)

    assert client.namespace == "default"
    assert client.host == apiserver.url
    assert (job.model_name, job.dataset_names, job.participants_count) == (MODEL, DATASETS, 2)
    assert (job.transmitter, job.pretrained_model_name) == ("ws", None)
    assert model.annotations["plato.sedna.io/model-name"] == "lenet5"
    assert (model.url, model.format) == ("model/digits-lenet5.pth", "pth")
    assert (dataset.url, dataset.format, dataset.node_name) == ("data/edge2.txt", "txt", "edge2")
    assert sorted((pod.worker_type, pod.node_name) for pod in pods) == [
        ("aggregation", "cloud"),
        ("train", "edge1"),
        ("train", "edge2"),
    ]
    assert f"labelSelector={NAME_LABEL}%3D{JOB}" in apiserver.requests[-1]
    assert all(line.endswith(" 200") for line in apiserver.requests)


def test_forbidden_is_access_denied_naming_the_rbac_rule(
    client: kube.KubeClient, apiserver: FakeApiServer
) -> None:
    apiserver.deny("federatedlearningjobs", "pods")

    with pytest.raises(kube.AccessDenied) as job_error:
        client.get_job("default", JOB)
    with pytest.raises(kube.AccessDenied) as pods_error:
        client.list_job_pods("default", JOB)

    assert f"FederatedLearningJob default/{JOB}" in str(job_error.value)
    assert "'get' on federatedlearningjobs.sedna.io in namespace default" in str(job_error.value)
    assert 'resources: ["federatedlearningjobs"], verbs: ["get"]' in str(job_error.value)
    assert "'list' on pods in namespace default" in str(pods_error.value)
    assert len(apiserver.requests) == 2  # a 403 is not retried


def test_wrong_token_is_access_denied(service_account: Path, apiserver: FakeApiServer) -> None:
    (service_account / "token").write_text("not-the-token")
    client = kube.connect(service_account, apiserver.host, apiserver.port)

    with pytest.raises(kube.AccessDenied, match=r"Model default/digits-lenet5: .*rejected the credentials"):
        client.get_model("default", MODEL)


def test_token_file_may_end_with_a_newline(service_account: Path, apiserver: FakeApiServer) -> None:
    (service_account / "token").write_text(TOKEN + "\n")
    client = kube.connect(service_account, apiserver.host, apiserver.port)

    assert client.get_model("default", MODEL).name == MODEL


def test_malformed_token_is_no_cluster_without_quoting_it(
    service_account: Path, apiserver: FakeApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    (service_account / "token").write_text("half of a\ntoken")

    assert kube.connect(service_account, apiserver.host, apiserver.port) is None
    assert "empty or malformed" in caplog.text
    assert "half of a" not in caplog.text


def test_missing_resource_is_not_found_naming_kind_namespace_name(client: kube.KubeClient) -> None:
    with pytest.raises(kube.ResourceNotFound, match=r"^Dataset default/edge9 does not exist") as error:
        client.get_dataset("default", "edge9")
    assert 'datasets.sedna.io "edge9" not found' in str(error.value)


def test_server_errors_are_retried(client: kube.KubeClient, apiserver: FakeApiServer) -> None:
    apiserver.fail_next(2, 503)

    assert client.get_model("default", MODEL).name == MODEL
    assert [line.rsplit(" ", 1)[1] for line in apiserver.requests] == ["503", "503", "200"]


def test_api_down_is_unavailable_in_bounded_time(service_account: Path) -> None:
    client = kube.connect(service_account, "127.0.0.1", free_port())
    started = time.monotonic()

    with pytest.raises(kube.ApiUnavailable, match=r"cannot read FederatedLearningJob default/digits-fedavg"):
        client.get_job("default", JOB)
    assert time.monotonic() - started < 5


def test_slow_api_times_out(service_account: Path, apiserver: FakeApiServer) -> None:
    apiserver.delay_s = 3
    client = kube.connect(service_account, apiserver.host, apiserver.port, timeout_s=0.5)
    started = time.monotonic()

    with pytest.raises(kube.ApiUnavailable, match="did not answer"):
        client.get_model("default", MODEL)
    assert time.monotonic() - started < 2  # one try: a timeout is not retried


def test_unknown_ca_is_unavailable(service_account: Path, apiserver: FakeApiServer, tmp_path: Path) -> None:
    other = make_tls(tmp_path / "other-ca")
    (service_account / "ca.crt").write_bytes(other.ca_cert.read_bytes())
    client = kube.connect(service_account, apiserver.host, apiserver.port)

    with pytest.raises(kube.ApiUnavailable, match=r"no TLS connection .* check the CA"):
        client.get_model("default", MODEL)


def _raised(read) -> kube.KubeError:
    with pytest.raises(kube.KubeError) as error:
        read()
    return error.value


def test_token_never_reaches_logs_or_errors(
    client: kube.KubeClient,
    apiserver: FakeApiServer,
    service_account: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    # Libraries imported by other tests (ultralytics, transformers) may have raised urllib3's
    # level, muted or detached its loggers: make it log every request, as it would alone.
    for name in ("urllib3", "urllib3.connectionpool"):
        caplog.set_level(logging.DEBUG, logger=name)
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
    client.get_job("default", JOB)
    apiserver.deny("models")
    errors = [
        _raised(lambda: client.get_model("default", MODEL)),
        _raised(lambda: client.get_dataset("default", "nope")),
    ]
    (service_account / "token").write_text("expired")
    expired = kube.connect(service_account, apiserver.host, apiserver.port)
    errors.append(_raised(lambda: expired.get_job("default", JOB)))

    assert [type(error) for error in errors] == [kube.AccessDenied, kube.ResourceNotFound, kube.AccessDenied]
    assert '"GET /apis/sedna.io/v1alpha1/namespaces/default/models/' in caplog.text  # urllib3 logged
    assert "The Kubernetes API answered 403 for Model default/digits-lenet5" in caplog.text
    assert TOKEN not in caplog.text
    assert not any(TOKEN in str(error) for error in errors)


def test_not_in_a_cluster_is_none(tmp_path: Path, service_account: Path, apiserver: FakeApiServer) -> None:
    empty = tmp_path / "no-serviceaccount"

    assert kube.connect(empty) is None
    assert kube.connect(empty, "10.96.0.1", 443) is None  # env set, files missing
    assert kube.connect(service_account) is None  # files present, env missing
    assert kube.connect(empty, kubeconfig=str(tmp_path / "no-kubeconfig")) is None


def test_kubeconfig_is_the_fallback(tmp_path: Path, apiserver: FakeApiServer) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{apiserver.url}", certificate-authority: "{apiserver.tls.ca_cert}"}}}}]
users: [{{name: dev, user: {{token: "{TOKEN}"}}}}]
contexts: [{{name: dev@fake, context: {{cluster: fake, user: dev, namespace: edge-team}}}}]
current-context: dev@fake
"""
    )
    client = kube.connect(tmp_path / "no-serviceaccount", kubeconfig=str(kubeconfig))

    assert client is not None and client.namespace == "edge-team"
    assert client.get_model("default", MODEL).name == MODEL


def test_fake_apiserver_rejects_objects_the_crd_rejects(apiserver: FakeApiServer) -> None:
    with pytest.raises(jsonschema.ValidationError, match="nodeName"):
        apiserver.add(
            {
                "apiVersion": "sedna.io/v1alpha1",
                "kind": "Dataset",
                "metadata": {"name": "bad"},
                "spec": {"url": "/d.txt", "format": "txt"},
            }
        )


# ---------------------------------------------------------------------------
# resources.py: manifests, else the API, else None


@pytest.fixture
def sedna_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """The [sedna] table resources.py reads, as an aggregator of the quickstart job has it."""
    table = {"role": "aggregator", "job_name": JOB, "namespace": "default"}
    monkeypatch.setattr(runtime_config, "sedna", lambda key, default=None: table.get(key, default))
    resources.reset()
    yield table
    resources.reset()


@pytest.fixture
def in_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, service_account: Path, apiserver: FakeApiServer
):
    """The env Kubernetes gives a pod, pointing at the fake apiserver."""
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", apiserver.host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(apiserver.port))
    monkeypatch.setenv(SERVICEACCOUNT_DIR_ENV, str(service_account))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    return apiserver


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_resources_come_from_the_api_in_a_cluster(sedna_table: dict, in_cluster: FakeApiServer) -> None:
    assert resources.aggregation_model().annotations["plato.sedna.io/model-name"] == "lenet5"
    assert resources.participants_from_job() == 2
    assert len(resources.job_pods()) == 3
    sedna_table.update(role="trainer", dataset_name="digits-edge1", model_name=MODEL)
    assert resources.pod_dataset().url == "data/edge1.txt"
    assert resources.aggregation_model().name == MODEL
    # each resource is read once per process
    assert sum("federatedlearningjobs" in line for line in in_cluster.requests) == 1


def test_forbidden_falls_back_with_one_warning(
    sedna_table: dict, in_cluster: FakeApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    in_cluster.deny("federatedlearningjobs", "models", "datasets", "pods")
    sedna_table["dataset_name"] = "digits-edge1"

    assert resources.aggregation_model() is None
    assert resources.pod_dataset() is None
    assert resources.participants_from_job() is None
    assert resources.job_pods() is None
    [warning] = _warnings(caplog)
    assert f"FederatedLearningJob default/{JOB}" in warning
    assert "'get' on federatedlearningjobs.sedna.io" in warning
    assert "pod's environment" in warning


def test_api_down_falls_back_quickly_with_one_warning(
    sedna_table: dict,
    in_cluster: FakeApiServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(free_port()))
    sedna_table["dataset_name"] = "digits-edge1"
    started = time.monotonic()

    assert resources.aggregation_model() is None
    assert resources.pod_dataset() is None
    assert resources.participants_from_job() is None
    assert time.monotonic() - started < 5  # one read gave up; the others did not try
    [warning] = _warnings(caplog)
    assert "did not answer" in warning


def test_manifests_win_over_the_api(sedna_table: dict, in_cluster: FakeApiServer) -> None:
    sedna_table["manifests"] = str(QUICKSTART / "job.yaml")
    sedna_table["dataset_name"] = "digits-edge2"

    assert resources.aggregation_model().name == MODEL
    assert resources.pod_dataset().node_name == "edge2"
    assert resources.participants_from_job() == 2
    assert in_cluster.requests == []


def test_outside_a_cluster_resources_are_none(
    sedna_table: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(SERVICEACCOUNT_DIR_ENV, str(tmp_path / "none"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))

    assert resources.aggregation_model() is None
    assert resources.participants_from_job() is None
    assert _warnings(caplog) == []


# ---------------------------------------------------------------------------
# A worker process builds its model from the Model's annotation served by the API

def test_aggregator_process_builds_the_annotated_architecture(
    tmp_path: Path, service_account: Path, apiserver: FakeApiServer
) -> None:
    config = tmp_path / "fedavg.toml"
    config.write_text((QUICKSTART / "fedavg.toml").read_text().replace('architecture = "lenet5"\n', ""))
    env = plain_env(
        AGG_BIND_PORT=str(free_port()),
        JOB_NAME=JOB,
        NAMESPACE="default",
        PARTICIPANTS_COUNT="2",
        WORKER_NAME="aggworker-k8s01",
        MODEL_URL=str(tmp_path / "model.pth"),
        KUBERNETES_SERVICE_HOST=apiserver.host,
        KUBERNETES_SERVICE_PORT=str(apiserver.port),
        KUBECONFIG=str(tmp_path / "no-kubeconfig"),
        **{SERVICEACCOUNT_DIR_ENV: str(service_account)},
    )

    result = build_model(config, tmp_path, env)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "built plato.models.lenet5" in result.stdout
    assert [line.split("/")[-2:] for line in apiserver.requests] == [
        ["federatedlearningjobs", f"{JOB} 200"],
        ["models", f"{MODEL} 200"],
    ]
    assert TOKEN not in result.stdout + result.stderr


def test_the_aggregator_takes_num_classes_from_the_jobs_datasets(
    sedna_table: dict, in_cluster: FakeApiServer, tmp_path: Path
) -> None:
    from plato_sedna.models.sedna_resource import model_settings

    # the aggregator has no Dataset of its own: the job's trainers' Datasets say it
    for name in DATASETS:
        dataset = next(d for d in yaml.safe_load_all((QUICKSTART / "job.yaml").read_text()) if d["metadata"]["name"] == name)
        dataset["metadata"]["annotations"] = {"plato.sedna.io/num-classes": "7"}
        in_cluster.add(dataset)

    assert [d.name for d in resources.job_datasets()] == list(DATASETS)
    assert model_settings({"architecture": "lenet5"}).num_classes == 7
    assert model_settings({"architecture": "lenet5", "num_classes": 10}).num_classes == 10  # the config wins
