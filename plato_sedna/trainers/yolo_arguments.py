"""Ultralytics train/val arguments from a Plato config, so Sedna's hyperparameter env applies.

From the config: ``trainer.epochs`` -> ``epochs``; ``trainer.batch_size`` -> ``batch`` (and
``nbs``, so a small shard steps every batch instead of accumulating to 64);
``trainer.optimizer`` -> ``optimizer`` (else ``auto``); ``[parameters.optimizer]`` ``lr``,
``momentum``, ``weight_decay`` -> ``lr0``, ``momentum``, ``weight_decay``; the
dataset's ``image_size`` -> ``imgsz`` (else 640). ``[parameters.ultralytics]`` sets any
other ultralytics argument, and wins. Always: no plots, no AMP check (it downloads a
model), in-process data loading unless ``workers`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plato_sedna.errors import ConfigError

DEFAULT_IMAGE_SIZE = 640
OPTIMIZERS = ("SGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSprop", "auto")
OPTIMIZER_KEYS = {"lr": "lr0", "momentum": "momentum", "weight_decay": "weight_decay"}
# Set by the trainer itself: a table naming them would break the round.
RESERVED = ("data", "model", "project", "name", "exist_ok", "resume", "mode")
TABLE = "[parameters.ultralytics]"


def optimizer_name(name: Any) -> str:
    """The ultralytics optimizer ``trainer.optimizer`` names (any case; None: ``auto``)."""
    if name is None:
        return "auto"
    by_lower = {choice.lower(): choice for choice in OPTIMIZERS}
    chosen = by_lower.get(str(name).lower())
    if chosen is None:
        raise ConfigError(
            f"trainer.optimizer = {name!r} is not an ultralytics optimizer; use one of "
            f"{', '.join(OPTIMIZERS)}"
        )
    return chosen


def checked_table(table: Mapping[str, Any] | None) -> dict[str, Any]:
    """``[parameters.ultralytics]`` as a dict, every key an ultralytics argument the trainer leaves free."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    table = dict(table or {})
    for key in table:
        if key in RESERVED:
            raise ConfigError(
                f"{TABLE} {key} is set by the yolov5 trainer for each round; remove it"
            )
        if key not in DEFAULT_CFG_DICT:
            raise ConfigError(
                f"{TABLE} {key} is not an ultralytics argument; see "
                "https://docs.ultralytics.com/usage/cfg/ for the train and val arguments"
            )
    return table


def device_argument(device: Any) -> str:
    """Plato's device (``cpu``, ``cuda:1``, ``mps``) as ultralytics names it (``cpu``, ``1``, ``mps``)."""
    text = str(device)
    if text.startswith("cuda"):
        return text.partition(":")[2] or "0"
    return text


def common_arguments(
    config: Mapping[str, Any],
    image_size: int | None,
    device: Any,
    run_dir: Path,
) -> dict[str, Any]:
    """What training and evaluation share: image size, batch, device, quiet, files in ``run_dir``
    (``[parameters.ultralytics]`` is laid over these by the two functions below)."""
    return {
        "imgsz": int(image_size or DEFAULT_IMAGE_SIZE),
        "batch": int(config["batch_size"]),
        "device": device_argument(device),
        "workers": 0,
        "plots": False,
        "verbose": False,
        "project": str(run_dir.parent),
        "name": run_dir.name,
        "exist_ok": True,
    }


def train_arguments(
    config: Mapping[str, Any],
    optimizer: Mapping[str, Any] | None,
    common: Mapping[str, Any],
    table: Mapping[str, Any],
    data_yaml: Path,
) -> dict[str, Any]:
    """Ultralytics train arguments for one round (``config`` is Plato's ``trainer`` section)."""
    arguments = {
        **common,
        "data": str(data_yaml),
        "epochs": int(config["epochs"]),
        "nbs": common["batch"],
        "amp": False,
        "val": False,
        "optimizer": optimizer_name(config.get("optimizer")),
    }
    for plato_key, ultralytics_key in OPTIMIZER_KEYS.items():
        if optimizer and optimizer.get(plato_key) is not None:
            arguments[ultralytics_key] = float(optimizer[plato_key])
    return {**arguments, **table}


def val_arguments(
    common: Mapping[str, Any], table: Mapping[str, Any], data_yaml: Path
) -> dict[str, Any]:
    """Ultralytics val arguments over the split ``val`` of ``data_yaml`` (train-only keys are ignored)."""
    return {**common, **table, "data": str(data_yaml), "split": "val"}
