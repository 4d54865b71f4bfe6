"""When a round is aggregated: enough trainers ready, or a timeout; late updates dropped.

``[server.aggregation_trigger]``: ``min_clients`` (the proposal's
``num_of_ready_clients`` threshold; default: every selected trainer) and
``timeout_s`` (aggregate what has arrived once this long has passed since the
round started; default: wait). An update that arrives after its round was
aggregated is dropped and logged: it was computed from an older global model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from plato_sedna.errors import ConfigError

LOGGER = logging.getLogger(__name__)

SETTINGS = ("min_clients", "timeout_s")


@dataclass(frozen=True)
class AggregationTrigger:
    """How many updates a round needs, and how long it waits for them."""

    min_clients: int | None = None
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.min_clients is not None and self.min_clients < 1:
            raise ConfigError(f"server.aggregation_trigger.min_clients = {self.min_clients} must be at least 1")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"server.aggregation_trigger.timeout_s = {self.timeout_s} must be positive")

    @classmethod
    def from_table(cls, table: Mapping | None) -> AggregationTrigger:
        table = dict(table or {})
        unknown = sorted(set(table) - set(SETTINGS))
        if unknown:
            raise ConfigError(f"server.aggregation_trigger has unknown keys {unknown}; use {', '.join(SETTINGS)}")
        try:
            min_clients = int(table["min_clients"]) if "min_clients" in table else None
            timeout_s = float(table["timeout_s"]) if "timeout_s" in table else None
        except (TypeError, ValueError) as error:
            raise ConfigError(f"server.aggregation_trigger: {error}; min_clients is a whole number, timeout_s seconds") from None
        return cls(min_clients, timeout_s)

    def threshold(self, selected: int) -> int:
        """Updates needed to aggregate a round in which ``selected`` trainers train."""
        return min(selected, self.min_clients or selected)


class AggregationTriggerMixin:
    """Round deadline and late-update handling for a Plato server (synchronous mode)."""

    trigger: AggregationTrigger
    _aggregated_round = 0
    _round_deadline: asyncio.Task | None = None

    async def _select_clients(self, for_next_batch=False):
        await super()._select_clients(for_next_batch)
        if not for_next_batch and self.trigger.timeout_s:
            if self._round_deadline is not None:
                self._round_deadline.cancel()
            self._round_deadline = asyncio.get_running_loop().create_task(self._deadline(self.current_round))

    async def _deadline(self, round_number: int) -> None:
        while True:
            await asyncio.sleep(self.trigger.timeout_s)
            if self.current_round != round_number or self._aggregated_round == round_number:
                return
            if self.updates:
                break
            LOGGER.warning(
                "Round %d: no update within %.0f s; still waiting for %s",
                round_number,
                self.trigger.timeout_s,
                self._missing_trainers(),
            )
        LOGGER.warning(
            "Round %d: aggregating %d of %d updates after %.0f s; late: %s (their updates will be dropped)",
            round_number,
            len(self.updates),
            len(self.selected_clients),
            self.trigger.timeout_s,
            self._missing_trainers(),
        )
        self.clients_per_round = len(self.updates)
        await self._process_reports()
        await self.wrap_up()
        await self._select_clients()

    def _missing_trainers(self) -> list[int]:
        reported = {update.client_id for update in self.updates}
        return [client_id for client_id in self.selected_clients or [] if client_id not in reported]

    async def _process_reports(self):
        self._aggregated_round = self.current_round
        await super()._process_reports()

    async def process_client_info(self, client_id, sid):
        started = self.training_clients.get(client_id, {}).get("starting_round")
        if started == self.current_round and self._aggregated_round != self.current_round:
            await super().process_client_info(client_id, sid)
            return
        LOGGER.warning(
            "Dropped a late update from client #%s for round %s: round %d is already aggregated or running",
            client_id,
            started,
            self.current_round if self._aggregated_round != self.current_round else self._aggregated_round,
        )
        self.training_clients.pop(client_id, None)
        if sid in self.training_sids:
            self.training_sids.remove(sid)
        self.reports.pop(sid, None)
        self.client_payload.pop(sid, None)
