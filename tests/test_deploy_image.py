"""The image recipe, the wheel it installs, and the kustomize base: checked without a container builder.

No docker is available here, so the Dockerfile is checked for what the image must be
(multi-stage, Python 3.13, non-root, entrypoint `plato`, no build tools at run time),
and the wheel the image installs is built for real and checked to carry Sedna's CRDs.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from plato_sedna.tools.rbac import rbac_objects
from plato_sedna.tools.validate import manifest_problems

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "deploy" / "Dockerfile"
KUSTOMIZE_BASE = REPO / "deploy" / "kustomize" / "base"


def _stages(dockerfile: Path) -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), grouped by stage."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_the_image_is_multi_stage_non_root_with_plato_as_entrypoint() -> None:
    stages = _stages(DOCKERFILE)
    assert len(stages) == 2
    assert "ARG PYTHON_IMAGE=python:3.13-slim" in DOCKERFILE.read_text()
    run_stage = stages[-1]
    users = [line.split()[1] for line in run_stage if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("0", "root")
    [entrypoint] = [line for line in run_stage if line.upper().startswith("ENTRYPOINT ")]
    assert json.loads(entrypoint.split(" ", 1)[1]) == ["plato"]
    assert any(line.startswith("COPY --from=build /opt/plato-sedna") for line in run_stage)
    installs = " ".join(line for line in run_stage if "apt-get install" in line)
    assert not set(shlex.split(installs)) & {"gcc", "g++", "build-essential", "make"}
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in " ".join(stages[0])


def test_demo_images_build_on_the_plugins_image() -> None:
    dockerfiles = sorted((REPO / "demos").glob("*/Dockerfile"))
    assert dockerfiles
    for dockerfile in dockerfiles:
        [first] = _stages(dockerfile)[:1]
        assert first[0].startswith("FROM plato-sedna:"), dockerfile


def test_the_wheel_carries_the_package_and_sednas_crds(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [wheel] = tmp_path.glob("plato_sedna-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "plato_sedna/crds/sedna.io_federatedlearningjobs.yaml",
        "plato_sedna/crds/datasets.patch.yaml",
        "plato_sedna/cli.py",
        "plato_sedna/tools/validate.py",
    } <= names
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "plato = plato_sedna.cli:plato_main" in text and "plato-sedna = plato_sedna.cli:plato_sedna_main" in text


def test_the_kustomize_base_is_valid_and_uses_the_same_rbac(tmp_path: Path) -> None:
    kustomization = yaml.safe_load((KUSTOMIZE_BASE / "kustomization.yaml").read_text())
    objects = [
        obj
        for resource in kustomization["resources"]
        for obj in yaml.safe_load_all((KUSTOMIZE_BASE / resource).read_text())
        if obj
    ]
    for generator in kustomization["configMapGenerator"]:
        data = {name: (KUSTOMIZE_BASE / name).read_text() for name in generator["files"]}
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data})
    assert [obj for obj in objects if obj["kind"] in ("ServiceAccount", "Role", "RoleBinding")] == rbac_objects()
    combined = tmp_path / "base.yaml"
    combined.write_text(yaml.safe_dump_all(objects))

    problems = manifest_problems([combined])
    assert [problem for problem in problems if problem.severity == "error"] == []
    # what remains is validate's advice on the nodes' hostPath folders for the Model
    assert problems and all("hostPath" in problem.message for problem in problems), problems
