"""Logical client ids for trainers, keyed by their stable names rather than PIDs.

The aggregator records the ids beside its checkpoints (``trainer_ids.json``), so a
restarted aggregator gives every trainer the id it had, whatever order they rejoin in.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from plato_sedna.partitioning import claimed_id
from plato_sedna.storage.local import write_atomically

LOGGER = logging.getLogger(__name__)

ROSTER_FILE_NAME = "trainer_ids.json"


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
        preferred_id = claimed_id(identity) or preferred_id  # see refusal(): free when asked
        taken = set(self.ids_by_identity.values())
        if preferred_id is not None and 1 <= preferred_id <= self.capacity and preferred_id not in taken:
            chosen = preferred_id
        else:
            chosen = next((i for i in range(1, self.capacity + 1) if i not in taken), None)
        if chosen is not None:
            self.ids_by_identity[identity] = chosen
        return chosen

    def refusal(self, identity: str, preferred_id: int | None) -> str | None:
        """Why ``identity`` cannot join; None when it can (it then gets :meth:`assign`'s id).

        An identity ``dataset#N`` (a partition of a shared Dataset) must be client #N.
        """
        required = claimed_id(identity)
        if required is None:
            free = identity in self.ids_by_identity or len(self.ids_by_identity) < self.capacity
            return None if free else f"all {self.capacity} trainer slots of this job are taken"
        dataset = identity.rpartition("#")[0]
        if not 1 <= required <= self.capacity:
            return (
                f"it takes partition {required} of Dataset {dataset}, but the job has {self.capacity} "
                f"trainers; give the trainers on that Dataset -i 1 to {self.capacity}"
            )
        if preferred_id not in (None, required):
            return f"it takes partition {required} of Dataset {dataset} but asked for client #{preferred_id}"
        holder = self.identity_of(required)
        if holder not in (None, identity):
            return (
                f"it takes partition {required} of Dataset {dataset}, so it must be client #{required}, "
                f"but trainer {holder} already is; give each trainingWorkers entry its own -i N"
            )
        if self.ids_by_identity.get(identity, required) != required:
            return f"it takes partition {required} of Dataset {dataset} but was client #{self.ids_by_identity[identity]}"
        return None

    def identity_of(self, client_id: int) -> str | None:
        """The identity holding ``client_id``, if any."""
        return next((name for name, cid in self.ids_by_identity.items() if cid == client_id), None)

    def save(self, path: Path, job: str | None) -> None:
        """Record the ids for ``job`` in ``path``, atomically."""
        record = {"job": job, "ids": dict(sorted(self.ids_by_identity.items()))}
        text = json.dumps(record, indent=2).encode()
        write_atomically(path, lambda file: file.write(text))

    @classmethod
    def restore(cls, path: Path, capacity: int, job: str | None) -> TrainerRoster:
        """The roster recorded in ``path`` for ``job``; a fresh one when there is none to use."""
        roster = cls(capacity)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return roster
        except (OSError, ValueError) as error:
            LOGGER.warning("Trainer ids in %s cannot be read (%s); assigning them afresh", path, error)
            return roster
        ids = record.get("ids") if isinstance(record, dict) else None
        if not isinstance(ids, dict) or record.get("job") != job:
            LOGGER.info("Trainer ids in %s are not this job's; assigning them afresh", path)
            return roster
        for identity, client_id in ids.items():
            if isinstance(client_id, int) and 1 <= client_id <= capacity and client_id not in roster.ids_by_identity.values():
                roster.ids_by_identity[str(identity)] = client_id
        LOGGER.info("Restored the ids of %d trainer(s) from %s", len(roster.ids_by_identity), path)
        return roster
