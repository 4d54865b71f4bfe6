"""Starting the process's role once the resolved config is in place: aggregator, trainer or plain Plato."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError, JobFailed

if TYPE_CHECKING:
    import ssl

    from plato_sedna.clients.tls import TrainerTls
    from plato_sedna.context import SednaContext
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


def link_tls(context: SednaContext) -> ssl.SSLContext | TrainerTls | None:
    """The aggregator's SSL context, or the CA a trainer verifies it against, from checked files.

    Called before Plato loads, so that a bad file fails the pod at once (ConfigError).
    """
    if context.role == "aggregator" and context.tls_cert_file:
        from plato_sedna.servers.tls import server_ssl_context

        return server_ssl_context(context.tls_cert_file, context.tls_key_file)
    if context.role == "trainer" and context.tls_ca_file:
        from plato_sedna.clients.tls import TrainerTls

        return TrainerTls.from_ca_file(context.tls_ca_file)
    return None


def use_he_context(context: SednaContext, server_type: str | None) -> None:
    """fedavg_he: every pod encrypts under the job's context file; plain Plato too when one is named.

    Without the file a pod stops here (ConfigError); plain Plato keeps its own
    ``.ckks_context/`` in the working directory.
    """
    from plato_sedna import he_context

    if server_type == he_context.ALGORITHM and (context.role != "plain" or context.he_context_file):
        he_context.use_context_file(context.he_context_file)


def use_mpc_store(context: SednaContext, server_type: str | None) -> None:
    """fedavg_mpc_*: the round store of secret shares where every pod reaches it.

    A pod without one stops here (ConfigError); plain Plato keeps its own folder
    unless ``PLATO_SEDNA_MPC_STORE_URL`` names one.
    """
    from plato_sedna.context import MPC_ALGORITHMS, MPC_STORE_URL_ENV

    if server_type not in MPC_ALGORITHMS or (context.role == "plain" and not os.environ.get(MPC_STORE_URL_ENV)):
        return
    from plato_sedna import mpc_store

    mpc_store.use_shared_store(mpc_store.store_url(context, os.environ))


def run_aggregator(trainer_token: str | None = None, tls_context: ssl.SSLContext | None = None) -> None:
    """The aggregation worker; ends the process (Plato's server exits when training ends).

    With ``trainer_token``, only connections that present it may join or send payloads;
    with ``tls_context`` (:func:`link_tls`), the link is served over TLS.
    """
    from plato_sedna.servers.sedna import sedna_server_class

    _drop_max_concurrency()
    store = _payload_store(sweep=True)  # TRANSMITTER=s3: checked before the server starts
    server = sedna_server_class(_server_class())()
    server.payload_store = store
    server.trainer_token = trainer_token
    server.tls_context = tls_context
    server.run()


def _drop_max_concurrency() -> None:
    """The aggregator pod ignores ``trainer.max_concurrency`` (trainers drop it in ``config._apply_trainer``).

    With it, Plato's server would start round 1 once ``max_concurrency`` trainers joined
    instead of ``per_round``, ask the selected trainer pods batch by batch, and test the
    global model (``TEST_DATASET_URL``) in a freshly spawned process each round.
    """
    from plato.config import Config

    if Config.trainer.pop("max_concurrency", None) is not None:
        LOGGER.info(
            "trainer.max_concurrency is ignored in a pod: each trainer pod is one client, "
            "and the aggregator tests in its own process"
        )


def run_trainer(
    identity: str,
    preferred_id: int | None,
    hosts: tuple[str, ...],
    port: int,
    connect_timeout_s: float,
    trainer_token: str | None = None,
    tls: TrainerTls | None = None,
) -> str:
    """One training worker; returns the job's stop reason or raises JobFailed.

    ``trainer_token`` is presented to the aggregator at connect (the job's shared token);
    with ``tls`` (:func:`link_tls`) the trainer connects over https, verifying the aggregator against its CA.
    """
    from plato.clients import registry
    from plato.config import Config

    from plato_sedna.clients.connection import AggregatorAddress, TrainerSession
    from plato_sedna.clients.report import add_train_loss
    from plato_sedna.transport.client import use_payload_store

    Config().args.id = preferred_id or 1
    address = AggregatorAddress(hosts, port, tls)
    progress = _trainer_progress()
    try:
        store = _payload_store(sweep=False)  # TRANSMITTER=s3: checked before any data loads
        client = registry.get()
        client.configure()
        if store is not None:
            use_payload_store(client, store)
        add_train_loss(client)  # for the aggregator's delta_loss stop condition
        client._load_data()  # a bad dataset fails the pod at start, not in round 1
        _log_partition(client)
        session = TrainerSession(
            client, identity, preferred_id, progress, token=trainer_token, final_record=_final_record_reader()
        )
        stop_reason = asyncio.run(session.run(address, connect_timeout_s))
    except Exception as error:
        progress.failed(_failure_reason(error))
        raise
    else:
        progress.completed()
        return stop_reason
    finally:
        progress.close()  # the last report goes out before the process exits


def _final_record_reader():
    """run id -> the aggregator's final resume record beside MODEL_URL, read when a trainer cannot reconnect.

    The folder is worked out on first use (it may ask the apiserver for the Model); a
    trainer that cannot see it (a hostPath on another node) just keeps reconnecting.
    """
    import functools

    from plato_sedna.errors import PlatoSednaError
    from plato_sedna.servers import resume
    from plato_sedna.servers.resume_server import mirror_url
    from plato_sedna.worker_storage import worker_storage

    @functools.cache
    def folder() -> str | None:
        try:
            return mirror_url(runtime_config.sedna("model_url"), runtime_config.sedna("job_name"))
        except (PlatoSednaError, OSError) as error:
            LOGGER.info("Cannot locate the aggregator's resume record (%s); reconnecting only", error)
            return None

    def read(run_id: str):
        return resume.final_record(worker_storage(), folder(), run_id) if folder() else None

    return read


def _log_partition(client) -> None:
    """On a shared Dataset: check the partition this trainer takes before round 1, and log it."""
    from plato_sedna.partitioning import log_partition, takes_partition

    shared_id = runtime_config.sedna("shared_dataset_id")
    if shared_id is not None and takes_partition(runtime_config.setting("data", "sampler")):
        log_partition(client.datasource, int(shared_id), runtime_config.sedna("dataset_name"))


def _payload_store(sweep: bool):
    """The checked S3 payload store when the transmitter is s3, else None (Plato's socket)."""
    from plato_sedna.context import SednaContext
    from plato_sedna.storage.settings import S3Settings
    from plato_sedna.transport.startup import open_payload_store

    # The keys are not in the [sedna] table (it is written to disk): read them here.
    settings = S3Settings.from_context(SednaContext.from_env(os.environ))
    return open_payload_store(
        runtime_config.sedna("transmitter", "ws"),
        runtime_config.sedna("agg_data_path"),
        settings,
        namespace=runtime_config.sedna("namespace"),
        job_name=runtime_config.sedna("job_name"),
        sweep=sweep,
    )


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
