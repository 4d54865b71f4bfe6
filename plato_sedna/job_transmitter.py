"""The proposal's ``transimitter.transimitter_list``: how updates travel, as Plato algorithm keys.

The CRD example of the Plato-in-Sedna discussion names the transmitters of a job::

    transimitter:                      # also accepted: spec.transmitter.transmitter_list
      transimitter_list:
        - name: simple                 # simple | adaptive_freezing | adaptive_sync
          parameters:
            - {name: sync_frequency, value: "10"}
        - name: adaptive_freezing

On Sedna's own CRDs (which prune unknown spec fields) the annotation
``plato.sedna.io/transmitter-list`` holds the same list as JSON or YAML text, and wins
over the spec fields, as the stop condition's annotation does.

``simple`` is the plain exchange of weights; ``adaptive_freezing`` and ``adaptive_sync``
are the catalogue's algorithms of the same names (docs/algorithms.md). A list may hold
``simple`` beside one adaptive transmitter, not both adaptive ones (each is its own
Plato server and client). ``sync_frequency`` is the number of local epochs between two
synchronisations: ``trainer.epochs`` for ``simple`` and ``adaptive_freezing``, the
starting ``algorithm.initial_sync_frequency`` for ``adaptive_sync``. Any other parameter
sets the ``[algorithm]`` key of its name. With an aggregation algorithm that exchanges
no weights (MistNet uploads features once) the adaptive transmitter has nothing to act
on: it is left out, with a warning. With any other algorithm than FedAvg it cannot be
combined, and the job is refused at start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml

from plato_sedna.errors import ConfigError

LOGGER = logging.getLogger(__name__)

LIST_FIELDS = (("transimitter", "transimitter_list"), ("transmitter", "transmitter_list"))
LIST_ANNOTATION = "plato.sedna.io/transmitter-list"
SIMPLE = "simple"
ADAPTIVE = ("adaptive_freezing", "adaptive_sync")
NAMES = (SIMPLE, *ADAPTIVE)
SYNC_FREQUENCY = "sync_frequency"
# aggregation_algorithm values an adaptive transmitter combines with, and those it leaves alone
COMBINES_WITH = frozenset({"fedavg"})
NO_WEIGHT_EXCHANGE = frozenset({"mistnet"})


@dataclass(frozen=True)
class TransmitterChoice:
    """What a job's transmitter list asks of Plato.

    algorithm : str | None
        The adaptive transmitter (an ``aggregation_algorithm`` catalogue name), or None
        for ``simple`` alone.
    keys : Mapping[str, Any]
        Dotted Plato keys and their values (``trainer.epochs``, ``algorithm.*``).
    where : str
        The field it came from, for messages.
    """

    algorithm: str | None
    keys: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""


def _list_node(job_ref: str, spec: Mapping[str, Any], annotations: Mapping[str, str]) -> tuple[Any, str] | None:
    if annotations.get(LIST_ANNOTATION):
        try:
            return yaml.safe_load(annotations[LIST_ANNOTATION]), f"annotation {LIST_ANNOTATION}"
        except yaml.YAMLError as error:
            raise ConfigError(
                f"{job_ref}: annotation {LIST_ANNOTATION} is not JSON or YAML ({error.__class__.__name__}); "
                "fix the annotation's text"
            ) from None
    for outer, inner in LIST_FIELDS:
        node = spec.get(outer)
        if isinstance(node, Mapping) and node.get(inner) is not None:
            return node[inner], f"spec.{outer}.{inner}"
    return None


def _value(text: Any) -> Any:
    """An env-style string value as a number where it reads as one."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text
    text = str(text).strip()
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def _parameters(node: Any, where: str, job_ref: str) -> dict[str, Any]:
    if node is None:
        return {}
    if not isinstance(node, list):
        raise ConfigError(f"{job_ref}: {where} is {node!r}, not a list; list {{name, value}} entries")
    found: dict[str, Any] = {}
    for index, entry in enumerate(node):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not name or entry.get("value") is None:
            raise ConfigError(
                f"{job_ref}: {where}[{index}] is {entry!r}; give each parameter a name and a value"
            )
        found[name] = _value(entry["value"])
    return found


def _entries(node: Any, where: str, job_ref: str) -> dict[str, dict[str, Any]]:
    if not isinstance(node, list) or not node:
        raise ConfigError(
            f"{job_ref}: {where} is {node!r}; list the transmitters, e.g. [{{name: simple}}]"
        )
    entries: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(node):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if name not in NAMES:
            raise ConfigError(
                f"{job_ref}: {where}[{index}].name is {name!r}, which plato-sedna cannot honour; "
                f"use one of {', '.join(NAMES)}"
            )
        if name in entries:
            raise ConfigError(f"{job_ref}: {where} names {name} twice; keep one entry")
        entries[name] = _parameters(entry.get("parameters"), f"{where}[{index}].parameters", job_ref)
    return entries


def _keys(name: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for parameter, value in parameters.items():
        if parameter == SYNC_FREQUENCY:
            key = "algorithm.initial_sync_frequency" if name == "adaptive_sync" else "trainer.epochs"
        else:
            key = f"algorithm.{parameter}"
        keys[key] = value
    return keys


def transmitter_choice(
    job_ref: str, spec: Mapping[str, Any], annotations: Mapping[str, str] | None = None
) -> TransmitterChoice | None:
    """The job's transmitter list as Plato keys; None when the job has no list.

    ``spec`` holds the job's spec fields (``transimitter``/``transmitter`` at least);
    ``annotations`` the job's, whose ``plato.sedna.io/transmitter-list`` wins.

    Raises
    ------
    ConfigError
        For an unknown transmitter name, both adaptive transmitters, a malformed
        parameter, or two entries setting one key to different values.
    """
    found = _list_node(job_ref, spec, annotations or {})
    if found is None:
        return None
    node, where = found
    entries = _entries(node, where, job_ref)
    adaptive = [name for name in ADAPTIVE if name in entries]
    if len(adaptive) > 1:
        raise ConfigError(
            f"{job_ref}: {where} names both adaptive_freezing and adaptive_sync, which plato-sedna "
            "cannot combine (each is its own Plato server and client); keep one of them"
        )
    keys: dict[str, Any] = {}
    for name, parameters in entries.items():
        for key, value in _keys(name, parameters).items():
            if key in keys and keys[key] != value:
                raise ConfigError(
                    f"{job_ref}: {where} sets {key} to both {keys[key]!r} and {value!r}; give one value"
                )
            keys[key] = value
    return TransmitterChoice(adaptive[0] if adaptive else None, MappingProxyType(keys), where)


def combined_algorithm(choice: TransmitterChoice, aggregation_algorithm: str | None, job_ref: str) -> str | None:
    """The aggregation algorithm the job runs once its transmitter list is taken into account.

    Returns the adaptive transmitter where the job's ``aggregation_algorithm`` is unset or
    FedAvg; the given algorithm where it exchanges no weights (a warning says the
    transmitter is left out) or where the list names no adaptive transmitter.

    Raises
    ------
    ConfigError
        When an adaptive transmitter meets an algorithm it cannot be combined with.
    """
    if choice.algorithm is None or aggregation_algorithm == choice.algorithm:
        return aggregation_algorithm
    if aggregation_algorithm is None or aggregation_algorithm in COMBINES_WITH:
        return choice.algorithm
    if aggregation_algorithm in NO_WEIGHT_EXCHANGE:
        LOGGER.warning(
            "%s: %s names %s, but aggregation_algorithm=%s exchanges no weights for it to act on; "
            "running %s without it",
            job_ref,
            choice.where,
            choice.algorithm,
            aggregation_algorithm,
            aggregation_algorithm,
        )
        return aggregation_algorithm
    raise ConfigError(
        f"{job_ref}: {choice.where} names {choice.algorithm}, which plato-sedna cannot combine with "
        f"aggregation_algorithm={aggregation_algorithm} (each is its own Plato server); drop one of them"
    )
