"""A loopback stand-in for Sedna's LocalController worker status API, recording every POST."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from support.processes import free_port

INFO_PATH = re.compile(r"^/sedna/workers/(?P<name>[^/]+)/info$")


@dataclass(frozen=True)
class Post:
    """One POST the LC received: the worker name in its path, its JSON body, the answer given."""

    worker_name: str
    body: Any
    status: int


class FakeLocalController:
    """``POST /sedna/workers/{worker-name}/info`` on 127.0.0.1, answered as Sedna's LC does.

    Parameters
    ----------
    fail_times : int (default: 0)
        Answer this many POSTs with HTTP 503 before answering normally.
    delay_s : float (default: 0.0)
        Seconds to wait before each answer (a slow LC).

    Use as a context manager; :meth:`stop` and :meth:`start` take it down and bring it
    back on the same port, and ``FakeLocalController.down()`` gives a URL nothing serves.
    """

    def __init__(self, *, fail_times: int = 0, delay_s: float = 0.0) -> None:
        self.port = free_port()
        self.fail_times = fail_times
        self.delay_s = delay_s
        self.posts: list[Post] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def down(cls) -> FakeLocalController:
        """An LC that is not running: connections to its URL are refused."""
        return cls()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def bodies(self, worker_name: str | None = None) -> list[dict]:
        """The accepted bodies, in arrival order, optionally of one worker."""
        with self._lock:
            return [
                post.body
                for post in self.posts
                if post.status == 200 and worker_name in (None, post.worker_name)
            ]

    def _answer(self, worker_name: str, raw: bytes) -> tuple[int, str]:
        """Record the POST and decide the answer: (HTTP status, Message)."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            if self.fail_times > 0:
                self.fail_times -= 1
                status, message = 503, "LocalController is busy"
            elif not isinstance(body, dict):
                status, message = 400, "the body is not a JSON object"
            elif body.get("name") != worker_name:
                status, message = (
                    400,
                    (
                        f"worker name {body.get('name')!r} in the body differs from "
                        f"{worker_name!r} in the path"
                    ),
                )
            else:
                status, message = 200, "OK"
            self.posts.append(Post(worker_name, body, status))
        return status, message

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        controller = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                match = INFO_PATH.match(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if controller.delay_s:
                    time.sleep(controller.delay_s)
                if match is None:
                    self._reply(404, "no such path")
                    return
                self._reply(*controller._answer(match["name"], raw))

            def _reply(self, status: int, message: str) -> None:
                payload = json.dumps({"Status": status, "Message": message}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
