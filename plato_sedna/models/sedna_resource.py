"""``trainer.model_name = "sednaModelResource"``: the model a Sedna Model resource describes.

The architecture and its settings come from ``[parameters.model]``, else the
Model's ``plato.sedna.io/*`` annotations, else its seed-proposal spec fields (see
:mod:`plato_sedna.models.settings`); other ``[parameters.model]`` keys go to the
architecture. Pretrained weights come from ``PRETRAINED_MODEL_URL`` (or the
``pretrained`` setting) through the storage layer, so local paths, ``s3://`` and
``http(s)://`` all work.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from plato_sedna import resources, runtime_config
from plato_sedna.errors import ResourceError
from plato_sedna.models.architectures import build, kind_of, takes_num_classes
from plato_sedna.models.settings import (
    ANNOTATION_PREFIX,
    ModelSettings,
    resolve_settings,
)
from plato_sedna.models.weights import load_pretrained, pretrained_class_count

LOGGER = logging.getLogger(__name__)


def model_settings(model_parameters: Mapping[str, Any]) -> ModelSettings:
    """The settings of this job's model, from the config and the Model (and pod Dataset) resources."""
    model = resources.aggregation_model()
    settings = resolve_settings(
        model_parameters,
        model.annotations if model is not None else None,
        model.extra if model is not None else None,  # the seed proposal's spec fields
        model_ref=f"{model.namespace}/{model.name}" if model is not None else None,
        dataset_annotations=None if _num_classes_given(model_parameters, model) else _dataset_facts(),
    )
    return with_data_class_count(settings)


def with_data_class_count(settings: ModelSettings) -> ModelSettings:
    """``settings`` with the data's class count when nothing states one and the architecture takes it.

    The last source of ``num_classes`` (see :mod:`plato_sedna.models.class_counts`);
    when the count cannot be known here the architecture keeps its default.
    """
    if settings.num_classes is not None or not takes_num_classes(settings):
        return settings
    from plato_sedna.models.class_counts import data_class_count

    found = data_class_count()
    if found is None:
        return settings
    LOGGER.info(
        "sednaModelResource: %d output classes, from %s (no config, Model or Dataset "
        "annotation states num_classes)",
        found.count,
        found.source,
    )
    return replace(
        settings,
        num_classes=found.count,
        sources=MappingProxyType({**settings.sources, "num_classes": found.source}),
    )


def _num_classes_given(model_parameters: Mapping[str, Any], model) -> bool:
    """Whether the config or the Model says num_classes (then no Dataset needs reading)."""
    if model_parameters.get("num_classes") is not None:
        return True
    return model is not None and (
        model.annotations.get(f"{ANNOTATION_PREFIX}num-classes") is not None or "num_classes" in model.extra
    )


def _dataset_facts() -> dict[str, str] | None:
    """``num-classes`` as a Dataset says it: the pod's own, else (the aggregator) the job's first.

    From the Dataset's annotation or, with the extended CRD, its ``num_classes`` spec field.
    """
    pod_dataset = resources.pod_dataset()
    datasets = (pod_dataset,) if pod_dataset is not None else resources.job_datasets()
    key = f"{ANNOTATION_PREFIX}num-classes"
    for dataset in datasets:
        value = dataset.annotations.get(key) or dataset.extra.get("num_classes")
        if value is not None:
            return {key: str(value)}
    return None


def pretrained_url(
    settings: ModelSettings, kind: str, pretrained_model_url: str | None, model_url: str | None
) -> str | None:
    """The URL to read pretrained weights from, or None.

    ``pretrained`` unset: ``PRETRAINED_MODEL_URL`` when set; False: none; a URL: it;
    True: ``PRETRAINED_MODEL_URL``, else the Model's own url (a Hugging Face id
    then brings its own weights).
    """
    chosen = settings.pretrained
    if chosen is None:
        return pretrained_model_url
    if chosen is False:
        return None
    if isinstance(chosen, str):
        return chosen
    if pretrained_model_url or kind == "huggingface":
        return pretrained_model_url
    if not model_url:
        raise ResourceError(
            f"{settings.sources.get('pretrained')} asks for pretrained weights, but neither "
            "PRETRAINED_MODEL_URL (the job's spec.pretrainedModel) nor MODEL_URL is set"
        )
    return model_url


def build_model(settings: ModelSettings, url: str | None, storage=None):
    """The architecture ``settings`` names, with the weights at ``url`` (fetched through ``storage``)."""
    from plato_sedna.storage import display_url

    kind = kind_of(settings)
    local = None
    if url:
        if storage is None:
            from plato_sedna.worker_storage import worker_storage

            storage = worker_storage()
        local = storage.to_local_path(url)
    if kind == "ultralytics" and (settings.model_config or settings.architecture).lower().endswith(
        ".pt"
    ):
        return build(
            settings, checkpoint=local
        )  # the checkpoint is the architecture and its weights
    if kind == "huggingface" and local is not None and (local / "config.json").is_file():
        # A save_pretrained folder is the architecture and its weights: a Hub id names
        # what it stands for, and needs no network then.
        return build(replace(settings, model_config=str(local), pretrained=True))
    model = build(settings)
    if local is not None:
        if settings.num_classes is None and takes_num_classes(settings):
            model = _with_pretrained_classes(model, settings, local, kind, display_url(url))
        model = load_pretrained(model, local, kind, display_url(url))
    return model


def _with_pretrained_classes(model, settings: ModelSettings, local, kind: str, shown_url: str):
    """With no class count stated or known from the data, the pretrained head's count is kept."""
    found = pretrained_class_count(model, local, kind)
    if found is None:
        return model
    LOGGER.info(
        "sednaModelResource: %d output classes, as the pretrained model %s has (nothing states "
        "num_classes)",
        found,
        shown_url,
    )
    return build(replace(settings, num_classes=found))


@contextlib.contextmanager
def _seeded(seed: Any):
    """With ``server.random_seed``, the model starts from the same weights in every run (the
    aggregator's is the job's initial global model); torch's own generator is left as it was."""
    if seed is None or isinstance(seed, bool) or not isinstance(seed, int):
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class ModelFactory:
    """Plato model factory for ``sednaModelResource`` (``registered_factories``)."""

    @staticmethod
    def get(model_name: str | None = None, **model_parameters):
        settings = model_settings(model_parameters)
        url = pretrained_url(
            settings,
            kind_of(settings),
            runtime_config.sedna("pretrained_model_url"),
            runtime_config.sedna("model_url"),
        )
        from plato_sedna.storage import display_url

        LOGGER.info(
            "sednaModelResource: %s (%s)%s",
            settings.architecture,
            settings.sources.get("architecture"),
            f", pretrained weights from {display_url(url)}" if url else "",
        )
        with _seeded(runtime_config.setting("server", "random_seed")):
            model = build_model(settings, url)
        if runtime_config.sedna("role") == "aggregator":
            from plato_sedna.models import global_model

            # A format the model cannot be published in fails the job now, not after round 1.
            global_model.check_at_start(runtime_config.sedna("model_url"), model)
        return model
