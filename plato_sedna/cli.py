"""The ``plato`` and ``plato-sedna`` entry points: parse, resolve the config, hand over."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from plato_sedna.errors import ConfigError, PlatoSednaError

RESOLVED_CONFIG_NAME = "config.resolved.toml"


def _plato_parser() -> argparse.ArgumentParser:
    """Plato 1.41's own flags, so that ``plato`` is a drop-in for its launcher."""
    parser = argparse.ArgumentParser(
        prog="plato",
        description="Run a Plato config; inside a Sedna pod the role comes from the environment.",
    )
    parser.add_argument("-i", "--id", type=int, help="client id (a trainer's preferred id)")
    parser.add_argument("-p", "--port", type=int, help="port of an edge server (Plato cross-silo)")
    parser.add_argument(
        "-c",
        "--config",
        help="Plato config, TOML or YAML: a path, s3:// or http(s):// URL (default: the job's "
        "platoConfig.url, ./config.toml, /config/fedavg.toml, else built from the job in a pod)",
    )
    parser.add_argument("-b", "--base", default="./runtime", help="base path for data, models, results")
    parser.add_argument("-s", "--server", help="aggregator host:port (overrides AGG_IP/AGG_PORT)")
    parser.add_argument("-u", "--cpu", action="store_true", help="use the CPU")
    parser.add_argument("-m", "--mps", action="store_true", help="use Apple MPS")
    parser.add_argument("-r", "--resume", action="store_true", help="resume from checkpoints")
    parser.add_argument("-l", "--log", default="info", help="log level")
    return parser


def _plato_argv(args: argparse.Namespace, resolved_config: Path, base: str) -> list[str]:
    argv = ["plato", "-c", str(resolved_config), "-b", base, "-l", args.log]
    for flag, value in (("-i", args.id), ("-p", args.port), ("-s", args.server)):
        if value is not None:
            argv += [flag, str(value)]
    argv += [flag for flag, on in (("-u", args.cpu), ("-m", args.mps), ("-r", args.resume)) if on]
    return argv


def _aggregator_address(args, context) -> tuple[tuple[str, ...], int]:
    if args.server:
        host, _, port = args.server.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"-s {args.server!r} must be host:port")
        return (host,), int(port)
    # AGG_IP first; the Service name as a fallback, since AGG_IP can be stale (sedna.md §1.3).
    service = f"{context.job_name}-aggregation.{context.namespace}" if context.job_name and context.namespace else None
    hosts = tuple(dict.fromkeys(host for host in (context.agg_ip, service) if host))
    if not hosts:
        raise ConfigError(
            "the trainer cannot find the aggregator: AGG_IP is not set, and neither are "
            "JOB_NAME and NAMESPACE (the <job>-aggregation.<namespace> Service); or pass -s host:port"
        )
    return hosts, context.agg_port


def _job_facts(context):
    """The FederatedLearningJob's facts where this role uses them, else None (no API read).

    Trainers read them too: whether other workers share their Dataset (partitioning.py).
    """
    if context.role in ("aggregator", "trainer"):
        from plato_sedna import resources

        return resources.job_facts(context)
    return None


def _log_like_plato(level_name: str) -> None:
    """Plato's own log format and level from the start, so that what resolving the config
    says (defaults taken, env overrides, keys dropped in pods) reaches the pod's log;
    Plato's later ``basicConfig`` then finds the handler in place."""
    level = getattr(logging, level_name.upper(), None)
    if isinstance(level, int):
        logging.basicConfig(format="[%(levelname)s][%(asctime)s]: %(message)s", datefmt="%H:%M:%S")
        logging.getLogger().setLevel(level)


def _start(args: argparse.Namespace) -> int:
    from plato_sedna import launch, preflight
    from plato_sedna.config import resolve_config, with_job_wide_hyperparameters, write_config
    from plato_sedna.config_source import config_to_run
    from plato_sedna.context import SednaContext, valueless_hyperparameters
    from plato_sedna.partitioning import place_trainer

    _log_like_plato(args.log)
    context = SednaContext.from_env(os.environ)
    for name in valueless_hyperparameters(os.environ):
        print(f"plato: warning: env {name} has no value; it is treated as unset", file=sys.stderr)
    tls = launch.link_tls(context)  # a bad certificate, key or CA file fails the pod before Plato loads
    if context.role == "aggregator":
        preflight.check_model_url(context.model_url)  # before any training it would waste
    job = _job_facts(context)
    raw = config_to_run(args.config, args.base, context, job)
    context = place_trainer(with_job_wide_hyperparameters(context, job), raw, args.id, job)
    resolved = resolve_config(raw, context, job)
    base = str(resolved.get("general", {}).get("base_path", args.base))
    resolved_path = write_config(resolved, Path(base) / RESOLVED_CONFIG_NAME)

    # Plato reads its config from `config_file` and parses sys.argv itself; spawned
    # client processes inherit both, so they see the same resolved values.
    os.environ["config_file"] = str(resolved_path)
    sys.argv = _plato_argv(args, resolved_path, base)
    from plato.config import Config

    Config()
    server_type = resolved.get("server", {}).get("type")
    launch.use_he_context(context, server_type)
    launch.use_mpc_store(context, server_type)
    preflight.check_registry_names(context.role)
    preflight.check_model_format(context.role, context.model_url)  # a format the model cannot take
    if context.role == "aggregator":
        launch.run_aggregator(context.trainer_token, tls)
        return 0
    if context.role == "trainer":
        hosts, port = _aggregator_address(args, context)
        identity = context.trainer_identity or f"trainer-{os.getpid()}"
        launch.run_trainer(identity, args.id, hosts, port, context.connect_timeout, context.trainer_token, tls)
        return 0
    launch.run_plain()
    return 0


def plato_main(argv: list[str] | None = None) -> int:
    """``plato -c CONFIG [Plato's flags]``."""
    args = _plato_parser().parse_args(argv)
    try:
        return _start(args)
    except PlatoSednaError as error:
        print(f"plato: error: {error}", file=sys.stderr)
        return error.exit_code


def plato_sedna_main(argv: list[str] | None = None) -> int:
    """``plato-sedna run JOB.yaml`` and the other tool commands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "run": "plato_sedna.local.command",
        "render": "plato_sedna.tools.render",
        "validate": "plato_sedna.tools.validate",
        "he-context": "plato_sedna.tools.he_context_command",
    }
    if not argv or argv[0] not in commands:
        print(
            "usage: plato-sedna {run,render,validate,he-context} ...\n"
            "  run       run Sedna manifests (Dataset, Model, FederatedLearningJob) as local processes\n"
            "  render    write a job's manifests from a Plato config: -c CONFIG --trainer NODE=URL ... --model-url URL\n"
            "  validate  check manifests and Plato configs before applying them: FILE ...\n"
            "  he-context  write a fedavg_he job's CKKS context, to store as its Secret: FILE",
            file=sys.stderr,
        )
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    import importlib

    return importlib.import_module(commands[argv[0]]).main(argv[1:])
