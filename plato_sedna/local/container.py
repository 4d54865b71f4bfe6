"""The local command for a worker's container command and args."""

import re
import sys
from pathlib import Path

from plato_sedna.errors import ResourceError
from plato_sedna.local.manifests import JobSpec, WorkerSpec

_PYTHON_RE = re.compile(r"python(3(\.\d+)?)?")


def local_command(job: JobSpec, worker: WorkerSpec) -> tuple[str, ...]:
    """The local argv for a worker's container command and args.

    An empty command is the image entrypoint ``plato``, run as
    ``python -m plato_sedna``; ``python``/``python3`` run this interpreter.
    Config files (``-c``/``--config``) and a python script that are relative
    resolve against the manifests' folder; an absolute one missing here (a
    ConfigMap mount such as ``/config/fedavg.toml``) falls back to the file
    of the same name beside the manifests.

    Raises
    ------
    ResourceError
        The command is neither ``plato`` nor ``python``, or a file is missing.
    """
    argv = [*worker.command, *worker.args] if worker.command else ["plato", *worker.args]
    program = Path(argv[0]).name
    if program == "plato":
        return (sys.executable, "-m", "plato_sedna", *_config_args(job, worker, argv[1:]))
    if _PYTHON_RE.fullmatch(program):
        return (sys.executable, *_python_args(job, worker, argv[1:]))
    raise ResourceError(
        f"{job.ref}: cannot run container command '{argv[0]}' of worker {worker.key} locally "
        f"({job.source_file}); plato-sedna run supports the `plato` entrypoint and `python`"
    )


def _python_args(job: JobSpec, worker: WorkerSpec, args: list[str]) -> list[str]:
    """Interpreter options as given, then the script or module and its mapped args."""
    options: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "-c":
            return [*options, arg, *rest]
        if arg == "-m":
            return [*options, arg, *rest[:1], *_config_args(job, worker, rest[1:])]
        if arg.startswith("-"):
            options.append(arg)
            if arg in ("-X", "-W") and rest:
                options.append(rest.pop(0))
            continue
        script = _local_file(job, worker, arg, "script")
        return [*options, script, *_config_args(job, worker, rest)]
    return options


def _config_args(job: JobSpec, worker: WorkerSpec, args: list[str]) -> list[str]:
    mapped: list[str] = []
    pending_config = False
    for arg in args:
        if pending_config:
            mapped.append(_local_file(job, worker, arg, "config file"))
            pending_config = False
        elif arg.startswith("--config="):
            mapped.append(
                "--config=" + _local_file(job, worker, arg.partition("=")[2], "config file")
            )
        else:
            mapped.append(arg)
            pending_config = arg in ("-c", "--config")
    return mapped


def _local_file(job: JobSpec, worker: WorkerSpec, path: str, what: str) -> str:
    """A file named in a worker's command, found on this machine; URLs are fetched by the worker."""
    from plato_sedna.config_source import is_remote

    if is_remote(path):
        return path
    given = Path(path)
    if not given.is_absolute():
        candidate = job.source_dir / given
        if candidate.exists():
            return str(candidate)
        raise ResourceError(
            f"{job.ref}: {what} '{path}' of worker {worker.key} is not in {job.source_dir}; "
            "put it beside the manifests or use an absolute path"
        )
    if given.exists():
        return path
    beside = job.source_dir / given.name
    if beside.exists():
        return str(beside)
    raise ResourceError(
        f"{job.ref}: {what} '{path}' of worker {worker.key} does not exist on this machine "
        f"(in a pod it comes from a mounted volume) and {job.source_dir} has no {given.name}; "
        f"copy {given.name} beside the manifests"
    )
