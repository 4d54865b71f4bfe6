"""`import plato_sedna` adds its entries to Plato's registries and changes nothing else."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SNAPSHOT = """
import json, sys
IMPORT_PLUGIN_FIRST = {first}
if IMPORT_PLUGIN_FIRST:
    import plato_sedna
from plato.datasources import registry as datasources
from plato.models import registry as models
from plato.trainers import registry as trainers
from plato.algorithms import registry as algorithms
from plato.samplers import registry as samplers
from plato.clients import registry as clients
def describe(value):
    cells = getattr(value, "__closure__", None) or ()
    if isinstance(value, type(sys)):
        return value.__name__
    name = f"{{getattr(value, '__module__', '?')}}.{{getattr(value, '__qualname__', type(value).__name__)}}"
    return name + "".join(f"[{{describe(cell.cell_contents)}}]" for cell in cells)
def tables():
    return {{
    "datasources": datasources.registered_datasources,
    "partitioned": datasources.registered_partitioned_datasources,
    "models": models.registered_models,
    "factories": models.registered_factories,
    "trainers": trainers.registered_trainers,
    "algorithms": algorithms.registered_algorithms,
    "samplers": samplers.registered_samplers,
    "clients": clients.registered_clients,
    }}
before = {{name: dict(table) for name, table in tables().items()}}
if {then_plugin}:
    import plato_sedna
    plato_sedna.register()
    for name, table in before.items():  # the very same objects, not equal copies
        assert all(tables()[name][key] is value for key, value in table.items()), name
print(json.dumps({{name: {{k: describe(v) for k, v in table.items()}} for name, table in tables().items()}}))
"""

PLUGIN_ENTRIES = {("datasources", "sednaDataResource"), ("factories", "sednaModelResource")}
PLUGIN_ENTRIES |= {("trainers", "yolov5"), ("trainers", "yolo")}  # ultralytics detection (demos/yolov5)
PLUGIN_ENTRIES |= {("trainers", "sedna_split_learning")}  # split learning on any model that can be cut
PLUGIN_ENTRIES |= {("trainers", "hf_text_classification"), ("trainers", "hf_causal_lm"), ("algorithms", "hf_fedavg")}  # demos/huggingface
PLUGIN_ENTRIES |= {("algorithms", "mistnet"), ("clients", "mistnet")}  # MistNet (its server: servers registry, not snapshotted)
PLUGIN_ENTRIES |= {("algorithms", "adaptive_sync"), ("clients", "adaptive_sync")}  # adaptive sync frequency (GIFT)
PLUGIN_ENTRIES |= {("algorithms", "adaptive_freezing"), ("clients", "adaptive_freezing")}  # adaptive parameter freezing (APF)
PLUGIN_ENTRIES |= {("trainers", "sedna_gan")}  # fedavg_gan in pods: FID weights from a URL


def snapshot(first: bool, then_plugin: bool) -> dict:
    code = SNAPSHOT.format(first=first, then_plugin=then_plugin)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def plain() -> dict:
    return snapshot(first=False, then_plugin=False)


@pytest.mark.parametrize("first", [True, False], ids=["plugin-before-plato", "plugin-after-plato"])
def test_builtin_entries_unchanged_and_plugin_entries_added(plain: dict, first: bool) -> None:
    with_plugin = snapshot(first=first, then_plugin=not first)

    for name, table in plain.items():
        assert {k: with_plugin[name][k] for k in table} == table, f"a built-in {name} entry changed"
    added = {(name, key) for name, table in with_plugin.items() for key in table if key not in plain[name]}
    assert added == PLUGIN_ENTRIES


def test_register_is_idempotent_and_refuses_a_clash() -> None:
    code = """
import plato_sedna
from plato.datasources import registry
entry = registry.registered_datasources["sednaDataResource"]
plato_sedna.register(); plato_sedna.register()
assert registry.registered_datasources["sednaDataResource"] is entry
registry.registered_datasources["sednaDataResource"] = object()
from plato_sedna.registration import RegistryClashError
try:
    plato_sedna.register()
except RegistryClashError as error:
    print("clash:", error)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "clash: Plato registry already has 'sednaDataResource'" in result.stdout


def test_import_is_light() -> None:
    """The plugin imports no heavy library itself; Plato's registries do that, later."""
    code = "import sys, plato_sedna; print(sorted(m for m in ('torch', 'plato.config', 'kubernetes', 'boto3') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
