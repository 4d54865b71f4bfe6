"""RFC 6902 JSON patches, the "add" and "test" operations kubectl's --type=json uses for CRD upgrades."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any


def _steps(pointer: str) -> list[str]:
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer {pointer!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _parent(document: Any, steps: list[str]) -> Any:
    node = document
    for step in steps[:-1]:
        node = node[int(step)] if isinstance(node, list) else node[step]
    return node


def apply_patch(document: Any, operations: Sequence[Mapping[str, Any]]) -> Any:
    """A patched copy of ``document``; KeyError/IndexError when a path's parent is missing."""
    patched = copy.deepcopy(document)
    for operation in operations:
        steps = _steps(operation["path"])
        parent = _parent(patched, steps)
        last = steps[-1]
        if operation["op"] == "add":
            value = copy.deepcopy(operation["value"])
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), value)
            else:
                parent[last] = value
        elif operation["op"] == "test":
            found = parent[int(last)] if isinstance(parent, list) else parent[last]
            if found != operation["value"]:
                raise ValueError(f"test failed at {operation['path']}: {found!r} != {operation['value']!r}")
        else:
            raise ValueError(f"unsupported JSON patch op {operation['op']!r}")
    return patched
