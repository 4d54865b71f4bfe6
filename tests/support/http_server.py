"""A loopback HTTP file server for tests: ETags, 304s, byte counts, injected errors, throttling."""

from __future__ import annotations

import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

from support.loopback import LoopbackServer

CHUNK_BYTES = 64 * 1024


class _Handler(SimpleHTTPRequestHandler):
    """Serves ``directory`` with an ETag per file version; reports to its :class:`HttpServer`."""

    def __init__(self, *args, owner: HttpServer, **kwargs) -> None:
        self.owner = owner
        self._etag: str | None = None
        super().__init__(*args, **kwargs)

    def send_head(self):
        failure = self.owner._take_failure()
        if failure is not None:
            self.send_error(failure)
            return None
        path = Path(self.translate_path(self.path))
        self._etag = _etag(path) if path.is_file() else None
        if self._etag is not None and self.headers.get("If-None-Match") == self._etag:
            self.send_response(304)
            self.end_headers()
            return None
        return super().send_head()

    def end_headers(self) -> None:
        if self._etag is not None:
            self.send_header("ETag", self._etag)
        super().end_headers()

    def copyfile(self, source, outputfile) -> None:
        while chunk := source.read(CHUNK_BYTES):
            # counted before it is sent: a client that has read the body sees it counted
            self.owner._count(len(chunk))
            outputfile.write(chunk)

    def log_request(self, code="-", size="-") -> None:
        self.owner.requests.append(f"{self.requestline} {code}")

    def log_message(self, format, *args) -> None:
        pass


class HttpServer(LoopbackServer):
    """Serves the folder ``root`` on a free 127.0.0.1 port until :meth:`stop`.

    Attributes
    ----------
    bytes_served : int
        Body bytes sent so far.
    requests : list[str]
        Request lines received, each followed by the status answered.
    bytes_per_s : float | None
        Throttle for response bodies (None: as fast as possible).
    """

    def __init__(self, root: Path, bytes_per_s: float | None = None) -> None:
        self.root = Path(root)
        self.bytes_per_s = bytes_per_s
        self.bytes_served = 0
        self.requests: list[str] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        handler = partial(_Handler, owner=self, directory=str(self.root))
        super().__init__(handler)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, relative: str) -> str:
        return f"{self.base_url}/{relative.lstrip('/')}"

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` requests with ``status``."""
        with self._lock:
            self._failures.extend([status] * count)

    def _take_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _count(self, size: int) -> None:
        with self._lock:
            self.bytes_served += size
        if self.bytes_per_s:
            time.sleep(size / self.bytes_per_s)


def _etag(path: Path) -> str:
    info = path.stat()
    return f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
