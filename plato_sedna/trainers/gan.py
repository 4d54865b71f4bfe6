"""``trainer.type = "sedna_gan"``: Plato's GAN trainer, with FID's InceptionV3 weights from a URL, loaded when first tested.

Plato 1.41's ``gan`` trainer builds torchvision's ImageNet InceptionV3 when it is
constructed, downloading its weights from torchvision's site into the home folder.
This trainer trains exactly as Plato's (its optimizer, training step and logging
strategies) and computes the same Frechet Inception Distance, but takes the
InceptionV3 weights from ``trainer.fid_weights_url`` (a path, ``s3://`` or
``http(s)://``, through the storage layer and its cache; by default torchvision's
own file) only when a test first needs them: a trainer that never tests never
fetches them, and a cluster without internet access names a copy it can reach.
``sednaDataResource`` images are in [0, 1]; the generator's Tanh makes [-1, 1], so
real images are mapped to [-1, 1] before the discriminator or the FID sees them.
"""

from __future__ import annotations

import logging

from plato.trainers import gan
from plato.trainers.composable import ComposableTrainer

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError, ResourceError

LOGGER = logging.getLogger(__name__)

# torchvision's Inception_V3_Weights.IMAGENET1K_V1, the weights Plato's trainer downloads.
DEFAULT_FID_WEIGHTS_URL = "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"


def inception_feature_extractor(weights_path):
    """InceptionV3 with the weights in ``weights_path``, its classifier removed: 2048 features an image."""
    import torch
    import torchvision
    from torch import nn

    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, ValueError) as error:
        raise ResourceError(
            f"{weights_path} holds no InceptionV3 weights ({type(error).__name__}); point "
            "trainer.fid_weights_url at torchvision's inception_v3_google-*.pth"
        ) from None
    model.fc = nn.Identity()
    model.AuxLogits = None
    return model.eval()


def to_generator_range(images):
    """Images in [0, 1] (as ``sednaDataResource`` loads them) in the generator's [-1, 1]."""
    return images * 2.0 - 1.0


class _GeneratorRangeImages:
    """A dataset whose images are mapped to [-1, 1]."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        image, target = self.dataset[index]
        return to_generator_range(image), target


class GeneratorRangeTrainingStep(gan.GANTrainingStepStrategy):
    """Plato's GAN step on real images mapped to the generator's range."""

    def training_step(self, model, optimizer, examples, labels, loss_criterion, context):
        return super().training_step(model, optimizer, to_generator_range(examples), labels, loss_criterion, context)


class FidTestingStrategy(gan.GANTestingStrategy):
    """Plato's FID test, with InceptionV3 loaded from ``weights_url`` on first use."""

    def __init__(self, weights_url: str, storage=None) -> None:  # no download at construction (Plato's does one)
        self.weights_url = weights_url
        self.storage = storage  # what fetches the weights (default: the worker's storage)
        self._inception = None

    @property
    def inception_model(self):
        if self._inception is None:
            from plato_sedna.worker_storage import worker_storage

            LOGGER.info("FID: InceptionV3 weights from %s", self.weights_url)
            path = (self.storage or worker_storage()).to_local_path(self.weights_url, unpack=False)
            self._inception = inception_feature_extractor(path)
        return self._inception

    def test_model(self, model, config, testset, sampler, context):
        return super().test_model(model, config, _GeneratorRangeImages(testset), sampler, context)


class Trainer(gan.Trainer):
    """Plato's GAN trainer (``trainer.type = "gan"``) with :class:`FidTestingStrategy`."""

    def __init__(self, model=None, callbacks=None) -> None:
        weights_url = runtime_config.setting("trainer", "fid_weights_url", DEFAULT_FID_WEIGHTS_URL)
        ComposableTrainer.__init__(
            self,
            model=model,
            callbacks=[gan.GANLoggingCallback, *(callbacks or [])],
            optimizer_strategy=gan.GANOptimizerStrategy(),
            training_step_strategy=GeneratorRangeTrainingStep(),
            testing_strategy=FidTestingStrategy(weights_url),
        )
        if not (hasattr(self.model, "generator") and hasattr(self.model, "discriminator")):
            raise ConfigError(
                f"fedavg_gan trains a GAN, and the model ({type(self.model).__name__}) has no generator "
                "and discriminator; set [parameters.model] architecture = \"dcgan\" (3x64x64 images: "
                "data.image_size = 64, RGB) or the Model's plato.sedna.io/model-name annotation"
            )
        self.generator = self.model.generator
        self.discriminator = self.model.discriminator
