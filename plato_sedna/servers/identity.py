"""Logical client ids for trainers, keyed by their stable names rather than PIDs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainerRoster:
    """Assigns each trainer identity (e.g. its DATASET_NAME) one id in 1..capacity.

    capacity : int
        The number of trainers in the job (``clients.total_clients``).
    """

    capacity: int
    ids_by_identity: dict[str, int] = field(default_factory=dict)

    def assign(self, identity: str, preferred_id: int | None = None) -> int | None:
        """Return the identity's id: the one it had, else the preferred or lowest free one.

        Returns None when every id is taken by another identity.
        """
        if identity in self.ids_by_identity:
            return self.ids_by_identity[identity]
        taken = set(self.ids_by_identity.values())
        if preferred_id is not None and 1 <= preferred_id <= self.capacity and preferred_id not in taken:
            chosen = preferred_id
        else:
            chosen = next((i for i in range(1, self.capacity + 1) if i not in taken), None)
        if chosen is not None:
            self.ids_by_identity[identity] = chosen
        return chosen

    def identity_of(self, client_id: int) -> str | None:
        """The identity holding ``client_id``, if any."""
        return next((name for name, cid in self.ids_by_identity.items() if cid == client_id), None)
