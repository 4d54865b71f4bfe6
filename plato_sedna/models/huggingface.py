"""Hugging Face models: ``AutoModelFor<task>`` from a model id or a local ``save_pretrained`` folder.

A local folder never touches the network. A Hub id needs the Hub (or a filled
cache with ``HF_HUB_OFFLINE=1``): pods without internet should use a folder,
fetched through ``PRETRAINED_MODEL_URL`` or the architecture's own path.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from plato_sedna.errors import ResourceError
from plato_sedna.models.settings import ModelSettings

# task setting -> transformers Auto class
TASK_CLASSES: Mapping[str, str] = MappingProxyType(
    {
        "causal-lm": "AutoModelForCausalLM",
        "sequence-classification": "AutoModelForSequenceClassification",
        "token-classification": "AutoModelForTokenClassification",
        "masked-lm": "AutoModelForMaskedLM",
        "question-answering": "AutoModelForQuestionAnswering",
        "seq2seq-lm": "AutoModelForSeq2SeqLM",
        "image-classification": "AutoModelForImageClassification",
        "base": "AutoModel",
    }
)
DEFAULT_TASK = "causal-lm"  # as Plato's own huggingface model
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Files of a save_pretrained folder that are not the model's weights or config.
_SIDE_FILES = (
    "tokenizer*",
    "vocab*",
    "merges.txt",
    "special_tokens_map.json",
    "*.model",
    "preprocessor_config.json",
)


def is_folder(path: Path) -> bool:
    return (path / "config.json").is_file()


def build(settings: ModelSettings):
    """The model ``settings`` names; weights from the folder or id unless ``pretrained`` is False."""
    source = settings.model_config or settings.architecture
    folder = Path(source)
    local = folder.is_dir()
    if local and not is_folder(folder):
        raise ResourceError(f"{folder} is not a Hugging Face folder: it has no config.json")
    with_weights = settings.pretrained is not False and (
        settings.pretrained is True
        or (local and any((folder / name).is_file() for name in WEIGHT_FILES))
    )
    config = _config(source, settings)
    auto_class = _auto_class(settings.task, config)
    try:
        if with_weights:
            return auto_class.from_pretrained(source, config=config)
        return auto_class.from_config(config)
    except (OSError, ValueError) as error:
        raise ResourceError(
            f"cannot build the Hugging Face model {source!r} ({auto_class.__name__}): {error}"
        ) from None
    except RuntimeError:  # transformers: weights of other shapes (its report is logged above)
        raise ResourceError(
            f"the weights of the Hugging Face model {source!r} do not fit a {auto_class.__name__} "
            f"with num_classes = {settings.num_classes} ({settings.sources.get('num_classes')}): "
            "set num_classes to the number of labels the model was saved with (its config.json "
            "num_labels), or pretrained = false to start from random weights"
        ) from None


def load_folder(model, folder: Path):
    """A model of ``model``'s class with the weights of the ``save_pretrained`` folder ``folder``."""
    _quiet()
    try:
        return type(model).from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise ResourceError(f"cannot load the Hugging Face folder {folder}: {error}") from None


def save_folder(model, folder: Path) -> None:
    """``save_pretrained`` into ``folder`` (safetensors), with the source folder's tokenizer files.

    A model with LoRA adapters (peft) is saved with them merged, so the folder is a
    plain model that ``from_pretrained`` loads.
    """
    _quiet()
    if hasattr(model, "merge_and_unload"):
        import copy

        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(folder)
    source = Path(str(getattr(model, "name_or_path", "") or ""))
    if source.is_dir():
        for pattern in _SIDE_FILES:
            for side_file in source.glob(pattern):
                if side_file.is_file():
                    shutil.copy2(side_file, folder / side_file.name)


def _config(source: str, settings: ModelSettings):
    from transformers import AutoConfig

    _quiet()
    extra = {"num_labels": settings.num_classes} if settings.num_classes is not None else {}
    try:
        return AutoConfig.from_pretrained(source, **extra)
    except (OSError, ValueError) as error:
        raise ResourceError(
            f"cannot read the Hugging Face config of {source!r} ({settings.sources.get('architecture')}): "
            f"{error}. Without internet, give a local save_pretrained folder (or set "
            "HF_HUB_OFFLINE=1 with a filled cache)"
        ) from None


def _auto_class(task: str | None, config):
    import transformers

    if task is None:
        task = _task_from(config)
    if task not in TASK_CLASSES:
        raise ResourceError(f"Hugging Face task {task!r} is not one of {', '.join(TASK_CLASSES)}")
    return getattr(transformers, TASK_CLASSES[task])


def _task_from(config) -> str:
    """The task a folder's ``architectures`` (``BertForSequenceClassification``) names."""
    for architecture in getattr(config, "architectures", None) or []:
        for task, class_name in TASK_CLASSES.items():
            if class_name != "AutoModel" and architecture.endswith(
                class_name.removeprefix("AutoModel")
            ):
                return task
    return DEFAULT_TASK


def _quiet() -> None:
    from transformers.utils import logging

    logging.disable_progress_bar()
