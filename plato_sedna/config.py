"""Load a Plato config (TOML or YAML) and overlay the Sedna context onto it."""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import tomllib
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import yaml
from plato.config import TomlConfigLoader
from plato.utils import toml_writer

from plato_sedna import algorithm_catalog, config_defaults, job_transmitter
from plato_sedna.context import (
    DEFAULT_AGG_PORT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TRANSMITTER,
    SednaContext,
)
from plato_sedna.errors import ConfigError

if TYPE_CHECKING:
    from plato_sedna.resources import JobFacts

logger = logging.getLogger(__name__)

YAML_SUFFIXES = (".yml", ".yaml")

# Hyperparameter env name -> the Plato key it sets (the env wins over the file).
HYPERPARAMETER_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "batch_size": "trainer.batch_size",
        "epochs": "trainer.epochs",
        "exit_round": "trainer.rounds",  # Sedna's name; rounds wins where both are set
        "rounds": "trainer.rounds",
        "target_accuracy": "trainer.target_accuracy",
        "optimizer": "trainer.optimizer",
        "learning_rate": "parameters.optimizer.lr",
        "momentum": "parameters.optimizer.momentum",
        "weight_decay": "parameters.optimizer.weight_decay",
        "per_round": "clients.per_round",
        "delta_loss": "server.stop_condition.delta_loss",
        "stop_operator": "server.stop_condition.operator",
        "cut_layer": "algorithm.cut_layer",
        "epsilon": "algorithm.epsilon",
        "aggregation_algorithm": "algorithm.type",
        "initial_sync_frequency": "algorithm.initial_sync_frequency",
        "moving_average_alpha": "algorithm.moving_average_alpha",
        "stability_threshold": "algorithm.stability_threshold",
        "tight_threshold": "algorithm.tight_threshold",
        "bifurcation_window": "algorithm.bifurcation_window",
        "warmup_rounds": "algorithm.warmup_rounds",
        "total_silos": "algorithm.total_silos",
        "local_rounds": "algorithm.local_rounds",
        "trainer_timeout": "server.trainer_timeout",
        "on_trainer_loss": "server.on_trainer_loss",
    }
)

# Hyperparameters the aggregation worker's env sets for the whole job (the proposal's
# discussion: "Sedna decides" them, on the aggregator): a trainer whose own env lacks one
# takes the aggregator's, so both sides run the same algorithm for the same rounds
# (Sedna's surface-defect example sets exit_round on the aggregator only).
JOB_WIDE_HYPERPARAMETERS = (
    "aggregation_algorithm",
    "cut_layer",
    "epsilon",
    "rounds",
    "exit_round",
    "target_accuracy",
    "delta_loss",
    "stop_operator",
    "per_round",
)

# Env names whose key [server.stop_condition] may also set (from the file or the job):
# where it does, the env value replaces it there too, so that the env always wins.
STOP_CONDITION_MIRRORS: Mapping[str, str] = MappingProxyType(
    {"exit_round": "rounds", "rounds": "rounds", "target_accuracy": "target_accuracy"}
)

# [sedna] key -> SednaContext attribute: what the plugin's components read at run time.
# Never add the S3 endpoint or keys: the resolved config is written to disk and logged.
SEDNA_TABLE_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "role": "role",
        "job_name": "job_name",
        "namespace": "namespace",
        "worker_name": "worker_name",
        "dataset_name": "dataset_name",
        "model_name": "model_name",
        "identity": "trainer_identity",
        "shared_dataset_id": "shared_dataset_id",
        "model_url": "model_url",
        "pretrained_model_url": "pretrained_model_url",
        "train_url": "train_dataset_url",
        "test_url": "test_dataset_url",
        "participants_count": "participants_count",
        "connect_timeout": "connect_timeout",
        "lc_server": "lc_server",
        "data_path_prefix": "data_path_prefix",
        "transmitter": "transmitter",
        "agg_data_path": "agg_data_path",
        "manifests": "manifests",
    }
)

# [sedna] keys whose context value may be a default rather than something the env set;
# while it is the default, a value in the file's [sedna] table wins.
SEDNA_DEFAULTS: Mapping[str, object] = MappingProxyType(
    {"transmitter": DEFAULT_TRANSMITTER, "connect_timeout": DEFAULT_CONNECT_TIMEOUT}
)


# ---------------------------------------------------------------------------
# Loading


class _IncludingYamlLoader(yaml.SafeLoader):
    """A SafeLoader that resolves old Plato's ``!include other.yml`` relative to the file."""

    def __init__(self, stream: str, path: Path, seen: frozenset[Path]) -> None:
        super().__init__(stream)
        self.path = path
        self.seen = seen | {path.resolve()}

    def _construct_include(self, node: yaml.Node) -> Any:
        included = (self.path.parent / str(self.construct_scalar(node))).resolve()
        if included in self.seen:
            raise ConfigError(f"Plato config {self.path} includes {included} in a cycle")
        if not included.is_file():
            raise ConfigError(
                f"Plato config {self.path} includes {included}, which does not exist; "
                "fix the !include path (it is relative to the including file)"
            )
        return _load_yaml(included, self.seen)

    yaml_constructors = {**yaml.SafeLoader.yaml_constructors, "!include": _construct_include}


def _require_file(path: Path) -> None:
    if not path.exists():
        raise ConfigError(
            f"Plato config {path} does not exist; pass an existing TOML or YAML file with -c"
        )
    if not path.is_file():
        raise ConfigError(f"Plato config {path} is not a file; pass a TOML or YAML file with -c")


def _load_yaml(path: Path, seen: frozenset[Path] = frozenset()) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Plato config {path} cannot be read: {error}") from error
    loader = _IncludingYamlLoader(text, path, seen)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"Plato config {path} is not valid YAML{where}: {error}") from error
    finally:
        loader.dispose()


def _load_toml(path: Path) -> Any:
    try:
        return TomlConfigLoader(path).load()
    except tomllib.TOMLDecodeError as error:
        # The message ends with "(at line N, column M)".
        raise ConfigError(
            f"Plato config {path} (or a file it includes) is not valid TOML: {error}"
        ) from error
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as error:
        raise ConfigError(f"Plato config {path} cannot be loaded: {error}") from error


def _load_toml_or_yaml(path: Path) -> Any:
    try:
        return _load_toml(path)
    except ConfigError as toml_error:
        try:
            return _load_yaml(path)
        except ConfigError as yaml_error:
            raise ConfigError(
                f"Plato config {path} is neither TOML ({toml_error}) nor YAML ({yaml_error}); "
                "fix the syntax, and name the file .toml or .yml"
            ) from yaml_error


def load_config_file(path: str | Path) -> dict:
    """Load a Plato config file into a plain dict.

    Parameters
    ----------
    path : str | Path
        A ``.toml`` file (Plato's ``include`` and ``{ null = true }`` supported), a
        ``.yml``/``.yaml`` file (old Plato's ``!include`` supported), or any other
        name, read as TOML and else as YAML.

    Returns
    -------
    dict
        The config, with ``None`` where the file holds a null.

    Raises
    ------
    ConfigError
        When the file is missing, does not parse, or is not a table at the top level.
    """
    config_path = Path(path)
    _require_file(config_path)
    suffix = config_path.suffix.lower()
    if suffix == ".toml":
        loaded = _load_toml(config_path)
    elif suffix in YAML_SUFFIXES:
        loaded = _load_yaml(config_path)
    else:
        loaded = _load_toml_or_yaml(config_path)
    if loaded is None:
        raise ConfigError(f"Plato config {config_path} is empty; write the Plato sections into it")
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"Plato config {config_path} holds {type(loaded).__name__} at the top level, "
            "not a table; write sections such as [clients] and [server]"
        )
    return loaded


# ---------------------------------------------------------------------------
# Resolving


def _table(config: MutableMapping[str, Any], dotted_key: str) -> MutableMapping[str, Any]:
    """The table at ``dotted_key`` ("" for the top), created empty where absent."""
    table = config
    for name in filter(None, dotted_key.split(".")):
        table = table.setdefault(name, {})
        if not isinstance(table, MutableMapping):
            raise ConfigError(
                f"Plato config key {dotted_key} must be a table but holds {table!r}; "
                f"make [{dotted_key}] a table"
            )
    return table


def _put(config: MutableMapping[str, Any], dotted_key: str, value: Any) -> Any:
    """Set ``dotted_key`` to ``value``; return what it held before (None when absent)."""
    parent, _, name = dotted_key.rpartition(".")
    table = _table(config, parent)
    previous = table.get(name)
    table[name] = value
    return previous


def _override(config: MutableMapping[str, Any], dotted_key: str, value: Any, env: str) -> None:
    if value is algorithm_catalog.UNSET:
        *parents, last = dotted_key.split(".")
        node: Any = config
        for part in parents:
            node = node.get(part) if isinstance(node, MutableMapping) else None
        if isinstance(node, MutableMapping) and node.pop(last, None) is not None:
            logger.info("%s removed (by env %s)", dotted_key, env)
        return
    previous = _put(config, dotted_key, value)
    if previous is None:
        logger.info("%s = %r (from env %s, file had none)", dotted_key, value, env)
    else:
        logger.info("%s = %r (from env %s, file had %r)", dotted_key, value, env, previous)


def _apply_hyperparameters(config: MutableMapping[str, Any], context: SednaContext) -> None:
    hyperparameters = context.hyperparameters
    for env_name, dotted_key in HYPERPARAMETER_KEYS.items():
        if env_name in hyperparameters:
            _override(config, dotted_key, hyperparameters[env_name], env_name)
    stop_condition = config["server"].get("stop_condition")
    for env_name, key in STOP_CONDITION_MIRRORS.items():
        if env_name in hyperparameters and isinstance(stop_condition, Mapping) and key in stop_condition:
            _override(config, f"server.stop_condition.{key}", hyperparameters[env_name], env_name)


def _positive_int_key(clients: Mapping[str, Any], name: str) -> int | None:
    value = clients.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(
            f"clients.{name} = {value!r} is not a positive integer; set it to a whole number"
        )
    return value


def _apply_job(config: MutableMapping[str, Any], job: JobFacts | None) -> None:
    """The FederatedLearningJob's stop condition and trigger over the file's tables."""
    if job is None:
        return
    for name, job_table in job.server_tables.items():
        file_table = config["server"].get(name)
        if file_table is not None and not isinstance(file_table, Mapping):
            raise ConfigError(f"server.{name} in the Plato config is not a table; make it one")
        config["server"][name] = {**(file_table or {}), **job_table}
        logger.info("server.%s = %r (from %s)", name, dict(job_table), job.ref)
    choice = job.transmitter_choice
    for dotted_key, value in (choice.keys.items() if choice is not None else ()):
        previous = _put(config, dotted_key, value)
        logger.info("%s = %r (from %s %s, file had %r)", dotted_key, value, job.ref, choice.where, previous)


def _apply_participants(
    config: MutableMapping[str, Any], context: SednaContext, job: JobFacts | None
) -> None:
    clients = config["clients"]
    total_clients = (
        context.participants_count
        or (job.participants_count if job is not None else None)
        or _positive_int_key(clients, "total_clients")
    )
    if total_clients is None:
        raise ConfigError(
            "PARTICIPANTS_COUNT is not set, the job's trainingWorkers cannot be read and the "
            "config has no clients.total_clients, so the number of trainers is unknown; set "
            "PARTICIPANTS_COUNT in the pod env or clients.total_clients in the config"
        )
    requested = _positive_int_key(clients, "per_round") or total_clients
    if requested > total_clients:
        logger.warning(
            "clients.per_round %s is more than the %s trainers of this job; using %s",
            requested,
            total_clients,
            total_clients,
        )
    clients["total_clients"] = total_clients
    clients["per_round"] = min(requested, total_clients)
    _cap_trigger(config["server"].get("aggregation_trigger"), total_clients)


def _cap_trigger(trigger: Any, total_clients: int) -> None:
    """An aggregation trigger asking for more ready trainers than the job has waits for all of them."""
    if not isinstance(trigger, MutableMapping):
        return
    wanted = trigger.get("min_clients")
    if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > total_clients:
        logger.warning(
            "The aggregation trigger waits for %s ready trainers, but the job has %s; waiting for %s "
            "(lower the aggregationTrigger threshold to silence this)",
            wanted,
            total_clients,
            total_clients,
        )
        trigger["min_clients"] = total_clients


def _apply_aggregator(
    config: MutableMapping[str, Any], context: SednaContext, job: JobFacts | None
) -> None:
    server, clients = config["server"], config["clients"]
    server["address"] = "0.0.0.0"
    server["port"] = context.agg_bind_port or server.get("port") or DEFAULT_AGG_PORT
    server["disable_clients"] = True
    clients["comm_simulation"] = False
    _apply_participants(config, context, job)
    if context.test_dataset_url:
        server["do_test"] = True
    else:
        # Trainers test locally; the aggregator reports their sample-weighted mean.
        server["do_test"] = False
        clients["do_test"] = True


def _apply_trainer(
    config: MutableMapping[str, Any], context: SednaContext, job: JobFacts | None
) -> None:
    host = context.aggregator_host
    if host is None:
        raise ConfigError(
            "AGG_IP is not set and JOB_NAME/NAMESPACE are not set either, so the aggregator "
            "cannot be found; set AGG_IP (or JOB_NAME and NAMESPACE) in the trainer pod env"
        )
    server, clients, data = config["server"], config["clients"], config["data"]
    server["address"] = host
    server["port"] = context.agg_port
    clients["comm_simulation"] = False
    _apply_participants(config, context, job)
    clients["do_test"] = True
    if data.get("datasource") == "sednaDataResource" and context.shared_dataset_id is None:
        data["sampler"] = "all_inclusive"  # the pod's whole local set is its data
    # On a shared Dataset, data.sampler takes partition shared_dataset_id (partitioning.py).
    # With trainer.max_concurrency, Plato's trainer trains (and tests) each round in a freshly
    # spawned process that imports torch and Plato again (trainers/composable.py train/test).
    if config["trainer"].pop("max_concurrency", None) is not None:
        logger.info(
            "trainer.max_concurrency is ignored in a pod: the pod is one client, so it trains in its own process"
        )


_ROLE_OVERLAYS = MappingProxyType({"aggregator": _apply_aggregator, "trainer": _apply_trainer})


def _sedna_table(file_table: Any, context: SednaContext) -> dict[str, Any]:
    """Context values over the file's [sedna] table over the context's defaults."""
    if file_table is None:
        file_table = {}
    if not isinstance(file_table, Mapping):
        raise ConfigError("the Plato config's [sedna] is not a table; make it one")
    defaults: dict[str, Any] = {}
    from_env: dict[str, Any] = {}
    for key, attribute in SEDNA_TABLE_FIELDS.items():
        value = getattr(context, attribute)
        if key in SEDNA_DEFAULTS and value == SEDNA_DEFAULTS[key]:
            defaults[key] = value
        elif value is not None:
            from_env[key] = value
    return {**defaults, **file_table, **from_env}


def _job_transmitter(sedna: dict[str, Any], context: SednaContext, job: JobFacts | None) -> None:
    """The job's s3 transmitter where the pod's env names none (Sedna injects it in pods)."""
    if job is None or job.transmitter != "s3" or context.transmitter != DEFAULT_TRANSMITTER:
        return
    sedna["transmitter"] = "s3"
    sedna["agg_data_path"] = context.agg_data_path or job.agg_data_path


def with_job_wide_hyperparameters(context: SednaContext, job: JobFacts | None) -> SednaContext:
    """A trainer's context with the aggregator's job-wide hyperparameters where its own env has none."""
    if context.role != "trainer" or job is None or not job.aggregator_env:
        return context
    from dataclasses import replace

    aggregator_env = {name: value for name, value in job.aggregator_env if name.lower() in JOB_WIDE_HYPERPARAMETERS}
    try:
        aggregator = SednaContext.from_env(aggregator_env).hyperparameters
    except ConfigError as error:
        raise ConfigError(f"{job.ref}: the aggregation worker's env: {error}") from None
    inherited = {name: value for name, value in aggregator.items() if name not in context.hyperparameters}
    if not inherited:
        return context
    logger.info("From the aggregation worker's env of %s: %s", job.ref, inherited)
    return replace(context, hyperparameters={**inherited, **context.hyperparameters})


def resolve_config(raw: Mapping, context: SednaContext, job: JobFacts | None = None) -> dict:
    """Turn a loaded Plato config into the one this process runs.

    Parameters
    ----------
    raw : Mapping
        The config as :func:`load_config_file` returns it; left unchanged.
    context : SednaContext
        This pod's Sedna context: hyperparameter env, role, aggregator address.
    job : JobFacts, optional
        What the pod's FederatedLearningJob says (``resources.job_facts``): the trainer
        count when ``PARTICIPANTS_COUNT`` is unset, and its stop condition and trigger,
        which win over the file's tables (the env wins over both).

    Returns
    -------
    dict
        A new config: the hyperparameter env over the file, the role's server and
        clients keys, and a ``sedna`` table for the plugin's components (never a secret).

    Raises
    ------
    ConfigError
        When a section is not a table, nothing supplies a key Plato needs, or the role
        lacks what it needs.
    """
    config = copy.deepcopy(dict(raw))
    missing = config_defaults.open_sections(config)
    _apply_job(config, job)
    _apply_hyperparameters(config, context)
    config_defaults.fill_defaults(config, context, missing)
    role_overlay = _ROLE_OVERLAYS.get(context.role)
    if role_overlay is not None:
        role_overlay(config, context, job)
    config["sedna"] = _sedna_table(config.get("sedna"), context)
    _job_transmitter(config["sedna"], context, job)
    # the server/clients/algorithm types (and other keys) the aggregation_algorithm env names,
    # or the adaptive transmitter the job's transimitter_list names
    algorithm = context.hyperparameters.get("aggregation_algorithm")
    if job is not None and job.transmitter_choice is not None:
        algorithm = job_transmitter.combined_algorithm(job.transmitter_choice, algorithm, job.ref)
    for dotted_key, value in algorithm_catalog.settings(config, algorithm, context.role).items():
        _override(config, dotted_key, value, "aggregation_algorithm")
    return config


# ---------------------------------------------------------------------------
# Writing


def _check_writable(value: Any, dotted_key: str) -> None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"config key {key!r} in [{dotted_key}] is not a string; TOML keys must be"
                )
            _check_writable(item, f"{dotted_key}.{key}" if dotted_key else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_writable(item, f"{dotted_key}[{index}]")
    else:
        raise ConfigError(
            f"config key {dotted_key} holds a {type(value).__name__}, which Plato's TOML "
            "cannot hold; use a string, number, boolean, list or table"
        )


def _same(expected: Any, actual: Any) -> bool:
    both_nan = isinstance(expected, float) and isinstance(actual, float) and expected != expected
    return expected == actual or (both_nan and actual != actual)


def _first_difference(expected: Any, actual: Any, dotted_key: str) -> str | None:
    """The first key where ``actual`` differs from ``expected``; None when they are equal."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        for key in sorted(expected.keys() | actual.keys(), key=str):
            child = f"{dotted_key}.{key}" if dotted_key else str(key)
            difference = _first_difference(expected.get(key), actual.get(key), child)
            if difference is not None:
                return difference
        return None
    return None if _same(expected, actual) else dotted_key or "the top level"


def _check_round_trip(config: Mapping, written: Path) -> None:
    try:
        reread = TomlConfigLoader(written).load()
    except (tomllib.TOMLDecodeError, OSError, ValueError, TypeError) as error:
        raise ConfigError(
            f"the config cannot be written as TOML that Plato reads back: {error}; "
            "remove the value that causes it (an 'include' key, or text with emoji "
            "or other characters beyond U+FFFF, which Plato's TOML writer cannot escape)"
        ) from error
    difference = _first_difference(config, reread, "")
    if difference is not None:
        raise ConfigError(
            f"config key {difference} does not read back unchanged from TOML; restructure "
            "it (Plato's loader reads a table {null = true}, an 'include' key and lists of "
            "one-key 'value' tables specially)"
        )


def to_toml(config: Mapping) -> str:
    """``config`` as TOML text Plato reads; ConfigError when a value has no TOML form."""
    _check_writable(config, "")
    return toml_writer.dumps(config)


def write_config(config: Mapping, path: str | Path) -> Path:
    """Write ``config`` as a TOML file that Plato's loader reads back to an equal dict.

    Parameters
    ----------
    config : Mapping
        A resolved config; ``None`` values are written as Plato's ``{ null = true }``.
    path : str | Path
        The file to write; parent folders are created and the file is replaced atomically.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ConfigError
        When a value has no TOML form that reads back the same.
    """
    target = Path(path)
    text = to_toml(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp_file:
            temp_file.write(text)
        _check_round_trip(config, Path(temp_name))
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target
