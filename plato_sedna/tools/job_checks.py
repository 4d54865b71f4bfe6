"""Cross-checks of one FederatedLearningJob for ``plato-sedna validate``.

The job against the objects it names (Datasets, Models, credential Secrets, the
ConfigMap holding its config), its own proposal fields (stop condition, aggregation
trigger, transmitter list, ``platoConfig.url``), its pod templates (image, env, the
algorithm's needs) and the Plato config its workers run. Every shape a manifest may hold
gives problem lines: a field of the wrong type is skipped here (the CRD schema check
reports it), never a traceback.
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from plato_sedna.errors import PlatoSednaError
from plato_sedna.tools.validate import (
    ERROR,
    NOTE,
    WARNING,
    Document,
    Objects,
    Problem,
    config_problems,
    config_url_problem,
    dig,
    items,
    mapping,
    text,
)


def _found_note(document: Document, found: Document, objects: Objects, where: str) -> list[Problem]:
    """A note, once per object, that ``found`` came from a file beside ``document``, not the files given."""
    if found.key in objects.given or found.key in objects.noted:
        return []
    objects.noted.add(found.key)
    return [Problem(
        str(document.file), where,
        f"{found.ref} is in {found.file.name} beside {document.file.name} (not among the files given); "
        "apply it too (kubectl apply -f the folder)",
        NOTE,
    )]


def credential_problems(document: Document, objects: Objects) -> list[Problem]:
    """A Dataset's, Model's or S3 transmitter's ``credentialName`` Secret: a warning when it is nowhere to be seen."""
    fields = {"Dataset": ("spec", "credentialName"), "Model": ("spec", "credentialName"),
              "FederatedLearningJob": ("spec", "transmitter", "s3", "credentialName")}
    if document.kind not in fields:
        return []
    secret = text(dig(document.body, *fields[document.kind]))
    if secret is None:
        return []
    where = f"{document.ref}: {'.'.join(fields[document.kind])}"
    found = objects.find(("Secret", document.namespace, secret), document.file)
    if found is None:
        return [Problem(
            str(document.file), where,
            f"Secret {document.namespace}/{secret} is not in the files given nor beside {document.file.name}; "
            "create it before applying (Sedna's layout: ACCESS_KEY_ID, SECRET_ACCESS_KEY and the s3-endpoint "
            "annotation), or Sedna cannot start the job",
            WARNING,
        )]
    return _found_note(document, found, objects, where)


@dataclass
class _ConfigUse:
    """A Plato config the job's workers run, and the env of the roles that run it."""

    where: str
    pod: Mapping[str, Any]
    role_env: dict[str, dict[str, str]] = field(default_factory=dict)


class JobCheck:
    """Cross-checks of one FederatedLearningJob against the other objects and its config."""

    def __init__(self, job: Document, objects: Objects) -> None:
        self.job = job
        self.objects = objects
        self.file = str(job.file)
        self.problems: list[Problem] = []

    def run(self) -> list[Problem]:
        spec = mapping(self.job.body.get("spec"))
        aggregation = mapping(spec.get("aggregationWorker"))
        model = self._reference("Model", dig(aggregation, "model", "name"), "spec.aggregationWorker.model.name")
        pretrained = None
        if spec.get("pretrainedModel"):
            pretrained = self._reference("Model", dig(spec, "pretrainedModel", "name"), "spec.pretrainedModel.name")
        placed: list[tuple[str | None, str | None]] = []  # (node, dataset url) of each trainer
        workers = self._workers(spec.get("trainingWorkers"))
        self._conditions(spec, len(workers))
        templates = [("spec.aggregationWorker.template", aggregation.get("template"), "aggregator")]
        for index, worker in enumerate(workers):
            base = f"spec.trainingWorkers[{index}]"
            if not isinstance(worker, Mapping):
                continue  # the schema check names the shape
            dataset = self._reference("Dataset", dig(worker, "dataset", "name"), f"{base}.dataset.name")
            self._same_node(base, worker, dataset)
            templates.append((f"{base}.template", worker.get("template"), "trainer"))
            node = text(dig(worker, "template", "spec", "nodeName"))
            if dataset is not None:
                node = node or text(dig(dataset.body, "spec", "nodeName"))
            placed.append((node, text(dig(dataset.body, "spec", "url")) if dataset is not None else None))
        self._model_storage(model, pretrained, text(dig(aggregation, "template", "spec", "nodeName")), placed)
        self._model_format(model)
        configs: dict[str, _ConfigUse] = {}
        for where, template, role in templates:
            self._template(where, mapping(template), role, configs)
        self._transmitter_list(spec, templates)
        self._config_url(aggregation, templates, configs)
        for config, use in configs.items():
            self._config(use, config, len(workers))
        return self.problems

    def _add(self, where: str, message: str, severity: str = ERROR) -> None:
        self.problems.append(Problem(self.file, f"{self.job.ref}: {where}", message, severity))

    def _workers(self, workers: Any) -> list:
        if isinstance(workers, list) and workers:
            return workers
        if workers is None or workers == []:
            self._add("spec.trainingWorkers", "is missing or empty; add one entry per edge node, each with dataset.name and template")
        else:
            self._add("spec.trainingWorkers", (
                f"is a {type(workers).__name__}, not a list; Sedna's v1alpha1 FederatedLearningJob lists one entry "
                "per edge node, each with dataset.name and template (the v2 proposal's datasets/replicas/"
                "targetNodeGroups shape is not served by Sedna's CRD)"
            ))
        return []

    def _reference(self, kind: str, name: Any, where: str) -> Document | None:
        name = text(name)
        if name is None:
            return None  # the schema check says what is missing
        found = self.objects.find((kind, self.job.namespace, name), self.job.file)
        if found is None:
            self._add(where, (
                f"{kind} {self.job.namespace}/{name} is not in the files given nor beside {self.job.file.name}; "
                "add its manifest"
            ))
            return None
        self.problems += _found_note(self.job, found, self.objects, f"{self.job.ref}: {where}")
        return found

    def _model_storage(
        self, model: Document | None, pretrained: Document | None, aggregator_node: str | None,
        placed: list[tuple[str | None, str | None]],
    ) -> None:
        """What Sedna needs of the Model's url before the pods start: an s3 object the storage
        initializer can download, or hostPath folders on the nodes, writable by uid 1000."""
        from plato_sedna.tools import node_paths

        url = text(dig(model.body, "spec", "url")) if model is not None else None
        if url is None:
            return
        where = f"{model.ref}: spec.url"
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme in ("s3", "http", "https"):
            self._add_at(model, where, (
                f"Sedna's storage initializer downloads {url} into the aggregator and every trainer before they "
                "start, and fails (Failed to fetch files) while nothing is there: publish an initial model first "
                "(plato-sedna render ... --seed-model, or copy any model file there) before kubectl apply"
            ), WARNING)
        if not node_paths.is_host_path(url) or not url.startswith("/"):
            return  # a relative path is for plato-sedna run (beside job.yaml); the nodes cannot tell
        if url.endswith("/"):
            self._add_at(model, where, (
                f"ends in '/': Sedna mounts host {url} at /home/data/ and gives MODEL_URL=/home/data{url.rstrip('/')}, "
                "a folder inside it; leave the slash out (a url without a suffix is a folder)"
            ), WARNING)
        pretrained_url = text(dig(pretrained.body, "spec", "url")) if pretrained is not None else None
        for folder in node_paths.node_folders(url, aggregator_node, placed, pretrained_url):
            if not folder.folder.startswith("/"):
                continue
            if not folder.writable:
                self._add_at(model, where, f"hostPath: {folder.line()}", NOTE)
                continue
            self._add_at(model, where, f"hostPath: {folder.line()}", WARNING)
            here = Path(folder.folder)
            writable = node_paths.writable_by(here) if here.is_dir() else None
            if writable is False:
                self._add_at(model, where, (
                    f"{folder.folder} exists on this machine and is not writable by uid {node_paths.IMAGE_UID} "
                    f"(the image's user): sudo chown {node_paths.IMAGE_UID} {folder.folder}, here and on the node"
                ), WARNING)

    def _model_format(self, model: Document | None) -> None:
        """The Model's format against what its architecture can be published as (the aggregator's
        check at start). Where the Model names no architecture (the config may), only a format
        no kind of model can take is reported."""
        from plato_sedna.models.formats import KIND_FORMATS, check_publishable

        fmt = text(dig(model.body, "spec", "format")) if model is not None else None
        if not fmt:
            return
        annotations = mapping(dig(model.body, "metadata", "annotations"))
        architecture = text(annotations.get("plato.sedna.io/model-name")) or text(dig(model.body, "spec", "model_name"))
        if architecture is None:
            if any(fmt.strip().lower().lstrip(".") in allowed for allowed in KIND_FORMATS.values()):
                return
            architecture = ""
        try:
            shape = annotations.get("plato.sedna.io/input-shape")
            problem = check_publishable(
                fmt, architecture or None, input_shape=(1,) if shape else None, source=f"{model.ref} spec.format"
            )
        except PlatoSednaError as error:
            problem = str(error)
        if problem:
            self._add_at(model, f"{model.ref}: spec.format", problem, ERROR)

    def _add_at(self, document: Document, where: str, message: str, severity: str) -> None:
        self.problems.append(Problem(str(document.file), where, message, severity))

    def _same_node(self, base: str, worker: Mapping[str, Any], dataset: Document | None) -> None:
        """A trainer runs on its Dataset's node (Sedna's LocalController there serves the data)."""
        pod_node = text(dig(worker, "template", "spec", "nodeName"))
        data_node = text(dig(dataset.body, "spec", "nodeName")) if dataset is not None else None
        placeholder = any("$" in node for node in (pod_node or "", data_node or ""))  # left for the shell
        if pod_node and data_node and pod_node != data_node and not placeholder:
            self._add(f"{base}.template.spec.nodeName", (
                f"is {pod_node!r}, but {dataset.ref} is on node {data_node!r} (its spec.nodeName); the trainer "
                "must run where its data is: make them the same"
            ))

    def _conditions(self, spec: Mapping[str, Any], trainers: int) -> None:
        from plato_sedna.job_conditions import PROPOSAL_FIELDS, server_tables

        annotations = mapping(dig(self.job.body, "metadata", "annotations"))
        annotations = {name: value for name, value in annotations.items() if isinstance(value, str)}
        fields = {name: spec[name] for name in PROPOSAL_FIELDS if spec.get(name) is not None}
        try:
            tables = server_tables(self.job.ref, fields, annotations)
        except PlatoSednaError as error:
            self.problems.append(Problem(self.file, self.job.ref, str(error)))
            return
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            # job_conditions reads the shape it documents; another shape is this job's problem
            self._add("stop condition / aggregation trigger", (
                f"cannot be read ({type(error).__name__}: {error}): a field holds a value of the wrong type; "
                "see docs/annotations.md for the shape"
            ))
            return
        needed = mapping(tables.get("aggregation_trigger")).get("min_clients")
        if isinstance(needed, int) and 0 < trainers < needed:
            self._add("aggregation trigger", (
                f"asks for {needed} ready clients, but the job has {trainers} trainer(s); the job lowers it to "
                f"{trainers} at start (a warning in the aggregator's log): lower the threshold to say so"
            ), WARNING)

    def _template(self, where: str, template: Mapping[str, Any], role: str, configs: dict[str, _ConfigUse]) -> None:
        pod = mapping(template.get("spec"))
        for index, container in enumerate(items(pod.get("containers"))):
            if not isinstance(container, Mapping):
                continue
            base = f"{where}.spec.containers[{index}]"
            if not container.get("image"):
                self._add(f"{base}.image", "is missing; set the worker image (e.g. plato-sedna:0.1.0)")
            env = container.get("env")
            self._env(f"{base}.env", env)
            self._algorithm_needs(f"{base}.env", env)
            config = _config_arg(items(container.get("args")))
            use = configs.setdefault(config, _ConfigUse(f"{base}.args", pod)) if config else None
            if use is not None:
                use.role_env.setdefault(role, hyperparameter_env(env))
            elif role == "trainer" and dig(self.job.body, "spec", "aggregationWorker", "platoConfig") is None:
                self._env_optimizer(f"{base}.env", env)  # with a config, checked with its trainer type

    def _env_optimizer(self, where: str, env: Any) -> None:
        from plato_sedna.tools.config_checks import ULTRALYTICS_TRAINERS, optimizer_problem

        optimizer = next((v for n, v in env_values(env)[0].items() if n.lower() == "optimizer" and v is not None), None)
        problem = optimizer_problem(optimizer, None, "env optimizer")
        if optimizer is not None and problem and optimizer_problem(optimizer, ULTRALYTICS_TRAINERS[0]):
            self._add(where, problem)

    def _env(self, where: str, env: Any) -> None:
        from plato_sedna import algorithm_catalog
        from plato_sedna.context import POD_FILE_ENV, SednaContext

        for index, variable in enumerate(items(env)):
            name = text(dig(variable, "name"))
            if name is None or name in POD_FILE_ENV:  # files of the pod's mounts
                continue
            value = variable.get("value")
            if value is None:
                if variable.get("valueFrom") is None:
                    self._add(f"{where}[{index}]", (
                        f"{name} has no value; the worker treats it as unset: give it a value or remove the entry"
                    ), WARNING)
                continue
            try:
                SednaContext.from_env({name: str(value)})
                if name.lower() == algorithm_catalog.ENV_NAME:
                    algorithm_catalog.check_pod_env(str(value))
            except PlatoSednaError as error:
                self._add(f"{where}[{index}]", str(error))

    def _algorithm_needs(self, where: str, env: Any) -> None:
        """What the env's algorithm needs beside it, else the pod stops at start.

        fedavg_he: the job's CKKS context file; fedavg_mpc_*: a round store URL, or the S3
        transmitter to keep the shares beside.
        """
        from plato_sedna import algorithm_catalog
        from plato_sedna.context import HE_ALGORITHM, HE_CONTEXT_FILE_ENV, MPC_ALGORITHMS, MPC_STORE_URL_ENV

        values, chosen = env_values(env)
        if chosen == HE_ALGORITHM and not values.get(HE_CONTEXT_FILE_ENV):
            self._add(where, (
                f"{algorithm_catalog.ENV_NAME}={HE_ALGORITHM} needs {HE_CONTEXT_FILE_ENV}: mount the job's CKKS "
                "context Secret in every pod (`plato-sedna he-context FILE`, then `plato-sedna render --he-secret "
                "NAME`); `plato-sedna run` gives a local run its own"
            ))
        has_s3 = bool(dig(self.job.body, "spec", "transmitter", "s3"))
        if chosen in MPC_ALGORITHMS and not values.get(MPC_STORE_URL_ENV) and not has_s3:
            self._add(where, (
                f"{chosen} keeps a round store of secret shares every worker reads and writes: set "
                f"{MPC_STORE_URL_ENV} (an s3:// prefix or a folder every pod mounts) in every template, or "
                "use spec.transmitter.s3 (the store goes beside its payloads); `plato-sedna run` gives a local run its own"
            ))

    def _transmitter_list(self, spec: Mapping[str, Any], templates: list) -> None:
        """The proposal's transimitter_list, checked by the rules the workers apply (job_transmitter.py)."""
        from plato_sedna import job_transmitter

        try:
            annotations = dig(self.job.body, "metadata", "annotations")
            choice = job_transmitter.transmitter_choice(
                self.job.ref, spec, annotations if isinstance(annotations, Mapping) else {}
            )
        except PlatoSednaError as error:
            self.problems.append(Problem(self.file, "", str(error)))
            return
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            self._add("transmitter list", (
                f"cannot be read ({type(error).__name__}: {error}): list {{name, parameters: [{{name, value}}]}} entries"
            ))
            return
        if choice is None or choice.algorithm is None:
            return
        chosen = {env_values(dig(c, "env"))[1] for _, t, _ in templates for c in items(dig(t, "spec", "containers"))}
        for algorithm in sorted(chosen, key=str):
            if algorithm in job_transmitter.NO_WEIGHT_EXCHANGE:
                self._add(choice.where, (
                    f"names {choice.algorithm}, but aggregation_algorithm={algorithm} exchanges no weights for it "
                    f"to act on; the job runs {algorithm} without it"
                ), WARNING)
                continue
            try:
                job_transmitter.combined_algorithm(choice, algorithm, self.job.ref)
            except PlatoSednaError as error:
                self.problems.append(Problem(self.file, "", str(error)))

    def _config_url(self, aggregation: Mapping[str, Any], templates: list, configs: dict[str, _ConfigUse]) -> None:
        """``spec.aggregationWorker.platoConfig.url``: a URL the workers fetch, or a path checked here."""
        from plato_sedna.config_source import is_remote

        if aggregation.get("platoConfig") is None:
            return
        where = "spec.aggregationWorker.platoConfig.url"
        url = dig(aggregation, "platoConfig", "url")
        problem = config_url_problem(url)
        if problem:
            self._add(where, problem)
            return
        if is_remote(url):
            return  # fetched by the workers at start
        path = Path(url) if Path(url).is_absolute() else self.job.file.parent / url
        if not path.is_file():
            if not Path(url).is_absolute():
                self._add(where, (
                    f"{url} is not beside {self.job.file.name} ({path}); `plato-sedna run` looks for it there, "
                    "a pod relative to its working folder"
                ), WARNING)
            return
        use = configs.setdefault(str(path), _ConfigUse(where, {}))
        for _, template, role in templates:
            for container in items(dig(template, "spec", "containers")):
                if not _config_arg(items(dig(container, "args"))):
                    use.role_env.setdefault(role, hyperparameter_env(dig(container, "env")))

    def _config(self, use: _ConfigUse, config: str, trainers: int) -> None:
        from plato_sedna.config_source import is_remote

        if is_remote(config):
            return  # fetched by the workers at start
        shown = f"{self.file} ({self.job.ref} config {config})"
        if Path(config).is_file() and use.where.endswith("platoConfig.url"):
            self.problems += config_problems(Path(config), shown, max(trainers, 1), use.role_env)
            return
        from_map = self._config_map_files(config, use.pod)
        if from_map is not None:
            files, name, config_map = from_map
            self._config_in_folder(files, name, config_map, shown, trainers, use.role_env)
            return
        beside = self.job.file.parent / PurePosixPath(config).name
        if beside.is_file():  # where `plato-sedna run` finds a ConfigMap-mounted config; includes beside it
            self.problems += config_problems(beside, shown, max(trainers, 1), use.role_env)
            return
        self._add(use.where, f"the config {config} is neither in a ConfigMap of these files nor beside {self.job.file.name}")

    def _config_in_folder(
        self, files: dict[str, str], name: str, config_map: Document, shown: str, trainers: int, role_env
    ) -> None:
        from plato_sedna.tools.config_bundle import include_names, write_folder

        missing = [
            (file, included)
            for file, content in files.items()
            for included in include_names(content, PurePosixPath(file).suffix)
            if posixpath.normpath(posixpath.join(posixpath.dirname(file), included)) not in files
        ]
        for file, included in missing:
            self.problems.append(Problem(shown, "", (
                f"{file} includes {included}, which {config_map.ref} does not hold beside it; add it to the "
                "ConfigMap (plato-sedna render bundles every included file)"
            )))
        if missing:
            return
        with tempfile.TemporaryDirectory() as folder:
            write_folder(files, Path(folder))
            found = config_problems(Path(folder) / name, shown, max(trainers, 1), role_env)
            self.problems += [
                Problem(p.file, p.where, p.message.replace(f"{folder}/", f"{config_map.ref} "), p.severity) for p in found
            ]

    def _config_map_files(self, config: str, pod: Mapping[str, Any]) -> tuple[dict[str, str], str, Document] | None:
        """The files a ConfigMap volume puts beside ``config`` (its ``items`` honoured), the config's
        name among them, and the ConfigMap; None when no mount of a ConfigMap in the files holds it."""
        volumes = {text(v.get("name")): v for v in items(pod.get("volumes")) if isinstance(v, Mapping)}
        for container in items(pod.get("containers")):
            for mount in items(dig(container, "volumeMounts")):
                folder = (text(dig(mount, "mountPath")) or "").rstrip("/")
                source = mapping(dig(volumes.get(text(dig(mount, "name"))), "configMap"))
                map_name = text(source.get("name"))
                sub_path = text(dig(mount, "subPath"))
                if not folder or map_name is None or not (config.startswith(folder + "/") or (sub_path and config == folder)):
                    continue
                found = self.objects.find(("ConfigMap", self.job.namespace, map_name), self.job.file)
                if found is None:
                    continue
                self.problems += _found_note(self.job, found, self.objects, f"{self.job.ref}: volumes {map_name}")
                data = {k: v for k, v in mapping(dig(found.body, "data")).items() if isinstance(k, str) and isinstance(v, str)}
                if sub_path:
                    files = {PurePosixPath(config).name: data[sub_path]} if sub_path in data and config == folder else {}
                    name = PurePosixPath(config).name
                else:
                    chosen = [i for i in items(source.get("items")) if text(dig(i, "key")) in data and text(dig(i, "path"))]
                    files = {posixpath.normpath(i["path"]): data[i["key"]] for i in chosen} if chosen else data
                    name = posixpath.normpath(config[len(folder) + 1 :])
                if name in files:
                    return files, name, found
        return None


def _config_arg(args: list) -> str | None:
    for index, arg in enumerate(args):
        if arg in ("-c", "--config") and index + 1 < len(args):
            return str(args[index + 1])
        if isinstance(arg, str) and arg.startswith("--config="):
            return arg.partition("=")[2]
    return None


def env_values(env: Any) -> tuple[dict[str, Any], str | None]:
    """A template's env as name -> value, and the ``aggregation_algorithm`` it chooses (any case), if any."""
    from plato_sedna import algorithm_catalog

    values = {text(dig(v, "name")): dig(v, "value") for v in items(env)}
    values.pop(None, None)
    chosen = [v for n, v in values.items() if n.lower() == algorithm_catalog.ENV_NAME and v is not None]
    return values, (str(chosen[0]).strip() if chosen else None)


def hyperparameter_env(env: Any) -> dict[str, str]:
    """The template's hyperparameter env that parses (what the pod's config resolves with)."""
    from plato_sedna import algorithm_catalog
    from plato_sedna.context import HYPERPARAMETER_NAMES, SednaContext

    good: dict[str, str] = {}
    for name, value in env_values(env)[0].items():
        if value is None or name.lower() not in HYPERPARAMETER_NAMES:
            continue
        try:
            SednaContext.from_env({name: str(value)})
            if name.lower() == algorithm_catalog.ENV_NAME:
                algorithm_catalog.check_pod_env(str(value))
        except PlatoSednaError:
            continue  # reported on the env entry
        good[name] = str(value)
    return good
