"""Sedna manifests as typed job records.

``load_job`` reads the Dataset, Model and FederatedLearningJob manifests a user
would ``kubectl apply`` and checks everything running them needs. What each
local worker then runs with: ``environment.worker_env`` (the env Sedna's
GlobalManager injects, on loopback) and ``container.local_command``.

URL mapping in local mode (no storage-initializer, no hostPath mounts):

- a Dataset url, or the pretrained Model url, that is a relative path resolves
  against the manifests' folder (``JobSpec.source_dir``): inputs ship beside
  the manifests;
- the aggregation Model url is an output (where the final model is
  published): a relative one resolves against the run's workdir;
- a ``TEST_DATASET_URL`` set in a pod template (Sedna injects none for FL)
  is an input too and resolves like a Dataset url;
- absolute paths and URLs with a scheme (``s3://``, ``http(s)://``) pass
  through unchanged, without Sedna's ``/home/data`` or ``/downloads`` prefix
  and without ``DATA_PATH_PREFIX``: a worker fetches remote URLs itself.
"""

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from plato_sedna.errors import ResourceError
from plato_sedna.job_conditions import PROPOSAL_FIELDS

logger = logging.getLogger(__name__)

API_VERSION = "sedna.io/v1alpha1"
SEDNA_KINDS = ("Dataset", "Model", "FederatedLearningJob")


_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_FIELD_STEP_RE = re.compile(r"[^.\[\]]+|\[\d+\]")
# Kubernetes' utilrand alphabet (no vowels), which Sedna's worker names use.
_TYPE_NAMES = {str: "string", list: "list", dict: "mapping"}
# Dataset spec fields of the seed proposal's extended CRD, kept when present (Sedna's own
# CRD has none: its apiserver prunes them).
DATASET_EXTRA_FIELDS = (
    "num_classes",
    "classes",
    "image_size",
    "data_params",
    "train_path",
    "test_path",
    "download_url",
)
# Model spec fields of the seed proposal, kept the same way.
MODEL_EXTRA_FIELDS = ("model_name", "framework", "model_config", "pretrained", "num_classes")


RESTART_POLICIES = ("Always", "OnFailure", "Never")


@dataclass(frozen=True)
class DatasetSpec:
    """A Sedna Dataset: the data one training worker reads."""

    name: str
    namespace: str
    url: str
    format: str
    node_name: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    # DATASET_EXTRA_FIELDS the spec sets, as written.
    extra: Mapping[str, Any] = field(default_factory=dict)
    # spec.credentialName: the Secret Sedna's storage-initializer downloads it with.
    credential_name: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A Sedna Model: where a model is read from or published to."""

    name: str
    namespace: str
    url: str
    format: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    # MODEL_EXTRA_FIELDS the spec sets, as written.
    extra: Mapping[str, Any] = field(default_factory=dict)
    # spec.credentialName: the Secret Sedna's storage-initializer downloads it with.
    credential_name: str | None = None


@dataclass(frozen=True)
class SecretSpec:
    """A Kubernetes Secret found beside the manifests (a ``credentialName``'s target)."""

    name: str
    namespace: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    # data (base64-decoded) with stringData over it, as the apiserver stores them.
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerSpec:
    """One worker of a job: the aggregator or the i-th training worker."""

    key: str
    kind: str
    dataset: DatasetSpec | None
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    # The pod template's restartPolicy; OnFailure when it has none, as Sedna's GM sets it.
    restart_policy: str = "OnFailure"
    # The pod template's spec.nodeName, where set.
    node_name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("aggregator", "trainer"):
            raise ValueError(f"kind must be 'aggregator' or 'trainer', not {self.kind!r}")
        if (self.kind == "trainer") != (self.dataset is not None):
            raise ValueError("a trainer needs a dataset and the aggregator has none")


@dataclass(frozen=True)
class JobSpec:
    """A FederatedLearningJob with its Datasets and Models resolved."""

    name: str
    namespace: str
    source_dir: Path
    source_file: Path
    aggregator: WorkerSpec
    trainers: tuple[WorkerSpec, ...]
    model: ModelSpec
    pretrained_model: ModelSpec | None
    transmitter: str
    agg_data_path: str | None
    annotations: Mapping[str, str] = field(default_factory=dict)
    # spec.stopCondition / spec.aggregationTrigger where set (the extended CRD's fields)
    proposal_fields: Mapping[str, Any] = field(default_factory=dict)
    # The file or folder given to load_job: what workers re-read to see the resources.
    manifests_path: Path | None = None
    # spec.transmitter.s3.credentialName, where set.
    transmitter_secret: str | None = None
    # The Secrets in the manifests (kind Secret, apiVersion v1), by name, in the job's namespace.
    secrets: Mapping[str, SecretSpec] = field(default_factory=dict)
    # spec.aggregationWorker.platoConfig.url: the job's Plato config (the proposal's field)
    config_url: str | None = None

    def __post_init__(self) -> None:
        if not self.trainers:
            raise ValueError("a job needs at least one trainer")
        if self.transmitter not in ("ws", "s3"):
            raise ValueError(f"transmitter must be 'ws' or 's3', not {self.transmitter!r}")
        if (self.transmitter == "s3") != (self.agg_data_path is not None):
            raise ValueError("agg_data_path is set exactly when the transmitter is s3")

    @property
    def ref(self) -> str:
        """The job as ``FederatedLearningJob namespace/name``."""
        return f"FederatedLearningJob {self.namespace}/{self.name}"

    @property
    def participants_count(self) -> int:
        """The number of training workers (what Sedna injects as ``PARTICIPANTS_COUNT``)."""
        return len(self.trainers)

    @property
    def workers(self) -> tuple[WorkerSpec, ...]:
        """The aggregator, then the trainers."""
        return (self.aggregator, *self.trainers)


@dataclass(frozen=True)
class _Manifest:
    """One Sedna resource as read from a file, with field access that explains."""

    kind: str
    name: str
    namespace: str
    body: Mapping[str, Any]
    file: Path | str  # a manifest file, or where an API object came from

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def error(self, path: str, problem: str, fix: str, where: Path | None = None) -> ResourceError:
        """An error naming this resource, the field, the file and the fix."""
        return ResourceError(f"{self.ref}: {path} {problem} in {where or self.file}; {fix}")

    def get(self, path: str, expected: type, fix: str, *, required: bool = True) -> Any:
        """The value at a field path such as ``spec.trainingWorkers[0].dataset.name``."""
        node: Any = self.body
        walked = ""
        for step in _FIELD_STEP_RE.findall(path):
            is_index = step.startswith("[")
            container = list if is_index else dict
            if not isinstance(node, container):
                raise self.error(
                    walked, f"must be a {_TYPE_NAMES[container]}", _type_fix(container)
                )
            node = _child(node, int(step[1:-1]) if is_index else step)
            walked = f"{walked}{step}" if is_index or not walked else f"{walked}.{step}"
            if node is None:
                break
        if node is None or node == "" or node == []:
            if required:
                raise self.error(path, "is missing or empty", fix)
            return None
        if not isinstance(node, expected):
            raise self.error(
                path, f"must be a {_TYPE_NAMES[expected]}, not {node!r}", _type_fix(expected)
            )
        return node

    def annotations(self) -> Mapping[str, str]:
        """``metadata.annotations``, read-only."""
        found = self.get("metadata.annotations", dict, "", required=False) or {}
        for key, value in found.items():
            if not isinstance(value, str):
                raise self.error(f"metadata.annotations[{key!r}]", f"is {value!r}", _type_fix(str))
        return MappingProxyType(dict(found))


# Sedna resources by (kind, namespace, name).
_Index = Mapping[tuple[str, str, str], _Manifest]


def _type_fix(expected: type) -> str:
    if expected is str:
        return 'quote it: Kubernetes takes strings here (e.g. value: "2")'
    return f"make it a {_TYPE_NAMES[expected]}, as in the Sedna CRD schema"


def _child(node: Any, step: int | str) -> Any:
    if isinstance(step, int):
        return node[step] if step < len(node) else None
    return node.get(step)


def load_job(path: Path, job_name: str | None = None) -> JobSpec:
    """Read and validate a job's manifests.

    Parameters
    ----------
    path : Path
        A multi-document YAML file, or a folder whose ``*.yaml``/``*.yml``
        files (sorted by name) hold the manifests.
    job_name : str | None (default: None)
        ``NAME`` or ``NAMESPACE/NAME`` of the FederatedLearningJob to run;
        needed only when the manifests hold several.

    Returns
    -------
    JobSpec
        The job, with every Dataset and Model it references.

    Raises
    ------
    ResourceError
        A manifest is missing, malformed, or references a missing resource.
    """
    path = Path(path)
    if not path.exists():
        raise ResourceError(
            f"{path} does not exist; pass a YAML file with the job's Dataset, Model and "
            "FederatedLearningJob manifests, or a folder of such files"
        )
    manifests = _collect(path)
    job = _pick_job(manifests, job_name, path)
    return _build_job(job, manifests, path)


def _manifest_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise ResourceError(f"{path} holds no *.yaml or *.yml file; put the job's manifests there")
    return files


def _documents(file: Path) -> Iterator[Any]:
    try:
        yield from yaml.safe_load_all(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ResourceError(f"{file} is not valid YAML: {error}; fix its syntax") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ResourceError(
            f"cannot read {file}: {error}; check the path and its permissions"
        ) from error


def _collect(path: Path) -> dict[tuple[str, str, str], _Manifest]:
    """Every Sedna resource under path, keyed by (kind, namespace, name)."""
    found: dict[tuple[str, str, str], _Manifest] = {}
    for file in _manifest_files(path):
        for number, document in enumerate(_documents(file), start=1):
            manifest = _parse_document(document, file, number)
            if manifest is None:
                continue
            key = (manifest.kind, manifest.namespace, manifest.name)
            if key in found:
                raise ResourceError(
                    f"{manifest.ref} is defined twice, in {found[key].file} and {file}; keep one"
                )
            found[key] = manifest
    return found


def _parse_document(document: Any, file: Path | str, number: int) -> _Manifest | None:
    kind = document.get("kind") if isinstance(document, dict) else None
    if kind not in (*SEDNA_KINDS, "Secret"):
        logger.debug(
            "Ignoring document %d of %s (kind %s): not a Sedna resource", number, file, kind
        )
        return None
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ResourceError(
            f"{kind} in {file} (document {number}) has metadata.name {name!r}; give it a name "
            "of lowercase letters, digits, '-' and '.'"
        )
    namespace = metadata.get("namespace") or "default"
    if not isinstance(namespace, str) or not _NAME_RE.fullmatch(namespace):
        raise ResourceError(
            f"{kind} {name} in {file} has metadata.namespace {namespace!r}; "
            "use a valid namespace name"
        )
    manifest = _Manifest(kind, name, namespace, document, file)
    api_version = document.get("apiVersion")
    if kind == "Secret" and api_version != "v1":
        raise manifest.error("apiVersion", f"is {api_version!r}", "a Secret is apiVersion: v1")
    if kind != "Secret" and api_version != API_VERSION:
        raise manifest.error(
            "apiVersion",
            f"is {api_version!r}",
            f"Sedna serves only {API_VERSION}: set apiVersion: {API_VERSION}",
        )
    return manifest


def _pick_job(manifests: _Index, job_name: str | None, path: Path) -> _Manifest:
    jobs = [m for m in manifests.values() if m.kind == "FederatedLearningJob"]
    if not jobs:
        raise ResourceError(f"{path} holds no FederatedLearningJob ({API_VERSION}); add one")
    if job_name is not None:
        listed = ", ".join(f"{m.namespace}/{m.name}" for m in jobs)
        jobs = [m for m in jobs if job_name in (m.name, f"{m.namespace}/{m.name}")]
        if not jobs:
            raise ResourceError(
                f"no FederatedLearningJob {job_name} in {path}; pick one of its jobs ({listed})"
            )
    if len(jobs) > 1:
        refs = ", ".join(m.ref for m in jobs)
        raise ResourceError(
            f"{path} holds several jobs ({refs}); pick one with --job NAMESPACE/NAME"
        )
    return jobs[0]


def _build_job(job: _Manifest, manifests: _Index, source: Path) -> JobSpec:
    model = _model(_reference(job, manifests, "spec.aggregationWorker.model.name", "Model", source))
    aggregator = _worker(job, "spec.aggregationWorker", "aggregator", None)
    pretrained_name = job.get("spec.pretrainedModel.name", str, "", required=False)
    pretrained = None
    if pretrained_name is not None:
        pretrained = _model(
            _reference(job, manifests, "spec.pretrainedModel.name", "Model", source)
        )
    entries = job.get(
        "spec.trainingWorkers",
        list,
        "add one entry per edge node, each with dataset.name and template",
    )
    trainers = []
    for index in range(len(entries)):
        base = f"spec.trainingWorkers[{index}]"
        dataset = _dataset(_reference(job, manifests, f"{base}.dataset.name", "Dataset", source))
        trainers.append(_worker(job, base, f"trainer-{index + 1}", dataset))
    transmitter, agg_data_path = _transmitter(job)
    config_url = job.get(
        "spec.aggregationWorker.platoConfig.url",
        str,
        "set it to the Plato config's s3:// or http(s):// URL, or a path",
        required=False,
    )
    return JobSpec(
        config_url=config_url or None,
        name=job.name,
        namespace=job.namespace,
        source_dir=(source if source.is_dir() else source.parent).resolve(),
        source_file=job.file.resolve(),
        manifests_path=source.resolve(),
        aggregator=aggregator,
        trainers=tuple(trainers),
        model=model,
        pretrained_model=pretrained,
        transmitter=transmitter,
        agg_data_path=agg_data_path,
        annotations=job.annotations(),
        proposal_fields=_proposal_fields(job),
        transmitter_secret=job.get("spec.transmitter.s3.credentialName", str, "", required=False),
        secrets=_secrets(manifests, job.namespace),
    )


def _secrets(manifests: _Index, namespace: str) -> Mapping[str, SecretSpec]:
    """The Secrets of a namespace, their data decoded (stringData wins, as in the apiserver)."""
    import base64
    import binascii

    found = {}
    for (kind, ns, name), manifest in manifests.items():
        if kind != "Secret" or ns != namespace:
            continue
        data = {}
        for key, value in (manifest.get("data", dict, "", required=False) or {}).items():
            try:
                data[key] = base64.b64decode(str(value), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise manifest.error(f"data.{key}", "is not base64 of UTF-8 text", "encode it with base64, or use stringData") from None
        string_data = manifest.get("stringData", dict, "", required=False) or {}
        data.update({key: str(value) for key, value in string_data.items()})
        found[name] = SecretSpec(name, ns, manifest.annotations(), MappingProxyType(data))
    return MappingProxyType(found)


def _proposal_fields(job: _Manifest) -> Mapping[str, Any]:
    fix = "write it as a mapping (see docs/annotations.md)"
    found = {name: job.get(f"spec.{name}", dict, fix, required=False) for name in PROPOSAL_FIELDS}
    return MappingProxyType({name: value for name, value in found.items() if value is not None})


def _reference(
    job: _Manifest,
    manifests: _Index,
    path: str,
    kind: str,
    source: Path,
) -> _Manifest:
    """The resource a ``...name`` field of the job points to, in the job's namespace."""
    name = job.get(path, str, f"set {path} to the name of a {kind}")
    target = manifests.get((kind, job.namespace, name))
    if target is not None:
        return target
    elsewhere = [ns for (k, ns, n) in manifests if k == kind and n == name]
    hint = (
        f" (references resolve in the job's namespace; found one in {', '.join(elsewhere)})"
        if elsewhere
        else ""
    )
    raise job.error(
        path,
        f"'{name}' has no {kind} {job.namespace}/{name}{hint}",
        f"add a {kind} manifest named {name} or fix the reference",
        where=source,
    )


def _dataset(manifest: _Manifest) -> DatasetSpec:
    return DatasetSpec(
        name=manifest.name,
        namespace=manifest.namespace,
        url=manifest.get(
            "spec.url",
            str,
            "set spec.url to the data's path or URL (relative: to the manifest's folder)",
        ),
        format=manifest.get("spec.format", str, "set spec.format (txt, csv, ...)"),
        node_name=manifest.get(
            "spec.nodeName",
            str,
            "set spec.nodeName to the edge node that holds the data (any name works locally)",
        ),
        annotations=manifest.annotations(),
        extra=_extra_spec(manifest, DATASET_EXTRA_FIELDS),
        credential_name=manifest.get("spec.credentialName", str, "", required=False),
    )


def _extra_spec(manifest: _Manifest, names: tuple[str, ...]) -> Mapping[str, Any]:
    spec = manifest.get("spec", dict, "", required=False) or {}
    return MappingProxyType({k: spec[k] for k in names if spec.get(k) is not None})


def _model(manifest: _Manifest) -> ModelSpec:
    return ModelSpec(
        name=manifest.name,
        namespace=manifest.namespace,
        url=manifest.get("spec.url", str, "set spec.url to the model's path or URL"),
        format=manifest.get("spec.format", str, "set spec.format (pth, ckpt, pb, ...)"),
        annotations=manifest.annotations(),
        extra=_extra_spec(manifest, MODEL_EXTRA_FIELDS),
        credential_name=manifest.get("spec.credentialName", str, "", required=False),
    )


def dataset_from_object(document: Mapping[str, Any], source: str) -> DatasetSpec:
    """The Dataset record of one resource object, such as the Kubernetes API returns.

    ``source`` says where the object came from, for error messages.

    Raises
    ------
    ResourceError
        The object is not a ``sedna.io/v1alpha1`` Dataset, or lacks a required field.
    """
    return _dataset(_single(document, "Dataset", source))


def model_from_object(document: Mapping[str, Any], source: str) -> ModelSpec:
    """The Model record of one resource object, such as the Kubernetes API returns.

    ``source`` says where the object came from, for error messages.

    Raises
    ------
    ResourceError
        The object is not a ``sedna.io/v1alpha1`` Model, or lacks a required field.
    """
    return _model(_single(document, "Model", source))


def _single(document: Mapping[str, Any], kind: str, source: str) -> _Manifest:
    manifest = _parse_document(dict(document), source, 1)
    if manifest is None or manifest.kind != kind:
        raise ResourceError(
            f"{source} answered a {document.get('kind')!r} where a {kind} was asked for"
        )
    return manifest


def _worker(job: _Manifest, base: str, key: str, dataset: DatasetSpec | None) -> WorkerSpec:
    containers = job.get(
        f"{base}.template.spec.containers",
        list,
        "add a container with the worker's image, command and env",
    )
    if len(containers) > 1:
        logger.warning(
            "%s: worker %s has %d containers; plato-sedna run runs only the first",
            job.ref,
            key,
            len(containers),
        )
    container = f"{base}.template.spec.containers[0]"
    job.get(container, dict, "make each container a mapping")
    if job.get(f"{container}.envFrom", list, "", required=False):
        raise job.error(
            f"{container}.envFrom",
            f"of worker {key} cannot be resolved locally",
            "list the variables under env with value: instead",
        )
    return WorkerSpec(
        key=key,
        kind="aggregator" if dataset is None else "trainer",
        dataset=dataset,
        command=_strings(job, f"{container}.command"),
        args=_strings(job, f"{container}.args"),
        env=_container_env(job, container, key),
        restart_policy=_restart_policy(job, f"{base}.template.spec.restartPolicy"),
        node_name=job.get(f"{base}.template.spec.nodeName", str, "", required=False),
    )


def _restart_policy(job: _Manifest, path: str) -> str:
    fix = "use Always, OnFailure or Never"
    policy = job.get(path, str, fix, required=False) or "OnFailure"  # injectWorkerParam's default
    if policy not in RESTART_POLICIES:
        raise job.error(path, f"is {policy!r}", fix)
    return policy


def _strings(job: _Manifest, path: str) -> tuple[str, ...]:
    items = job.get(path, list, "", required=False) or []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise job.error(f"{path}[{index}]", f"must be a string, not {item!r}", _type_fix(str))
    return tuple(items)


def _container_env(job: _Manifest, container: str, key: str) -> tuple[tuple[str, str], ...]:
    entries = job.get(f"{container}.env", list, "", required=False) or []
    variables = []
    for index in range(len(entries)):
        entry = f"{container}.env[{index}]"
        name = job.get(f"{entry}.name", str, "give every env entry a name")
        if job.get(f"{entry}.valueFrom", dict, "", required=False) is not None:
            raise job.error(
                f"{entry}.valueFrom",
                f"(variable {name} of worker {key}) cannot be resolved locally",
                f"set {name} with value: instead (local mode has no ConfigMap, Secret "
                "or field refs)",
            )
        value = job.get(f"{entry}.value", str, "", required=False)
        if value is None:
            # Kubernetes gives such a variable an empty value, which the launcher reads as unset.
            logger.warning(
                "%s: %s (variable %s of worker %s) has no value; it is treated as unset",
                job.ref, entry, name, key,
            )
        _check_env_value(job, entry, name, value or "")
        variables.append((name, value or ""))
    return tuple(variables)


def _check_env_value(job: _Manifest, entry: str, name: str, value: str) -> None:
    """A hyperparameter or Sedna variable that would stop the worker at start stops the run now."""
    from plato_sedna.context import POD_FILE_ENV, SednaContext
    from plato_sedna.errors import ConfigError

    if name in POD_FILE_ENV:
        return  # paths of files the pod mounts
    try:
        SednaContext.from_env({name: value})
    except ConfigError as error:
        raise job.error(entry, f"is wrong: {error}", "fix the value in the manifest") from None


def _transmitter(job: _Manifest) -> tuple[str, str | None]:
    """("s3", aggDataPath) when spec.transmitter.s3 is set (it wins, as in Sedna), else "ws"."""
    if job.get("spec.transmitter.s3", dict, "", required=False) is None:
        return "ws", None
    path = job.get(
        "spec.transmitter.s3.aggDataPath",
        str,
        "set it to the s3:// URL for aggregation data, or use transmitter: {ws: {}}",
    )
    return "s3", path
