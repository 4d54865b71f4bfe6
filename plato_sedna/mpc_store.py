"""The MPC round store of secret shares, shared by the aggregator and every trainer pod.

Plato 1.41's ``fedavg_mpc_additive``/``fedavg_mpc_shamir`` keep each round's
bookkeeping (the selected trainers, their sample counts, the shares destined for each
trainer) in one pickled object that every party reads and rewrites under a lock: a
multiprocessing lock in a local folder, or ZooKeeper beside S3. Pods share neither.
This store needs no lock: every write is an object of its own, named by round and
writer, and a read lists the round's objects and folds them into Plato's
``RoundInfoState``. It lives where every worker can reach it: an ``s3://`` prefix (by
default the job's folder under the S3 transmitter's ``AGG_DATA_PATH``) or a folder
every pod mounts, named by ``PLATO_SEDNA_MPC_STORE_URL``.
"""

from __future__ import annotations

import logging
import pickle
import re
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plato.mpc.round_store import RoundInfoState, RoundInfoStore

from plato_sedna.context import MPC_ALGORITHMS as ALGORITHMS
from plato_sedna.context import MPC_STORE_URL_ENV as STORE_URL_ENV
from plato_sedna.errors import ConfigError, PlatoSednaError

if TYPE_CHECKING:
    from plato_sedna.context import SednaContext
    from plato_sedna.storage import Storage

LOGGER = logging.getLogger(__name__)

_STATE = re.compile(r"r(\d{6})\.state")


def _round_prefix(round_number: int) -> str:
    return f"r{round_number:06d}."


class SharedRoundStore(RoundInfoStore):
    """Plato's round store, as objects under ``url`` read and written through ``storage``.

    Parameters
    ----------
    url : str
        The store's folder: an ``s3://`` prefix or a local path (a shared mount).
    storage : Storage
        The worker's storage layer (S3 settings from Sedna's env).
    scratch_dir : str
        A local folder for Plato's optional debug artefacts.
    """

    def __init__(self, url: str, storage: Storage, scratch_dir: str) -> None:
        super().__init__(storage_dir=scratch_dir)
        self.url = url.rstrip("/") + "/"
        self._storage = storage

    # Objects

    def _put(self, name: str, value: Any) -> None:
        with tempfile.TemporaryDirectory(dir=self.storage_dir) as folder:
            local = Path(folder) / name
            local.write_bytes(pickle.dumps(value))
            self._storage.publish(local, self.url + name)

    def _get(self, name: str) -> Any:
        return pickle.loads(self._storage.to_local_path(self.url + name, unpack=False).read_bytes())

    def _current_round(self) -> tuple[int, list[str]]:
        """The latest initialised round and its objects' names."""
        names = self._storage.list_folder(self.url)
        rounds = [int(match.group(1)) for name in names if (match := _STATE.fullmatch(name))]
        if not rounds:
            raise RuntimeError(f"Round information has not been initialised yet (no round in {self.url}).")
        latest = max(rounds)
        prefix = _round_prefix(latest)
        return latest, [name for name in names if name.startswith(prefix)]

    # Plato's interface; the writers return None (Plato's callers ignore what they return).

    def reset(self) -> None:
        self._storage.delete(self.url)

    def initialise_round(self, round_number: int, selected_clients) -> RoundInfoState:
        state = RoundInfoState(round_number=round_number)
        state.initialise_clients(selected_clients)
        for name in self._storage.list_folder(self.url):  # rounds before the last are done with
            match = re.fullmatch(r"r(\d{6})\..*", name)
            if match and int(match.group(1)) < round_number - 1:
                self._storage.delete(self.url + name)
        self._put(f"{_round_prefix(round_number)}state", state)
        return state

    def record_client_samples(self, client_id: int, num_samples: int) -> None:
        round_number, _ = self._current_round()
        self._put(f"{_round_prefix(round_number)}samples.{int(client_id)}", int(num_samples))

    def append_additive_share(self, target_client: int, share_payload: dict[str, Any]) -> None:
        round_number, _ = self._current_round()
        self._put(f"{_round_prefix(round_number)}additive.{int(target_client)}.{uuid.uuid4().hex}", share_payload)

    def store_pairwise_share(self, target_client: int, from_client: int, share_payload: dict[str, Any]) -> None:
        round_number, _ = self._current_round()
        self._put(f"{_round_prefix(round_number)}pairwise.{int(target_client)}.{int(from_client)}", share_payload)

    def load_state(self) -> RoundInfoState:
        round_number, names = self._current_round()
        prefix = _round_prefix(round_number)
        state: RoundInfoState = self._get(f"{prefix}state")
        for name in sorted(names):
            kind, _, rest = name[len(prefix) :].partition(".")
            if kind == "samples":
                state.client_samples[int(rest)] = self._get(name)
            elif kind == "additive":
                target = int(rest.split(".")[0])
                share = self._get(name)
                existing = state.additive_shares.get(target)
                if existing is None:
                    state.additive_shares[target] = share
                else:
                    for key, value in share.items():
                        existing[key] += value
            elif kind == "pairwise":
                target, source = (int(part) for part in rest.split("."))
                state.pairwise_shares[(target, source)] = self._get(name)
        return state


def store_url(context: SednaContext, environ) -> str:
    """Where the job's round store lives: ``PLATO_SEDNA_MPC_STORE_URL``, else beside the S3 transmitter's payloads.

    Raises
    ------
    ConfigError
        When neither is set, or the URL cannot be written (http).
    """
    given = (environ.get(STORE_URL_ENV) or "").strip()
    if given:
        if given.startswith(("http://", "https://")):
            raise ConfigError(f"{STORE_URL_ENV}={given!r} cannot be written; use an s3:// prefix or a folder every pod mounts")
        return given
    if context.transmitter == "s3":
        from plato_sedna.transport.folder import PayloadFolder

        folder = PayloadFolder.from_agg_data_path(context.agg_data_path, namespace=context.namespace, job_name=context.job_name)
        return folder.url + "mpc/"
    raise ConfigError(
        f"{'/'.join(ALGORITHMS)} keep a round store of secret shares that the aggregator and every "
        "trainer read and write, and this pod has none; use the S3 transmitter (spec.transmitter.s3: "
        f"the store goes beside its payloads) or set {STORE_URL_ENV} in every pod template to an "
        "s3:// prefix or a folder every pod mounts (a ReadWriteMany volume)"
    )


def use_shared_store(url: str) -> None:
    """Make Plato's MPC server, client and processors use the store at ``url``; checked by a write."""
    from plato_sedna.worker_storage import worker_storage

    storage = worker_storage()
    probe = f"probe.{uuid.uuid4().hex}"
    store = SharedRoundStore(url, storage, RoundInfoStore._default_storage_dir())
    try:
        store._put(probe, b"")
        storage.delete(store.url + probe)
    except (PlatoSednaError, OSError) as error:
        raise ConfigError(f"the MPC round store {url} cannot be written ({error}); fix {STORE_URL_ENV} or the S3 transmitter") from None

    def from_config(cls, lock=None) -> SharedRoundStore:
        return SharedRoundStore(url, storage, cls._default_storage_dir())

    RoundInfoStore.from_config = classmethod(from_config)  # Plato's MPC parts build their store through it
    LOGGER.info("MPC round store: %s (shared by the aggregator and every trainer)", store.url)
