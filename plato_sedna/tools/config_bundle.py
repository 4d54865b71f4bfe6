"""A Plato config and every file it includes, by the relative names the includes use.

Plato's TOML configs include others with ``include = "x.toml"`` (or a list of names)
in any table, relative to the including file; old Plato's YAML configs use
``!include x.yml``. ``render`` puts the whole bundle in the job's ConfigMap (and beside
``job.yaml``) so that each include resolves where the top config is mounted; ``validate``
rebuilds the same folder from a ConfigMap before it loads the config.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from plato_sedna.errors import ConfigError

YAML_SUFFIXES = (".yml", ".yaml")
# What Kubernetes accepts as a ConfigMap key
_CONFIG_MAP_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")


class _IncludeRecorder(yaml.SafeLoader):
    """A SafeLoader that notes each ``!include NAME`` instead of loading it."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.included: list[str] = []

    def _record(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.ScalarNode):
            self.included.append(str(self.construct_scalar(node)))

    yaml_constructors = {**yaml.SafeLoader.yaml_constructors, "!include": _record}


def _yaml_includes(text: str) -> list[str]:
    loader = _IncludeRecorder(text)
    try:
        loader.get_single_data()
    except yaml.YAMLError:
        return []  # load_config_file reports the syntax
    finally:
        loader.dispose()
    return loader.included


def _toml_includes(node: Any) -> Iterator[str]:
    """Every ``include`` value in any table, as Plato's TomlConfigLoader reads them."""
    if isinstance(node, dict):
        spec = node.get("include")
        if isinstance(spec, str):
            yield spec
        elif isinstance(spec, list):
            yield from (entry for entry in spec if isinstance(entry, str))
        for key, value in node.items():
            if key != "include":
                yield from _toml_includes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _toml_includes(item)


def include_names(text: str, suffix: str) -> list[str]:
    """The names ``text`` (a config file's content) includes, as written, in order."""
    if suffix.lower() in YAML_SUFFIXES:
        return _yaml_includes(text)
    try:
        return list(dict.fromkeys(_toml_includes(tomllib.loads(text))))
    except tomllib.TOMLDecodeError:
        return _yaml_includes(text) if "!include" in text else []


@dataclass(frozen=True)
class ConfigBundle:
    """A top config and the files it includes, each by its path relative to the top's folder."""

    top: str
    files: Mapping[str, str] = field(default_factory=dict)  # relative POSIX path -> text, top first

    @property
    def included(self) -> dict[str, str]:
        return {name: text for name, text in self.files.items() if name != self.top}

    def outside(self) -> list[str]:
        """The included paths that climb above the top's folder (``../common.toml``)."""
        return [name for name in self.included if name.startswith("../") or PurePosixPath(name).is_absolute()]


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form, with ``..`` where it lies above."""
    return Path(os.path.relpath(path, root)).as_posix()


def bundle(path: Path) -> ConfigBundle:
    """The config at ``path`` and every file it includes, recursively.

    Raises
    ------
    ConfigError
        When an included file does not exist or cannot be read, naming the including file.
    """
    root = path.resolve().parent
    files: dict[str, str] = {}
    pending = [path.resolve()]
    seen: set[Path] = set()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        try:
            text = current.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"Plato config {current} cannot be read: {error}") from error
        files[_relative(current, root)] = text
        for name in include_names(text, current.suffix):
            included = (current.parent / name).resolve()
            if not included.is_file():
                raise ConfigError(
                    f"Plato config {current} includes {name}, which is not at {included}; "
                    "fix the include (it is relative to the including file)"
                )
            pending.append(included)
    return ConfigBundle(_relative(path.resolve(), root), files)


def config_map_keys(names: list[str]) -> dict[str, str]:
    """A ConfigMap key for each relative path (``parts/data.toml`` -> ``parts__data.toml``)."""
    keys: dict[str, str] = {}
    for name in names:
        key = name if _CONFIG_MAP_KEY.fullmatch(name) else re.sub(r"[^-._a-zA-Z0-9]", "_", name.replace("/", "__"))
        base, number = key, 2
        while key in keys.values():
            key, number = f"{number}-{base}", number + 1
        keys[name] = key
    return keys


def write_folder(files: Mapping[str, str], folder: Path) -> None:
    """Write each ``relative path -> text`` under ``folder`` (parent folders made)."""
    for name, text in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
