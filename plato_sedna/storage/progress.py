"""Transfer counters, and progress reports for large transfers (a bar on a terminal, else logs)."""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

PROGRESS_THRESHOLD_BYTES = 8 * 1024 * 1024
_LOG_STEP_PERCENT = 10


@dataclass
class TransferStats:
    """Bytes and files moved by one :class:`~plato_sedna.storage.Storage`, safe across threads.

    Attributes
    ----------
    bytes_downloaded, bytes_uploaded : int
        Payload bytes received and sent (not counting request headers).
    files_downloaded, files_uploaded : int
        Objects fetched or published.
    cache_hits : int
        Fetches answered from the cache after revalidation.
    """

    bytes_downloaded: int = 0
    bytes_uploaded: int = 0
    files_downloaded: int = 0
    files_uploaded: int = 0
    cache_hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add ``counts`` (e.g. ``bytes_downloaded=n``) to the counters."""
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


class Progress:
    """Counts one transfer's bytes into ``stats``; reports it when it is at least ``threshold``.

    Call it with each chunk's size (it fits boto3's ``Callback``) from any thread.
    """

    def __init__(
        self,
        label: str,
        total: int,
        stats: TransferStats,
        counter: str = "bytes_downloaded",
        threshold: int = PROGRESS_THRESHOLD_BYTES,
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stats = stats
        self._counter = counter
        self._reported = total >= threshold
        self._next_percent = _LOG_STEP_PERCENT
        self._lock = threading.Lock()
        self._bar = _terminal_bar(label, total) if self._reported else None

    def __call__(self, count: int) -> None:
        self._stats.add(**{self._counter: count})
        with self._lock:
            self.done += count
            if self._bar is not None:
                self._bar.update(count)
            elif self._reported:
                self._log_steps()

    def _log_steps(self) -> None:
        percent = 100 * self.done // max(self.total, 1)
        if percent >= self._next_percent:
            logger.info(
                "%s: %d%% (%.1f of %.1f MB)", self.label, percent, self.done / 1e6, self.total / 1e6
            )
            self._next_percent = (percent // _LOG_STEP_PERCENT + 1) * _LOG_STEP_PERCENT

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _terminal_bar(label: str, total: int):
    """A tqdm bar when stderr is a terminal and tqdm is installed, else None."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=label, unit="B", unit_scale=True, leave=False)
