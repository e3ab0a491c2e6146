"""Tiny but learnable synthetic corpora and labeled datasets for tests (and local benchmarks).

Sensor windows: 8 channels whose frequency content and harmonics follow a latent health state
(and a quality latent), with per-machine gain/offset, so the labels depend on shape, not just
on amplitude, and self-supervised features help. Images: six texture/defect classes. Text: one
template family per maintenance category. Splits are by machine.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mfg_pipeline.storage import artifacts
from mfg_pipeline.storage.artifacts import Corpus, LabeledDataset

CHANNELS = 8
WINDOW = 64
DEFECT_CLASSES = ["none", "scratch", "inclusion", "patch", "pitting", "crazing"]
TEXT_CLASSES = ["electrical", "hydraulic", "mechanical", "lubrication", "sensor_fault"]


# --------------------------------------------------------------------------- sensor
def _sensor_windows(rng: np.random.Generator, health: np.ndarray, quality: np.ndarray, machine: np.ndarray,
                    n_machines: int) -> np.ndarray:
    n = len(health)
    t = np.arange(WINDOW) / WINDOW
    gains = np.random.default_rng(1234).uniform(0.5, 2.0, size=(max(n_machines, 1) + 1000, CHANNELS))
    offsets = np.random.default_rng(4321).normal(0, 2.0, size=(max(n_machines, 1) + 1000, CHANNELS))
    x = np.empty((n, CHANNELS, WINDOW), dtype=np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=(n, CHANNELS))
    for c in range(CHANNELS):
        base_f = 3 + c
        f = base_f + 4 * health  # frequency drifts with wear
        harmonic = (0.8 * health if c < 4 else 0.8 * quality)[:, None]  # shape, not amplitude
        sig = np.sin(2 * np.pi * f[:, None] * t[None] + phase[:, c:c + 1])
        sig = sig + harmonic * np.sin(3 * (2 * np.pi * f[:, None] * t[None] + phase[:, c:c + 1]))
        sig = sig + 0.3 * rng.normal(size=(n, WINDOW))
        x[:, c] = (sig * gains[machine, c][:, None] * 10 + 50 + 10 * offsets[machine, c][:, None]).astype(np.float32)
    return x


def sensor_corpus(n: int = 512, seed: int = 0, n_machines: int = 12) -> Corpus:
    rng = np.random.default_rng(seed)
    machine = rng.integers(0, n_machines, n)
    x = _sensor_windows(rng, rng.uniform(0, 1, n), rng.uniform(0, 1, n), machine, n_machines)
    index = pd.DataFrame({"machine_id": [f"M{m:02d}" for m in machine], "window_id": np.arange(n)})
    meta = {"channels": [f"ch{c}" for c in range(CHANNELS)], "window": WINDOW,
            "mean": x.mean(axis=(0, 2)).tolist(), "std": x.std(axis=(0, 2)).tolist()}
    return Corpus("sensor", torch.from_numpy(x), index, meta)


def _split(machine: np.ndarray, n_machines: int, test_frac: float = 0.34) -> np.ndarray:
    n_test = max(1, int(round(test_frac * n_machines)))
    test = set(range(n_machines - n_test, n_machines))
    return np.where(np.isin(machine, list(test)), "test", "train")


def sensor_dataset(name: str = "failure_dataset", n: int = 600, seed: int = 1, n_machines: int = 12,
                   kind: str = "classification") -> LabeledDataset:
    rng = np.random.default_rng(seed)
    machine = np.sort(rng.integers(0, n_machines, n))
    health, quality = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    x = _sensor_windows(rng, health, quality, machine, n_machines)
    if kind == "regression":
        target = np.minimum(125.0, (1 - health) * 150.0).astype(np.float32)
        meta = {"kind": "regression", "unit": "hours", "cap": 125.0}
    elif name.startswith("quality"):
        target = (quality < 0.6).astype(np.int64)
        meta = {"kind": "classification", "classes": ["failed", "passed"]}
    else:
        target = (health > 0.7).astype(np.int64)
        meta = {"kind": "classification", "classes": ["no_failure", "failure"]}
    index = pd.DataFrame({"machine_id": [f"M{m:02d}" for m in machine], "split": _split(machine, n_machines),
                          "target": target})
    return LabeledDataset(name, "sensor", torch.from_numpy(x), index, meta)


# --------------------------------------------------------------------------- images
def _image(rng: np.random.Generator, cls: int, size: int = 64) -> np.ndarray:
    img = 140 + 12 * rng.normal(size=(size, size))
    yy, xx = np.mgrid[0:size, 0:size]
    if cls == 1:  # scratch: a few long thin bright lines
        for _ in range(rng.integers(1, 3)):
            a, b = rng.uniform(-1, 1), rng.uniform(0, size)
            d = np.abs(yy - (a * xx + b)) / np.sqrt(1 + a * a)
            img += 70 * (d < 1.0)
    elif cls == 2:  # inclusion: a few elongated dark blobs
        for _ in range(rng.integers(2, 5)):
            cy, cx = rng.uniform(5, size - 5, 2)
            img -= 70 * (((yy - cy) / 2) ** 2 + ((xx - cx) / 6) ** 2 < 1)
    elif cls == 3:  # patch: large soft dark region
        cy, cx, r = rng.uniform(15, size - 15), rng.uniform(15, size - 15), rng.uniform(10, 18)
        img -= 50 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    elif cls == 4:  # pitting: many small dark dots
        for _ in range(rng.integers(15, 30)):
            cy, cx = rng.uniform(0, size, 2)
            img -= 60 * ((yy - cy) ** 2 + (xx - cx) ** 2 < 2.5)
    elif cls == 5:  # crazing: network of short dark cracks
        for _ in range(rng.integers(10, 18)):
            cy, cx, ang = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0, np.pi)
            length = rng.uniform(5, 12)
            along = (xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)
            across = -(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)
            img -= 50 * ((np.abs(across) < 0.8) & (np.abs(along) < length))
    gain = rng.uniform(0.8, 1.2)
    return np.clip(img * gain, 0, 255).astype(np.uint8)


def image_corpus(n: int = 256, seed: int = 0) -> Corpus:
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, len(DEFECT_CLASSES), n)
    x = np.stack([_image(rng, c) for c in classes])[:, None]
    index = pd.DataFrame({"machine_id": [f"L{i % 6}" for i in range(n)], "image_id": np.arange(n)})
    return Corpus("image", torch.from_numpy(x), index, {"height": 64, "width": 64})


def defect_dataset(n: int = 300, seed: int = 1, n_machines: int = 10) -> LabeledDataset:
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, len(DEFECT_CLASSES), n)
    machine = rng.integers(0, n_machines, n)
    x = np.stack([_image(rng, c) for c in classes])[:, None]
    index = pd.DataFrame({"machine_id": [f"L{m}" for m in machine], "split": _split(machine, n_machines),
                          "target": classes.astype(np.int64),
                          "sha256": [hashlib.sha256(image.tobytes()).hexdigest() for image in x]})
    return LabeledDataset("defect_dataset", "image", torch.from_numpy(x), index,
                          {"kind": "classification", "classes": DEFECT_CLASSES})


# --------------------------------------------------------------------------- text
_WORDS = {
    "electrical": ["breaker", "fuse", "wiring", "relay", "contactor", "motor winding", "short circuit", "voltage"],
    "hydraulic": ["hose", "pump", "cylinder", "hydraulic oil", "valve", "pressure", "seal leak", "accumulator"],
    "mechanical": ["bearing", "shaft", "coupling", "gearbox", "belt", "bolt", "alignment", "vibration"],
    "lubrication": ["grease", "oil level", "lubricant", "grease nipple", "oil change", "lube line", "viscosity", "dry"],
    "sensor_fault": ["sensor", "thermocouple", "encoder", "probe", "calibration", "signal", "readout", "transmitter"],
}
_VERBS = ["replaced", "checked", "repaired", "found", "inspected", "adjusted", "cleaned", "reported"]
_FILLER = ["on line", "at station", "during shift", "after alarm", "near unit", "per operator", "again", "today"]


def _sentence(rng: np.random.Generator, cls: str) -> str:
    words = _WORDS[cls]
    parts = [str(rng.choice(_VERBS)), str(rng.choice(words)), str(rng.choice(_FILLER)), str(rng.integers(1, 40))]
    if rng.uniform() < 0.7:
        parts += ["and", str(rng.choice(words))]
    if rng.uniform() < 0.3:  # some noise words from another class
        other = TEXT_CLASSES[int(rng.integers(0, len(TEXT_CLASSES)))]
        parts += ["near", str(rng.choice(_WORDS[other]))]
    return " ".join(parts)


def text_corpus(n: int = 400, seed: int = 0) -> Corpus:
    rng = np.random.default_rng(seed)
    texts = [_sentence(rng, TEXT_CLASSES[int(rng.integers(0, len(TEXT_CLASSES)))]) for _ in range(n)]
    index = pd.DataFrame({"machine_id": [f"M{i % 8:02d}" for i in range(n)], "text": texts})
    return Corpus("text", None, index, {})


def maintenance_log_dataset(n: int = 300, seed: int = 1, n_machines: int = 10) -> LabeledDataset:
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, len(TEXT_CLASSES), n)
    machine = rng.integers(0, n_machines, n)
    texts = [_sentence(rng, TEXT_CLASSES[c]) for c in classes]
    index = pd.DataFrame({"machine_id": [f"M{m:02d}" for m in machine], "split": _split(machine, n_machines),
                          "target": classes.astype(np.int64), "text": texts})
    return LabeledDataset("maintenance_log_dataset", "text", None, index,
                          {"kind": "classification", "classes": TEXT_CLASSES})


# --------------------------------------------------------------------------- a whole store
def write_synthetic_store(work_dir: Path, small: bool = True) -> None:
    """Write every corpus and dataset the model half consumes under ``work_dir/<asset>``."""
    work_dir = Path(work_dir)
    k = 1 if small else 8
    artifacts.save_corpus(work_dir / "sensor_corpus", sensor_corpus(256 * k))
    artifacts.save_corpus(work_dir / "image_corpus", image_corpus(96 * k))
    artifacts.save_corpus(work_dir / "text_corpus", text_corpus(200 * k))
    artifacts.save_labeled_dataset(work_dir / "quality_dataset", sensor_dataset("quality_dataset", 240 * k, seed=2))
    artifacts.save_labeled_dataset(work_dir / "failure_dataset", sensor_dataset("failure_dataset", 240 * k, seed=3))
    artifacts.save_labeled_dataset(work_dir / "rul_dataset", sensor_dataset("rul_dataset", 240 * k, seed=4, kind="regression"))
    artifacts.save_labeled_dataset(work_dir / "defect_dataset", defect_dataset(120 * k))
    artifacts.save_labeled_dataset(work_dir / "maintenance_log_dataset", maintenance_log_dataset(150 * k))
