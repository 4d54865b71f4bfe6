"""``plato-sedna validate FILE...``: manifests and Plato configs checked before they are applied.

Manifests are checked against Sedna's CRD schemas (fields the apiserver would prune
included) and against each other: every Dataset and Model a job names exists, each
container has an image, env values parse as the workers will parse them, and the
Plato config a job runs (from its ConfigMap, or beside the manifests) loads, resolves
for both roles and names only datasources, models, trainers and algorithms Plato knows.
A Plato config can also be checked on its own. Every problem is printed with its file
and field; the exit status is 1 when there is any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from plato_sedna.errors import PlatoSednaError

PROG = "plato-sedna validate"
SEDNA_GROUP = "sedna.io/"
CONFIG_SUFFIXES = (".toml",)


@dataclass(frozen=True)
class Problem:
    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}" if self.where else f"{self.file}: {self.message}"


@dataclass(frozen=True)
class Document:
    """One YAML document of a manifest file."""

    file: Path
    number: int
    body: Any

    @property
    def kind(self) -> str | None:
        return self.body.get("kind") if isinstance(self.body, dict) else None

    @property
    def name(self) -> str | None:
        metadata = self.body.get("metadata") if isinstance(self.body, dict) else None
        return metadata.get("name") if isinstance(metadata, dict) else None

    @property
    def namespace(self) -> str:
        metadata = self.body.get("metadata") or {}
        return metadata.get("namespace") or "default"

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.name else f"document {self.number} ({self.kind})"


# ---------------------------------------------------------------------------
# Plato configs


def config_problems(path: Path, shown_as: str, trainer_count: int = 2) -> list[Problem]:
    """What keeps the Plato config at ``path`` from running as aggregator and trainer."""
    from plato_sedna.config import load_config_file, resolve_config
    from plato_sedna.context import SednaContext
    from plato_sedna.preflight import registry_problems

    try:
        raw = load_config_file(path)
    except PlatoSednaError as error:
        return [Problem(shown_as, "", str(error))]
    roles_by_message: dict[str, list[str]] = {}
    contexts = {
        "aggregator": {"AGG_BIND_PORT": "7363", "PARTICIPANTS_COUNT": str(trainer_count), "MODEL_URL": "model.pth"},
        "trainer": {"AGG_IP": "aggregator", "PARTICIPANTS_COUNT": str(trainer_count), "DATASET_NAME": "dataset"},
    }
    for role, env in contexts.items():
        try:
            resolved = resolve_config(raw, SednaContext.from_env(env))
        except PlatoSednaError as error:
            roles_by_message.setdefault(str(error), []).append(role)
            continue
        for message in registry_problems(role, _getter(resolved)):
            roles_by_message.setdefault(message, []).append(role)
    # one line per problem, naming the roles it stops
    return [Problem(shown_as, f"as {' and '.join(roles)}", message) for message, roles in roles_by_message.items()]


def _getter(config: Mapping[str, Any]):
    def setting(section: str, key: str, default: Any = None) -> Any:
        table = config.get(section)
        value = table.get(key) if isinstance(table, Mapping) else None
        return default if value is None else value

    return setting


# ---------------------------------------------------------------------------
# Manifests


def _documents(file: Path) -> tuple[list[Document], list[Problem]]:
    import yaml

    try:
        bodies = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return [], [Problem(str(file), "", f"cannot be read as YAML: {error}")]
    return [Document(file, number, body) for number, body in enumerate(bodies, start=1) if body is not None], []


def _schema_problems(document: Document, extended: bool) -> list[Problem]:
    import jsonschema

    from plato_sedna.crd_schemas import crd_for_kind, pruned_paths
    from plato_sedna.local.manifests import API_VERSION

    where = document.ref
    api_version = document.body.get("apiVersion")
    if api_version != API_VERSION:
        return [Problem(str(document.file), where, f"apiVersion {api_version!r} is not served by Sedna; use {API_VERSION}")]
    crd = crd_for_kind(document.kind, extended=extended)
    if crd is None:
        return [Problem(str(document.file), where, f"Sedna has no kind {document.kind!r}; use Dataset, Model or FederatedLearningJob")]
    validator = jsonschema.Draft4Validator(crd.schema)
    problems = [
        Problem(str(document.file), where, f"{_path(error.absolute_path)}: {error.message}")
        for error in sorted(validator.iter_errors(document.body), key=lambda e: list(map(str, e.absolute_path)))
    ]
    spec = document.body.get("spec")
    if isinstance(spec, dict):
        fix = "the apiserver drops it: apply the patches in deploy/crds and pass --extended-crds, or use plato.sedna.io annotations"
        problems += [
            Problem(str(document.file), where, f"spec.{path}: not in Sedna's {document.kind} CRD; {fix}")
            for path in pruned_paths(spec, crd.schema["properties"]["spec"])
        ]
    return problems


def _path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(the object)"


def _env_problems(env: Any, where: str, file: str) -> list[Problem]:
    from plato_sedna import algorithm_catalog
    from plato_sedna.context import POD_FILE_ENV, SednaContext

    problems = []
    for index, variable in enumerate(env if isinstance(env, list) else []):
        name, value = (variable or {}).get("name"), (variable or {}).get("value")
        if not isinstance(name, str) or value is None or name in POD_FILE_ENV:  # files of the pod's mounts
            continue
        try:
            SednaContext.from_env({name: str(value)})
            if name.lower() == algorithm_catalog.ENV_NAME:
                algorithm_catalog.check_pod_env(str(value))
        except PlatoSednaError as error:
            problems.append(Problem(file, f"{where}.env[{index}]", str(error)))
    return problems


def _env_values(env: Any) -> tuple[dict[Any, Any], str | None]:
    """A template's env as name -> value, and the ``aggregation_algorithm`` it chooses (any case), if any."""
    from plato_sedna import algorithm_catalog

    values = {(v or {}).get("name"): (v or {}).get("value") for v in (env if isinstance(env, list) else [])}
    chosen = [v for n, v in values.items() if isinstance(n, str) and n.lower() == algorithm_catalog.ENV_NAME]
    return values, (str(chosen[0]) if chosen else None)


class _JobCheck:
    """Cross-checks of one FederatedLearningJob against the other objects and its config."""

    def __init__(self, job: Document, objects: dict[tuple[str, str, str], Document]) -> None:
        self.job = job
        self.objects = objects
        self.file = str(job.file)
        self.problems: list[Problem] = []

    def run(self) -> list[Problem]:
        spec = self.job.body.get("spec") or {}
        self._reference("Model", spec, ("aggregationWorker", "model", "name"), "spec.aggregationWorker.model.name")
        if spec.get("pretrainedModel"):
            self._reference("Model", spec, ("pretrainedModel", "name"), "spec.pretrainedModel.name")
        self._conditions(spec)
        workers = spec.get("trainingWorkers") or []
        if not workers:
            self._add("spec.trainingWorkers", "is missing or empty; add one entry per edge node, each with dataset.name and template")
        templates = [("spec.aggregationWorker.template", (spec.get("aggregationWorker") or {}).get("template"))]
        for index, worker in enumerate(workers):
            base = f"spec.trainingWorkers[{index}]"
            self._reference("Dataset", worker, ("dataset", "name"), f"{base}.dataset.name")
            templates.append((f"{base}.template", (worker or {}).get("template")))
        checked_configs: set[str] = set()
        for where, template in templates:
            self._template(where, template or {}, len(workers), checked_configs)
        return self.problems

    def _add(self, where: str, message: str) -> None:
        self.problems.append(Problem(self.file, f"{self.job.ref}: {where}", message))

    def _reference(self, kind: str, node: Any, keys: tuple[str, ...], where: str) -> None:
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and (kind, self.job.namespace, node) not in self.objects:
            self._add(where, f"{kind} {self.job.namespace}/{node} is not in the files given; add its manifest")

    def _conditions(self, spec: Mapping[str, Any]) -> None:
        from plato_sedna.job_conditions import PROPOSAL_FIELDS, server_tables

        annotations = (self.job.body.get("metadata") or {}).get("annotations") or {}
        fields = {name: spec[name] for name in PROPOSAL_FIELDS if spec.get(name) is not None}
        try:
            server_tables(self.job.ref, fields, annotations)
        except PlatoSednaError as error:
            self.problems.append(Problem(self.file, self.job.ref, str(error)))

    def _template(self, where: str, template: Mapping[str, Any], trainers: int, checked: set[str]) -> None:
        pod = template.get("spec") or {}
        for index, container in enumerate(pod.get("containers") or []):
            base = f"{where}.spec.containers[{index}]"
            if not (container or {}).get("image"):
                self._add(f"{base}.image", "is missing; set the worker image (e.g. plato-sedna:0.1.0)")
            self.problems += _env_problems((container or {}).get("env"), f"{self.job.ref}: {base}", self.file)
            self._algorithm_needs(f"{base}.env", (container or {}).get("env"))
            config = _config_arg((container or {}).get("args") or [])
            if config and config not in checked:
                checked.add(config)
                self._config(f"{base}.args", config, pod, trainers)

    def _algorithm_needs(self, where: str, env: Any) -> None:
        """What the env's algorithm needs beside it, else the pod stops at start.

        fedavg_he: the job's CKKS context file; fedavg_mpc_*: a round store URL, or the S3
        transmitter to keep the shares beside.
        """
        from plato_sedna import algorithm_catalog
        from plato_sedna.context import (
            HE_ALGORITHM,
            HE_CONTEXT_FILE_ENV,
            MPC_ALGORITHMS,
            MPC_STORE_URL_ENV,
        )

        values, chosen = _env_values(env)
        if chosen == HE_ALGORITHM and not values.get(HE_CONTEXT_FILE_ENV):
            self._add(where, (
                f"{algorithm_catalog.ENV_NAME}={HE_ALGORITHM} needs {HE_CONTEXT_FILE_ENV}: mount the job's CKKS "
                "context Secret in every pod (`plato-sedna he-context FILE`, then `plato-sedna render --he-secret "
                "NAME`); `plato-sedna run` gives a local run its own"
            ))
        has_s3 = bool(((self.job.body.get("spec") or {}).get("transmitter") or {}).get("s3"))
        if chosen in MPC_ALGORITHMS and not values.get(MPC_STORE_URL_ENV) and not has_s3:
            self._add(where, (
                f"{chosen} keeps a round store of secret shares every worker reads and writes: set "
                f"{MPC_STORE_URL_ENV} (an s3:// prefix or a folder every pod mounts) in every template, or "
                "use spec.transmitter.s3 (the store goes beside its payloads); `plato-sedna run` gives a local run its own"
            ))

    def _config(self, where: str, config: str, pod: Mapping[str, Any], trainers: int) -> None:
        from plato_sedna.config_source import is_remote

        if is_remote(config):
            return  # fetched by the workers at start
        text = self._config_map_text(config, pod)
        beside = self.job.file.parent / PurePosixPath(config).name
        if text is None and beside.is_file():
            text = beside.read_text(encoding="utf-8")
        if text is None:
            self._add(where, f"the config {config} is neither in a ConfigMap of these files nor beside {self.job.file.name}")
            return
        suffix = PurePosixPath(config).suffix or ".toml"
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"config{suffix}"
            path.write_text(text, encoding="utf-8")
            shown = f"{self.file} ({self.job.ref} config {config})"
            self.problems += config_problems(path, shown, max(trainers, 1))

    def _config_map_text(self, config: str, pod: Mapping[str, Any]) -> str | None:
        container_mounts = [
            mount for container in pod.get("containers") or [] for mount in (container or {}).get("volumeMounts") or []
        ]
        volumes = {volume.get("name"): volume for volume in pod.get("volumes") or [] if isinstance(volume, dict)}
        for mount in container_mounts:
            folder = str(mount.get("mountPath", "")).rstrip("/")
            if not folder or not config.startswith(folder + "/"):
                continue
            map_name = ((volumes.get(mount.get("name")) or {}).get("configMap") or {}).get("name")
            found = self.objects.get(("ConfigMap", self.job.namespace, map_name))
            if found is not None:
                return ((found.body.get("data") or {}).get(config[len(folder) + 1 :]))
        return None


def _config_arg(args: list) -> str | None:
    for index, arg in enumerate(args):
        if arg in ("-c", "--config") and index + 1 < len(args):
            return str(args[index + 1])
        if isinstance(arg, str) and arg.startswith("--config="):
            return arg.partition("=")[2]
    return None


def manifest_problems(files: list[Path], extended: bool = False) -> list[Problem]:
    """Every problem of the manifests in ``files``, checked together."""
    documents: list[Document] = []
    problems: list[Problem] = []
    for file in files:
        found, unreadable = _documents(file)
        documents += found
        problems += unreadable
    objects = {}
    for document in documents:
        if document.kind is None or document.name is None:
            problems.append(Problem(str(document.file), f"document {document.number}", "has no kind or metadata.name"))
            continue
        key = (document.kind, document.namespace, document.name)
        if key in objects and objects[key].body != document.body:
            first = objects[key]
            problems.append(
                Problem(
                    str(document.file),
                    document.ref,
                    f"is also defined, differently, in {first.file} (document {first.number}); "
                    "kubectl apply would keep only the last: remove one",
                )
            )
        objects[key] = document
        if str(document.body.get("apiVersion", "")).startswith(SEDNA_GROUP) or document.kind in (
            "Dataset", "Model", "FederatedLearningJob"
        ):
            problems += _schema_problems(document, extended)
    for document in documents:
        if document.kind == "FederatedLearningJob" and document.name:
            problems += _JobCheck(document, objects).run()
    return problems


# ---------------------------------------------------------------------------
# Command


def _is_config(file: Path) -> bool:
    if file.suffix in CONFIG_SUFFIXES:
        return True
    if file.suffix not in (".yml", ".yaml"):
        return False
    import yaml

    try:
        first = next(yaml.safe_load_all(file.read_text(encoding="utf-8")), None)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # reported as a manifest that cannot be read
    return isinstance(first, dict) and "kind" not in first and "apiVersion" not in first


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="manifests (YAML) and Plato configs")
    parser.add_argument("--extended-crds", action="store_true", help="check against the CRDs upgraded by deploy/crds")
    args = parser.parse_args(argv)
    missing = [str(file) for file in args.files if not file.is_file()]
    if missing:
        print(f"{PROG}: error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    configs = [file for file in args.files if _is_config(file)]
    manifests = [file for file in args.files if file not in configs]
    problems = manifest_problems(manifests, args.extended_crds) if manifests else []
    for config in configs:
        problems += config_problems(config, str(config))
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {len(args.files)} file(s)", file=sys.stderr)
        return 1
    print(f"ok: {len(manifests)} manifest file(s), {len(configs)} config(s)")
    return 0
