"""Progress reports from a training worker to Sedna's LocalController (sedna.md §5)."""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any, Protocol

LOGGER = logging.getLogger(__name__)

STATUSES = ("running", "completed", "failed")
# LC routes a report by this kind; any other value is dropped silently (still HTTP 200).
OWNER_KIND = "federatedlearningjob"
WORKER_KIND = "train"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

REQUEST_TIMEOUT_S = 5.0
# Pauses between the attempts of one report; during a known outage a report gets one attempt.
RETRY_DELAYS_S = (0.5, 1.0, 2.0)
# Answers worth another attempt: the LC is busy or restarting, not rejecting the report.
RETRY_HTTP_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# How long a trainer waits at exit for its last reports to go out.
FLUSH_TIMEOUT_S = 15.0
# An LC answer is logged only up to this length.
MESSAGE_MAX_CHARS = 256


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(
            f"WorkerStatus.{name} must be an int >= 0, but {value!r} was passed"
        )


def _check_metric(key: object, value: object) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(
            f"WorkerStatus.metrics keys must be non-empty str, but {key!r} was passed"
        )
    if isinstance(value, str):
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
    ):
        raise ValueError(
            f"WorkerStatus.metrics[{key!r}] must be a finite number or a str, but {value!r} was passed"
        )


@dataclass(frozen=True, kw_only=True)
class WorkerStatus:
    """One report of a training worker: where it is, on how much data, with which results.

    Attributes
    ----------
    status : str
        "running", "completed" or "failed".
    current_round : int (default: 0)
        The federated round the worker last trained; GM records a condition when above 0.
    sample_count : int (default: 0)
        How many samples the worker trains on.
    metrics : Mapping[str, float | int | str] (default: empty)
        Results such as ``{"accuracy": 0.91}``; GM copies them to the Model's status.
    model_url, model_format : str | None (default: None, meaning the reporter's)
        The model the metrics belong to.
    message : str | None (default: None)
        Why the worker failed, sent as ``ownerInfo.message``.
    start_time : datetime | None (default: None, meaning when the reporter was made)
        When the worker started.
    update_time : datetime (default: now)
        When this report was made.
    """

    status: str
    current_round: int = 0
    sample_count: int = 0
    metrics: Mapping[str, float | int | str] = field(default_factory=dict, hash=False)
    model_url: str | None = None
    model_format: str | None = None
    message: str | None = None
    start_time: datetime | None = None
    update_time: datetime = field(default_factory=_utc_now)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"WorkerStatus.status must be one of {', '.join(STATUSES)}, "
                f"but {self.status!r} was passed"
            )
        _check_count("current_round", self.current_round)
        _check_count("sample_count", self.sample_count)
        for key, value in self.metrics.items():
            _check_metric(key, value)
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))


def _timestamp(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, as Sedna's lib formats its times."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(TIME_FORMAT)


def model_format(url: str | None) -> str | None:
    """The model format named by a URL's suffix (``pth`` for ``/model/x.pth``), or None."""
    if not url:
        return None
    suffix = PurePosixPath(url.rstrip("/")).suffix
    return suffix[1:] or None


@dataclass(frozen=True)
class _Answer:
    """What one POST came back with."""

    ok: bool
    retryable: bool
    reason: str


class _ReporterContext(Protocol):
    """The part of :class:`~plato_sedna.context.SednaContext` a reporter needs."""

    lc_server: str | None
    worker_name: str | None
    namespace: str | None
    job_name: str | None
    model_url: str | None


class StatusReporter:
    """Sends a worker's status to ``POST {lc_server}/sedna/workers/{worker_name}/info``.

    Parameters
    ----------
    lc_server : str
        The LocalController's base URL (``LC_SERVER``), e.g. ``http://localhost:9100``.
    worker_name, namespace, job_name : str
        ``WORKER_NAME``, ``NAMESPACE`` and ``JOB_NAME`` of this pod.
    kind : str (default: "train")
        The worker's phase, as Sedna's training workers send it.
    model_url : str | None (default: None)
        The model a report's metrics belong to when the report names none (``MODEL_URL``).
    timeout_s : float (default: 5.0)
        Seconds one POST may take.
    retry_delays_s : Sequence[float] (default: (0.5, 1.0, 2.0))
        Pauses between the attempts of one report.

    A report never raises: a LocalController that cannot be reached is logged once per
    outage, a rejected report once per rejection, and training goes on.
    """

    def __init__(
        self,
        lc_server: str,
        worker_name: str,
        namespace: str,
        job_name: str,
        kind: str = WORKER_KIND,
        *,
        model_url: str | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
    ) -> None:
        for name, value in (("lc_server", lc_server), ("worker_name", worker_name)):
            if not value:
                raise ValueError(
                    f"StatusReporter.{name} must be a non-empty str, but {value!r} was passed"
                )
        self.lc_server = lc_server.rstrip("/")
        self.worker_name = worker_name
        self.namespace = namespace
        self.job_name = job_name
        self.kind = kind
        self.model_url = model_url
        self.timeout_s = timeout_s
        self.retry_delays_s = tuple(retry_delays_s)
        self.started_at = _utc_now()
        self._unreachable = False
        self._send_lock = threading.Lock()
        self._queue: queue.SimpleQueue[WorkerStatus] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._sender: threading.Thread | None = None

    @classmethod
    def from_context(cls, context: _ReporterContext) -> StatusReporter | None:
        """A reporter for this pod, or None when ``LC_SERVER`` is unset (or the pod's names are)."""
        if not context.lc_server:
            return None
        missing = [
            env
            for env, value in (
                ("WORKER_NAME", context.worker_name),
                ("NAMESPACE", context.namespace),
                ("JOB_NAME", context.job_name),
            )
            if not value
        ]
        if missing:
            LOGGER.warning(
                "LC_SERVER is set but %s not; progress reports to the LocalController are off",
                " and ".join(missing) + (" is" if len(missing) == 1 else " are"),
            )
            return None
        return cls(
            context.lc_server,
            context.worker_name,
            context.namespace,
            context.job_name,
            model_url=context.model_url,
        )

    @property
    def url(self) -> str:
        """Where reports are POSTed."""
        from urllib.parse import quote

        return f"{self.lc_server}/sedna/workers/{quote(self.worker_name, safe='')}/info"

    def body(self, status: WorkerStatus) -> dict[str, Any]:
        """The JSON body of ``status``, as the LocalController's ``MessageContent`` reads it."""
        owner_info: dict[str, Any] = {
            "currentRound": status.current_round,
            "updateTime": _timestamp(status.update_time),
            "sampleCount": status.sample_count,
            "startTime": _timestamp(status.start_time or self.started_at),
        }
        if status.message:
            owner_info["message"] = status.message
        body: dict[str, Any] = {
            "name": self.worker_name,
            "namespace": self.namespace,
            "ownerName": self.job_name,
            "ownerKind": OWNER_KIND,
            "kind": self.kind,
            "status": status.status,
            "ownerInfo": owner_info,
        }
        if status.metrics:
            url = status.model_url or self.model_url
            body["results"] = [
                {
                    "format": status.model_format or model_format(url) or "",
                    "url": url or "",
                    "metrics": dict(status.metrics),
                }
            ]
        return body

    def report(self, status: WorkerStatus) -> bool:
        """Send ``status`` now, retrying a busy or unreachable LC; True when it was accepted."""
        try:
            data = json.dumps(self.body(status)).encode()
            with self._send_lock:
                return self._send(data, status.status)
        except Exception as error:  # noqa: BLE001 - a report must never stop training
            LOGGER.warning(
                "Progress report to %s not sent (%r); the job goes on", self.url, error
            )
            return False

    def submit(self, status: WorkerStatus) -> None:
        """Queue ``status`` for a background thread that sends reports in order."""
        with self._idle:
            self._pending += 1
            if self._sender is None:
                self._sender = threading.Thread(
                    target=self._send_queued, name="sedna-status", daemon=True
                )
                self._sender.start()
        self._queue.put(status)

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait until every queued report was sent or given up; False when time ran out."""
        with self._idle:
            done = self._idle.wait_for(lambda: self._pending == 0, timeout_s)
            left = self._pending
        if not done:
            LOGGER.warning(
                "%d progress report(s) to the LocalController at %s not sent within %.0f s; "
                "the worker exits without them",
                left,
                self.lc_server,
                timeout_s,
            )
        return done

    def _send_queued(self) -> None:
        while True:
            status = self._queue.get()
            try:
                self.report(status)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _send(self, data: bytes, what: str) -> bool:
        # In a known outage one attempt per report: enough to notice the LC is back.
        delays = () if self._unreachable else self.retry_delays_s
        answer = self._post(data)
        for attempt, delay in enumerate(delays, start=1):
            if answer.ok or not answer.retryable:
                break
            LOGGER.debug(
                "Progress report attempt %d to %s failed; will retry in %.1f s: %s",
                attempt,
                self.url,
                delay,
                answer.reason,
            )
            time.sleep(delay)
            answer = self._post(data)
        if answer.retryable and not answer.ok:
            self._lost(answer)
            return False
        self._reached()
        if not answer.ok:
            LOGGER.warning(
                "LocalController at %s rejected the %s report of worker %s (%s); the job goes on",
                self.lc_server,
                what,
                self.worker_name,
                answer.reason,
            )
        return answer.ok

    def _lost(self, answer: _Answer) -> None:
        if not self._unreachable:
            LOGGER.warning(
                "LocalController at %s unreachable (%s); progress reports are skipped until it answers",
                self.lc_server,
                answer.reason,
            )
        self._unreachable = True

    def _reached(self) -> None:
        if self._unreachable:
            LOGGER.info(
                "LocalController at %s answers again; progress reports resume",
                self.lc_server,
            )
        self._unreachable = False

    def _post(self, data: bytes) -> _Answer:
        import http.client
        from urllib import error, request

        post = request.Request(
            self.url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        # The LC is node-local (hostNetwork): a cluster-wide HTTP proxy must not be used.
        opener = request.build_opener(request.ProxyHandler({}))
        try:
            with opener.open(post, timeout=self.timeout_s) as response:
                response.read()
        except error.HTTPError as failure:
            reason = f"HTTP {failure.code}: {_lc_message(failure)}"
            return _Answer(
                ok=False, retryable=failure.code in RETRY_HTTP_STATUSES, reason=reason
            )
        except error.URLError as failure:
            return _Answer(ok=False, retryable=True, reason=_describe(failure.reason))
        except (OSError, http.client.HTTPException) as failure:
            return _Answer(ok=False, retryable=True, reason=_describe(failure))
        return _Answer(ok=True, retryable=False, reason="OK")


def _describe(reason: object) -> str:
    return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)


def _lc_message(failure: Exception) -> str:
    """The ``Message`` of an LC error answer (``{"Status": 400, "Message": ...}``), cut short."""
    try:
        text = failure.read().decode(errors="replace")  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - the status code alone still says enough
        return str(getattr(failure, "reason", "")) or "no message"
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("Message"), str):
        text = answer["Message"]
    return text.strip()[:MESSAGE_MAX_CHARS] or "no message"


class TrainerProgress:
    """A trainer's reports over a job: running once per round, then completed or failed.

    Parameters
    ----------
    reporter : StatusReporter | None
        Where reports go; None makes every method a no-op (no ``LC_SERVER``).
    tests_every : int | None (default: None)
        Rounds between the trainer's own tests (Plato's ``clients.test_interval``,
        1 when unset); None when it does not test, so its reports carry no accuracy.
    """

    def __init__(
        self, reporter: StatusReporter | None, *, tests_every: int | None = None
    ) -> None:
        self.reporter = reporter
        self.tests_every = tests_every
        self.started_at = _utc_now()
        self.last_round = 0
        self.sample_count = 0
        self.metrics: dict[str, float] = {}
        self._last_report: object = None
        self.aggregator_accuracy: float | None = None

    def round_reported(self, current_round: int, report: object) -> None:
        """Report ``running`` after the trainer sent ``report``, once per round."""
        if report is None or report is self._last_report:
            return
        self._last_report = report
        if current_round == self.last_round:  # the same round again, after a rejoin
            return
        self.last_round = current_round
        self.sample_count = _count(getattr(report, "num_samples", 0))
        self.metrics = self._metrics(current_round, report)
        self._submit("running")

    def aggregator_reported(self, accuracy: object) -> None:
        """The global model's accuracy, as the aggregator (which tests it) last sent it."""
        if isinstance(accuracy, int | float) and not isinstance(accuracy, bool) and math.isfinite(accuracy):
            self.aggregator_accuracy = float(accuracy)
            if not self.tests_every:
                self.metrics = {"accuracy": self.aggregator_accuracy}

    def completed(self) -> None:
        """Report that the aggregator ended the job."""
        self._submit("completed")

    def failed(self, reason: str) -> None:
        """Report that this trainer failed, and why."""
        self._submit("failed", message=reason)

    def close(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Wait (at most ``timeout_s``) for the queued reports to go out."""
        if self.reporter is not None:
            self.reporter.flush(timeout_s)

    def _metrics(self, current_round: int, report: object) -> dict[str, float]:
        if not self.tests_every:  # the aggregator tests: its latest global accuracy
            return {} if self.aggregator_accuracy is None else {"accuracy": self.aggregator_accuracy}
        if current_round % self.tests_every:
            return {}
        accuracy = getattr(report, "accuracy", None)
        tested = isinstance(accuracy, int | float) and not isinstance(accuracy, bool)
        if not tested or not math.isfinite(accuracy) or accuracy < 0:
            return {}
        return {"accuracy": float(accuracy)}

    def _submit(self, status: str, message: str | None = None) -> None:
        if self.reporter is None:
            return
        try:
            report = WorkerStatus(
                status=status,
                current_round=self.last_round,
                sample_count=self.sample_count,
                metrics=self.metrics,
                message=message,
                start_time=self.started_at,
            )
        except ValueError as error:  # a report must never stop training
            LOGGER.warning("The %s progress report is not sent: %s", status, error)
            return
        self.reporter.submit(report)


def _count(value: object) -> int:
    try:
        count = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0
    return max(count, 0)
