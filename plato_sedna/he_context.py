"""The job's one CKKS context for ``fedavg_he``: written once, mounted into every pod, read at start.

Plato 1.41's homomorphic FedAvg encrypts under the TenSEAL context in
``.ckks_context/context`` of each process's working directory and writes a new one
where there is none, so separate pods would each use their own keys. The plugin
gives every worker the same context instead: a file (a mounted Secret) named by
``PLATO_SEDNA_HE_CONTEXT_FILE``, which replaces Plato's lookup; a pod never makes
keys of its own. As in Plato, the context holds the secret key and every party
has it: the aggregator decrypts the average to test and publish the model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from plato_sedna.context import HE_ALGORITHM as ALGORITHM
from plato_sedna.context import HE_CONTEXT_FILE_ENV
from plato_sedna.errors import ConfigError

LOGGER = logging.getLogger(__name__)

SECRET_KEY = "context"  # the key of the Secret, and the file name in its mount
# Plato's own parameters (plato/utils/homo_enc.py): what its processors were tuned for.
POLY_MODULUS_DEGREE = 8192
COEFF_MOD_BIT_SIZES = (60, 40, 40, 60)
GLOBAL_SCALE = 2**40


def new_context_bytes() -> bytes:
    """A fresh CKKS context with Plato's parameters, serialised with its secret key."""
    import tenseal

    context = tenseal.context(
        tenseal.SCHEME_TYPE.CKKS,
        poly_modulus_degree=POLY_MODULUS_DEGREE,
        coeff_mod_bit_sizes=list(COEFF_MOD_BIT_SIZES),
    )
    context.global_scale = GLOBAL_SCALE
    return context.serialize(save_secret_key=True)


def write_context(path: Path) -> Path:
    """Write a fresh context to ``path`` (mode 600, never half-written); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(new_context_bytes())
    partial.replace(path)
    return path


def read_context(path: str | None) -> bytes:
    """The serialised context in ``path``, checked to load and to hold the secret key.

    Raises
    ------
    ConfigError
        No path, an unreadable file, or one that is not a TenSEAL context with its secret key.
    """
    if not path:
        raise ConfigError(
            f"{ALGORITHM} needs the job's CKKS context in every worker, and "
            f"{HE_CONTEXT_FILE_ENV} is not set; make one with `plato-sedna he-context he.ctx`, "
            f"store it as a Secret (kubectl create secret generic NAME --from-file={SECRET_KEY}=he.ctx) "
            f"and mount it in every pod template (`plato-sedna render --he-secret NAME` does both mounts)"
        )
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(
            f"{HE_CONTEXT_FILE_ENV}={path!r} cannot be read ({error.strerror or error}); "
            "mount the job's CKKS context Secret there or fix the path"
        ) from None
    import tenseal

    try:
        context = tenseal.context_from(data)
    except (ValueError, RuntimeError):  # TenSEAL's C++ parse errors
        raise ConfigError(
            f"{HE_CONTEXT_FILE_ENV}={path!r} is not a TenSEAL CKKS context; "
            "write it with `plato-sedna he-context FILE`"
        ) from None
    if not context.is_private():
        raise ConfigError(
            f"{HE_CONTEXT_FILE_ENV}={path!r} holds a public context without the secret key; "
            f"{ALGORITHM}'s trainers decrypt the average they receive, so every worker needs the "
            "context with its secret key (as `plato-sedna he-context FILE` writes it)"
        )
    return data


def use_context_file(path: str | None) -> None:
    """Make Plato's HE processors and server use the context in ``path``, never a new one."""
    data = read_context(path)
    from plato.utils import homo_enc

    def job_context():
        import tenseal

        return tenseal.context_from(data)

    homo_enc.get_ckks_context = job_context  # looked up at call time by Plato's callers
    LOGGER.info("%s: the job's CKKS context from %s", ALGORITHM, path)


# Plato 1.41 registers its HE processors only where ``clients.type`` or
# ``server.type`` is fedavg_he, so trainers (clients.type simple) never find them;
# the plugin registers both names for every role. TenSEAL loads on first use.


def encrypt_processor(**kwargs):
    from plato.processors import model_encrypt

    return model_encrypt.Processor(**kwargs)


def decrypt_processor(**kwargs):
    from plato.processors import model_decrypt

    return model_decrypt.Processor(**kwargs)
