"""Starting the process's role once the resolved config is in place: aggregator, trainer or plain Plato."""

from __future__ import annotations

import asyncio
import logging

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError

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

    Config().args.id = preferred_id or 1
    client = registry.get()
    client.configure()
    client._load_data()  # a bad dataset fails the pod at start, not in round 1
    session = TrainerSession(client, identity, preferred_id)
    return asyncio.run(session.run(AggregatorAddress(hosts, port), connect_timeout_s))
