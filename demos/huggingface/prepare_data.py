"""Write a generated topic corpus as text tables and a tiny BERT classifier folder, offline.

Layout (under ``data/`` beside this script, or the folder given as argument)::

    edge1.csv  edge2.jsonl   the two edge nodes' training tables (text, label)
    test.csv                 the held-out table the aggregator evaluates on
    tiny-bert/               a Hugging Face folder: config.json, model.safetensors and a
                             WordPiece tokenizer trained on the corpus (tokenizer.json, ...)

The model is built from a ``BertConfig`` (2 layers, hidden size 32) with random
weights, so nothing is downloaded; with a network, ``distilbert-base-uncased`` from
the Hub takes its place (see README.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

TOPICS = {
    "sports": "match goal team coach season league striker referee stadium score "
    "tournament penalty keeper champions fans trophy",
    "technology": "software chip laptop network startup algorithm cloud server robot "
    "smartphone battery processor code update browser app",
    "weather": "rain storm forecast sunny wind snow cloudy temperature humid thunder "
    "fog frost heatwave drizzle breeze umbrella",
}
FILLER = ["the", "a", "today", "this", "week", "people", "said", "new", "big", "local", "report", "after", "before", "very", "more", "again", "our", "their", "with", "from", "about", "some", "many"]
SENTENCES = {"edge1": 160, "edge2": 160, "test": 120}
MODEL_FOLDER = "tiny-bert"
MAX_LENGTH = 32
SEED = 0


def sentence(rng: random.Random, topic: str) -> str:
    """A few of the topic's words among filler words, in random order."""
    words = rng.sample(TOPICS[topic].split(), rng.randint(2, 3))
    words += rng.sample(FILLER, rng.randint(3, 6))
    rng.shuffle(words)
    return " ".join(words)


def corpus(rng: random.Random, count: int) -> list[tuple[str, str]]:
    topics = sorted(TOPICS)
    return [(sentence(rng, topic), topic) for topic in (rng.choice(topics) for _ in range(count))]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as table:
        writer = csv.writer(table)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def write_jsonl(path: Path, rows: list[tuple[str, str]]) -> None:
    path.write_text(
        "".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in rows),
        encoding="utf-8",
    )


def train_tokenizer(texts: list[str]):
    """A WordPiece tokenizer trained on ``texts``, as a transformers fast tokenizer."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=MAX_LENGTH, pad_token="[PAD]",
        unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
    )


def save_tiny_bert(folder: Path, texts: list[str], classes: list[str]) -> None:
    """A 2-layer BERT classifier with random weights and the corpus's tokenizer, saved to ``folder``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = train_tokenizer(texts)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=MAX_LENGTH, num_labels=len(classes),
        id2label=dict(enumerate(classes)), label2id={name: i for i, name in enumerate(classes)},
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(SEED)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def prepare(out_dir: Path) -> dict[str, int]:
    """Write the tables and the model folder into ``out_dir``; returns the rows per table."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    splits = {name: corpus(rng, count) for name, count in SENTENCES.items()}
    write_csv(out_dir / "edge1.csv", splits["edge1"])
    write_jsonl(out_dir / "edge2.jsonl", splits["edge2"])
    write_csv(out_dir / "test.csv", splits["test"])
    training_texts = [text for name in ("edge1", "edge2") for text, _ in splits[name]]
    save_tiny_bert(out_dir / MODEL_FOLDER, training_texts, sorted(TOPICS))
    return {name: len(rows) for name, rows in splits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path(__file__).parent / "data")
    out_dir = parser.parse_args().out_dir
    counts = prepare(out_dir)
    print(
        "corpus written: " + ", ".join(f"{name} {count}" for name, count in counts.items())
        + f"; model folder {out_dir / MODEL_FOLDER}"
    )


if __name__ == "__main__":
    main()
