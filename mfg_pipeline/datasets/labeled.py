"""Labeled task datasets: samples joined to their labels, split by machine.

One builder per dataset; the registry at the bottom maps dataset names (used by the task
registry) to their modality and builder. Adding a dataset is one function and one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mfg_pipeline.cleaning.partition import read_images, read_kept
from mfg_pipeline.datasets.splits import SPLIT_RULE, assign_splits
from mfg_pipeline.datasets.windows import to_ns, windows_ending_at
from mfg_pipeline.landing.contract import LABEL_TABLES
from mfg_pipeline.storage.artifacts import LabeledDataset


@dataclass(frozen=True)
class DatasetInputs:
    """Cleaned partitions a builder may read, as (day, folder) sorted by day."""

    sensor: list[tuple[str, Path]]
    image: list[tuple[str, Path]]
    text: list[tuple[str, Path]]
    quality: list[tuple[str, Path]]
    failures: list[tuple[str, Path]]
    channels: list[str]
    window: int
    sample_period_s: float
    test_fraction: float
    classes: dict[str, tuple[str, ...]]
    # Every label table the dataset's sources name (``quality``, ``failures``, ``recordings``).
    tables: dict[str, list[tuple[str, Path]]] = field(default_factory=dict)

    @property
    def max_gap_s(self) -> float:
        return 2.5 * self.sample_period_s

    @classmethod
    def for_plant(cls, plant, sources: tuple[str, ...], parts: Callable[[str], list[tuple[str, Path]]]) -> "DatasetInputs":
        """The inputs of a dataset of ``plant`` that reads ``sources``; ``parts(source)`` lists
        that source's cleaned partitions."""
        def read(source: str) -> list[tuple[str, Path]]:
            return parts(source) if source in sources else []

        return cls(
            sensor=read("sensor"), image=read("image"), text=read("text"), quality=read("quality"),
            failures=read("failures"), channels=plant.channels, window=plant.window,
            sample_period_s=plant.sample_period_s, test_fraction=plant.test_fraction,
            classes={"image": plant.image.classes if plant.image else (), "text": plant.text.classes if plant.text else ()},
            tables={s: read(s) for s in sources if s in LABEL_TABLES})


def _readings_by_day(inputs: DatasetInputs) -> Iterator[tuple[str, pd.DataFrame]]:
    """Each day's readings preceded by the previous day's tail, so windows may cross midnight."""
    tail = None
    for day, folder in inputs.sensor:
        frame = read_kept(folder)
        joined = frame if tail is None else pd.concat([tail, frame], ignore_index=True)
        yield day, joined
        tail = joined.groupby("machine_id", sort=False).tail(inputs.window)


def _finish(name: str, modality: str, inputs_tensor, index: pd.DataFrame, kind: str, target: str,
            test_fraction: float, classes=None, duplicate_key=None, **extra) -> LabeledDataset:
    index = index.reset_index(drop=True)
    split = assign_splits(index, test_fraction, duplicate_key)
    if inputs_tensor is not None:
        inputs_tensor = inputs_tensor[torch.as_tensor(split.index.to_numpy().copy(), dtype=torch.long)]
    split = split.reset_index(drop=True)
    meta = {"kind": kind, "target": target, "split_rule": SPLIT_RULE, "classes": list(classes) if classes else None,
            "n_train": int((split["split"] == "train").sum()), "n_test": int((split["split"] == "test").sum()),
            "dropped_duplicates": split.attrs.get("dropped_duplicates", 0), **extra}
    return LabeledDataset(name, modality, inputs_tensor, split, meta)


def _sensor_samples(inputs: DatasetInputs, ends_for_day: Callable[[str, pd.DataFrame], pd.DataFrame]):
    chunks, rows = [], []
    for day, readings in _readings_by_day(inputs):
        wanted = ends_for_day(day, readings)
        for machine, targets in wanted.groupby("machine_id", sort=True):
            machine_readings = readings[readings["machine_id"] == machine]
            windows, ok = windows_ending_at(machine_readings, inputs.channels, targets["timestamp"],
                                            inputs.window, inputs.max_gap_s)
            if ok.any():
                chunks.append(windows)
                rows.append(targets[ok])
    tensor = torch.cat(chunks) if chunks else torch.zeros((0, len(inputs.channels), inputs.window))
    index = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["timestamp", "machine_id", "target"])
    return tensor, index


def build_quality_dataset(inputs: DatasetInputs) -> LabeledDataset:
    """Window of process readings ending at a batch's end -> batch passed inspection (0/1)."""
    quality = {day: read_kept(folder) for day, folder in inputs.quality}

    def ends(day, _readings):
        frame = quality.get(day, pd.DataFrame(columns=["timestamp", "machine_id", "batch_id", "passed"]))
        return frame.assign(target=frame["passed"].astype("int64"))[["timestamp", "machine_id", "batch_id", "target"]]

    tensor, index = _sensor_samples(inputs, ends)
    return _finish("quality_dataset", "sensor", tensor, index, "classification", "passed",
                   inputs.test_fraction, classes=("fail", "pass"), channels=inputs.channels)


def _events(inputs: DatasetInputs) -> pd.DataFrame:
    frames = [read_kept(folder) for _, folder in inputs.failures]
    if not frames:
        return pd.DataFrame(columns=["timestamp", "machine_id", "event"])
    return pd.concat(frames, ignore_index=True).sort_values(["machine_id", "timestamp"])


def _next_events(ends: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per (machine, time): hours to the next event, its kind, and whether the machine is down
    (its last event was a failure not yet followed by maintenance)."""
    out = ends.reset_index(drop=True).copy()
    hours = np.full(len(out), np.nan)
    kind = np.full(len(out), None, dtype=object)
    down = np.zeros(len(out), dtype=bool)
    t_ns = to_ns(out["timestamp"])
    for machine, rows in out.groupby("machine_id").indices.items():
        ev = events[events["machine_id"] == machine]
        times = to_ns(ev["timestamp"])
        kinds = ev["event"].to_numpy(dtype=object)
        position = np.searchsorted(times, t_ns[rows], side="right")
        has_next = position < len(times)
        nxt = np.minimum(position, max(len(times) - 1, 0))
        if len(times):
            hours[rows[has_next]] = (times[nxt[has_next]] - t_ns[rows[has_next]]) / 3.6e12
            kind[rows[has_next]] = kinds[nxt[has_next]]
            down[rows] = (position > 0) & (kinds[np.maximum(position - 1, 0)] == "failure")
    return out.assign(hours_to_next=hours, next_event=kind, down=down)


def _regular_ends(readings: pd.DataFrame, day: str, every: int) -> pd.DataFrame:
    today = readings[readings["timestamp"].dt.strftime("%Y-%m-%d") == day]
    return today.groupby("machine_id", sort=True).nth(slice(every - 1, None, every))[["timestamp", "machine_id"]]


def build_failure_dataset(inputs: DatasetInputs, horizon_h: float = 12.0, every: int = 32) -> LabeledDataset:
    """Window -> the machine fails within ``horizon_h`` hours (before any maintenance)."""
    events = _events(inputs)
    last_seen = max((read_kept(f)["timestamp"].max() for _, f in inputs.sensor[-1:]), default=None)

    def ends(day, readings):
        frame = _next_events(_regular_ends(readings, day, every), events)
        frame = frame[~frame["down"]]  # between a failure and its repair there is nothing to predict
        hours = frame["hours_to_next"]
        end_hours = (last_seen - frame["timestamp"]).dt.total_seconds() / 3600
        positive = (frame["next_event"] == "failure") & (hours <= horizon_h)
        known = positive | (hours > horizon_h) | (frame["next_event"] == "maintenance") | \
            (hours.isna() & (end_hours > horizon_h))
        return frame[known].assign(target=positive[known].astype("int64"))[["timestamp", "machine_id", "target"]]

    tensor, index = _sensor_samples(inputs, ends)
    return _finish("failure_dataset", "sensor", tensor, index, "classification", "failure_within_horizon",
                   inputs.test_fraction, classes=("no_failure", "failure"), horizon_h=horizon_h, channels=inputs.channels)


def build_rul_dataset(inputs: DatasetInputs, cap_h: float = 48.0, every: int = 32) -> LabeledDataset:
    """Window -> hours until the next failure, capped at ``cap_h`` (target and truth alike).

    Censored windows (a maintenance or the end of data comes first) are kept only when the
    censoring time is already beyond the cap, where the capped RUL is known exactly.
    """
    events = _events(inputs)
    last_seen = max((read_kept(f)["timestamp"].max() for _, f in inputs.sensor[-1:]), default=None)

    def ends(day, readings):
        frame = _next_events(_regular_ends(readings, day, every), events)
        frame = frame[~frame["down"]]
        hours = frame["hours_to_next"]
        end_hours = (last_seen - frame["timestamp"]).dt.total_seconds() / 3600
        failure = frame["next_event"] == "failure"
        known = failure | (hours >= cap_h) | (hours.isna() & (end_hours >= cap_h))
        target = hours.where(failure, cap_h).clip(upper=cap_h).fillna(cap_h)
        return frame[known].assign(target=target[known].astype("float32"))[["timestamp", "machine_id", "target"]]

    tensor, index = _sensor_samples(inputs, ends)
    return _finish("rul_dataset", "sensor", tensor, index, "regression", "remaining_useful_life_h",
                   inputs.test_fraction, cap_h=cap_h, channels=inputs.channels)


def labeled_images(inputs: DatasetInputs, size: int) -> tuple[torch.Tensor, pd.DataFrame]:
    """Every labeled image of the cleaned partitions with its index row and integer target."""
    chunks, rows = [], []
    for _, folder in inputs.image:
        images, index = read_images(folder)
        labeled = index["label"].notna().to_numpy()
        if labeled.any():
            chunks.append(images[torch.from_numpy(labeled.copy())])
            rows.append(index[labeled])
    tensor = torch.cat(chunks) if chunks else torch.zeros((0, 1, size, size), dtype=torch.uint8)
    index = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["file", "sha256", "label", "machine_id", "timestamp"])
    index["target"] = index["label"].map({c: i for i, c in enumerate(inputs.classes["image"])}).astype("int64")
    return tensor, index


def build_defect_dataset(inputs: DatasetInputs) -> LabeledDataset:
    """Labeled inspection image -> defect class; split by machine, identical images kept out of train."""
    classes = inputs.classes["image"]
    tensor, index = labeled_images(inputs, 64)
    return _finish("defect_dataset", "image", tensor, index, "classification", "defect_type",
                   inputs.test_fraction, classes=classes, duplicate_key="sha256")


def build_maintenance_log_dataset(inputs: DatasetInputs) -> LabeledDataset:
    classes = inputs.classes["text"]
    frames = [read_kept(folder) for _, folder in inputs.text]
    index = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["timestamp", "machine_id", "text", "label"])
    index = index[index["label"].notna()].copy()
    index["target"] = index["label"].map({c: i for i, c in enumerate(classes)}).astype("int64")
    return _finish("maintenance_log_dataset", "text", None, index, "classification", "category",
                   inputs.test_fraction, classes=classes, duplicate_key="text")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    modality: str
    sources: tuple[str, ...]
    build: Callable[[DatasetInputs], LabeledDataset]


DATASETS = {
    spec.name: spec for spec in (
        DatasetSpec("quality_dataset", "sensor", ("sensor", "quality"), build_quality_dataset),
        DatasetSpec("failure_dataset", "sensor", ("sensor", "failures"), build_failure_dataset),
        DatasetSpec("rul_dataset", "sensor", ("sensor", "failures"), build_rul_dataset),
        DatasetSpec("defect_dataset", "image", ("image",), build_defect_dataset),
        DatasetSpec("maintenance_log_dataset", "text", ("text",), build_maintenance_log_dataset),
    )
}
