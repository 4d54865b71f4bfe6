"""Checks of one Plato config for ``plato-sedna validate``: loads (with the files it
includes), resolves as aggregator and as trainer, and names only components Plato knows.

The registry names (datasource, model, trainer, algorithm, client) are checked by
``preflight.registry_problems``, as a pod checks them at start; the optimizer, which
Plato looks up only when training starts, is checked here against Plato's optimizers
(or ultralytics' for the yolov5 trainer).
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import logging
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from plato_sedna.errors import PlatoSednaError

ERROR, WARNING = "error", "warning"
# Plato 1.41's optimizers.get names, should its source not be readable
_PLATO_OPTIMIZERS = (
    "Adam", "Adadelta", "Adagrad", "AdaHessian", "AdamW", "SparseAdam", "Adamax", "ASGD",
    "LBFGS", "NAdam", "RAdam", "RMSprop", "Rprop", "SGD", "LARS",
)
ULTRALYTICS_TRAINERS = ("yolov5", "yolo")


@cache
def plato_optimizers() -> tuple[str, ...]:
    """The names ``plato.trainers.optimizers.get`` accepts (a dict inside the function)."""
    try:
        from plato.trainers import optimizers

        tree = ast.parse(inspect.getsource(optimizers.get))
    except (ImportError, OSError, TypeError, SyntaxError):
        return _PLATO_OPTIMIZERS
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            names = [key.value for key in node.value.keys if isinstance(key, ast.Constant) and isinstance(key.value, str)]
            if "SGD" in names:
                return tuple(names)
    return _PLATO_OPTIMIZERS


def optimizer_problem(optimizer: Any, trainer_type: Any, where: str = "trainer.optimizer") -> str | None:
    """Why ``optimizer`` is not one the trainer can build, naming the known ones; None when it is."""
    if optimizer is None:
        return None
    if trainer_type in ULTRALYTICS_TRAINERS:
        from plato_sedna.trainers.yolo_arguments import OPTIMIZERS

        if str(optimizer).lower() in {name.lower() for name in OPTIMIZERS}:
            return None
        return f"{where} = {optimizer!r} is not an ultralytics optimizer; known: {', '.join(OPTIMIZERS)}"
    known = plato_optimizers()
    if optimizer in known:
        return None
    return f"{where} = {optimizer!r} is not an optimizer Plato knows; known: {', '.join(sorted(known))}"


def _getter(config: Mapping[str, Any]):
    def setting(section: str, key: str, default: Any = None) -> Any:
        table = config.get(section)
        value = table.get(key) if isinstance(table, Mapping) else None
        return default if value is None else value

    return setting


def _role_env(role: str, trainer_count: int) -> dict[str, str]:
    if role == "aggregator":
        return {"AGG_BIND_PORT": "7363", "PARTICIPANTS_COUNT": str(trainer_count), "MODEL_URL": "model.pth"}
    return {"AGG_IP": "aggregator", "PARTICIPANTS_COUNT": str(trainer_count), "DATASET_NAME": "dataset"}


def config_messages(
    path: Path, trainer_count: int = 2, role_env: Mapping[str, Mapping[str, str]] | None = None
) -> list[tuple[str, str, str]]:
    """``(where, message, severity)`` for what keeps the config at ``path`` from running.

    ``role_env`` holds, by role, the template env a pod of that role adds (the
    hyperparameter env wins over the file, as in the pods).
    """
    from plato_sedna.config import load_config_file, resolve_config
    from plato_sedna.context import SednaContext
    from plato_sedna.preflight import registry_problems

    try:
        raw = load_config_file(path)
    except PlatoSednaError as error:
        return [("", str(error), ERROR)]
    trainer_count = trainer_count or _total_clients(raw)
    roles_by_message: dict[str, list[str]] = {}
    warnings_by_message: dict[str, list[str]] = {}
    for role in ("aggregator", "trainer"):
        env = {**dict((role_env or {}).get(role, {})), **_role_env(role, trainer_count)}
        try:
            with _logged_warnings() as logged:
                resolved = resolve_config(raw, SednaContext.from_env(env))
            for message in logged:
                warnings_by_message.setdefault(message, []).append(role)
        except PlatoSednaError as error:
            roles_by_message.setdefault(str(error), []).append(role)
            continue
        except Exception as error:  # noqa: BLE001 - a config Plato's loader reads oddly is a problem line
            roles_by_message.setdefault(f"cannot be resolved ({type(error).__name__}: {error})", []).append(role)
            continue
        setting = _getter(resolved)
        messages = registry_problems(role, setting)
        if role == "trainer":
            messages.append(optimizer_problem(setting("trainer", "optimizer"), setting("trainer", "type", "basic")))
        for message in messages:
            if message:
                roles_by_message.setdefault(_with_hint(message, setting), []).append(role)
    # one line per problem, naming the roles it stops
    return [(f"as {' and '.join(roles)}", message, ERROR) for message, roles in roles_by_message.items()] + [
        (f"as {' and '.join(roles)}", message, WARNING) for message, roles in warnings_by_message.items()
    ]


def _total_clients(raw: Mapping[str, Any]) -> int:
    total = raw.get("clients", {}).get("total_clients") if isinstance(raw.get("clients"), Mapping) else None
    return total if isinstance(total, int) and not isinstance(total, bool) and total > 0 else 2


def _with_hint(message: str, setting) -> str:
    """Registry messages about names of Plato's main branch, with what Plato 1.41 calls them."""
    if message.startswith("data.datasource = 'Torchvision'"):
        dataset = setting("data", "dataset_name")
        instead = f'datasource = "{dataset}"' if dataset else "the dataset's own datasource (MNIST, CIFAR10, ...)"
        return f"{message} (Torchvision is a datasource of Plato's main branch, after 1.41; with 1.41 use {instead})"
    return message


@contextlib.contextmanager
def _logged_warnings() -> Iterator[list[str]]:
    """The warnings plato_sedna logs meanwhile, collected instead of printed."""
    collected: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            collected.append(record.getMessage())

    logger = logging.getLogger("plato_sedna")
    handler = Collect(logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield collected
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
