"""Typed artifacts exchanged between the data half and the model half.

A corpus (unlabeled) and a labeled task dataset are each a directory:

- tensors in ``data.safetensors`` (sensor windows float32 [N, C, L], images uint8 [N, 1, H, W];
  text has no tensor and keeps its lines in ``index.parquet``),
- one row per sample in ``index.parquet`` (machine_id, timestamp, day, and for labeled
  datasets ``split`` = train|test and the target),
- ``meta.json`` (modality, channels, classes, task kind, split rule, ...).

Each save publishes a new immutable version (``storage.versioned``): readers never see a
half-written artifact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mfg_pipeline.storage import atomic, versioned

TENSORS = "data.safetensors"
INDEX = "index.parquet"
META = "meta.json"


class _IndexedRows:
    """One sample per ``index`` row; text samples are the ``text`` column."""

    index: pd.DataFrame

    def __len__(self) -> int:
        return len(self.index)

    @property
    def texts(self) -> list[str]:
        return self.index["text"].astype(str).tolist()


@dataclass
class Corpus(_IndexedRows):
    """Unlabeled samples of one modality. ``inputs`` is a tensor, or ``index["text"]`` for text."""

    modality: str
    inputs: torch.Tensor | None
    index: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class LabeledDataset(_IndexedRows):
    """Labeled samples of one task dataset, already split by machine/unit (never by window).

    ``index`` has at least ``machine_id``, ``split`` (train|test) and ``target``; ``inputs``
    is aligned with ``index`` row for row (None for text, whose lines are ``index["text"]``).
    ``meta["kind"]`` is classification|regression; ``meta["classes"]`` names class ids.
    """

    name: str
    modality: str
    inputs: torch.Tensor | None
    index: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> torch.Tensor:
        values = self.index["target"].to_numpy()
        if self.meta.get("kind") == "regression":
            return torch.as_tensor(values, dtype=torch.float32)
        return torch.as_tensor(values, dtype=torch.int64)

    def mask(self, split: str) -> torch.Tensor:
        return torch.as_tensor((self.index["split"] == split).to_numpy())


def _save(directory: Path, inputs: torch.Tensor | None, index: pd.DataFrame, meta: dict[str, Any]) -> Path:
    """Publish a new version of the artifact under ``directory`` (see ``versioned``)."""
    if inputs is not None and len(inputs) != len(index):
        raise ValueError(f"{directory}: {len(inputs)} tensors but {len(index)} index rows")

    def write(folder: Path) -> None:
        if inputs is not None:
            atomic.write_tensors(folder / TENSORS, {"inputs": inputs})
        atomic.write_parquet(folder / INDEX, index)
        atomic.write_json(folder / META, meta)

    return versioned.publish(directory, write)


def _load(directory: Path) -> tuple[torch.Tensor | None, pd.DataFrame, dict[str, Any]]:
    directory = versioned.current(directory)
    meta = atomic.read_json(directory / META)
    tensor_path = directory / TENSORS
    inputs = atomic.read_tensors(tensor_path)["inputs"] if tensor_path.exists() else None
    return inputs, atomic.read_parquet(directory / INDEX), meta


def save_corpus(directory: Path, corpus: Corpus) -> Path:
    return _save(directory, corpus.inputs, corpus.index, {**corpus.meta, "modality": corpus.modality})


def load_corpus(directory: Path) -> Corpus:
    inputs, index, meta = _load(directory)
    return Corpus(meta["modality"], inputs, index, meta)


def save_labeled_dataset(directory: Path, dataset: LabeledDataset) -> Path:
    meta = {**dataset.meta, "name": dataset.name, "modality": dataset.modality}
    return _save(directory, dataset.inputs, dataset.index, meta)


def load_labeled_dataset(directory: Path) -> LabeledDataset:
    inputs, index, meta = _load(directory)
    return LabeledDataset(meta["name"], meta["modality"], inputs, index, meta)
