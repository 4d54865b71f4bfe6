"""Checks of the resolved config against Plato's registries, before anything is built.

Plato reports an unknown name deep inside a round (``No such data source: x``) or,
in a pod, only once a trainer is selected. Here each one is a clear error at start
that names the config key, the value, and the names Plato knows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError

# Names Plato's registries accept through hard-coded branches, not through their dicts.
HARD_CODED_DATASOURCES = ("kinetics700", "Gym", "Flickr30KE", "ReferItGame", "COCO")
HARD_CODED_TRAINERS = ("HuggingFace", "self_supervised_learning")

# (section, key, default) -> value: runtime_config.setting, or a getter over a loaded config
Setting = Callable[..., Any]


def _problem(key: str, value, known: Iterable[str]) -> str | None:
    names = sorted(set(known))
    if value in names:
        return None
    return f"{key} = {value!r} is not known to Plato or plato_sedna; known: {', '.join(names)}"


def registry_problems(role: str, setting: Setting = runtime_config.setting) -> list[str]:
    """Every datasource, model, trainer, algorithm (and client) name Plato lacks, as messages."""
    from plato.algorithms import registry as algorithms
    from plato.datasources import registry as datasources
    from plato.models import registry as models
    from plato.trainers import registry as trainers

    import plato_sedna  # noqa: F401 - the plugin's names are in the registries once imported

    problems = [
        _problem(
            "data.datasource",
            setting("data", "datasource"),
            [*datasources.registered_datasources, *datasources.registered_partitioned_datasources, *HARD_CODED_DATASOURCES],
        ),
        _problem("trainer.type", setting("trainer", "type", "basic"), [*trainers.registered_trainers, *HARD_CODED_TRAINERS]),
        _problem("algorithm.type", setting("algorithm", "type"), algorithms.registered_algorithms),
    ]
    model_name = setting("trainer", "model_name")
    if model_name:
        model_type = setting("trainer", "model_type") or model_name.split("_")[0]
        known_models = [*models.registered_models, *models.registered_factories]
        problems.append(_problem("trainer.model_name (its type)", model_type, known_models))
    if role == "trainer":
        problems.append(_client_type_problem(setting))
    return [problem for problem in problems if problem]


def _client_type_problem(setting: Setting) -> str | None:
    from plato.clients import registry as clients

    client_type = setting("clients", "type") or setting("algorithm", "type", "simple")
    if client_type in clients.registered_clients or "." in client_type:
        return None
    return _problem("clients.type", client_type, clients.registered_clients)


def check_registry_names(role: str) -> None:
    """Raise ConfigError for a datasource, model, trainer or algorithm name Plato lacks."""
    problems = registry_problems(role)
    if problems:
        raise ConfigError("; ".join(problems))


def check_model_url(model_url: str | None) -> None:
    """Raise ConfigError when the aggregator could not publish to ``model_url`` (checked at start,
    not after the first round's training)."""
    from plato_sedna.errors import ResourceError
    from plato_sedna.storage.urls import display_url, parse_url

    if not model_url:
        return
    try:
        location = parse_url(model_url)
    except ResourceError as error:
        raise ConfigError(f"MODEL_URL: {error}; the aggregator publishes the model there") from None
    if location.scheme in ("http", "https"):
        raise ConfigError(
            f"MODEL_URL {display_url(model_url)} is an {location.scheme} URL, which the aggregator "
            "cannot publish the model to; use s3://BUCKET/KEY or a path on a mounted volume"
        )
    if "://" not in model_url or model_url.startswith("file://"):
        check_model_folder_writable(model_url)


DOWNLOADS = "/downloads/"  # Sedna's storage initializer's read-only copy: published to the Model's own url
HOSTPATH_PREFIX = "/home/data"  # where Sedna mounts hostPath urls (DATA_PATH_PREFIX)


def check_model_folder_writable(model_url: str) -> None:
    """Raise ConfigError when this process cannot create or write the folder it publishes into.

    The message names the folder (and the node's host folder for Sedna's ``/home/data``
    mounts), this process's uid and the fix.
    """
    import os
    from pathlib import Path

    from plato_sedna.models.publish import model_folder
    from plato_sedna.tools.node_paths import nearest_existing

    path = model_url.removeprefix("file://")
    if path.startswith(DOWNLOADS):
        return
    folder = Path(model_folder(path))
    existing = nearest_existing(folder.absolute())
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return
    uid = os.getuid() if hasattr(os, "getuid") else "?"
    host = str(folder)
    if host.startswith(HOSTPATH_PREFIX + "/"):
        host = host.removeprefix(HOSTPATH_PREFIX)
    why = (
        f"{existing} is not a folder" if existing.exists() and not existing.is_dir()
        else f"{existing} is not writable by uid {uid}"
    )
    create = f"sudo mkdir -p {host} && " if existing != folder.absolute() else ""
    raise ConfigError(
        f"the aggregator (uid {uid}) cannot write the Model folder {folder} (MODEL_URL {model_url}): {why}. "
        f"On the aggregator's node run `{create}sudo chown {uid} {host}` (the image runs as uid 1000), "
        "or add an initContainer running as root that does it on the mounted folder"
    )


def check_model_format(role: str, model_url: str | None) -> None:
    """Raise ConfigError when the aggregator could not publish its model in the Model's format
    (checked at start; the message names the formats the model can be published in)."""
    if role != "aggregator":
        return
    from plato_sedna.models.global_model import format_problem

    problem = format_problem(model_url)
    if problem:
        raise ConfigError(problem)
