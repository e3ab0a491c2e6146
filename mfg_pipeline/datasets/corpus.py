"""Unlabeled pretraining corpora, streamed one cleaned partition at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mfg_pipeline.cleaning.partition import read_images, read_kept
from mfg_pipeline.datasets.windows import sliding_windows
from mfg_pipeline.storage.artifacts import Corpus, LabeledDataset


def build_sensor_corpus(partitions: list[tuple[str, Path]], channels: list[str], length: int, stride: int,
                        max_gap_s: float) -> Corpus:
    """Sliding windows [N, C, L] of every machine, partition by partition (memory: one day)."""
    chunks, rows = [], []
    for day, folder in partitions:
        frame = read_kept(folder)
        for machine, readings in frame.groupby("machine_id", sort=True):
            windows, index = sliding_windows(readings, channels, length, stride, max_gap_s)
            if len(windows):
                chunks.append(windows)
                rows.append(index.assign(machine_id=machine, day=day))
    inputs = torch.cat(chunks) if chunks else torch.zeros((0, len(channels), length))
    index = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["start", "end", "machine_id", "day"])
    flat = inputs.permute(1, 0, 2).reshape(len(channels), -1)
    meta = {"channels": channels, "window": length, "stride": stride, "days": [d for d, _ in partitions],
            "mean": flat.mean(1).tolist() if flat.numel() else [0.0] * len(channels),
            "std": flat.std(1).tolist() if flat.shape[1] > 1 else [1.0] * len(channels)}
    return Corpus("sensor", inputs, index, meta)


def build_image_corpus(partitions: list[tuple[str, Path]]) -> Corpus:
    chunks, rows = [], []
    for day, folder in partitions:
        images, index = read_images(folder)
        if len(index):
            chunks.append(images)
            rows.append(index.drop(columns=["label"]).assign(day=day))
    inputs = torch.cat(chunks) if chunks else torch.zeros((0, 1, 64, 64), dtype=torch.uint8)
    index = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["file", "sha256", "machine_id", "timestamp", "day"])
    return Corpus("image", inputs, index, {"days": [d for d, _ in partitions], "size": int(inputs.shape[-1])})


def build_text_corpus(partitions: list[tuple[str, Path]]) -> Corpus:
    rows = [read_kept(folder)[["timestamp", "machine_id", "text"]].assign(day=day) for day, folder in partitions]
    index = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["timestamp", "machine_id", "text", "day"])
    return Corpus("text", None, index, {"days": [d for d, _ in partitions]})


def corpus_from_dataset(dataset: LabeledDataset) -> Corpus:
    """The TRAIN-split samples of a labeled dataset as an unlabeled corpus (targets dropped)."""
    train = (dataset.index["split"] == "train").to_numpy()
    keep = [c for c in ("machine_id", "timestamp", "text", "sha256", "file") if c in dataset.index.columns]
    index = dataset.index.loc[train, keep].reset_index(drop=True)
    inputs = None if dataset.inputs is None else dataset.inputs[torch.from_numpy(np.flatnonzero(train))]
    meta = {"source": f"{dataset.name} (train split, labels dropped)", "days": []}
    if dataset.modality == "sensor" and inputs is not None:
        flat = inputs.permute(1, 0, 2).reshape(inputs.shape[1], -1)
        meta.update(channels=dataset.meta.get("channels"), window=int(inputs.shape[-1]),
                    mean=flat.mean(1).tolist(), std=flat.std(1).tolist() if flat.shape[1] > 1 else [1.0] * len(flat))
    if dataset.modality == "image" and inputs is not None:
        meta["size"] = int(inputs.shape[-1])
    return Corpus(dataset.modality, inputs, index, meta)
