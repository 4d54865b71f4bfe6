"""Aggregator restart: checkpoint every completed round, and go on from the last one on start.

A killed aggregator that Kubernetes (or ``plato-sedna run``) restarts finds its resume
record (:mod:`plato_sedna.servers.resume`), takes back the global weights, the round
number, the progress history (which also holds the stop condition's state) and the
trainer ids, and waits for the trainers to reconnect; the job then runs exactly its
configured rounds. Plato's ``-r/--resume`` needs no flag here: resuming is automatic.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from pathlib import Path

from plato_sedna import runtime_config
from plato_sedna.errors import PlatoSednaError
from plato_sedna.servers import resume
from plato_sedna.servers.progress import reported_accuracy
from plato_sedna.servers.stop import RoundState
from plato_sedna.storage.local import write_atomically

LOGGER = logging.getLogger(__name__)


class ResumeMixin:
    """Placed in front of :class:`SednaServerMixin`, whose job name, progress and roster it uses."""

    def configure(self) -> None:
        super().configure()
        self.resume_folder = Path(runtime_config.plato_path("checkpoint_path")).absolute()
        self.resume_url = mirror_url(self.model_url, self.job_name)
        self.finish_on_start: str | None = None
        self.run_id = uuid.uuid4().hex  # a resumed run keeps its record's
        self._checkpoint_files: list[Path] = []
        storage = _storage() if self.resume_url else None
        checkpoint = resume.find_checkpoint(self.resume_folder, self.job_name, storage, self.resume_url)
        if checkpoint is not None:
            self._resume_from(checkpoint)

    def _resume_from(self, checkpoint: resume.Checkpoint) -> None:
        record = checkpoint.record
        LOGGER.info(
            "Resuming job %s from round %d (checkpoint at %s, saved %s)",
            self.job_name, record.round, checkpoint.location, record.saved_at,
        )
        self.algorithm.load_weights(checkpoint.load_weights())
        self.run_id = record.run_id or self.run_id
        self.current_round = record.round
        self.accuracy = record.accuracy
        self.resumed_session = True  # Plato starts the next round once the trainers are back
        self.progress.history = list(record.history)
        self.started_at = time.monotonic() - record.history[-1].elapsed_s
        self.round_started_at = time.monotonic()
        if not self.roster.ids_by_identity:  # the roster file went with the local checkpoint folder
            self.roster.ids_by_identity.update(record.trainer_ids)
        losses = [entry.loss for entry in record.history if entry.loss is not None]
        self.finish_on_start = self.stop_condition.reason(
            RoundState(round=record.round, accuracy=record.accuracy, losses=losses)
        )

    def _resume_from_checkpoint(self) -> None:
        # Plato's -r/--resume: the resume record was already applied in configure().
        LOGGER.info("-r/--resume: the aggregator resumes from its resume record by itself")

    async def _select_clients(self, for_next_batch=False):
        if self.finish_on_start is not None:  # killed after its last round, before it could end the job
            self.progress.stop_reason, self.finish_on_start = self.finish_on_start, None
            await self._close()
            return
        await super()._select_clients(for_next_batch)

    def save_to_checkpoint(self) -> None:
        super().save_to_checkpoint()
        if self.current_round < 1:
            return
        record = resume.ResumeRecord(
            job=self.job_name,
            round=self.current_round,
            accuracy=reported_accuracy(self.accuracy),
            weights="",
            weights_sha256="",
            history=tuple(self.progress.history),
            trainer_ids=dict(self.roster.ids_by_identity),
            run_id=self.run_id,
        )
        self._checkpoint_files = resume.save_checkpoint(
            self.resume_folder, record, self.algorithm.extract_weights()
        )
        self._mirror()

    def server_will_close(self) -> None:
        """Mark the record final: a later start of this job begins afresh."""
        super().server_will_close()
        record_path = self.resume_folder / resume.RECORD_NAME
        if not self._checkpoint_files or not record_path.is_file():
            return
        record = resume.ResumeRecord.from_json(record_path.read_bytes())
        final = replace(record, final=True, stop_reason=self.progress.stop_reason or "completed")
        write_atomically(record_path, lambda file: file.write(final.to_json()))
        self._mirror()

    def _mirror(self) -> None:
        if not self.resume_url:
            return
        try:
            resume.mirror_checkpoint(_storage(), self.resume_url, self._checkpoint_files)
        except (PlatoSednaError, OSError) as error:  # the local checkpoint still holds the round
            LOGGER.warning("Mirroring the resume record to %s failed: %s", self.resume_url, error)


def mirror_url(model_url: str | None, job: str | None) -> str | None:
    """The folder beside the published model (its writable URL inside a Sedna pod)."""
    if not model_url:
        return None
    from plato_sedna.models import global_model

    if model_url.startswith(global_model.SEDNA_DOWNLOADS):
        from plato_sedna import resources

        model_url = global_model.publish_url(model_url, resources.aggregation_model())
        if model_url.startswith(global_model.SEDNA_DOWNLOADS):
            return None  # a read-only copy: nowhere to mirror to
    return resume.remote_folder(model_url, job)


def _storage():
    from plato_sedna.worker_storage import worker_storage

    return worker_storage()
