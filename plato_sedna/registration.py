"""Insertion of the plugin's components into Plato's module-level registries.

Plato has no plugin mechanism: its registries are dicts read at call time. They
live in modules that import torch, torchvision and transformers, so importing
them eagerly would make ``import plato_sedna`` slow. Instead each insertion runs
right after Plato's registry module is imported (or at once when it already is),
through a finder placed at the front of ``sys.meta_path``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
import types
from collections.abc import Callable

Insertion = Callable[[types.ModuleType], None]

# Plato registry module -> (dict attribute, key, dotted path of our component).
# Components are named by path so that nothing heavy is imported before Plato is.
ENTRIES: tuple[tuple[str, str, str, str], ...] = (
    (
        "plato.datasources.registry",
        "registered_datasources",
        "sednaDataResource",
        "plato_sedna.datasources.sedna_resource",
    ),
    (
        "plato.models.registry",
        "registered_factories",
        "sednaModelResource",
        "plato_sedna.models.sedna_resource:ModelFactory",
    ),
    (
        "plato.trainers.registry",
        "registered_trainers",
        "hf_text_classification",
        "plato_sedna.trainers.huggingface:TextClassificationTrainer",
    ),
    (
        "plato.trainers.registry",
        "registered_trainers",
        "hf_causal_lm",
        "plato_sedna.trainers.huggingface:CausalLMTrainer",
    ),
    (
        "plato.algorithms.registry",
        "registered_algorithms",
        "hf_fedavg",
        "plato_sedna.trainers.huggingface_exchange:Algorithm",
    ),
    ("plato.trainers.registry", "registered_trainers", "yolov5", "plato_sedna.trainers.yolo:Trainer"),
    ("plato.trainers.registry", "registered_trainers", "yolo", "plato_sedna.trainers.yolo:Trainer"),
    ("plato.trainers.registry", "registered_trainers", "sedna_split_learning", "plato_sedna.trainers.split_learning:Trainer"),
    ("plato.algorithms.registry", "registered_algorithms", "mistnet", "plato_sedna.algorithms.mistnet:Algorithm"),
    ("plato.clients.registry", "registered_clients", "mistnet", "plato_sedna.clients.mistnet:client"),
    ("plato.servers.registry", "registered_servers", "mistnet", "plato_sedna.servers.mistnet:Server"),
    ("plato.algorithms.registry", "registered_algorithms", "adaptive_sync", "plato_sedna.algorithms.adaptive_sync:Algorithm"),
    ("plato.clients.registry", "registered_clients", "adaptive_sync", "plato_sedna.clients.adaptive_sync:client"),
    ("plato.servers.registry", "registered_servers", "adaptive_sync", "plato_sedna.servers.adaptive_sync:Server"),
    ("plato.algorithms.registry", "registered_algorithms", "adaptive_freezing", "plato_sedna.algorithms.adaptive_freezing:Algorithm"),
    ("plato.clients.registry", "registered_clients", "adaptive_freezing", "plato_sedna.clients.adaptive_freezing:client"),
    ("plato.servers.registry", "registered_servers", "adaptive_freezing", "plato_sedna.servers.adaptive_freezing:Server"),
    ("plato.servers.registry", "registered_servers", "sedna_cross_silo", "plato_sedna.servers.cross_silo:Server"),
    ("plato.servers.registry", "registered_servers", "sedna_gan", "plato_sedna.servers.gan:Server"),
    ("plato.trainers.registry", "registered_trainers", "sedna_gan", "plato_sedna.trainers.gan:Trainer"),
    ("plato.processors.registry", "registered_processors", "model_encrypt", "plato_sedna.he_context:encrypt_processor"),
    ("plato.processors.registry", "registered_processors", "model_decrypt", "plato_sedna.he_context:decrypt_processor"),
)


class RegistryClashError(RuntimeError):
    """A Plato registry already holds a different component under one of our names."""


def _load(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def _insert(registry: dict, key: str, target: str) -> None:
    component = _load(target)
    present = registry.get(key)
    if present is None:
        registry[key] = component
    elif present is not component:
        raise RegistryClashError(
            f"Plato registry already has {key!r} -> {present!r}; "
            f"plato_sedna will not replace it with {target}"
        )


def insert_entries(module: types.ModuleType) -> None:
    """Insert every entry meant for ``module`` (idempotent)."""
    for module_name, attribute, key, target in ENTRIES:
        if module_name == module.__name__:
            _insert(getattr(module, attribute), key, target)


class _LoaderWithInsertion(importlib.abc.Loader):
    """Wraps a registry module's loader: executes it, then inserts our entries."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        insert_entries(module)


class _RegistryFinder(importlib.abc.MetaPathFinder):
    """Finds Plato's registry modules with the other finders and wraps their loader."""

    def __init__(self, module_names: frozenset[str]) -> None:
        self.module_names = module_names

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.module_names:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _LoaderWithInsertion(spec.loader)
                return spec
        return None


_lock = threading.Lock()


def register() -> None:
    """Make Plato's registries hold the plugin's entries; safe to call many times."""
    module_names = frozenset(entry[0] for entry in ENTRIES)
    with _lock:
        if not any(isinstance(f, _RegistryFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _RegistryFinder(module_names))
    for name in module_names:
        module = sys.modules.get(name)
        if module is not None:
            insert_entries(module)
