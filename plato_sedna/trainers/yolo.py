"""``trainer.type = "yolov5"``: federated object detection with ultralytics.

Each round trains the global model with ultralytics' own loaders, augmentation, loss
and optimizer for ``trainer.epochs`` epochs on the worker's images (the sampler's
pick of a YOLO-layout ``sednaDataResource``), and hands the EMA weights back to
Plato's algorithm, so FedAvg averages the detection model's state dict (the BN
``num_batches_tracked`` counters included; ultralytics does not use them). ``test()``
is ultralytics' detection validation: the round's accuracy is mAP50; mAP50-95,
precision and recall are logged and appended to ``<results>/detection_metrics.csv``.
The model is any ultralytics detection model ``sednaModelResource`` builds:
``yolov5n.yaml``/``yolov5s.yaml``, the newer ``yolov8n.yaml``/``yolo11n.yaml``, or a ``.pt``.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

from plato.trainers.composable import ComposableTrainer

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError
from plato_sedna.trainers import yolo_arguments, yolo_offline
from plato_sedna.trainers.yolo_data import check_detection_set, data_yaml_for
from plato_sedna.trainers.yolo_round import Detections, evaluate, train_round

LOGGER = logging.getLogger(__name__)
METRICS_FILE = "detection_metrics.csv"
METRICS_COLUMNS = (
    "evaluation",
    "round",
    "mAP50",
    "mAP50-95",
    "precision",
    "recall",
    "images",
)
# File names ultralytics.YOLO() rewrites to its own "u" assets and downloads (checks.check_yolov5u_filename).
ASSET_NAMES = re.compile(r"(yolov5[nsmlx]6?|yolov3(-tiny|-spp)?)\.pt")


def warn_on_asset_name(model_url: str | None) -> None:
    """A published ``yolov5n.pt`` would not load: ultralytics reads the name as its asset ``yolov5nu.pt``."""
    name = Path(str(model_url or "")).name
    if ASSET_NAMES.fullmatch(name):
        LOGGER.warning(
            "MODEL_URL names the model %s: ultralytics.YOLO() takes that name for its asset %s and "
            "tries to download it instead of loading this file; name it e.g. %s",
            name,
            name.replace(".pt", "u.pt"),
            name.replace(".pt", "-global.pt"),
        )


def check_detection_model(model) -> None:
    """Raise a ConfigError unless ``model`` is an ultralytics detection model."""
    task = None
    if type(model).__module__.startswith("ultralytics."):
        from ultralytics.nn.tasks import guess_model_task

        task = guess_model_task(model)
    if task != "detect":
        raise ConfigError(
            f"trainer.type = yolov5 trains ultralytics detection models, got {type(model).__name__}"
            f"{f' (task {task})' if task else ''}: set [parameters.model] architecture to a "
            'detection YAML such as "yolov5n.yaml" or a detection .pt, with '
            'trainer.model_name = "sednaModelResource"'
        )


def check_classes(model, names: list[str], role: str) -> None:
    """The model's outputs must be the dataset's classes (the head's shape depends on them)."""
    outputs = model.yaml.get("nc")
    if outputs != len(names):
        raise ConfigError(
            f"the detection model has {outputs} classes but the {role} data has {len(names)} "
            f"({', '.join(names)}): set [parameters.model] num_classes = {len(names)} "
            "(or the Model's or the Datasets' plato.sedna.io/num-classes annotation). Unstated, "
            "the count is read off the job's Datasets, where every worker can read them all"
        )


class Trainer(ComposableTrainer):
    """Plato trainer running ultralytics detection training and validation, one round per call."""

    def __init__(self, model=None, callbacks=None) -> None:
        base = Path(runtime_config.plato_path("base_path"))
        # Before the model build below imports ultralytics.
        yolo_offline.prepare(base / "ultralytics")
        super().__init__(model=model, callbacks=callbacks)
        check_detection_model(self.model)
        self.runs_dir = base / "yolo"
        self.table = yolo_arguments.checked_table(
            runtime_config.table("parameters", "ultralytics")
        )
        self.evaluations = 0
        warn_on_asset_name(runtime_config.sedna("model_url"))

    def _worker_dir(self) -> Path:
        return self.runs_dir / (
            f"client-{self.client_id}" if self.client_id else "server"
        )

    def _common(self, config: dict, dataset, folder: str) -> dict:
        return yolo_arguments.common_arguments(
            config,
            getattr(dataset, "image_size", None),
            self.device,
            self._worker_dir() / folder,
        )

    def _name_classes(self, names: list[str]) -> None:
        """Published checkpoints carry the class names ultralytics labels its predictions with."""
        self.model.names = dict(enumerate(names))

    def train_model(self, config, trainset, sampler, **kwargs) -> None:
        check_detection_set(trainset, "training")
        check_classes(self.model, trainset.classes, "training")
        self.trainset, self.sampler = trainset, sampler
        common = self._common(config, trainset, "train")
        data_yaml, _ = data_yaml_for(
            trainset, sampler, self._worker_dir() / "train-data", "train"
        )
        arguments = yolo_arguments.train_arguments(
            config,
            runtime_config.table("parameters", "optimizer"),
            common,
            self.table,
            data_yaml,
        )
        self.callback_handler.call_event("on_train_run_start", self, config)
        result = train_round(self.model, arguments)
        self.model.load_state_dict(result.state_dict)
        self._name_classes(trainset.classes)
        if result.train_loss is not None:
            self.run_history.update_metric("train_loss", result.train_loss)
        self.callback_handler.call_event("on_train_run_end", self, config)

    def test_model(self, config, testset, sampler=None, **kwargs) -> float:
        check_detection_set(testset, "test")
        check_classes(self.model, testset.classes, "test")
        data_yaml, images = data_yaml_for(
            testset, sampler, self._worker_dir() / "test-data", "test"
        )
        common = self._common(config, testset, "test")
        detections = evaluate(
            self.model, yolo_arguments.val_arguments(common, self.table, data_yaml)
        )
        self._name_classes(testset.classes)
        self.evaluations += 1
        self.accuracy = detections.map50
        LOGGER.info(
            "[%s] mAP50 %.4f, mAP50-95 %.4f, precision %.4f, recall %.4f on %d images",
            f"Client #{self.client_id}" if self.client_id else "Server",
            detections.map50,
            detections.map50_95,
            detections.precision,
            detections.recall,
            images,
        )
        self._record(detections, images)
        return detections.map50

    def _record(self, detections: Detections, images: int) -> None:
        """Append this evaluation to ``<results>/detection_metrics.csv`` (the demo plots it)."""
        path = Path(runtime_config.plato_path("result_path")) / METRICS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(METRICS_COLUMNS)
            writer.writerow(
                (
                    self.evaluations,
                    self.current_round or self.evaluations,
                    round(detections.map50, 6),
                    round(detections.map50_95, 6),
                    round(detections.precision, 6),
                    round(detections.recall, 6),
                    images,
                )
            )
