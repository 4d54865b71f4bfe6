"""Fixtures for the model tests: offline settings and a tiny Hugging Face folder.

Use them with ``pytest_plugins = ("support.model_fixtures",)``. Nothing is downloaded:
the Hugging Face model is built from a two-layer BertConfig and saved to a folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from support.model_helpers import randomized

# Before ultralytics or transformers are imported anywhere in the test process.
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-config-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def bert_folder(tmp_path_factory) -> Path:
    """A save_pretrained folder of a tiny BertForSequenceClassification (3 labels)."""
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=3,
    )
    randomized(BertForSequenceClassification(config)).save_pretrained(folder)
    return folder
