"""Sensor readings: text -> typed, deduplicated, ordered, physically plausible rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mfg_pipeline.cleaning.quarantine import Quarantine
from mfg_pipeline.landing.partitioning import parse_timestamps


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    low: float
    high: float


@dataclass(frozen=True)
class SensorCleaningRules:
    channels: tuple[ChannelSpec, ...]
    # A channel that repeats one value for this many consecutive readings is a stuck sensor.
    stuck_run: int = 30


def clean_sensor_readings(raw: pd.DataFrame, rules: SensorCleaningRules,
                          rejected: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (kept, quarantine). ``rejected`` are records ingestion could not read."""
    q = Quarantine(rejected)
    names = [c.name for c in rules.channels]
    frame = raw.copy()
    missing = [c for c in ["timestamp", "machine_id", *names] if c not in frame.columns]
    if missing:
        frame = q.reject(frame, pd.Series(True, index=frame.index),
                         f"missing required column(s): {', '.join(missing)}")
        for column in missing:
            frame[column] = pd.Series(dtype="string")
    timestamps = parse_timestamps(frame["timestamp"])
    frame = q.reject(frame, timestamps.isna(), "unparseable timestamp")
    frame["timestamp"] = timestamps[frame.index]
    machine = frame["machine_id"].astype("string").str.strip()
    frame = q.reject(frame, machine.isna() | (machine == ""), "missing machine_id")
    frame["machine_id"] = machine[frame.index]
    for spec in rules.channels:
        # Raw tables are the union of their files' columns: null means this row's file lacked it.
        frame = q.reject(frame, frame[spec.name].isna(), f"column {spec.name} absent in source file")
        text = frame[spec.name].astype("string").str.strip()
        values = pd.to_numeric(text, errors="coerce")
        frame = q.reject(frame, values.isna() & (text != "") & ~text.str.lower().isin(["nan", "inf", "-inf", "+inf", "infinity", "-infinity"]),
                         f"non-numeric value in {spec.name}")
        values = values[frame.index]
        frame = q.reject(frame, values.isna(), f"missing or NaN value in {spec.name}")
        values = values[frame.index]
        frame = q.reject(frame, ~np.isfinite(values), f"infinite value in {spec.name}")
        values = values[frame.index]
        frame = q.reject(frame, (values < spec.low) | (values > spec.high),
                         f"{spec.name} out of physical range [{spec.low}, {spec.high}]")
        frame[spec.name] = values[frame.index].astype("float32")
    frame = frame.sort_values(["machine_id", "timestamp", "_source_file", "_source_row"], kind="stable")
    frame = q.reject(frame, frame.duplicated(["machine_id", "timestamp"], keep="first"),
                     "duplicate timestamp for machine (first occurrence kept)")
    frame = _reject_stuck(frame, rules, q)
    kept = frame[["timestamp", "machine_id", *names]].reset_index(drop=True)
    kept["machine_id"] = kept["machine_id"].astype(str)
    return kept, q.frame()


def _reject_stuck(frame: pd.DataFrame, rules: SensorCleaningRules, q: Quarantine) -> pd.DataFrame:
    if frame.empty or rules.stuck_run <= 1:
        return frame
    machine = frame["machine_id"].to_numpy(dtype=object)
    new_machine = np.r_[True, machine[1:] != machine[:-1]]
    stuck = np.zeros(len(frame), dtype=bool)
    reason = np.full(len(frame), "", dtype=object)
    for spec in rules.channels:
        values = frame[spec.name].to_numpy(dtype=np.float64)
        # Runs of identical consecutive values within one machine.
        change = new_machine | np.r_[True, values[1:] != values[:-1]]
        run_id = np.cumsum(change)
        run_length = np.bincount(run_id)[run_id]
        hit = (run_length >= rules.stuck_run) & ~stuck
        reason[hit] = f"sensor stuck: {spec.name} constant for >= {rules.stuck_run} readings"
        stuck |= hit
    return q.reject(frame, pd.Series(stuck, index=frame.index), pd.Series(reason, index=frame.index))
