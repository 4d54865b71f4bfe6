"""Sedna's CRD schemas as the package ships them, and the extended ones the patches make.

``plato_sedna/crds/`` holds Sedna's three CRDs (sedna.io/v1alpha1) and the JSON patches
(``<plural>.patch.yaml``, "add" operations only) that upgrade them to keep the seed
proposal's fields; ``deploy/crds`` points at the same folder for ``kubectl patch``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CRD_DIR = Path(__file__).resolve().parent / "crds"


@dataclass(frozen=True)
class Crd:
    """One Sedna CRD: its kind, plural and the schema its objects must satisfy."""

    kind: str
    plural: str
    schema: Mapping[str, Any]


@cache
def crd_documents(crd_dir: Path = CRD_DIR) -> dict[str, dict]:
    """Sedna's CRD documents in ``crd_dir`` by plural (``datasets``, ``models``, ``federatedlearningjobs``)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    documents = {}
    for file in sorted(crd_dir.glob("sedna.io_*.yaml")):
        with open(file, encoding="utf-8") as stream:
            document = next(doc for doc in yaml.load_all(stream, Loader=loader) if doc)
        documents[document["spec"]["names"]["plural"]] = document
    return documents


@cache
def crd_patches(crd_dir: Path = CRD_DIR) -> dict[str, list]:
    """The upgrade patches by plural."""
    import yaml

    return {
        file.name.removesuffix(".patch.yaml"): yaml.safe_load(file.read_text(encoding="utf-8"))
        for file in sorted(crd_dir.glob("*.patch.yaml"))
    }


def sedna_crds(crd_dir: Path = CRD_DIR, *, extended: bool = False) -> dict[str, Crd]:
    """The CRDs by plural: Sedna's, or upgraded by this package's patches."""
    crds = {}
    patches = crd_patches(crd_dir) if extended else {}
    for plural, document in crd_documents(crd_dir).items():
        if plural in patches:
            document = apply_patch(document, patches[plural])
        names = document["spec"]["names"]
        schema = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        crds[plural] = Crd(names["kind"], plural, schema)
    return crds


def crd_for_kind(kind: str, *, extended: bool = False) -> Crd | None:
    """The CRD serving ``kind`` (e.g. ``Dataset``), or None when Sedna has no such kind."""
    return next((crd for crd in sedna_crds(extended=extended).values() if crd.kind == kind), None)


def apply_patch(document: Any, operations: Sequence[Mapping[str, Any]]) -> Any:
    """A copy of ``document`` with RFC 6902 "add" operations applied, as ``kubectl patch --type=json``."""
    patched = copy.deepcopy(document)
    for operation in operations:
        if operation["op"] != "add":
            raise ValueError(f"unsupported JSON patch op {operation['op']!r}; the CRD patches only add")
        steps = [part.replace("~1", "/").replace("~0", "~") for part in operation["path"].lstrip("/").split("/")]
        parent = patched
        for step in steps[:-1]:
            parent = parent[int(step)] if isinstance(parent, list) else parent[step]
        value = copy.deepcopy(operation["value"])
        if isinstance(parent, list):
            parent.insert(len(parent) if steps[-1] == "-" else int(steps[-1]), value)
        else:
            parent[steps[-1]] = value
    return patched


def prune(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` without the fields its structural schema does not declare, as kube-apiserver stores it."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict) and "properties" in schema:
        properties = schema["properties"]
        return {key: prune(item, properties[key]) for key, item in value.items() if key in properties}
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), Mapping):
        return {key: prune(item, schema["additionalProperties"]) for key, item in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [prune(item, schema["items"]) for item in value]
    return value


def pruned_paths(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """The field paths :func:`prune` would drop from ``value``."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if key in schema["properties"]:
                found += pruned_paths(item, schema["properties"][key], child)
            else:
                found.append(child)
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), Mapping):
        for key, item in value.items():
            found += pruned_paths(item, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            found += pruned_paths(item, schema["items"], f"{path}[{index}]")
    return found
