"""Trainer loss: a trainer that disconnects mid-round does not stall the job.

``[server] trainer_timeout`` (seconds, default 300; env ``trainer_timeout``) and
``[server] on_trainer_loss`` (env ``on_trainer_loss``):

- ``"continue"`` (default): once a trainer that owes the round an update has been
  disconnected for ``trainer_timeout``, the round is aggregated with the updates of
  the others; if none trains it any more, the round goes to free trainers, and with
  none free it waits and says so. A trainer that rejoins before the timeout gets its
  round again (and the round waits for it); after it, it joins the next round.
- ``"wait"``: the round waits for the trainer to rejoin and get its round again,
  logging every ``trainer_timeout`` seconds.

A round that starts with no trainer connected and free starts as soon as one
joins or finishes. A trainer behind a cut link is noticed only when its
connection drops (``server.ping_interval``/``ping_timeout``); a trainer that is
connected but slow is the round deadline's business (``[server.aggregation_trigger]``).

Every loss and rejoin is recorded in ``metrics.json`` (``trainer_events``), and
each round's entry in its ``history`` lists the trainers ``missing`` from its
aggregate, ``lost`` during it and ``rejoined`` during it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError

LOGGER = logging.getLogger(__name__)

POLICIES = ("continue", "wait")
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class TrainerLossPolicy:
    """What a round does when a trainer it waits for is gone."""

    on_loss: str = "continue"
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.on_loss not in POLICIES:
            raise ConfigError(
                f"server.on_trainer_loss = {self.on_loss!r} is not a policy; use one of {', '.join(POLICIES)}"
            )
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, int | float) or not self.timeout_s > 0:
            raise ConfigError(
                f"server.trainer_timeout = {self.timeout_s!r} is not a positive number of seconds; "
                "set it to e.g. 60"
            )

    @classmethod
    def from_config(cls) -> TrainerLossPolicy:
        timeout_s = runtime_config.setting("server", "trainer_timeout", DEFAULT_TIMEOUT_S)
        on_loss = runtime_config.setting("server", "on_trainer_loss", "continue")
        return cls(on_loss.strip().lower() if isinstance(on_loss, str) else on_loss, timeout_s)


class TrainerLossMixin:
    """Placed in front of :class:`SednaServerMixin`, whose ``clients`` are keyed by logical id."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.loss_policy = TrainerLossPolicy.from_config()
        LOGGER.info(
            "A trainer lost mid-round: %s after %.0f s",
            "the round goes on without it" if self.loss_policy.on_loss == "continue" else "the round waits for it",
            self.loss_policy.timeout_s,
        )
        self._lost_at: dict[int, float] = {}  # client id -> when it disconnected
        self._round_lost: set[int] = set()
        self._round_rejoined: set[int] = set()
        self._round_dropped: set[int] = set()  # lost, and no longer waited for this round
        self._round_threshold = 0
        self._stalled = False

    # Leaving and rejoining

    async def _client_disconnected(self, sid):
        client_id = self._client_id_of(sid)
        owed = client_id is not None and self._owes_update(client_id)
        await super()._client_disconnected(sid)
        if client_id is None or client_id in self.clients or self.progress.stop_reason is not None:
            return  # not a trainer, or the job is over
        self._lost_at[client_id] = time.monotonic()
        self._record("lost", client_id, during_round=owed)
        if owed:
            self._round_lost.add(client_id)
            asyncio.get_running_loop().create_task(self._watch_lost(client_id, self.current_round))

    async def register_client(self, sid, client_process_id, client_id):
        await super().register_client(sid, client_process_id, client_id)
        logical_id = self._client_id_of(sid)
        if logical_id is not None and logical_id in self._lost_at:
            lost_s = time.monotonic() - self._lost_at.pop(logical_id)
            self._record("rejoined", logical_id, lost_s=round(lost_s, 3))
            if logical_id in self._round_lost:
                self._round_rejoined.add(logical_id)
            if logical_id in self._round_dropped and self._owes_update(logical_id):
                self._round_dropped.discard(logical_id)  # it got its round again: wait for it
                self.clients_per_round = self._needed_updates()
        await self._reselect_if_idle()

    async def process_client_info(self, client_id, sid):
        await super().process_client_info(client_id, sid)
        await self._reselect_if_idle()  # a late trainer is free again

    def _client_id_of(self, sid) -> int | None:
        return next((cid for cid, process in self.clients.items() if process["sid"] == sid), None)

    def _owes_update(self, client_id: int) -> bool:
        return (
            self.current_round > 0
            and self._aggregated_round != self.current_round
            and client_id in (self.selected_clients or [])
            and client_id not in self.current_reported_clients
        )

    def _record(self, event: str, client_id: int, **details) -> None:
        self.progress.trainer_events.append(
            {
                "event": event,
                "client_id": client_id,
                "trainer": self.roster.identity_of(client_id),
                "round": self.current_round,
                "elapsed_s": round(time.monotonic() - self.started_at, 3),
                **details,
            }
        )

    # The round without the lost trainer

    async def _watch_lost(self, client_id: int, round_number: int) -> None:
        policy = self.loss_policy
        while True:
            await asyncio.sleep(policy.timeout_s)
            if not self._still_lost(client_id, round_number):
                return
            lost_s = time.monotonic() - self._lost_at[client_id]
            if policy.on_loss == "wait":
                LOGGER.warning(
                    "Round %d: waiting for trainer %s (client #%d), lost %.0f s ago, to rejoin "
                    "(server.on_trainer_loss = wait)",
                    round_number,
                    self.roster.identity_of(client_id),
                    client_id,
                    lost_s,
                )
                continue
            if client_id not in self._round_dropped:
                self._round_dropped.add(client_id)
                self._record("dropped", client_id, lost_s=round(lost_s, 3))
            if await self._aggregate_without_dropped(round_number):
                return
            LOGGER.warning(
                "Round %d: every trainer training it was lost (%s); no update to aggregate, "
                "waiting for one to rejoin",
                round_number,
                ", ".join(f"#{cid}" for cid in sorted(self._round_dropped)),
            )

    def _still_lost(self, client_id: int, round_number: int) -> bool:
        return (
            client_id not in self.clients
            and client_id in self._lost_at
            and self.current_round == round_number
            and self._aggregated_round != round_number
        )

    def _needed_updates(self) -> int:
        selected = self.selected_clients or []
        return min(self._round_threshold, len(selected) - len(self._round_dropped.intersection(selected)))

    async def _aggregate_without_dropped(self, round_number: int) -> bool:
        """Lower the round's threshold to the trainers left; aggregate if their updates are in."""
        needed = self._needed_updates()
        if needed < 1:
            return await self._reselect_if_idle()
        self.clients_per_round = needed
        LOGGER.warning(
            "Round %d: trainer(s) %s lost for more than %.0f s; the round goes on with %d update(s)",
            round_number,
            ", ".join(f"#{cid}" for cid in sorted(self._round_dropped)),
            self.loss_policy.timeout_s,
            needed,
        )
        if len(self.updates) >= needed:
            await self._process_reports()
            await self.wrap_up()
            await self._select_clients()
        return True

    # Starting rounds

    async def _select_clients(self, for_next_batch=False):
        if not for_next_batch:
            self._round_lost, self._round_rejoined, self._round_dropped = set(), set(), set()
        await super()._select_clients(for_next_batch)
        if not for_next_batch:
            self._round_threshold = self.clients_per_round
            self._stalled = not self.selected_clients
            if self._stalled:
                LOGGER.warning(
                    "Round %d: no trainer is connected and free; it starts when one joins or finishes",
                    self.current_round,
                )

    async def _reselect_if_idle(self) -> bool:
        """Give a round that nobody trains (none was free, or all were lost) to free trainers."""
        idle = self._stalled or (not self.updates and self._needed_updates() < 1)
        if not idle or self.current_round == 0 or self._aggregated_round == self.current_round:
            return False
        chosen = self.choose_clients(self.clients_pool, self.clients_per_round)
        if not chosen:
            return False
        self._stalled = False
        self.selected_clients = chosen
        self._round_threshold = self.clients_per_round
        LOGGER.warning("Round %d: nobody was training it; it goes to trainer(s) %s", self.current_round, chosen)
        await super()._select_clients(for_next_batch=True)
        return True

    def clients_processed(self) -> None:
        aggregated = {update.client_id for update in self.updates}
        self.progress.round_trainers[self.current_round] = {
            "missing": sorted((set(self.selected_clients or []) | self._round_dropped) - aggregated),
            "lost": sorted(self._round_lost),
            "rejoined": sorted(self._round_rejoined),
        }
        super().clients_processed()
