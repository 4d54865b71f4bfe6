"""``plato-sedna validate FILE...``: manifests and Plato configs checked before they are applied.

Manifests are checked against Sedna's CRD schemas (fields the apiserver would prune
included) and against each other: every Dataset, Model and credential Secret a job names
exists (in the files given, else in the other files of the job file's folder, as Sedna's
examples keep one object a file), each trainer runs on its Dataset's node, each container
has an image, env values parse as the workers will parse them, the transmitter list and
the aggregation trigger make sense for the job, and the Plato config a job runs (from its
ConfigMap with the files it includes, its ``platoConfig.url``, or beside the manifests)
loads, resolves for both roles and names only datasources, models, trainers, optimizers
and algorithms Plato knows. A Plato config can also be checked on its own. Every problem
is printed with its file and field, whatever the files hold; the exit status is 1 when
there is an error (warnings and notes do not fail).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plato_sedna.errors import PlatoSednaError

PROG = "plato-sedna validate"
SEDNA_GROUP = "sedna.io/"
SEDNA_KINDS = ("Dataset", "Model", "FederatedLearningJob")
CONFIG_SUFFIXES = (".toml",)
MANIFEST_SUFFIXES = (".yaml", ".yml")
ERROR, WARNING, NOTE = "error", "warning", "note"


@dataclass(frozen=True)
class Problem:
    """One line of validate's report: an error (exit status 1), a warning or a note."""

    file: str
    where: str
    message: str
    severity: str = ERROR

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def __str__(self) -> str:
        text = self.message if self.severity == ERROR else f"{self.severity}: {self.message}"
        return f"{self.file}: {self.where}: {text}" if self.where else f"{self.file}: {text}"


def mapping(node: Any) -> Mapping[str, Any]:
    """``node`` when it is a mapping, else an empty one (its shape is reported elsewhere)."""
    return node if isinstance(node, Mapping) else {}


def items(node: Any) -> list:
    """``node`` when it is a list, else an empty one."""
    return node if isinstance(node, list) else []


def text(node: Any) -> str | None:
    """``node`` when it is a non-empty string, else None."""
    return node if isinstance(node, str) and node else None


def dig(node: Any, *keys: str) -> Any:
    """``node[k1][k2]...``, or None where a step is not a mapping or lacks the key."""
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


@dataclass(frozen=True)
class Document:
    """One YAML document of a manifest file."""

    file: Path
    number: int
    body: Any

    @property
    def kind(self) -> str | None:
        return text(dig(self.body, "kind"))

    @property
    def name(self) -> str | None:
        return text(dig(self.body, "metadata", "name"))

    @property
    def namespace(self) -> str:
        return text(dig(self.body, "metadata", "namespace")) or "default"

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        return (self.kind, self.namespace, self.name)

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.name else f"document {self.number} ({self.kind})"


# ---------------------------------------------------------------------------
# Plato configs (plato_sedna/tools/config_checks.py)


def config_problems(
    path: Path, shown_as: str, trainer_count: int = 2, role_env: Mapping[str, Mapping[str, str]] | None = None
) -> list[Problem]:
    """What keeps the Plato config at ``path`` from running as aggregator and trainer.

    ``trainer_count`` is the job's; 0 for a config checked alone (its clients.total_clients).
    """
    from plato_sedna.tools.config_checks import config_messages

    return [
        Problem(shown_as, where, message, severity)
        for where, message, severity in config_messages(path, trainer_count, role_env or {})
    ]


def config_url_problem(url: Any) -> str | None:
    """Why ``url`` cannot name a job's Plato config (s3://, http(s):// or a path), or None."""
    from plato_sedna.errors import ResourceError
    from plato_sedna.storage.urls import parse_url

    if not isinstance(url, str) or not url.strip():
        return f"{url!r} is not a URL; give the config's s3://, http(s):// URL or a path"
    try:
        parse_url(url)
    except ResourceError as error:
        return f"{url!r}: {error}"
    return None


# ---------------------------------------------------------------------------
# Manifests


def _documents(file: Path) -> tuple[list[Document], list[Problem]]:
    import yaml

    try:
        bodies = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return [], [Problem(str(file), "", f"cannot be read as YAML: {error}")]
    return [Document(file, number, body) for number, body in enumerate(bodies, start=1) if body is not None], []


def schema_problems(document: Document, extended: bool) -> list[Problem]:
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
    shown = ""
    for part in parts:
        shown += f"[{part}]" if isinstance(part, int) else (f".{part}" if shown else str(part))
    return shown or "(the object)"


def _is_sedna(document: Document) -> bool:
    return str(dig(document.body, "apiVersion") or "").startswith(SEDNA_GROUP) or document.kind in SEDNA_KINDS


class Objects:
    """The objects of the files given, and those of the other manifests in a file's folder.

    Sedna's examples ``kubectl create`` one object a file: a job file checked alone finds
    its Dataset, Model and Secret beside it. What is found there is checked like a file
    given, and a note says where it was found.
    """

    def __init__(self, given: dict[tuple, Document], files: list[Path], extended: bool) -> None:
        self.given = given
        self.given_files = {file.resolve() for file in files}
        self.extended = extended
        self.beside: dict[tuple, Document] = {}  # found in a sibling file, by key
        self.noted: set[tuple] = set()  # those a note has named
        self._folders: dict[Path, dict[tuple, Document]] = {}
        self.problems: list[Problem] = []

    def find(self, key: tuple, near: Path) -> Document | None:
        if key in self.given:
            return self.given[key]
        if key in self.beside:
            return self.beside[key]
        found = self._folder(near.parent).get(key)
        if found is not None:
            self.beside[key] = found
            if _is_sedna(found):
                self.problems += schema_problems(found, self.extended)
        return found

    def _folder(self, folder: Path) -> dict[tuple, Document]:
        resolved = folder.resolve()
        if resolved not in self._folders:
            index: dict[tuple, Document] = {}
            for file in sorted(folder.iterdir()) if folder.is_dir() else []:
                if file.suffix not in MANIFEST_SUFFIXES or file.resolve() in self.given_files or not file.is_file():
                    continue
                documents, _ = _documents(file)  # files that are not manifests are no concern here
                for document in documents:
                    if document.kind and document.name:
                        index.setdefault(document.key, document)
            self._folders[resolved] = index
        return self._folders[resolved]

    def all(self) -> list[Document]:
        return [*self.given.values(), *(d for k, d in self.beside.items() if k not in self.given)]


def _internal(file: Path | str, where: str, error: Exception) -> Problem:
    return Problem(
        str(file), where,
        f"validate could not finish this check ({type(error).__name__}: {error}); please report it with the file",
    )


def manifest_problems(files: list[Path], extended: bool = False) -> list[Problem]:
    """Every problem of the manifests in ``files``, checked together (errors, warnings and notes)."""
    from plato_sedna.tools.job_checks import JobCheck, credential_problems

    documents: list[Document] = []
    problems: list[Problem] = []
    for file in files:
        found, unreadable = _documents(file)
        documents += found
        problems += unreadable
    given: dict[tuple, Document] = {}
    for document in documents:
        if document.kind is None or document.name is None:
            problems.append(Problem(
                str(document.file), f"document {document.number}",
                "has no kind or metadata.name (each needs a string); give both",
            ))
            continue
        key = document.key
        if key in given and given[key].body != document.body:
            first = given[key]
            problems.append(
                Problem(
                    str(document.file),
                    document.ref,
                    f"is also defined, differently, in {first.file} (document {first.number}); "
                    "kubectl apply would keep only the last: remove one",
                )
            )
        given[key] = document
        if _is_sedna(document):
            try:
                problems += schema_problems(document, extended)
            except Exception as error:  # noqa: BLE001 - every problem is a line, never a traceback
                problems.append(_internal(document.file, document.ref, error))
    objects = Objects(given, files, extended)
    for document in list(given.values()):
        if document.kind == "FederatedLearningJob":
            try:
                problems += JobCheck(document, objects).run()
            except Exception as error:  # noqa: BLE001
                problems.append(_internal(document.file, document.ref, error))
    for document in objects.all():
        try:
            problems += credential_problems(document, objects)
        except Exception as error:  # noqa: BLE001
            problems.append(_internal(document.file, document.ref, error))
    return problems + objects.problems


# ---------------------------------------------------------------------------
# Command


PLATO_SECTIONS = ("clients", "server", "data", "trainer", "algorithm", "parameters", "general", "results")


def _kind_of_file(file: Path) -> str:
    """``config`` (a Plato config), ``manifest``, or ``other`` (a YAML mapping that is neither,
    such as an ultralytics data YAML beside Sedna's manifests)."""
    if file.suffix in CONFIG_SUFFIXES:
        return "config"
    if file.suffix not in MANIFEST_SUFFIXES:
        return "manifest"
    import yaml

    try:
        content = file.read_text(encoding="utf-8")
        first = next(yaml.safe_load_all(content), None)
    except (OSError, UnicodeDecodeError):
        return "manifest"  # reported as a manifest that cannot be read
    except yaml.YAMLError:
        # old Plato's !include is not plain YAML; anything else is a manifest that cannot be read
        return "config" if "!include" in content and "apiVersion" not in content else "manifest"
    if not isinstance(first, dict) or "kind" in first or "apiVersion" in first:
        return "manifest"
    return "config" if any(section in first for section in PLATO_SECTIONS) else "other"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="manifests (YAML) and Plato configs")
    parser.add_argument("--extended-crds", action="store_true", help="check against the CRDs upgraded by deploy/crds")
    args = parser.parse_args(argv)
    missing = [str(file) for file in args.files if not file.is_file()]
    if missing:
        print(f"{PROG}: error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    kinds = {file: _kind_of_file(file) for file in args.files}
    configs = [file for file in args.files if kinds[file] == "config"]
    manifests = [file for file in args.files if kinds[file] == "manifest"]
    problems = manifest_problems(manifests, args.extended_crds) if manifests else []
    problems += [
        Problem(str(file), "", f"skipped: neither a Kubernetes manifest nor a Plato config (no kind, no {PLATO_SECTIONS[0]}, "
                f"{PLATO_SECTIONS[3]}, ... section)", NOTE)
        for file in args.files if kinds[file] == "other"
    ]
    for config in configs:
        problems += config_problems(config, str(config), trainer_count=0)
    for problem in problems:
        print(problem)
    errors = [problem for problem in problems if problem.is_error]
    warnings = len([problem for problem in problems if problem.severity == WARNING])
    if errors:
        print(f"{len(errors)} problem(s) in {len(args.files)} file(s)", file=sys.stderr)
        return 1
    also = f", {warnings} warning(s)" if warnings else ""
    print(f"ok: {len(manifests)} manifest file(s), {len(configs)} config(s){also}")
    return 0
