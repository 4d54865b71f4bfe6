"""The bad-input corpus (tests/data/bad_inputs): configs, env, manifests, indexes and weights.

Every case ends in a clear error that names the thing and the fix: for the command-line
cases a non-zero exit and no traceback; and in every case nothing is lost (files that
were there before are unchanged, nothing the input asked for behind our back is done).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.processes import PLATO_SEDNA
from support.workers import clean_env
from test_cli_errors import run_plato

CORPUS = Path(__file__).parent / "data" / "bad_inputs"
CASES = tomllib.loads((CORPUS / "corpus.toml").read_text(encoding="utf-8"))["case"]
DATASET = "Dataset default/bad-inputs"
# A file a malicious input would create if it were executed (YAML tag, pickle reduce).
PWNED = "pwned-by-yaml"


def cases(kind: str) -> list:
    return [
        pytest.param(case, id=case["id"], marks=[pytest.mark.slow] if case.get("slow") else [])
        for case in CASES
        if case["kind"] == kind
    ]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a hash of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working folder holding earlier results and a published model, which must survive."""
    (tmp_path / "runtime" / "results").mkdir(parents=True)
    (tmp_path / "runtime" / "results" / "earlier.csv").write_text("round,accuracy\n1,0.5\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pth").write_bytes(os.urandom(256))
    return tmp_path


def assert_nothing_lost(before: dict[str, str], folder: Path) -> None:
    after = snapshot(folder)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    assert not changed, f"files lost or changed by a failing run: {changed}"
    assert not list(folder.rglob(PWNED)), "the input made the process run a command"


def assert_clear_failure(result: subprocess.CompletedProcess, expect: list[str], prefix: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"exit 0 on bad input:\n{output}"
    assert "Traceback" not in output, output
    assert prefix in output, output
    for fragment in expect:
        assert fragment in output, f"{fragment!r} not in:\n{output}"


@pytest.mark.parametrize("case", cases("config") + cases("env"))
def test_config_and_env_case_fails_clearly_and_loses_nothing(case: dict, workdir: Path) -> None:
    config = CORPUS / case["file"] if "file" in case else QUICKSTART / "fedavg.toml"
    env = case.get("env", {"AGG_BIND_PORT": "7363", "PARTICIPANTS_COUNT": "2"})
    before, corpus_before = snapshot(workdir), snapshot(CORPUS)

    result = run_plato(config, workdir, **env)

    assert_clear_failure(result, case["expect"], "plato: error:")
    assert result.returncode == 2
    assert_nothing_lost(before, workdir)
    assert snapshot(CORPUS) == corpus_before


@pytest.mark.parametrize("case", cases("manifest"))
def test_manifest_case_is_reported_by_validate_and_refused_by_run(case: dict, workdir: Path) -> None:
    manifest = CORPUS / case["file"]
    before, corpus_before = snapshot(workdir), snapshot(CORPUS)

    validated = subprocess.run(
        [*PLATO_SEDNA, "validate", str(manifest)], cwd=workdir, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    ran = subprocess.run(
        [*PLATO_SEDNA, "run", str(manifest), "--workdir", str(workdir / "run")],
        cwd=workdir,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert_clear_failure(validated, case["expect"], "problem(s) in 1 file(s)")
    assert_clear_failure(ran, [], "plato-sedna run: error:")
    assert not list((workdir / "run").rglob("worker.log")), "a worker was started for a refused job"
    assert_nothing_lost(before, workdir)
    assert snapshot(CORPUS) == corpus_before


@pytest.mark.parametrize("case", cases("index"))
def test_index_case_fails_naming_the_dataset_file_and_fix(case: dict) -> None:
    from plato_sedna.datasources.formats.csv_index import read_csv_index
    from plato_sedna.datasources.formats.txt import read_txt_index
    from plato_sedna.datasources.options import ReadOptions
    from plato_sedna.datasources.samples import Origin
    from plato_sedna.errors import ResourceError

    index = CORPUS / case["file"]
    reader = read_csv_index if index.suffix == ".csv" else read_txt_index
    before = snapshot(CORPUS)

    with pytest.raises(ResourceError) as raised:
        reader(index, Origin(DATASET, str(index), str(index.parent)), ReadOptions(DATASET))

    message = str(raised.value)
    assert message.startswith(f"{DATASET}: {index}"), message
    for fragment in case["expect"]:
        assert fragment in message, message
    assert snapshot(CORPUS) == before


class _RunsACommand:
    """Unpickling this runs ``touch`` (what a malicious weights file does)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _weights_cases(folder: Path) -> list[tuple[str, Path, str]]:
    """(id, file, expected fragment): each file generated with this torch."""
    import torch
    from safetensors.torch import save_file

    model = torch.nn.Linear(4, 3)
    good = folder / "good.pth"
    torch.save(model.state_dict(), good)
    made = []

    def add(name: str, write, expect: str) -> None:
        path = folder / name
        write(path)
        made.append((name, path, expect))

    add("pickled-command.pth", lambda p: torch.save({"weight": _RunsACommand(folder / PWNED)}, p), "pickled Python objects")
    add("plain-pickle.pth", lambda p: p.write_bytes(pickle.dumps({"weight": _RunsACommand(folder / PWNED)})), "pickled Python objects")
    add("truncated.pth", lambda p: p.write_bytes(good.read_bytes()[:200]), "corrupt or truncated")
    add("text.pth", lambda p: p.write_text("these are not weights\n"), "corrupt or truncated")
    add("empty-dict.pth", lambda p: torch.save({}, p), "holds no state dict")
    add("truncated.safetensors", lambda p: p.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{"), "corrupt or truncated")
    add("wrong-shape.safetensors", lambda p: save_file({"weight": torch.zeros(5, 4), "bias": torch.zeros(3)}, p), "wrong shapes ['weight (5, 4) != (3, 4)']")
    add("missing-key.pth", lambda p: torch.save({"weight": torch.zeros(3, 4)}, p), "1 missing keys ['bias']")
    add("unexpected-key.pth", lambda p: torch.save({**model.state_dict(), "extra": torch.zeros(1)}, p), "1 unexpected keys ['extra']")
    return made


def test_weights_cases_fail_clearly_and_run_nothing(tmp_path: Path) -> None:
    import torch

    from plato_sedna.errors import ResourceError
    from plato_sedna.models.weights import fit_state_dict, read_state_dict

    for name, path, expect in _weights_cases(tmp_path):
        model = torch.nn.Linear(4, 3)
        original = {key: value.clone() for key, value in model.state_dict().items()}
        with pytest.raises(ResourceError) as raised:
            fit_state_dict(model, read_state_dict(path), str(path))
        assert expect in str(raised.value), f"{name}: {raised.value}"
        assert str(path) in str(raised.value), f"{name}: the message does not name the file"
        assert all(torch.equal(original[key], value) for key, value in model.state_dict().items()), name
    assert not (tmp_path / PWNED).exists(), "unpickling the weights ran a command"


@pytest.mark.slow
def test_pickled_pretrained_model_stops_the_aggregator_at_start(tmp_path: Path, digits_data: Path) -> None:
    (path,) = [p for name, p, _ in _weights_cases(tmp_path) if name == "pickled-command.pth"]
    env = {"AGG_BIND_PORT": "7363", "PARTICIPANTS_COUNT": "2", "PRETRAINED_MODEL_URL": str(path)}

    result = run_plato(QUICKSTART / "fedavg.toml", tmp_path, **env)

    assert_clear_failure(result, ["pickled Python objects", str(path)], "plato: error:")
    assert not (tmp_path / PWNED).exists()
