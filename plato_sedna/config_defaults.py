"""What a Plato config leaves out, built from the pod's environment and Plato's usual values.

The proposal's config comments out ``[server]`` ("Sedna gives the address"), and a job
with no Plato config at all has every section to build. A missing section starts empty;
the job, the env and the role overlay fill it (config.py), and then the keys Plato
cannot run without take the values below. Only what nothing supplies is an error, which
names the key and where to set it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from plato_sedna.context import SednaContext
from plato_sedna.errors import ConfigError

logger = logging.getLogger(__name__)

SECTIONS = ("clients", "server", "data", "trainer", "algorithm", "parameters")

# Keys Plato reads without a default of its own, and the value a newcomer would expect
# (Plato's example configs; Sedna's example trainers default to one epoch).
PLATO_DEFAULTS: Mapping[str, Any] = {
    "clients.type": "simple",
    "algorithm.type": "fedavg",
    "trainer.type": "basic",
    "trainer.epochs": 1,
    "trainer.batch_size": 32,
    "trainer.optimizer": "SGD",
}
# Plain Plato's server address when the file has none (Plato's configs use these).
PLAIN_SERVER = {"server.address": "127.0.0.1", "server.port": 8000}
SEDNA_DATASOURCE = "sednaDataResource"
SEDNA_MODEL = "sednaModelResource"


def open_sections(config: MutableMapping[str, Any]) -> list[str]:
    """Add each missing section as an empty table; return their names (in Plato's order).

    Raises
    ------
    ConfigError
        When a section holds something other than a table.
    """
    missing = []
    for name in SECTIONS:
        value = config.get(name)
        if value is None:
            config[name] = {}
            missing.append(name)
        elif not isinstance(value, Mapping):
            raise ConfigError(
                f"the Plato config's [{name}] holds {type(value).__name__}, not a table; make it one"
            )
    return missing


def _get(config: Mapping[str, Any], dotted_key: str) -> Any:
    section, _, key = dotted_key.partition(".")
    return config[section].get(key)


def _fill(config: MutableMapping[str, Any], dotted_key: str, value: Any, filled: list[str]) -> None:
    if _get(config, dotted_key) is None:
        section, _, key = dotted_key.partition(".")
        config[section][key] = value
        filled.append(f"{dotted_key} = {value!r}")


def _sedna_defaults(context: SednaContext) -> dict[str, Any]:
    """The plugin's datasource and model where the pod has a Dataset or a Model to give them."""
    defaults: dict[str, Any] = {}
    if context.role != "plain" or context.train_dataset_url or context.dataset_name:
        defaults["data.datasource"] = SEDNA_DATASOURCE
    if context.role != "plain" or context.model_name or context.model_url:
        defaults["trainer.model_name"] = SEDNA_MODEL
    return defaults


def _rounds(config: Mapping[str, Any]) -> int | None:
    stop = config["server"].get("stop_condition")
    if isinstance(stop, Mapping):
        return stop.get("rounds") or stop.get("max_rounds")
    return None


def fill_defaults(config: MutableMapping[str, Any], context: SednaContext, missing: list[str]) -> None:
    """Give the keys still unset after the job, the env and the role their defaults.

    Raises
    ------
    ConfigError
        For a key nothing supplies: the number of rounds, the datasource or the model
        outside a Sedna pod.
    """
    filled: list[str] = []
    defaults = {**PLATO_DEFAULTS, **_sedna_defaults(context)}
    if context.role == "plain":
        defaults.update(PLAIN_SERVER)
    for dotted_key, value in defaults.items():
        _fill(config, dotted_key, value, filled)
    rounds = _rounds(config)
    if rounds is not None:
        _fill(config, "trainer.rounds", rounds, filled)
    for dotted_key, fix in (
        ("trainer.rounds", "set the rounds (or exit_round) env in the pod template, a stopCondition "
         "on the job, or rounds in [trainer]"),
        ("data.datasource", 'set datasource in [data], e.g. "sednaDataResource" with a Sedna Dataset'),
        ("trainer.model_name", 'set model_name in [trainer], e.g. "sednaModelResource" with a Sedna Model'),
    ):
        if _get(config, dotted_key) is None:
            raise ConfigError(f"nothing gives {dotted_key}: {fix}")
    if missing or filled:
        logger.info(
            "Built from the environment and Plato's defaults: %s%s",
            f"[{'], ['.join(missing)}] (absent from the config); " if missing else "",
            ", ".join(filled) or "nothing else",
        )
