"""The Kubernetes objects of a Sedna federated job, built from a Plato config and a few facts.

The config, and every file it includes under the name its include uses, goes into a
ConfigMap mounted at ``/config`` (or the job names it in
``spec.aggregationWorker.platoConfig.url``, and the containers name none); the hyperparameters it sets
go into the pod templates' env as well (DESIGN.md's mapping), where Sedna users
expect to tune them; each trainer's Dataset is pinned to its edge node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from plato_sedna.config import HYPERPARAMETER_KEYS
from plato_sedna.errors import ConfigError
from plato_sedna.local.manifests import API_VERSION
from plato_sedna.tools.rbac import SERVICE_ACCOUNT, rbac_objects
from plato_sedna.tools.secret_mounts import add_secret_mounts

CONFIG_MOUNT = "/config"
ARCHITECTURE_ANNOTATION = "plato.sedna.io/model-name"
# Hyperparameter env by the worker that reads it (Sedna's examples split them the same way).
AGGREGATOR_HYPERPARAMETERS = ("rounds", "target_accuracy", "delta_loss", "stop_operator", "per_round")
TRAINER_HYPERPARAMETERS = ("epochs", "batch_size", "learning_rate", "momentum", "weight_decay", "optimizer")
SHARED_HYPERPARAMETERS = ("aggregation_algorithm", "cut_layer", "epsilon")
_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DATASET_FORMATS = {".txt": "txt", ".csv": "csv", ".jsonl": "jsonl", ".yaml": "yolo", ".yml": "yolo"}
# What Sedna's LocalController accepts in a Dataset's spec.format; others go in the annotation.
LOCAL_CONTROLLER_FORMATS = ("txt", "csv")
FORMAT_ANNOTATION = "plato.sedna.io/format"
_MODEL_FORMATS = {".pth": "pth", ".pt": "pt", ".safetensors": "safetensors", ".onnx": "onnx"}


@dataclass(frozen=True)
class S3Credentials:
    """A Secret in Sedna's credential layout, referenced by the job's S3 resources."""

    secret_name: str
    endpoint: str
    use_https: bool = True


@dataclass(frozen=True)
class JobRequest:
    """What ``plato-sedna render`` was asked for."""

    name: str
    config_name: str
    config_text: str
    config: Mapping[str, Any]
    trainers: tuple[tuple[str, str], ...]  # (node, dataset url)
    model_url: str
    image: str = "plato-sedna:0.1.0"
    namespace: str = "default"
    aggregator_node: str | None = None
    test_dataset_url: str | None = None
    pretrained_model_url: str | None = None
    architecture: str | None = None
    dataset_format: str | None = None
    model_format: str | None = None
    agg_data_path: str | None = None
    s3: S3Credentials | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    token_secret: str | None = None  # mounted as PLATO_SEDNA_TOKEN_FILE in every worker
    tls_secret: str | None = None  # tls.crt/tls.key for the aggregator, ca.crt for the trainers
    he_secret: str | None = None  # fedavg_he's CKKS context, mounted as PLATO_SEDNA_HE_CONTEXT_FILE in every worker
    # the files the config includes, by the relative names its includes use; they go in the ConfigMap too
    included_files: Mapping[str, str] = field(default_factory=dict)
    # spec.aggregationWorker.platoConfig.url: the job names its config; no ConfigMap, no -c
    config_url: str | None = None
    # the proposal's transimitter_list entries ({name, parameters}), as the job's annotation
    transmitter_list: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        for what, value in (("job name", self.name), ("namespace", self.namespace)):
            check_dns_name(value, what)
        secrets = (("--token-secret", self.token_secret), ("--tls-secret", self.tls_secret), ("--he-secret", self.he_secret))
        for what, value in secrets:
            if value is not None:
                check_dns_name(value, what)
        if not self.trainers:
            raise ConfigError("a job needs at least one trainer: give --trainer NODE=DATASET_URL")
        self._check_he_secret()
        nodes = [node for node, _ in self.trainers]
        if len(set(nodes)) != len(nodes):
            raise ConfigError(f"--trainer names a node twice ({', '.join(nodes)}); give each edge node once")
        for node in nodes:
            check_dns_name(node, "trainer node")


    def _check_he_secret(self) -> None:
        from plato_sedna import algorithm_catalog
        from plato_sedna.context import HE_ALGORITHM as ALGORITHM

        named = {algorithm_catalog.name_in_config(self.config)}
        named |= {value for name, value in self.extra_env.items() if name.lower() == algorithm_catalog.ENV_NAME}
        if ALGORITHM in named and not self.he_secret:
            raise ConfigError(
                f"{ALGORITHM} needs the job's CKKS context in every pod: give --he-secret NAME "
                "(a Secret made from `plato-sedna he-context FILE`; render prints the commands)"
            )


def check_dns_name(value: str, what: str) -> None:
    if not _DNS_NAME.fullmatch(value):
        raise ConfigError(
            f"{what} {value!r} is not a Kubernetes name; use lowercase letters, digits and '-' "
            "(at most 63, starting and ending with a letter or digit)"
        )


def dns_name(text: str) -> str:
    """``text`` made into a Kubernetes name (``Fed_Avg.v2`` -> ``fed-avg-v2``)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return name or "plato-job"


def _format(url: str, formats: Mapping[str, str], default: str) -> str:
    suffix = PurePosixPath(url.rstrip("/")).suffix.lower()
    if url.endswith("/") or suffix in (".zip", ".tar", ".gz", ".tgz"):
        return "dir"
    return formats.get(suffix, default)


def _lookup(config: Mapping[str, Any], dotted_key: str) -> Any:
    node: Any = config
    for part in dotted_key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def hyperparameter_env(config: Mapping[str, Any], names: tuple[str, ...]) -> list[dict[str, str]]:
    """``[{name, value}]`` for each of ``names`` the config sets."""
    from plato_sedna import algorithm_catalog

    env = []
    for name in names:
        if name == algorithm_catalog.ENV_NAME:
            # The env sets server, clients and algorithm types together: name what the file's
            # types select (a cross-silo server with algorithm.type fedavg is not fedavg).
            value = algorithm_catalog.name_in_config(config)
        else:
            value = _lookup(config, HYPERPARAMETER_KEYS[name])
        if value is not None and not isinstance(value, Mapping):
            env.append({"name": name, "value": _env_text(value)})
    return env


def _metadata(request: JobRequest, name: str, annotations: Mapping[str, str] | None = None) -> dict:
    metadata: dict[str, Any] = {"name": name, "namespace": request.namespace}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return metadata


def _credential(request: JobRequest, url: str) -> dict[str, str]:
    return {"credentialName": request.s3.secret_name} if request.s3 and url.startswith("s3://") else {}


def _pod_template(
    request: JobRequest, container_name: str, node: str | None, env: list[dict], client_id: int | None = None
) -> dict:
    # Trainers sharing a Dataset take partition -i N of it (plato_sedna/partitioning.py).
    client_args = ["-i", str(client_id)] if client_id is not None else []
    container: dict[str, Any] = {"name": container_name, "image": request.image, "imagePullPolicy": "IfNotPresent"}
    spec: dict[str, Any] = {"serviceAccountName": SERVICE_ACCOUNT, "containers": [container]}
    if request.config_url is None:
        container["args"] = ["-c", f"{CONFIG_MOUNT}/{request.config_name}", *client_args]
    elif client_args:
        container["args"] = client_args
    container["env"] = env
    if request.config_url is None:
        container["volumeMounts"] = [{"name": "plato-config", "mountPath": CONFIG_MOUNT, "readOnly": True}]
        spec["volumes"] = [{"name": "plato-config", "configMap": _config_map_volume(request)}]
    add_secret_mounts(
        spec, request.token_secret, request.tls_secret, aggregator=container_name == "aggworker", he_secret=request.he_secret
    )
    if node:
        spec = {"nodeName": node, **spec}
    return {"spec": spec}


def config_map_name(request: JobRequest) -> str:
    return f"{request.name}-config"


def _config_map_keys(request: JobRequest) -> dict[str, str]:
    from plato_sedna.tools.config_bundle import config_map_keys

    return config_map_keys([request.config_name, *request.included_files])


def _config_map_volume(request: JobRequest) -> dict[str, Any]:
    """The ConfigMap volume; with ``items`` where a file's key is not its relative path
    (``parts/data.toml``), so every include resolves where the top config is mounted."""
    keys = _config_map_keys(request)
    volume: dict[str, Any] = {"name": config_map_name(request)}
    if any(key != path for path, key in keys.items()):
        volume["items"] = [{"key": key, "path": path} for path, key in keys.items()]
    return volume


def _config_map(request: JobRequest) -> dict:
    texts = {request.config_name: request.config_text, **request.included_files}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(request, config_map_name(request)),
        "data": {key: texts[path] for path, key in _config_map_keys(request).items()},
    }


def _dataset_name(request: JobRequest, node: str) -> str:
    return dns_name(f"{request.name}-{node}")


def _with_extra_env(request: JobRequest, env: list[dict]) -> list[dict]:
    """``env`` with ``--env`` values replacing same-named entries, then the new ones."""
    values = {variable["name"]: variable["value"] for variable in env} | dict(request.extra_env)
    return [{"name": name, "value": value} for name, value in values.items()]


def _aggregator_env(request: JobRequest) -> list[dict]:
    env = hyperparameter_env(request.config, AGGREGATOR_HYPERPARAMETERS + SHARED_HYPERPARAMETERS)
    if request.test_dataset_url:
        env.insert(0, {"name": "TEST_DATASET_URL", "value": request.test_dataset_url})
    return _with_extra_env(request, env)


def _trainer_env(request: JobRequest) -> list[dict]:
    return _with_extra_env(request, hyperparameter_env(request.config, TRAINER_HYPERPARAMETERS + SHARED_HYPERPARAMETERS))


def _secret(request: JobRequest) -> dict:
    s3 = request.s3
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": s3.secret_name,
            "namespace": request.namespace,
            "annotations": {"s3-endpoint": s3.endpoint, "s3-usehttps": "1" if s3.use_https else "0"},
        },
        "type": "Opaque",
        "stringData": {"ACCESS_KEY_ID": "REPLACE_WITH_ACCESS_KEY_ID", "SECRET_ACCESS_KEY": "REPLACE_WITH_SECRET_ACCESS_KEY"},
    }


def _model(request: JobRequest, name: str, url: str, annotations: Mapping[str, str] | None, fmt: str | None) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "Model",
        "metadata": _metadata(request, name, annotations),
        # a folder url holds model.<ext> (models/publish.py): its format is the file's, pth by default
        "spec": {"url": url, "format": fmt or _MODEL_FORMATS.get(PurePosixPath(url.rstrip("/")).suffix.lower(), "pth"),
                 **_credential(request, url)},
    }


def _dataset(request: JobRequest, name: str, node: str, url: str) -> dict:
    fmt = request.dataset_format or _format(url, _DATASET_FORMATS, "txt")
    # Sedna's LocalController counts samples of txt/csv only: say other formats in the annotation.
    # ("dir", a folder or archive to look into, stays as in Sedna's own examples.)
    as_is = fmt in LOCAL_CONTROLLER_FORMATS or fmt == "dir"
    annotations = None if as_is else {FORMAT_ANNOTATION: fmt}
    return {
        "apiVersion": API_VERSION,
        "kind": "Dataset",
        "metadata": _metadata(request, name, annotations),
        "spec": {"url": url, "format": fmt if as_is else "txt", "nodeName": node, **_credential(request, url)},
    }


def _transmitter(request: JobRequest) -> dict:
    if not request.agg_data_path:
        return {"ws": {}}
    return {"s3": {"aggDataPath": request.agg_data_path, **_credential(request, request.agg_data_path)}}


def job_objects(request: JobRequest) -> list[dict]:
    """RBAC, [Secret], ConfigMap, Datasets, Model(s) and the FederatedLearningJob, in apply order."""
    objects = rbac_objects(request.namespace)
    if request.s3:
        objects.append(_secret(request))
    if request.config_url is None:
        objects.append(_config_map(request))
    workers = []
    urls = [url for _, url in request.trainers]
    datasets: dict[str, str] = {}  # url -> its Dataset: trainers given the same url share it
    for number, (node, url) in enumerate(request.trainers, start=1):
        if url not in datasets:
            datasets[url] = _dataset_name(request, node)
            objects.append(_dataset(request, datasets[url], node, url))
        client_id = number if urls.count(url) > 1 else None
        template = _pod_template(request, "trainer", node, _trainer_env(request), client_id)
        workers.append({"dataset": {"name": datasets[url]}, "template": template})
    annotations = {ARCHITECTURE_ANNOTATION: request.architecture} if request.architecture else None
    model_name = f"{request.name}-model"
    objects.append(_model(request, model_name, request.model_url, annotations, request.model_format))
    spec: dict[str, Any] = {}
    if request.pretrained_model_url:
        objects.append(
            _model(request, f"{request.name}-pretrained", request.pretrained_model_url, annotations, request.model_format)
        )
        spec["pretrainedModel"] = {"name": f"{request.name}-pretrained"}
    spec |= {
        "transmitter": _transmitter(request),
        "aggregationWorker": {
            "model": {"name": model_name},
            **({"platoConfig": {"url": request.config_url}} if request.config_url else {}),
            "template": _pod_template(request, "aggworker", request.aggregator_node, _aggregator_env(request)),
        },
        "trainingWorkers": workers,
    }
    objects.append(
        {
            "apiVersion": API_VERSION,
            "kind": "FederatedLearningJob",
            "metadata": _metadata(request, request.name, _job_annotations(request)),
            "spec": spec,
        }
    )
    return objects


def _job_annotations(request: JobRequest) -> dict[str, str] | None:
    """The transmitter list as ``plato.sedna.io/transmitter-list`` (kept by Sedna's own CRDs too)."""
    if not request.transmitter_list:
        return None
    import json

    from plato_sedna.job_transmitter import LIST_ANNOTATION

    return {LIST_ANNOTATION: json.dumps([dict(entry) for entry in request.transmitter_list])}
