"""Bytes a Hugging Face round moves per trainer, full fine-tuning vs LoRA adapters (hf_fedavg).

Sizes are what ``hf_fedavg`` sends (pickled state, as Plato's socket transport
sends it), for the demo's tiny BERT and for a DistilBERT-base-shaped classifier
built from its config (random weights, nothing downloaded). ``--e2e`` also runs
the demo job (``plato-sedna run``) both ways and prints the bytes its
``metrics.json`` records per round and the round times.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demos" / "huggingface"
LORA = {"tiny-bert": ["query", "value"], "distilbert-base": ["q_lin", "v_lin"]}
LORA_TABLE = '\n[parameters.lora]\nr = {r}\nlora_alpha = {alpha}\nlora_dropout = 0.0\ntarget_modules = ["query", "value"]\n'


def build(name: str, data: Path):
    from transformers import AutoModelForSequenceClassification, DistilBertConfig

    if name == "tiny-bert":
        return AutoModelForSequenceClassification.from_pretrained(data / "tiny-bert")
    return AutoModelForSequenceClassification.from_config(DistilBertConfig(num_labels=3))


def sizes(name: str, data: Path, rank: int) -> tuple[int, int, int, int]:
    """(full bytes, LoRA bytes, LoRA tensors, all tensors) one trainer sends per round."""
    from plato_sedna.trainers.huggingface_exchange import payload_bytes
    from plato_sedna.trainers.huggingface_lora import exchanged_weights, with_lora

    full = payload_bytes(exchanged_weights(build(name, data)))
    options = {"r": rank, "lora_alpha": 2 * rank, "lora_dropout": 0.0, "target_modules": LORA[name]}
    adapted = with_lora(build(name, data), options, "SEQ_CLS")
    adapters = exchanged_weights(adapted)
    return full, payload_bytes(adapters), len(adapters), len(adapted.state_dict())


def run_demo(data: Path, workdir: Path, rounds: int, extra_config: str) -> list[dict]:
    job_dir = workdir / "job"
    job_dir.mkdir(parents=True)
    job = (DEMO / "job.yaml").read_text().replace('value: "8"', f'value: "{rounds}"')
    (job_dir / "job.yaml").write_text(job)
    config = (DEMO / "fedavg.toml").read_text().replace("target_accuracy = 0.95", "target_accuracy = 1.0")
    if extra_config:  # adapters on the random tiny BERT need a larger step (as in the demo's README)
        config = config.replace("lr = 0.003", "lr = 0.02")
    (job_dir / "fedavg.toml").write_text(config + extra_config)
    (job_dir / "data").symlink_to(data, target_is_directory=True)
    run = workdir / "run"
    command = [sys.executable, "-c", "import sys; from plato_sedna.cli import plato_sedna_main as m; sys.exit(m())",
               "run", str(job_dir / "job.yaml"), "--workdir", str(run)]
    subprocess.run(command, check=True, capture_output=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    metrics = json.loads((run / "model" / "topics-classifier" / "metrics.json").read_text())
    return metrics["history"]


def print_e2e(data: Path, rounds: int, rank: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        for label, extra in (("full", ""), ("LoRA", LORA_TABLE.format(r=rank, alpha=2 * rank))):
            history = run_demo(data, Path(scratch) / label, rounds, extra)
            for entry in history:
                print(
                    f"e2e {label:<4} round {entry['round']}: sent {entry.get('bytes_sent', 0):>9,} B  "
                    f"received {entry.get('bytes_received', 0):>9,} B  accuracy {entry['accuracy']:.3f}  "
                    f"at {entry['elapsed_s']:.1f} s"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=4, help="LoRA rank r (lora_alpha = 2r)")
    parser.add_argument("--models", nargs="+", default=list(LORA), choices=list(LORA))
    parser.add_argument("--e2e", action="store_true", help="also run the demo job both ways")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each --e2e run")
    arguments = parser.parse_args()
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    scratch = Path(tempfile.mkdtemp())
    try:
        runpy.run_path(str(DEMO / "prepare_data.py"))["prepare"](scratch / "data")
        data = scratch / "data"
        print("bytes one trainer sends (and receives) per round; a round with 2 trainers moves 4x that")
        for name in arguments.models:
            full, lora, lora_tensors, tensors = sizes(name, data, arguments.rank)
            print(
                f"{name:<16} full {full:>12,} B   LoRA r={arguments.rank} {lora:>10,} B "
                f"({100 * lora / full:.2f} %, {lora_tensors} of {tensors} tensors)"
            )
        if arguments.e2e:
            print_e2e(data, arguments.rounds, arguments.rank)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
