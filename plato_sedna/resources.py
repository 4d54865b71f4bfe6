"""Sedna Dataset/Model resources a running worker can see.

In ``plato-sedna run`` the manifests' path reaches each worker in the ``[sedna]``
table (``manifests``); in a cluster the Kubernetes API will be the source.
Without either, there is no resource to read and callers fall back to the env.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from plato_sedna import runtime_config


@cache
def _job():
    manifests = runtime_config.sedna("manifests")
    if not manifests:
        return None
    from plato_sedna.local.manifests import load_job

    return load_job(Path(manifests), runtime_config.sedna("job_name"))


def aggregation_model():
    """The job's aggregation Model resource, or None when no source is available."""
    job = _job()
    return job.model if job is not None else None
