"""The ``plato-sedna run`` subcommand: Sedna manifests in, a local run out."""

import argparse
import logging
import sys
from pathlib import Path
from urllib.parse import urlsplit

from plato_sedna.errors import PlatoSednaError
from plato_sedna.local.manifests import load_job
from plato_sedna.local.runner import run_job

PROG = "plato-sedna run"


def _seconds(text: str) -> float:
    """A non-negative number of seconds, for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def _http_url(text: str) -> str:
    """An http(s) URL with a host, for argparse."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL such as http://127.0.0.1:9100"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``plato-sedna run``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Run a Sedna FederatedLearningJob on this machine: one process for the aggregator "
            "and one per training worker, each given the environment Sedna would inject, "
            "on loopback."
        ),
    )
    parser.add_argument(
        "job_path",
        metavar="JOB",
        type=Path,
        help="a YAML file with the Dataset, Model and FederatedLearningJob manifests, "
        "or a folder of such files",
    )
    parser.add_argument(
        "--job",
        metavar="NAME",
        help="the FederatedLearningJob to run (NAME or NAMESPACE/NAME) when JOB holds several",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        type=Path,
        help="folder for each worker's cwd and log, and summary.json "
        "(default: ./runs/<job name>)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        help="stop every worker and fail the job after this long (default: no limit)",
    )
    parser.add_argument(
        "--grace",
        metavar="SECONDS",
        type=_seconds,
        default=60.0,
        help="how long trainers may run on after the aggregator exits 0 (and the aggregator "
        "after every trainer exits 0) before they are stopped (default: 60)",
    )
    parser.add_argument(
        "--isolate-pids",
        action="store_true",
        help="run each worker as PID 1 in its own PID namespace, like a container "
        "(needs root and util-linux unshare)",
    )
    parser.add_argument(
        "--isolate-nodes",
        action="store_true",
        help="give each worker, in its own mount namespace, its node's hostPath folders at "
        "/home/data/... with the GlobalManager's /home/data urls and DATA_PATH_PREFIX, and none "
        "of the other nodes' Dataset folders (needs root or unprivileged user namespaces; "
        "summary.json says when it was not available)",
    )
    parser.add_argument(
        "--nodes",
        metavar="DIR",
        type=Path,
        dest="node_root",
        help="give each node its own filesystem: node N's hostPath /x is DIR/N/x on this "
        "machine (Datasets on their nodeName, the Model on the aggregator's node, where it "
        "is published), bound at the GlobalManager's /home/data/... in each worker's mount "
        "namespace; relative urls stay paths here. Implies --isolate-nodes; needs root or "
        "unprivileged user namespaces",
    )
    parser.add_argument(
        "--lc-server",
        metavar="URL",
        type=_http_url,
        help="a Sedna LocalController (or anything serving its worker status API) that the "
        "trainers report their progress to, given to them as LC_SERVER "
        "(default: none, so they do not report)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve the aggregator link over TLS with a throwaway CA and certificate for loopback, "
        "written to <workdir>/tls (as a TLS Secret would give the pods)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``plato-sedna run`` with argv (default: sys.argv[1:]) and return the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_request:  # --help or a usage error, already printed
        return exit_request.code if isinstance(exit_request.code, int) else 2
    logging.basicConfig(level=logging.INFO, format=f"{PROG}: %(levelname)s: %(message)s")
    try:
        job = load_job(args.job_path, args.job)
        workdir = args.workdir if args.workdir is not None else Path.cwd() / "runs" / job.name
        return run_job(
            job,
            workdir=workdir,
            isolate_pids=args.isolate_pids,
            timeout=args.timeout,
            grace=args.grace,
            lc_server=args.lc_server,
            tls=args.tls,
            isolate_nodes=args.isolate_nodes,
            node_root=args.node_root,
        )
    except PlatoSednaError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return error.exit_code
