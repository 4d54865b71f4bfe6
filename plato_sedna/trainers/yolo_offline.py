"""Ultralytics kept off the network: set before its first import, and its fonts placed locally.

``YOLO_OFFLINE`` stops the connectivity probe, telemetry and update checks; but every
``train()``/``val()`` still checks for ``Arial.ttf`` in ultralytics' config folder and
downloads it when missing, so a font bundled with matplotlib is copied there under
that name. Integrations (MLflow, Comet, ...) are switched off in the settings of a
config folder this module chose; a user's own ``YOLO_CONFIG_DIR`` is left as it is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

OFFLINE_ENV = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "False",
    "YOLO_VERBOSE": "False",
}
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
INTEGRATIONS = (
    "clearml",
    "comet",
    "dvc",
    "mlflow",
    "raytune",
    "tensorboard",
    "wandb",
    "sync",
)


def prepare(config_dir: Path | None = None) -> Path:
    """Make ultralytics offline and quiet; returns its config folder (fonts in place).

    Parameters
    ----------
    config_dir : Path | None
        ``YOLO_CONFIG_DIR`` to use when the environment sets none (e.g. under the
        worker's base path); only effective before ultralytics is first imported.
    """
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    own_folder = config_dir is not None and "YOLO_CONFIG_DIR" not in os.environ
    if own_folder:
        config_dir.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    from ultralytics import utils

    _place_fonts(Path(utils.USER_CONFIG_DIR))
    if own_folder and any(utils.SETTINGS.get(key) for key in INTEGRATIONS):
        utils.SETTINGS.update({key: False for key in INTEGRATIONS})
    return Path(utils.USER_CONFIG_DIR)


def _place_fonts(folder: Path) -> None:
    import matplotlib

    bundled = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    folder.mkdir(parents=True, exist_ok=True)
    for name in FONT_NAMES:
        target = folder / name
        if not target.exists():
            partial = target.with_name(f".{name}.{os.getpid()}")
            shutil.copyfile(bundled, partial)
            os.replace(partial, target)  # concurrent workers never see half a font
