"""Run a job's workers as local processes, relay their output, and summarise the run."""

import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from plato_sedna.context import POD_FILE_ENV
from plato_sedna.errors import JobFailed, PlatoSednaError
from plato_sedna.local.container import local_command
from plato_sedna.local import isolation
from plato_sedna.local.environment import (
    LOOPBACK,
    TEMPLATE_INPUT_URLS,
    aggregation_service,
    hostpath_mounts,
    is_remote_url,
    job_algorithms,
    local_url,
    worker_env,
)
from plato_sedna.local.manifests import JobSpec
from plato_sedna.local.plot import PLOT_NAME, write_progress_plot
from plato_sedna.models.formats import ALIASES
from plato_sedna.models.publish import METRICS_FILENAME, Destination, model_path
from plato_sedna.servers.progress import PROGRESS_MARKER

logger = logging.getLogger(__name__)

STOP_PATIENCE_S = 10.0
POLL_INTERVAL_S = 0.1
ISOLATE_PIDS_PREFIX = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
EXIT_CODES = {"succeeded": 0, "failed": 1, "interrupted": 130}
MAX_RESTARTS = 3  # per worker; a kubelet retries forever with back-off, a local run gives up
RESTARTING_POLICIES = ("OnFailure", "Always")  # either way a worker that exits 0 is done
# Template variables naming files a local run reads from this machine: never hidden by --isolate-nodes.
LOCAL_FILE_ENV = frozenset(TEMPLATE_INPUT_URLS) | frozenset(POD_FILE_ENV)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Progress:
    """One round reported by the aggregator on a ``PLATO_SEDNA_PROGRESS`` line."""

    round: int
    rounds: int | None
    accuracy: float | None
    elapsed_s: float | None
    loss: float | None = None

    @classmethod
    def parse(cls, line: str) -> "Progress | None":
        """The report on line, or None when line is not a well-formed progress line."""
        _, marker, payload = line.partition(PROGRESS_MARKER)
        if not marker:
            return None
        try:
            report = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(report, dict) or not _is_int(report.get("round")):
            return None
        rounds, accuracy, elapsed, loss = (report.get(k) for k in ("rounds", "accuracy", "elapsed_s", "loss"))
        return cls(
            round=report["round"],
            rounds=rounds if _is_int(rounds) else None,
            accuracy=float(accuracy) if _is_number(accuracy) else None,
            elapsed_s=float(elapsed) if _is_number(elapsed) else None,
            loss=float(loss) if _is_number(loss) else None,
        )

    def describe(self) -> str:
        """``round 3/10  accuracy 0.9100  (12.3 s)``, leaving out what is unknown."""
        parts = [f"round {self.round}" + (f"/{self.rounds}" if self.rounds is not None else "")]
        if self.accuracy is not None:
            parts.append(f"accuracy {self.accuracy:.4f}")
        if self.elapsed_s is not None:
            parts.append(f"({self.elapsed_s:.1f} s)")
        return "  ".join(parts)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class _Worker:
    """One worker's launch plan and, once started, its process."""

    key: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    restart_policy: str = "OnFailure"
    restarts: int = 0
    view: isolation.NodeView | None = None  # its pod's mount namespace, where one can be made

    @property
    def name(self) -> str:
        return self.env["WORKER_NAME"]

    @property
    def log_path(self) -> Path:
        return self.folder / "worker.log"

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()


def run_job(
    job: JobSpec,
    *,
    workdir: Path,
    isolate_pids: bool = False,
    timeout: float | None = None,
    grace: float = 60.0,
    out: IO[str] | None = None,
    lc_server: str | None = None,
    tls: bool = False,
    isolate_nodes: bool = False,
    node_root: Path | None = None,
) -> int:
    """Run a job's aggregator and trainers as local processes until the job ends.

    Parameters
    ----------
    job : JobSpec
        The job to run.
    workdir : Path
        The run's folder: ``<key>/`` is each worker's cwd (with its
        ``worker.log``), and ``summary.json`` is written there.
    isolate_pids : bool (default: False)
        Run each worker as PID 1 in its own PID namespace, as in a container.
    timeout : float | None (default: None)
        Seconds after which every worker is stopped and the job fails.
    grace : float (default: 60.0)
        Seconds the trainers may keep running after the aggregator exits 0
        (and the aggregator after every trainer exits 0) before they are
        stopped and the job fails.
    out : IO[str] | None (default: None, meaning sys.stdout at call time)
        Where worker lines, progress lines and the outcome line go.
    isolate_nodes : bool (default: False)
        Give each worker its node's hostPath folders at ``/home/data/...`` with the GM's
        ``/home/data`` urls and ``DATA_PATH_PREFIX``, and hide every other Dataset folder
        (plato_sedna.local.isolation); summary.json says when this machine cannot.
    node_root : Path | None (default: None)
        ``--nodes``: each node's filesystem is ``node_root/<node>``. An absolute hostPath
        url ``/x`` of a worker on node N is ``node_root/N/x``, bound at the GM's
        ``/home/data`` path; the aggregator publishes to its node's folder (the
        ``model_url`` in summary.json). Implies ``isolate_nodes``; without mount
        namespaces the run fails at start (PlatoSednaError).

    Wherever a mount namespace can be made (root, or unprivileged user namespaces),
    each worker has its own /etc/hosts naming the aggregation Service, and trainers
    get the GM's ``AGG_IP`` (``<job>-aggregation.<namespace>``); elsewhere ``127.0.0.1``.

    Returns
    -------
    int
        0 when every worker exits 0, 1 when the job fails, 130 when
        interrupted by SIGINT or SIGTERM.

    Raises
    ------
    PlatoSednaError
        A worker cannot be started (unsupported command, missing config
        file, no ``unshare``); ``summary.json`` says so too.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    run = _JobRun(
        job,
        workdir,
        isolate_pids=isolate_pids,
        timeout=timeout,
        grace=grace,
        out=out or sys.stdout,
        lc_server=lc_server,
        tls=tls,
        isolate_nodes=isolate_nodes or node_root is not None,
        node_root=node_root,
    )
    return run.execute()


class _JobRun:
    """The state of one run: workers, latest progress, interruption."""

    def __init__(
        self,
        job: JobSpec,
        workdir: Path,
        *,
        isolate_pids: bool,
        timeout: float | None,
        grace: float,
        out: IO[str],
        lc_server: str | None = None,
        tls: bool = False,  # --tls: the aggregator link over TLS, with throwaway certificates
        isolate_nodes: bool = False,
        node_root: Path | None = None,  # --nodes: each node's filesystem under node_root/<node>
    ) -> None:
        self.job = job
        self.node_root = Path(node_root).resolve() if node_root is not None else None
        self.isolate_nodes = isolate_nodes
        self.isolation_reason: str | None = None if isolate_nodes else "not asked for (--isolate-nodes)"
        self.namespaces: isolation.Namespaces | None = None
        self.agg_host = LOOPBACK
        self.lc_server = lc_server
        self.tls = tls
        self.workdir = workdir
        self.isolate_pids = isolate_pids
        self.timeout = timeout
        self.grace = grace
        self.out = out
        self.workers: list[_Worker] = []
        self.progress: Progress | None = None
        self.history: list[Progress] = []
        self.interrupted_by: str | None = None
        self.output_lock = threading.Lock()
        self.started = time.monotonic()
        self.model_url = self._model_host_url()
        self.outputs_before = {path: _fingerprint(path) for path in self._local_outputs()}

    def execute(self) -> int:
        """Start, supervise and stop the workers; write the summary."""
        status, error = "failed", "plato-sedna run stopped on an internal error"
        handlers = self._catch_signals()
        try:
            self._plan()
            status, error = self._run_workers()
        except PlatoSednaError as exc:
            error = str(exc)
            raise
        finally:
            self._stop_all()
            self._join_readers()
            _restore_signals(handlers)
            summary = self._summary(status, error)
            summary["plot"] = self._plot()
            summary_path = self.workdir / "summary.json"
            _write_json_atomically(summary_path, summary)
        self._announce(summary, summary_path)
        return EXIT_CODES[status]

    def _plan(self) -> None:
        port = free_loopback_port()
        argvs = {spec.key: local_command(self.job, spec) for spec in self.job.workers}
        algorithms = job_algorithms(self.job, argvs.values())
        self._plan_namespaces()
        for spec in self.job.workers:
            argv = argvs[spec.key]
            env = worker_env(
                self.job,
                spec,
                agg_port=port,
                workdir=self.workdir,
                lc_server=self.lc_server,
                tls=self.tls,
                algorithms=algorithms,
                agg_host=self.agg_host,
                container_paths=self.isolate_nodes,
            )
            folder = self.workdir / spec.key
            worker = _Worker(spec.key, argv, env, folder, restart_policy=spec.restart_policy)
            if self.namespaces.available:
                worker.view = self._node_view(spec, argv, folder)
            self.workers.append(worker)

    def _model_host_url(self) -> str:
        """Where the aggregator's MODEL_URL is on this machine: under its node with ``--nodes``."""
        url = self.job.model.url
        if self.node_root is not None and isolation.on_node_root(url):
            return isolation.node_path(self.node_root, self._aggregator_node(), url)
        return local_url(url, self.workdir)

    def _aggregator_node(self) -> str:
        return isolation.worker_node(self.job.aggregator, self.job)

    def _check_node_root(self) -> None:
        """``--nodes`` needs the pods' mount namespaces: fail at start, saying why, where there are none."""
        if self.node_root is None:
            return
        if not self.node_root.is_dir():
            raise PlatoSednaError(
                f"--nodes {self.node_root}: no such folder; make it, with one folder per node "
                "(e.g. edge1/data/1.txt for a Dataset url /data/1.txt on node edge1)"
            )
        if not self.isolate_nodes:
            raise PlatoSednaError(
                f"--nodes {self.node_root} binds each node's folders where Sedna mounts them "
                f"(/home/data/...), in each worker's own mount namespace, which this machine "
                f"cannot give: {self.isolation_reason}. Run as root (or allow unprivileged user "
                "namespaces), or run without --nodes, with the hostPaths at their own paths here"
            )

    def _plan_namespaces(self) -> None:
        """Mount namespaces where this machine allows them: the Service name, and nodes if asked."""
        self.namespaces = isolation.mount_namespaces()
        if self.namespaces.available:
            self.agg_host = aggregation_service(self.job)
            if self.isolate_nodes and not Path("/home").is_dir() and not Path(isolation.HOST_PATH_PREFIX).is_dir():
                self.isolate_nodes, self.isolation_reason = False, "this machine has no /home to hold /home/data"
        elif self.isolate_nodes:
            self.isolate_nodes, self.isolation_reason = False, self.namespaces.reason
        if self.isolation_reason and self.isolation_reason != "not asked for (--isolate-nodes)":
            logger.warning("--isolate-nodes is off for this run: %s", self.isolation_reason)
        if not self.namespaces.available:
            logger.info(
                "Trainers get AGG_IP=%s, not the Service name %s: %s",
                LOOPBACK,
                aggregation_service(self.job),
                self.namespaces.reason,
            )
        self._check_node_root()

    def _node_view(self, spec, argv: tuple[str, ...], folder: Path) -> isolation.NodeView:
        """The mount namespace of a worker's pod: its /etc/hosts, and its node's folders."""
        hosts = isolation.write_hosts_file(folder / ".pod-hosts", [aggregation_service(self.job)])
        node = isolation.worker_node(spec, self.job)
        if not self.isolate_nodes:
            return isolation.NodeView(node, hosts)

        def host_url(url: str, what: str) -> str | None:
            if self.node_root is not None and isolation.on_node_root(url):
                return None  # on each node's own filesystem under the node root
            return local_url(url, self.workdir if what == "model" else self.job.source_dir)

        nodes, shared = isolation.node_folders(self.job, host_url)
        for model_folder in shared:  # outputs: the aggregator publishes there
            Path(model_folder).mkdir(parents=True, exist_ok=True)
        held = nodes.get(node, set()) | shared
        node_dir = isolation.node_folder(self.node_root, node) if self.node_root is not None else None
        if node_dir is not None and isolation.on_node_root(self.job.model.url):
            # The Model's folder is an output: made on each node that runs a pod using it.
            model_dir = isolation.container_url(self.job.model.url).host_dir
            Path(isolation.node_path(self.node_root, node, model_dir)).mkdir(parents=True, exist_ok=True)
        mounts = []
        for host_dir, mount_path in hostpath_mounts(self.job, spec, self.workdir, node_dir):
            if node_dir is not None and _inside(host_dir, node_dir):
                present = Path(host_dir).is_dir()  # a node holds what its folder holds
            else:
                present = isolation.on_node(host_dir, held) and Path(host_dir).is_dir()
            if not present:
                logger.warning(
                    "%s: worker %s runs on node %s, which does not hold %s: its pod sees an empty %s "
                    "(in Sedna the pod would not start: hostPath type check failed)",
                    self.job.ref, spec.key, node, host_dir, mount_path,
                )
            mounts.append((host_dir, mount_path, present))
        needed = [self.workdir, folder, self.job.source_file, *(self.job.manifests_path or self.job.source_file,)]
        needed += [arg for arg in argv if arg.startswith("/") and Path(arg).exists()]
        # Files the template names that a local run reads from this machine (not data of a node).
        needed += [local_url(value, self.job.source_dir) for name, value in spec.env if name in LOCAL_FILE_ENV and value]
        needed += [str(Path(sys.executable).parent), *shared]
        every = set().union(*nodes.values()) if nodes else set()
        if self.node_root is not None:
            every.add(str(self.node_root) + "/")  # other nodes' filesystems: only under /home/data
        hidden = isolation.hidden_folders(every, needed)
        return isolation.NodeView(node, hosts, tuple(mounts), hidden, isolate_nodes=True)

    def _run_workers(self) -> tuple[str, str | None]:
        if self.isolate_pids:
            _check_unshare()
        try:
            for worker in self.workers:
                if self.interrupted_by is None:
                    self._start(worker)
            return self._supervise()
        except KeyboardInterrupt:
            self.interrupted_by = "SIGINT"
            return self._interrupted()

    def _start(self, worker: _Worker) -> None:
        worker.folder.mkdir(parents=True, exist_ok=True)
        if worker.view is not None:
            pid_prefix = ISOLATE_PIDS_PREFIX if self.isolate_pids else ()
            argv = isolation.wrap(worker.argv, worker.view, self.namespaces.prefix, pid_prefix)
        elif self.isolate_pids:
            argv = (*ISOLATE_PIDS_PREFIX, *worker.argv)
        else:
            argv = worker.argv
        shown = worker.argv if worker.view is not None else argv
        where = f" in its pod's mount namespace (node {worker.view.node})" if worker.view is not None else ""
        logger.info("Starting %s (%s)%s: %s", worker.key, worker.name, where, shlex.join(shown))
        log = worker.log_path.open("a" if worker.restarts else "w", encoding="utf-8")
        try:
            worker.process = subprocess.Popen(
                argv,
                cwd=worker.folder,
                env=dict(worker.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            log.close()
            raise JobFailed(
                f"{self.job.ref}: cannot start worker {worker.key} ({argv[0]}): {exc}"
            ) from exc
        worker.reader = threading.Thread(target=self._relay, args=(worker, log), daemon=True)
        worker.reader.start()

    def _relay(self, worker: _Worker, log: IO[str]) -> None:
        """Copy a worker's output to its log and, prefixed, to out."""
        try:
            for raw in worker.process.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                log.write(line + "\n")
                log.flush()
                self._show(worker, line)
        finally:
            log.close()

    def _show(self, worker: _Worker, line: str) -> None:
        progress = Progress.parse(line) if worker.key == "aggregator" else None
        if progress is None:
            self._print(f"[{worker.key}] {line}")
            return
        self.progress = progress
        self.history.append(progress)
        self._print(progress.describe())

    def _print(self, text: str) -> None:
        with self.output_lock:
            try:
                self.out.write(text + "\n")
                self.out.flush()
            except (OSError, ValueError):
                pass  # out is closed or a broken pipe: the worker logs still get every line

    def _supervise(self) -> tuple[str, str | None]:
        """Wait until the job succeeds, fails, times out or is interrupted."""
        finished_since: float | None = None
        while True:
            if self.interrupted_by is not None:
                return self._interrupted()
            failed = next((w for w in self.workers if w.exit_code not in (None, 0)), None)
            if failed is not None and self._restarted(failed):
                continue
            if failed is not None:
                return "failed", _failure(failed)
            running = [w.key for w in self.workers if w.exit_code is None]
            if not running:
                return "succeeded", None
            now = time.monotonic()
            finished_side = self._finished_side()
            if finished_side is not None and finished_since is None:
                finished_since = now
            if finished_since is not None and now - finished_since >= self.grace:
                return "failed", (
                    f"{', '.join(running)} still running {self.grace:g} s after {finished_side} "
                    "exited 0; stopped (raise --grace if it needs longer)"
                )
            if self.timeout is not None and now - self.started >= self.timeout:
                return "failed", f"timed out after {self.timeout:g} s; stopped {', '.join(running)}"
            time.sleep(POLL_INTERVAL_S)

    def _restarted(self, worker: _Worker) -> bool:
        """Restart a failed worker as its pod's restartPolicy would; False when it may not be."""
        if worker.restart_policy not in RESTARTING_POLICIES or worker.restarts >= MAX_RESTARTS:
            return False
        self._print(
            f"{_failure(worker)}; restarting it (restart {worker.restarts + 1} of at most "
            f"{MAX_RESTARTS}, restartPolicy {worker.restart_policy})"
        )
        _signal_group(worker.process.pid, signal.SIGKILL)  # what is left of its process group
        worker.process.wait()
        if worker.reader is not None:
            worker.reader.join(timeout=5.0)
        worker.restarts += 1
        self._start(worker)
        return True

    def _finished_side(self) -> str | None:
        """Which side ended cleanly while the other still runs, if any."""
        aggregator, *trainers = self.workers
        if aggregator.exit_code == 0:
            return "the aggregator"
        if all(t.exit_code == 0 for t in trainers):
            return "every trainer"
        return None

    def _interrupted(self) -> tuple[str, str]:
        return "interrupted", f"interrupted by {self.interrupted_by}; stopped every worker"

    def _stop_all(self) -> None:
        """Stop every worker's process group: SIGTERM, then SIGKILL after STOP_PATIENCE_S."""
        started = [w for w in self.workers if w.process is not None]
        running = [w.key for w in started if w.exit_code is None]
        if running:
            logger.info("Stopping %s", ", ".join(running))
        for worker in started:
            _signal_group(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_PATIENCE_S
        while any(_group_alive(w.process) for w in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        for worker in started:
            _signal_group(worker.process.pid, signal.SIGKILL)
            worker.process.wait()

    def _join_readers(self) -> None:
        for worker in self.workers:
            if worker.reader is not None:
                worker.reader.join(timeout=5.0)

    def _catch_signals(self) -> dict[int, Any]:
        """Turn SIGINT and SIGTERM into a flag the supervisor polls."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.interrupted_by = signal.Signals(signum).name

    def _local_outputs(self) -> list[Path]:
        """The model (a file, or a Hugging Face folder) and its metrics.json, when local.

        The file the aggregator's publisher writes (``Destination``): in a folder url,
        ``model`` with the format's suffix (``model.pb`` for pb).
        """
        if is_remote_url(self.model_url) and not self.model_url.startswith("file://"):
            return []
        fmt = ALIASES.get(self.job.model.format.strip().lower())
        url = self.model_url.removeprefix("file://")
        if fmt == "huggingface":
            folder = Path(url)
            return [folder, folder / METRICS_FILENAME]  # the folder holds both
        if fmt is None:  # "pt" or no format: the model decides; model.pth in a folder
            model = model_path(url)
        else:
            destination = Destination.of(url, fmt)
            model = Path(destination.url(destination.entry))
        return [model, model.parent / METRICS_FILENAME]

    def _published(self, path: Path) -> bool:
        """Whether path was created or changed during this run (not left from an earlier one)."""
        current = _fingerprint(path)
        return current is not None and current != self.outputs_before.get(path)

    def _published_metrics(self) -> dict[str, Any]:
        outputs = self._local_outputs()
        if not outputs or not self._published(outputs[1]):
            return {}
        try:
            metrics = json.loads(outputs[1].read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("Ignoring %s: %s", outputs[1], exc)
            return {}
        if not isinstance(metrics, dict):
            logger.warning("Ignoring %s: not a JSON object", outputs[1])
            return {}
        checks = {
            "rounds": _is_int,
            "accuracy": _is_number,
            "stop_reason": lambda v: isinstance(v, str),
            "tested_on": lambda v: isinstance(v, str),
            "trainer_events": lambda v: isinstance(v, list),
        }
        return {key: metrics[key] for key, check in checks.items() if check(metrics.get(key))}

    def _published_model(self, status: str) -> str | None:
        outputs = self._local_outputs()
        if not outputs:
            return self.model_url if status == "succeeded" else None
        return str(outputs[0]) if self._published(outputs[0]) else None

    def _plot(self) -> str | None:
        """``progress.png`` of the rounds seen, beside summary.json; None without rounds."""
        rounds = {record.round: record for record in self.history}  # a resent round counts once
        records = [rounds[number] for number in sorted(rounds)]
        try:
            path = write_progress_plot(
                [r.round for r in records],
                [r.accuracy for r in records],
                [r.loss for r in records],
                self.workdir / PLOT_NAME,
                f"{self.job.namespace}/{self.job.name}",
            )
        except Exception as error:  # noqa: BLE001 - a plot must never fail the job
            logger.warning("could not write %s: %s", PLOT_NAME, error)
            return None
        return str(path) if path else None

    def _summary(self, status: str, error: str | None) -> dict[str, Any]:
        """The content of summary.json."""
        metrics = self._published_metrics()
        progress = self.progress
        planned = {w.key: w for w in self.workers}
        summary = {
            "job": f"{self.job.namespace}/{self.job.name}",
            "status": status,
            "rounds": metrics.get("rounds", progress.round if progress else None),
            "accuracy": metrics.get("accuracy", progress.accuracy if progress else None),
            "tested_on": metrics.get("tested_on"),  # "not tested ..." when accuracy is None
            "model_url": self._published_model(status),
            "elapsed_s": round(time.monotonic() - self.started, 3),
            "agg_ip": self.agg_host,
            "node_isolation": self.isolate_nodes,
            "node_isolation_reason": None if self.isolate_nodes else self.isolation_reason,
            "node_root": str(self.node_root) if self.node_root is not None else None,
            "stop_reason": metrics.get("stop_reason"),
            "trainer_events": metrics.get("trainer_events", []),
            "workers": {
                spec.key: {
                    "worker_name": planned[spec.key].name if spec.key in planned else None,
                    "exit_code": planned[spec.key].exit_code if spec.key in planned else None,
                    "restarts": planned[spec.key].restarts if spec.key in planned else 0,
                    "node": _node_name(isolation.worker_node(spec, self.job)),
                    "log": str(self.workdir / spec.key / "worker.log"),
                }
                for spec in self.job.workers
            },
            "error": error,
        }
        return summary

    def _announce(self, summary: Mapping[str, Any], summary_path: Path) -> None:
        """Print the one-line outcome."""
        job = f"job {summary['job']}"
        if summary["status"] != "succeeded":
            self._print(f"{job} {summary['status']}: {summary['error']}; summary {summary_path}")
            return
        parts = []
        if summary["rounds"] is not None:
            parts.append(f"{summary['rounds']} rounds")
        if summary["accuracy"] is not None:
            parts.append(f"accuracy {summary['accuracy']:.4f}")
        elif summary["rounds"]:
            parts.append("accuracy: not tested")
        if summary["model_url"] is not None:
            parts.append(f"model {summary['model_url']}")
        parts.append(f"summary {summary_path}")
        self._print(f"{job} succeeded: {', '.join(parts)}")


def _inside(path: str, folder: Path) -> bool:
    return (path.rstrip("/") + "/").startswith(str(folder).rstrip("/") + "/")


def _node_name(node: str) -> str | None:
    """A node for summary.json: None for the aggregator's when its template names none."""
    return None if node == isolation.AGGREGATOR_NODE else node


def _failure(worker: _Worker) -> str:
    code = worker.exit_code
    if code is not None and code < 0:
        how = f"was killed by {signal.Signals(-code).name}"
    else:
        how = f"exited with code {code}"
    return f"worker {worker.key} ({worker.name}) {how}; log {worker.log_path}"


def _check_unshare() -> None:
    """Fail clearly when PID namespaces cannot be created here."""
    if shutil.which("unshare") is None:
        raise PlatoSednaError(
            "--isolate-pids needs the unshare command (util-linux), which is not on PATH; "
            "install util-linux or drop --isolate-pids"
        )
    probe = subprocess.run(
        [*ISOLATE_PIDS_PREFIX, "true"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        raise PlatoSednaError(
            f"--isolate-pids: `{shlex.join([*ISOLATE_PIDS_PREFIX, 'true'])}` failed "
            f"({probe.stderr.strip() or f'exit code {probe.returncode}'}); run as root "
            "(a PID namespace needs CAP_SYS_ADMIN) or drop --isolate-pids"
        )


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(process: subprocess.Popen[bytes]) -> bool:
    """Whether any process of the group led by process is alive (zombies do not count)."""
    process.poll()  # reap the leader if it exited
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _has_live_member(process.pid)


def _has_live_member(pgid: int) -> bool:
    """Scan /proc: orphans reparented to an init that does not reap stay as zombies."""
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat_file in proc.glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:
            continue
        state, _ppid, group = stat[stat.rfind(")") + 2 :].split()[:3]
        if int(group) == pgid and state != "Z":
            return True
    return False


def _fingerprint(path: Path) -> tuple[int, int, int, int] | None:
    """Identity and change stamps of path (ctime changes on any write), None if absent."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as temp:
            json.dump(data, temp, indent=2)
            temp.write("\n")
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _restore_signals(handlers: Mapping[int, Any]) -> None:
    for signum, handler in handlers.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
