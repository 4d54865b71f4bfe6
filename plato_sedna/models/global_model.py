"""The aggregator's publisher: MODEL_URL, the Model's format and ``[server.publish]``, read once.

Inside a Sedna pod an ``s3://`` Model url arrives as ``MODEL_URL=/downloads/...``,
a read-only copy; the aggregator then publishes to the Model's own url.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plato_sedna import resources, runtime_config
from plato_sedna.errors import ResourceError
from plato_sedna.models import formats
from plato_sedna.models.publish import ModelPublisher, PublishSettings

SEDNA_DOWNLOADS = "/downloads/"  # where Sedna's storage initializer puts remote urls, read-only
PUBLISHED_FOLDER = "published"  # under Plato's model_path: each round's files, kept locally

_publishers: dict[str, ModelPublisher] = {}


def check_at_start(model_url: str | None, model) -> None:
    """The aggregator, once its model is built: a format it cannot publish in fails the job now.

    Raises
    ------
    ResourceError
        Naming the format, where it was set and the formats the model can be published in.
    """
    if model_url and model_url not in _publishers:
        _publishers[model_url] = aggregator_publisher(model_url, model)


def publish_global_model(
    model_url: str, model, metrics: Mapping[str, Any], *, samples: int, final: bool
) -> str | None:
    """Publish the global ``model`` after a round (or at the end); its URL, or None when not due."""
    if model_url not in _publishers:
        _publishers[model_url] = aggregator_publisher(model_url, model)
    round_number = int(metrics.get("rounds") or 0)
    return _publishers[model_url].publish(
        model, {**metrics, "samples": samples}, round_number, final=final
    )


def publish_url(model_url: str, model_resource) -> str:
    """Where to publish: the Model's remote url when MODEL_URL is Sedna's read-only download of it."""
    from plato_sedna.storage import is_remote

    if (
        model_url.startswith(SEDNA_DOWNLOADS)
        and model_resource is not None
        and is_remote(model_resource.url)
    ):
        return model_resource.url
    return model_url


def aggregator_publisher(model_url: str, model) -> ModelPublisher:
    from plato.config import Config

    from plato_sedna.worker_storage import worker_storage

    model_resource = resources.aggregation_model()
    settings = _settings()
    target = publish_url(model_url, model_resource)
    requested, source = _requested_format(settings, model_resource, target)
    fmt = formats.canonical_format(requested, model, source=source)
    input_shape = _input_shape(settings)
    if fmt in formats.NEEDS_INPUT_SHAPE and input_shape is None:
        raise ResourceError(
            f"model format {requested!r} ({source}) is an ONNX export, which needs one sample's "
            "shape: set [parameters.model] input_shape (e.g. [3, 32, 32]) or the Model annotation "
            "plato.sedna.io/input-shape"
        )
    formats.warn_if_not_what_it_says(fmt, source, target)
    return ModelPublisher(
        target,
        worker_storage(),
        Path(Config.params["model_path"]) / PUBLISHED_FOLDER,
        fmt,
        PublishSettings.from_table(runtime_config.table("server", "publish")),
        input_shape=input_shape,
    )


def _settings():
    """The model's settings when the job uses sednaModelResource, else None."""
    if runtime_config.setting("trainer", "model_name") != "sednaModelResource":
        return None
    from plato_sedna.models.sedna_resource import model_settings

    try:
        return model_settings(runtime_config.table("parameters", "model") or {})
    except ResourceError:
        return None


def _requested_format(settings, model_resource, target: str) -> tuple[str | None, str]:
    if settings is not None and settings.format:
        return settings.format, settings.sources["format"]
    if model_resource is not None and model_resource.format:
        return (
            model_resource.format,
            f"Model {model_resource.namespace}/{model_resource.name} spec.format",
        )
    return formats.format_of_url(target), f"the suffix of MODEL_URL {target}"


def _input_shape(settings) -> tuple[int, ...] | None:
    """One sample's shape for onnx: the settings', else the architecture's default."""
    if settings is None:
        model_name = runtime_config.setting("trainer", "model_name")
        return formats.default_input_shape(model_name, "plato") if model_name else None
    if settings.input_shape:
        return settings.input_shape
    from plato_sedna.models.architectures import kind_of

    return formats.default_input_shape(settings.architecture, kind_of(settings))


def format_problem(model_url: str | None) -> str | None:
    """Why the aggregator could not publish to ``model_url`` in the format asked, or None.

    Builds no model: the kind is read off the architecture's name (for the checks at
    start, :func:`plato_sedna.preflight.check_model_format`).
    """
    if not model_url:
        return None
    model_resource = resources.aggregation_model()
    settings = _settings()
    target = publish_url(model_url, model_resource)
    requested, source = _requested_format(settings, model_resource, target)
    if settings is not None:
        return formats.check_publishable(
            requested,
            settings.model_config or settings.architecture,
            framework=settings.framework,
            input_shape=_input_shape(settings),
            source=source,
        )
    model_name = runtime_config.setting("trainer", "model_name")
    return formats.check_publishable(
        requested, model_name, input_shape=_input_shape(None), source=source
    )
