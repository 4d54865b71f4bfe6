"""The Hugging Face demo: two trainers fine-tune a tiny BERT through `plato-sedna run`, offline.

The runs use the demo's own job.yaml and fedavg.toml on the generated corpus; the
LoRA run adds ``[parameters.lora]`` and checks that only adapters travel.
"""

from __future__ import annotations

import csv
import json
import re
import runpy
from pathlib import Path

import pytest
from test_quickstart_e2e import run_job

from plato_sedna.errors import ConfigError

DEMO = Path(__file__).resolve().parents[1] / "demos" / "huggingface"
CHANCE = 1 / 3  # three topics, about equally frequent
LORA_TABLE = '\n[parameters.lora]\nr = 4\nlora_alpha = 8\nlora_dropout = 0.0\ntarget_modules = ["query", "value"]\n'


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("topics")
    # By path: every demo has a prepare_data.py, and they must not shadow each other.
    runpy.run_path(str(DEMO / "prepare_data.py"))["prepare"](out_dir)
    return out_dir


def demo_job(folder: Path, data: Path, *, rounds: int = 8, extra_config: str = "") -> Path:
    """A copy of the demo's manifests and config beside ``data``."""
    folder.mkdir()
    job = (DEMO / "job.yaml").read_text()
    rounds_env = 'name: rounds\n                value: "8"'
    assert rounds_env in job
    (folder / "job.yaml").write_text(job.replace(rounds_env, f'name: rounds\n                value: "{rounds}"'))
    (folder / "fedavg.toml").write_text((DEMO / "fedavg.toml").read_text() + extra_config)
    (folder / "data").symlink_to(data, target_is_directory=True)
    return folder / "job.yaml"


def succeeded(result, workdir: Path) -> dict:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded"
    assert {w["exit_code"] for w in summary["workers"].values()} == {0}
    return summary


def published_accuracy(folder: Path, table: Path) -> float:
    """The published folder, loaded as any transformers user would, classifies ``table``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    batch = tokenizer([row["text"] for row in rows], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1).tolist()
    labels = [model.config.id2label[index] for index in predicted]
    return sum(label == row["label"] for label, row in zip(labels, rows)) / len(rows)


def sent_bytes(trainer_log: str) -> list[int]:
    return [int(size) for size in re.findall(r"hf_fedavg: sending (\d+) bytes", trainer_log)]


def test_two_trainers_fine_tune_and_publish_a_folder_transformers_loads(corpus: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    summary = succeeded(run_job(demo_job(tmp_path / "job", corpus), workdir), workdir)

    assert summary["accuracy"] >= 0.8 > CHANCE + 0.4
    assert summary["stop_reason"] in ("target_accuracy", "rounds")
    folder = workdir / "model" / "topics-classifier"
    assert summary["model_url"] == str(folder)  # the published folder, as summary.json names it
    assert published_accuracy(folder, corpus / "test.csv") == pytest.approx(summary["accuracy"], abs=0.02)
    history = json.loads((folder / "metrics.json").read_text())["history"]
    assert history[0]["accuracy"] < summary["accuracy"]  # it learned across rounds
    full_size = (corpus / "tiny-bert" / "model.safetensors").stat().st_size
    sizes = sent_bytes((workdir / "trainer-1" / "worker.log").read_text())
    assert len(sizes) == summary["rounds"] and min(sizes) > full_size  # every weight travels


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_lora_trainers_send_only_adapters_and_publish_a_merged_folder(corpus: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    job = demo_job(tmp_path / "job", corpus, rounds=2, extra_config=LORA_TABLE)
    summary = succeeded(run_job(job, workdir), workdir)

    assert summary["rounds"] == 2
    full_size = (corpus / "tiny-bert" / "model.safetensors").stat().st_size
    for trainer in ("trainer-1", "trainer-2"):
        log = (workdir / trainer / "worker.log").read_text()
        assert "LoRA adapters only" in log
        sizes = sent_bytes(log)
        assert len(sizes) == 2 and max(sizes) < full_size / 10
    history = json.loads((workdir / "model" / "topics-classifier" / "metrics.json").read_text())["history"]
    assert all(0 < entry["bytes_sent"] < full_size / 5 for entry in history if "bytes_sent" in entry)
    folder = workdir / "model" / "topics-classifier"
    assert not (folder / "adapter_config.json").exists()  # adapters merged: a plain model folder
    assert published_accuracy(folder, corpus / "test.csv") == pytest.approx(summary["accuracy"], abs=0.02)


@pytest.mark.slow
def test_causal_lm_trainers_lower_perplexity(corpus: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(corpus / "tiny-bert")
    gpt = tmp_path / "tiny-gpt"
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=32, n_embd=32, n_layer=2, n_head=2,
                        pad_token_id=tokenizer.pad_token_id)
    GPT2LMHeadModel(config).save_pretrained(gpt)
    tokenizer.save_pretrained(gpt)
    job = demo_job(tmp_path / "job", corpus, rounds=2)
    job.write_text(job.read_text().replace("url: data/tiny-bert/", f"url: {gpt}/"))
    toml = job.parent / "fedavg.toml"
    toml.write_text(
        toml.read_text()
        .replace('type = "hf_text_classification"', 'type = "hf_causal_lm"')
        .replace('task = "sequence-classification"', 'task = "causal-lm"')
        .replace("target_accuracy = 0.95", "")
        .replace("num_classes = 3", "")
    )
    workdir = tmp_path / "run"
    summary = succeeded(run_job(job, workdir), workdir)

    history = json.loads((workdir / "model" / "topics-classifier" / "metrics.json").read_text())["history"]
    perplexities = [entry["accuracy"] for entry in history]  # the trainer's test() is perplexity
    assert len(perplexities) == 2 and perplexities[1] < perplexities[0] < len(tokenizer)
    assert summary["stop_reason"] == "rounds"


def test_a_wrong_lora_table_names_the_table_and_the_keys() -> None:
    from transformers import BertConfig, BertForSequenceClassification

    from plato_sedna.trainers.huggingface_lora import with_lora

    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=16))
    with pytest.raises(ConfigError, match=r"\[parameters.lora\] .*rank.* Keys are peft.LoraConfig arguments"):
        with_lora(model, {"rank": 4}, "SEQ_CLS")
    with pytest.raises(ConfigError, match="target_modules"):
        with_lora(model, {"r": 4, "target_modules": ["no_such_layer"]}, "SEQ_CLS")
