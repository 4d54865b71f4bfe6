"""``plato-sedna render --seed-model``: an initial model at an s3 Model url before the job is applied.

Sedna's GlobalManager gives the aggregator and every trainer an init container, its
storage initializer (``scripts/storage-initializer/download.py``), that downloads the
Model's url into ``/downloads`` before the worker starts. For an ``s3://`` url it lists
the objects under the url's key and fails with ``Failed to fetch files. The path ...
does not exist`` when there are none: a job publishing to a Model url nothing has been
published to yet never starts. Seeding publishes the untrained model (round 0, with
``metrics.json`` saying so) at the url, in the Model's format, so the initializer finds
it; the aggregator overwrites it after its first round. A hostPath url needs no seed
(the GM mounts it; nothing is downloaded).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plato_sedna.errors import ConfigError

SEEDED_BY = "plato-sedna render --seed-model"


def needs_seed(model_url: str) -> bool:
    """Whether Sedna's storage initializer downloads ``model_url`` (s3, http(s)) before a worker starts."""
    return model_url.split("://", 1)[0].lower() in ("s3", "http", "https") and "://" in model_url


def seed_settings(config: Mapping[str, Any], architecture: str | None):
    """The settings of the model the job's aggregator builds, from the config and ``--architecture``."""
    from plato_sedna.models.settings import ModelSettings, resolve_settings

    trainer = config.get("trainer") if isinstance(config.get("trainer"), Mapping) else {}
    parameters = config.get("parameters") if isinstance(config.get("parameters"), Mapping) else {}
    model_parameters = dict(parameters.get("model") or {}) if isinstance(parameters.get("model"), Mapping) else {}
    model_name = trainer.get("model_name")
    if model_name in (None, "sednaModelResource"):
        annotations = {"plato.sedna.io/model-name": architecture} if architecture else None
        return resolve_settings(model_parameters, annotations)
    num_classes = model_parameters.pop("num_classes", None)
    return ModelSettings(architecture=str(model_name), num_classes=num_classes, arguments=model_parameters)


def seed(
    model_url: str,
    config: Mapping[str, Any],
    *,
    architecture: str | None = None,
    model_format: str | None = None,
    storage=None,
) -> str:
    """Publish the job's untrained model at ``model_url`` as round 0; the model's URL.

    ``storage`` defaults to one with the S3 settings of this shell's ``S3_ENDPOINT_URL``,
    ``ACCESS_KEY_ID`` and ``SECRET_ACCESS_KEY`` (Sedna's names).

    Raises
    ------
    ConfigError
        When the model cannot be built or published; the message names the url and the fix.
    """
    from plato_sedna.errors import PlatoSednaError
    from plato_sedna.models import formats
    from plato_sedna.models.architectures import build, kind_of
    from plato_sedna.models.publish import ModelPublisher, PublishSettings

    try:
        settings = seed_settings(config, architecture)
        model = build(settings)
        requested = model_format or settings.format or formats.format_of_url(model_url)
        fmt = formats.canonical_format(requested, model, source="--model-format / the Model url")
        input_shape = settings.input_shape or formats.default_input_shape(settings.architecture, kind_of(settings))
        with tempfile.TemporaryDirectory(prefix="plato-sedna-seed-") as staging:
            own_storage = storage is None
            storage = storage or _storage(Path(staging) / "cache")
            try:
                publisher = ModelPublisher(
                    model_url, storage, Path(staging) / "staged", fmt,
                    PublishSettings(keep_versions=0), input_shape=input_shape,
                )
                metrics = {"rounds": 0, "seeded_by": SEEDED_BY, "note": "the untrained model; no round has run yet"}
                return publisher.publish(model, metrics, 0, final=True)
            finally:
                if own_storage:
                    storage.close()
    except (PlatoSednaError, OSError, ImportError) as error:
        raise ConfigError(
            f"--seed-model: could not publish an initial model at {model_url}: {error}. Set S3_ENDPOINT_URL, "
            "ACCESS_KEY_ID and SECRET_ACCESS_KEY for the bucket (as in the Model's credential Secret), or put any "
            "object at the url yourself (e.g. aws s3 cp model.pth URL) before kubectl apply"
        ) from error


def _storage(cache_dir: Path):
    from plato_sedna.context import SednaContext
    from plato_sedna.storage import Storage

    return Storage.from_context(SednaContext.from_env(os.environ), cache_dir)
