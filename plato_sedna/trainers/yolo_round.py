"""One federated round of ultralytics training, and one evaluation, on given weights.

Ultralytics' ``DetectionTrainer`` keeps its data loading, augmentation, loss, optimizer
and EMA; what changes for a round (see reference notes on ultralytics' ``train()``):
- it starts from the weights it is handed (the global model), never rebuilding the
  model from its YAML, which would drop them;
- no validation inside the round and no checkpoint files: the round's evaluation is
  Plato's ``test()`` (the aggregator's or the trainer's), and the weights go back
  through Plato's algorithm, not through ``best.pt``;
- the weights it returns are the EMA's, in fp32, as ultralytics itself would keep.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RoundResult:
    """What a round of training left: the EMA's state dict and the last epoch's mean loss."""

    state_dict: dict
    train_loss: float | None


@dataclass(frozen=True)
class Detections:
    """Detection metrics of one evaluation (boxes)."""

    map50: float
    map50_95: float
    precision: float
    recall: float


def _round_trainer_class():
    from ultralytics.models.yolo.detect import DetectionTrainer

    class RoundTrainer(DetectionTrainer):
        """A DetectionTrainer for one round: no validation, no checkpoints (see module docs)."""

        def validate(self):
            return {}, None

        def save_model(self):
            return False

        def final_eval(self):
            return None

    return RoundTrainer


def train_round(model, arguments: dict[str, Any]) -> RoundResult:
    """Train a copy of ``model`` with ultralytics for ``arguments["epochs"]`` epochs.

    ``arguments`` are ultralytics train arguments (``data``, ``epochs``, ``batch``,
    ``imgsz``, ``device``, ``project``, ``name``, ...); ``model`` is left untouched.
    """
    start = copy.deepcopy(model).float()
    trainer = _round_trainer_class()(
        overrides={"model": _model_name(model), **arguments}
    )
    trainer.model = start  # a module: ultralytics' setup_model keeps it as is
    trainer.train()
    state = {
        key: value.detach().cpu().clone()
        for key, value in trainer.ema.ema.state_dict().items()
    }
    losses = trainer.tloss
    loss = (
        float(sum(float(v) for v in losses.values()))
        if isinstance(losses, dict)
        else None
    )
    return RoundResult(state, loss)


def evaluate(model, arguments: dict[str, Any]) -> Detections:
    """Ultralytics' detection validation of a copy of ``model`` (it fuses what it validates)."""
    from ultralytics.models.yolo.detect import DetectionValidator

    validator = DetectionValidator(args={"mode": "val", **arguments})
    stats = validator(model=copy.deepcopy(model).float().eval())
    return Detections(
        map50=float(stats.get("metrics/mAP50(B)", 0.0)),
        map50_95=float(stats.get("metrics/mAP50-95(B)", 0.0)),
        precision=float(stats.get("metrics/precision(B)", 0.0)),
        recall=float(stats.get("metrics/recall(B)", 0.0)),
    )


def _model_name(model) -> str:
    """The YAML the model was built from (ultralytics wants a name; the module is what trains)."""
    yaml = getattr(model, "yaml", None)
    name = yaml.get("yaml_file") if isinstance(yaml, dict) else None
    return str(Path(name).name) if name else "yolov5n.yaml"
