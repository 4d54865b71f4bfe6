"""A FederatedLearningJob's stopCondition and aggregationTrigger, as Plato server tables.

Sedna's CRD has neither field (its apiserver prunes unknown spec fields), so they come
from the extended CRD in ``deploy/crds/`` (``spec.stopCondition``,
``spec.aggregationTrigger``) or, on a cluster with Sedna's own CRDs, from the
annotations ``plato.sedna.io/stop-condition`` and ``plato.sedna.io/aggregation-trigger``
(JSON or YAML text of the same shape). The shape is the seed proposal's::

    stopCondition:
      operator: or                 # or | and
      conditions:
        - {metric: rounds, operator: ">=", threshold: 20}
        - {metric: targetAccuracy, operator: ">=", threshold: 0.95}
        - {metric: deltaLoss, operator: "<", threshold: 0.001}
      maxRounds: 100               # optional cap
    aggregationTrigger:
      condition: {metric: num_of_ready_clients, operator: ">=", threshold: 2}
      timeoutSeconds: 300          # optional

They become ``[server.stop_condition]`` and ``[server.aggregation_trigger]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import yaml

from plato_sedna.errors import ConfigError

STOP_CONDITION_FIELD = "stopCondition"
AGGREGATION_TRIGGER_FIELD = "aggregationTrigger"
STOP_CONDITION_ANNOTATION = "plato.sedna.io/stop-condition"
AGGREGATION_TRIGGER_ANNOTATION = "plato.sedna.io/aggregation-trigger"
# spec.transimitter (the proposal's spelling) and Sedna's spec.transmitter carry the
# transmitter list (job_transmitter.py)
PROPOSAL_FIELDS = (STOP_CONDITION_FIELD, AGGREGATION_TRIGGER_FIELD, "transimitter", "transmitter")
_ANNOTATIONS = MappingProxyType(
    {
        STOP_CONDITION_FIELD: STOP_CONDITION_ANNOTATION,
        AGGREGATION_TRIGGER_FIELD: AGGREGATION_TRIGGER_ANNOTATION,
    }
)

# metric name -> (the [server.stop_condition] key, the operators it accepts, whole number?)
_STOP_METRICS = MappingProxyType(
    {
        "rounds": ("rounds", (">=", ">"), True),
        "targetAccuracy": ("target_accuracy", (">=", ">"), False),
        "accuracy": ("target_accuracy", (">=", ">"), False),
        "deltaLoss": ("delta_loss", ("<", "<="), False),
    }
)
_TRIGGER_METRICS = ("num_of_ready_clients",)
_COMBINATIONS = ("or", "and")


class _Source:
    """Where a field came from, so that every error names the job and the field."""

    def __init__(self, job_ref: str, where: str) -> None:
        self.job_ref = job_ref
        self.where = where

    def error(self, path: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.job_ref}: {self.where}{path} {problem}; {fix}")

    def mapping(self, node: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(node, Mapping):
            raise self.error(path, f"is {node!r}, not a mapping", "see docs/annotations.md for the shape")
        return node

    def number(self, node: Any, path: str) -> float:
        if isinstance(node, bool) or not isinstance(node, (int, float)) or not math.isfinite(node):
            raise self.error(path, f"is {node!r}, not a number", "give a number")
        return float(node)


def _whole_threshold(threshold: float, operator: str) -> int:
    """The count a ``>``/``>=`` threshold on a whole-number metric asks for."""
    return math.floor(threshold) + 1 if operator == ">" else math.ceil(threshold)


def _stop_condition(node: Any, source: _Source) -> dict[str, Any]:
    node = source.mapping(node, "")
    table: dict[str, Any] = {"operator": str(node.get("operator", "or"))}
    if table["operator"] not in _COMBINATIONS:
        raise source.error(".operator", f"is {table['operator']!r}", "use 'or' or 'and'")
    conditions = node.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise source.error(".conditions", "is missing or not a list", "list at least one condition")
    for index, condition in enumerate(conditions):
        path = f".conditions[{index}]"
        condition = source.mapping(condition, path)
        metric = condition.get("metric")
        if metric not in _STOP_METRICS:
            raise source.error(f"{path}.metric", f"is {metric!r}", f"use one of {', '.join(_STOP_METRICS)}")
        key, operators, whole = _STOP_METRICS[metric]
        operator = condition.get("operator", operators[0])
        if operator not in operators:
            raise source.error(f"{path}.operator", f"is {operator!r} for {metric}", f"use {' or '.join(operators)}")
        threshold = source.number(condition.get("threshold"), f"{path}.threshold")
        table[key] = _whole_threshold(threshold, operator) if whole else threshold
    if "maxRounds" in node:
        table["max_rounds"] = _whole_threshold(source.number(node["maxRounds"], ".maxRounds"), ">=")
    return table


def _aggregation_trigger(node: Any, source: _Source) -> dict[str, Any]:
    node = source.mapping(node, "")
    table: dict[str, Any] = {}
    if "condition" in node:
        condition = source.mapping(node["condition"], ".condition")
        metric = condition.get("metric", _TRIGGER_METRICS[0])
        if metric not in _TRIGGER_METRICS:
            raise source.error(".condition.metric", f"is {metric!r}", f"use {_TRIGGER_METRICS[0]}")
        operator = condition.get("operator", ">=")
        if operator not in (">=", ">"):
            raise source.error(".condition.operator", f"is {operator!r}", "use >= or >")
        threshold = source.number(condition.get("threshold"), ".condition.threshold")
        table["min_clients"] = _whole_threshold(threshold, operator)
    if "timeoutSeconds" in node:
        table["timeout_s"] = source.number(node["timeoutSeconds"], ".timeoutSeconds")
    if not table:
        raise source.error("", "has neither condition nor timeoutSeconds", "set at least one")
    return table


def _parse_annotation(job_ref: str, name: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(
            f"{job_ref}: annotation {name} is not JSON or YAML ({error.__class__.__name__}); "
            "fix the annotation's text"
        ) from None


def server_tables(
    job_ref: str, spec_fields: Mapping[str, Any], annotations: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """``{"stop_condition": {...}, "aggregation_trigger": {...}}`` for what the job sets.

    ``spec_fields`` holds the job's ``spec.stopCondition``/``spec.aggregationTrigger``
    where present; an annotation wins over its spec field, as for Datasets and Models.

    Raises
    ------
    ConfigError
        For an unknown metric or operator, or a threshold that is not a number; the
        message names the job and the field.
    """
    builders = {STOP_CONDITION_FIELD: ("stop_condition", _stop_condition),
                AGGREGATION_TRIGGER_FIELD: ("aggregation_trigger", _aggregation_trigger)}
    tables: dict[str, dict[str, Any]] = {}
    for field_name, (table_name, build) in builders.items():
        annotation = _ANNOTATIONS[field_name]
        if annotations.get(annotation):
            node = _parse_annotation(job_ref, annotation, annotations[annotation])
            where = f"annotation {annotation}"
        elif spec_fields.get(field_name) is not None:
            node, where = spec_fields[field_name], f"spec.{field_name}"
        else:
            continue
        tables[table_name] = build(node, _Source(job_ref, where))
    return tables
