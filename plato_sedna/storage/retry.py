"""Bounded retries with backoff for transient transfer failures."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

RETRY_DELAYS_S = (0.5, 1.0, 2.0)


def with_retries[T](
    attempt: Callable[[], T],
    is_transient: Callable[[Exception], bool],
    what: str,
    delays: tuple[float, ...] = RETRY_DELAYS_S,
) -> T:
    """Run ``attempt``; retry it after each delay while it fails transiently.

    The last failure, or the first that is not transient, propagates.
    """
    for delay in delays:
        try:
            return attempt()
        except Exception as error:
            if not is_transient(error):
                raise
            logger.warning("%s failed (%s); retrying in %.1f s", what, _summary(error), delay)
            time.sleep(delay)
    return attempt()


def _summary(error: Exception) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
