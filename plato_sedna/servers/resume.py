"""The aggregator's resume record: what a restarted aggregator needs to go on from its last round.

After every completed round the aggregator writes, in its checkpoint folder (a volume
in a pod), the global weights (``resume-weights-NNNN.pth``) and then ``resume.json``:
the job, the round, its accuracy, the progress history and the trainer ids. The same
two files are mirrored to a folder beside the published model
(``<MODEL_URL's folder>/.plato-sedna-resume/<job>/``, a path or ``s3://``), so an
aggregator whose container lost its local files resumes too. The weights come first
and the record last, and the previous round's weights are removed only after the new
record is in place: a record always names complete weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from plato_sedna.errors import ResourceError
from plato_sedna.servers.progress import RoundRecord
from plato_sedna.storage.local import write_atomically

LOGGER = logging.getLogger(__name__)

RECORD_NAME = "resume.json"
WEIGHTS_PREFIX = "resume-weights-"
REMOTE_FOLDER = ".plato-sedna-resume"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ResumeRecord:
    """The state of a job after its last completed round."""

    job: str | None
    round: int
    accuracy: float
    weights: str  # file name of the global weights, beside the record
    weights_sha256: str
    history: tuple[RoundRecord, ...] = ()
    trainer_ids: Mapping[str, int] = field(default_factory=dict)
    final: bool = False  # the job had met its stop condition: nothing to resume
    saved_at: str = ""
    run_id: str = ""  # the aggregator's run (kept across its restarts): trainers check a final record by it
    stop_reason: str = ""  # why the job ended, in a final record

    def to_json(self) -> bytes:
        document = {**asdict(self), "format": FORMAT_VERSION, "history": [asdict(r) for r in self.history]}
        return json.dumps(document, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, text: bytes | str) -> ResumeRecord:
        """Parse a record; ValueError names what is wrong with it."""
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
            raise ValueError(f"not a format-{FORMAT_VERSION} resume record")
        round_number, weights = document.get("round"), document.get("weights")
        if not isinstance(round_number, int) or isinstance(round_number, bool) or round_number < 1:
            raise ValueError(f"round {round_number!r} is not a positive integer")
        if not isinstance(weights, str) or not weights.startswith(WEIGHTS_PREFIX) or "/" in weights:
            raise ValueError(f"weights {weights!r} is not a weights file name")
        history = tuple(RoundRecord(**entry) for entry in document.get("history") or ())
        if [entry.round for entry in history] != list(range(1, round_number + 1)):
            raise ValueError(f"its history does not hold rounds 1..{round_number} once each")
        ids = document.get("trainer_ids") or {}
        return cls(
            job=document.get("job"),
            round=round_number,
            accuracy=float(document.get("accuracy") or 0.0),
            weights=weights,
            weights_sha256=str(document.get("weights_sha256")),
            history=history,
            trainer_ids={str(k): int(v) for k, v in ids.items()},
            final=bool(document.get("final")),
            saved_at=str(document.get("saved_at") or ""),
            run_id=str(document.get("run_id") or ""),
            stop_reason=str(document.get("stop_reason") or ""),
        )


@dataclass(frozen=True)
class Checkpoint:
    """A usable resume record, the weights file it names, and where it was found."""

    record: ResumeRecord
    weights_path: Path
    location: str

    def load_weights(self):
        import torch

        return torch.load(self.weights_path, map_location="cpu", weights_only=True)


def weights_name(round_number: int) -> str:
    return f"{WEIGHTS_PREFIX}{round_number:04d}.pth"


def remote_folder(model_url: str, job: str | None) -> str:
    """The folder beside the published model that mirrors the job's resume record."""
    from plato_sedna.models.publish import model_folder

    # a folder url (``/model``, ``s3://bucket/models/``) holds it, never its parent
    return f"{model_folder(model_url).rstrip('/')}/{REMOTE_FOLDER}/{job or 'job'}"


def save_checkpoint(folder: Path, record: ResumeRecord, weights) -> list[Path]:
    """Write the weights, then the record, then drop older weights; the two files written.

    ``record.weights`` and ``record.weights_sha256`` are filled in here.
    """
    import torch

    weights_path = folder / weights_name(record.round)
    write_atomically(weights_path, lambda file: torch.save(weights, file))
    record = _with_weights(record, weights_path)
    record_path = folder / RECORD_NAME
    write_atomically(record_path, lambda file: file.write(record.to_json()))
    for stale in folder.glob(f"{WEIGHTS_PREFIX}*.pth"):
        if stale.name != weights_path.name:
            stale.unlink(missing_ok=True)
    return [weights_path, record_path]


def mirror_checkpoint(storage, folder_url: str, files: list[Path]) -> None:
    """Copy the files :func:`save_checkpoint` wrote to ``folder_url`` (record last), dropping older weights."""
    for path in files:
        storage.publish_atomically(path, f"{folder_url}/{path.name}")
    keep = {path.name for path in files}
    for name in storage.list_folder(folder_url):
        if name.startswith(WEIGHTS_PREFIX) and name not in keep:
            storage.delete(f"{folder_url}/{name}")


def find_checkpoint(folder: Path, job: str | None, storage=None, folder_url: str | None = None) -> Checkpoint | None:
    """The job's checkpoint in ``folder``, else in ``folder_url``; None when neither has a usable one."""
    local = _checked(folder / RECORD_NAME, job, lambda name: folder / name)
    if local is not None or storage is None or not folder_url:
        return local
    try:
        record_path = storage.to_local_path(f"{folder_url}/{RECORD_NAME}")
    except ResourceError as error:
        LOGGER.info("No resume record at %s (%s); starting the job afresh", folder_url, error)
        return None
    return _checked(record_path, job, lambda name: storage.to_local_path(f"{folder_url}/{name}"), folder_url)


def final_record(storage, folder_url: str, run_id: str) -> ResumeRecord | None:
    """The mirrored record at ``folder_url`` when it says run ``run_id`` has ended, else None.

    A trainer whose aggregator is gone reads it to tell "the job completed while I was
    away" from "the aggregator is restarting" (absent, unreadable, another run's, or
    not final: None).
    """
    try:
        record = ResumeRecord.from_json(storage.to_local_path(f"{folder_url}/{RECORD_NAME}").read_bytes())
    except (ResourceError, OSError, ValueError, TypeError):
        return None
    return record if record.final and record.run_id == run_id else None


def _checked(record_path: Path, job: str | None, locate, location: str | None = None) -> Checkpoint | None:
    """The checkpoint ``record_path`` describes, or None (with a warning when it is unusable)."""
    location = location or str(record_path.parent)
    try:
        record = ResumeRecord.from_json(record_path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:
        LOGGER.warning("Ignoring the resume record in %s: %s; starting the job afresh", location, error)
        return None
    if record.job != job:
        LOGGER.warning(
            "Ignoring the resume record in %s: it is job %r's, not %r; starting the job afresh",
            location, record.job, job,
        )
        return None
    if record.final:
        LOGGER.info("The resume record in %s is of a finished run (%d rounds); starting the job afresh", location, record.round)
        return None
    try:
        weights_path = Path(locate(record.weights))
        digest = _sha256(weights_path)
    except (OSError, ResourceError) as error:
        LOGGER.warning("Ignoring the resume record in %s: its weights cannot be read (%s); starting the job afresh", location, error)
        return None
    if digest != record.weights_sha256:
        LOGGER.warning("Ignoring the resume record in %s: %s does not match its checksum; starting the job afresh", location, record.weights)
        return None
    return Checkpoint(record, weights_path, location)


def _with_weights(record: ResumeRecord, weights_path: Path) -> ResumeRecord:
    from dataclasses import replace

    saved_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return replace(record, weights=weights_path.name, weights_sha256=_sha256(weights_path), saved_at=saved_at)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
