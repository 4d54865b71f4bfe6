"""Errors a user can fix: the launchers print them in one line and exit non-zero."""


class PlatoSednaError(Exception):
    """Base of every error caused by input (config, env, manifests); never a bug."""

    exit_code = 2


class ConfigError(PlatoSednaError):
    """A Plato config file or a pod environment variable is invalid."""


class ResourceError(PlatoSednaError):
    """A Sedna resource (Dataset, Model, FederatedLearningJob) is missing or invalid."""


class JobFailed(PlatoSednaError):
    """A federated job started but did not complete."""

    exit_code = 1
