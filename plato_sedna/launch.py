"""Starting the process's role once the resolved config is in place: aggregator, trainer or plain Plato."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError, JobFailed

if TYPE_CHECKING:
    from plato_sedna.status import TrainerProgress

LOGGER = logging.getLogger(__name__)


def _server_class():
    from plato.servers import registry

    server_type = runtime_config.setting("server", "type") or runtime_config.setting("algorithm", "type")
    try:
        return registry.registered_servers[server_type]
    except KeyError:
        known = ", ".join(sorted(registry.registered_servers))
        raise ConfigError(
            f"server.type (or algorithm.type) = {server_type!r} is not a Plato server; known: {known}"
        ) from None


def run_plain() -> None:
    """Exactly what Plato's own launcher does: a server that spawns its clients."""
    _server_class()().run()


def run_aggregator() -> None:
    """The aggregation worker; ends the process (Plato's server exits when training ends)."""
    from plato_sedna.servers.sedna import sedna_server_class

    sedna_server_class(_server_class())().run()


def run_trainer(identity: str, preferred_id: int | None, hosts: tuple[str, ...], port: int, connect_timeout_s: float) -> str:
    """One training worker; returns the job's stop reason or raises JobFailed."""
    from plato.clients import registry
    from plato.config import Config

    from plato_sedna.clients.connection import AggregatorAddress, TrainerSession
    from plato_sedna.clients.report import add_train_loss

    Config().args.id = preferred_id or 1
    progress = _trainer_progress()
    try:
        client = registry.get()
        client.configure()
        add_train_loss(client)  # for the aggregator's delta_loss stop condition
        client._load_data()  # a bad dataset fails the pod at start, not in round 1
        session = TrainerSession(client, identity, preferred_id, progress)
        stop_reason = asyncio.run(session.run(AggregatorAddress(hosts, port), connect_timeout_s))
    except Exception as error:
        progress.failed(_failure_reason(error))
        raise
    else:
        progress.completed()
        return stop_reason
    finally:
        progress.close()  # the last report goes out before the process exits


def _trainer_progress() -> TrainerProgress:
    """Progress reports to Sedna's LocalController; a no-op without ``LC_SERVER``."""
    from plato_sedna.context import SednaContext
    from plato_sedna.status import StatusReporter, TrainerProgress

    fields = ("lc_server", "worker_name", "namespace", "job_name", "model_url")
    pod = SednaContext(role="trainer", **{name: runtime_config.sedna(name) for name in fields})
    reporter = StatusReporter.from_context(pod)
    if reporter is not None:
        LOGGER.info(
            "Reporting progress to the LocalController at %s as worker %s",
            reporter.lc_server,
            reporter.worker_name,
        )
    tests = runtime_config.setting("clients", "do_test", False)
    interval = runtime_config.setting("clients", "test_interval", 1)
    return TrainerProgress(reporter, tests_every=interval if tests else None)


def _failure_reason(error: Exception) -> str:
    """A JobFailed already says what happened; anything else is named by its type."""
    if isinstance(error, JobFailed):
        return str(error)
    return f"{type(error).__name__}: {error}"
