"""Readers of each dataset format (one module each), and which one a dataset's files call for."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# A name users may write (config data.format, plato.sedna.io/format, Dataset spec.format)
# -> the format it means; "dir" (Sedna's yolo example) means "look at the folder".
FORMAT_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "txt": "txt",
        "csv": "csv",
        "jsonl": "jsonl",
        "folders": "folders",
        "imagefolder": "folders",
        "image-folders": "folders",
        "yolo": "yolo",
        "ultralytics": "yolo",
        "dir": "detect",
        "detect": "detect",
    }
)
# What each format's samples are: image files, images with YOLO labels, or texts.
KINDS: Mapping[str, str] = MappingProxyType(
    {
        "txt": "images",
        "csv": "images",
        "folders": "images",
        "yolo": "yolo",
        "jsonl": "text",
        "table": "text",
    }
)
SUFFIX_FORMATS: Mapping[str, str] = MappingProxyType(
    {".txt": "txt", ".csv": "csv", ".jsonl": "jsonl", ".yaml": "yolo", ".yml": "yolo"}
)
