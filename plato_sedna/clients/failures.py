"""Whether a trainer's error will recur: fail the pod at once, or reconnect and try again."""

from __future__ import annotations

import errno
import pickle
import socket
from collections.abc import Iterator

from plato_sedna.errors import JobFailed, PlatoSednaError


def _link_error_types() -> tuple[type[BaseException], ...]:
    """Errors of the link to the aggregator or of a remote store: they pass."""
    import aiohttp
    import engineio.exceptions
    import socketio.exceptions

    from plato_sedna.kube import ApiUnavailable
    from plato_sedna.storage.remote import Unreachable

    return (
        ConnectionError,  # refused, reset, aborted, broken pipe
        TimeoutError,  # asyncio's too
        socket.gaierror,  # a name that does not resolve (yet)
        socketio.exceptions.SocketIOError,
        engineio.exceptions.EngineIOError,
        aiohttp.ClientError,
        Unreachable,
        ApiUnavailable,
    )


# OSErrors of a network, not of a file (those without a subclass of ConnectionError)
NETWORK_ERRNOS = frozenset(
    {errno.ENETDOWN, errno.ENETUNREACH, errno.ENETRESET, errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENOTCONN}
)

PERMANENT_TYPES: tuple[type[BaseException], ...] = (
    PlatoSednaError,  # ConfigError, ResourceError (less the unreachable kinds above)
    OSError,  # a missing, unreadable or corrupt file (less the network's, above)
    ValueError,
    TypeError,
    LookupError,  # IndexError (a label past the model's classes), KeyError
    AttributeError,
    ImportError,
    NotImplementedError,
    AssertionError,  # a library's own checks (ultralytics asserts on its inputs)
    RuntimeError,  # torch: shape mismatches, load_state_dict's size mismatch, out of memory
    MemoryError,
    pickle.UnpicklingError,
)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from or while handling (as a traceback shows them)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)


def _is_link_error(error: BaseException, link_errors: tuple[type[BaseException], ...]) -> bool:
    return isinstance(error, link_errors) or (isinstance(error, OSError) and error.errno in NETWORK_ERRNOS)


def is_permanent(error: BaseException) -> bool:
    """Whether ``error``, raised by a training step, would recur on every retry.

    Permanent (the trainer exits non-zero at once; reconnecting would only get it
    selected and failing again):

    - a bad config or resource: ``ConfigError``, ``ResourceError``;
    - a missing, unreadable or corrupt file: ``FileNotFoundError``, ``PermissionError``,
      any other ``OSError`` but the network's;
    - data or a model that do not fit: ``ValueError``, ``TypeError``, ``IndexError`` or
      ``KeyError`` (a label past the model's classes), ultralytics' class-count checks;
    - code that cannot run: ``AttributeError``, ``ImportError``, ``NotImplementedError``,
      a library's ``AssertionError``;
    - weights that do not load, tensors that do not fit: torch's ``RuntimeError`` (size
      or shape mismatch; out of memory too), ``pickle.UnpicklingError``;
    - training in a spawned process (``trainer.max_concurrency``) that left no model:
      Plato's ``ValueError`` raised from a ``FileNotFoundError``.

    Transient (the link is re-established, as before): any error with a link or
    remote-store failure in its chain (``__cause__``/``__context__``, as a traceback
    shows it): connection refused or reset, broken pipe, timeouts, unreachable hosts
    or networks, names that do not resolve, socket.io, engine.io and aiohttp client
    errors, an S3 endpoint or the Kubernetes API not answering.

    Neither (False): ``JobFailed``, the session's own verdict, and any other type;
    the caller keeps its own rule for those (fail while the link is up).
    """
    chain = list(_chain(error))
    link_errors = _link_error_types()
    if any(_is_link_error(link, link_errors) for link in chain):
        return False
    first = chain[0]
    return isinstance(first, PERMANENT_TYPES) and not isinstance(first, JobFailed)


def describe(error: BaseException) -> str:
    """One line naming ``error`` and, when it was raised from another, the root cause."""
    text = f"{type(error).__name__}: {error}"
    root = list(_chain(error))[-1]
    if root is not error:
        text += f" (from {type(root).__name__}: {root})"
    return text
