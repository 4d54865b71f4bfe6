"""Checks of the resolved config against Plato's registries, before anything is built.

Plato reports an unknown name deep inside a round (``No such data source: x``) or,
in a pod, only once a trainer is selected. Here each one is a clear error at start
that names the config key, the value, and the names Plato knows.
"""

from __future__ import annotations

from collections.abc import Iterable

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError

# Names Plato's registries accept through hard-coded branches, not through their dicts.
HARD_CODED_DATASOURCES = ("kinetics700", "Gym", "Flickr30KE", "ReferItGame", "COCO")
HARD_CODED_TRAINERS = ("HuggingFace", "self_supervised_learning")


def _check(key: str, value, known: Iterable[str]) -> None:
    names = sorted(set(known))
    if value not in names:
        raise ConfigError(f"{key} = {value!r} is not known to Plato or plato_sedna; known: {', '.join(names)}")


def check_registry_names(role: str) -> None:
    """Raise ConfigError for a datasource, model, trainer or algorithm name Plato lacks."""
    from plato.algorithms import registry as algorithms
    from plato.datasources import registry as datasources
    from plato.models import registry as models
    from plato.trainers import registry as trainers

    datasource = runtime_config.setting("data", "datasource")
    _check(
        "data.datasource",
        datasource,
        [*datasources.registered_datasources, *datasources.registered_partitioned_datasources, *HARD_CODED_DATASOURCES],
    )
    model_name = runtime_config.setting("trainer", "model_name")
    if model_name:
        model_type = runtime_config.setting("trainer", "model_type") or model_name.split("_")[0]
        _check("trainer.model_name (its type)", model_type, [*models.registered_models, *models.registered_factories])
    _check("trainer.type", runtime_config.setting("trainer", "type", "basic"), [*trainers.registered_trainers, *HARD_CODED_TRAINERS])
    _check("algorithm.type", runtime_config.setting("algorithm", "type"), algorithms.registered_algorithms)
    if role == "trainer":
        _check_client_type()


def _check_client_type() -> None:
    from plato.clients import registry as clients

    client_type = runtime_config.setting("clients", "type") or runtime_config.setting("algorithm", "type", "simple")
    if client_type not in clients.registered_clients and "." not in client_type:
        _check("clients.type", client_type, clients.registered_clients)
