"""One-machine mode: run Sedna FederatedLearningJob manifests as local processes."""

from plato_sedna.local.manifests import JobSpec, load_job
from plato_sedna.local.runner import run_job

__all__ = ["JobSpec", "load_job", "run_job"]
