"""Label tables (quality results, failure events, per-recording labels): typed rows or quarantine with a reason."""

from __future__ import annotations

import pandas as pd

from mfg_pipeline.cleaning.quarantine import Quarantine
from mfg_pipeline.landing.contract import LABEL_TABLE_COLUMNS
from mfg_pipeline.landing.partitioning import parse_timestamps

EVENTS = ("failure", "maintenance")


def clean_label_table(table: str, raw: pd.DataFrame, known_machines: set[str] | None = None,
                      rejected: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``known_machines``: when given, a row naming a machine with no sensor data is quarantined
    (a label that references missing rows)."""
    q = Quarantine(rejected)
    frame = raw.copy()
    required = LABEL_TABLE_COLUMNS[table]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        frame = q.reject(frame, pd.Series(True, index=frame.index), f"missing required column(s): {', '.join(missing)}")
        for column in missing:
            frame[column] = pd.Series(dtype="string")
    timestamps = parse_timestamps(frame["timestamp"])
    frame = q.reject(frame, timestamps.isna(), "unparseable timestamp")
    frame["timestamp"] = timestamps[frame.index]
    frame["machine_id"] = frame["machine_id"].astype("string").str.strip()
    frame = q.reject(frame, frame["machine_id"].isna() | (frame["machine_id"] == ""), "missing machine_id")
    if known_machines is not None:
        frame = q.reject(frame, ~frame["machine_id"].isin(known_machines),
                         "label references a machine with no sensor readings")
    if table == "quality":
        passed = frame["passed"].astype("string").str.strip().str.lower().map(
            {"1": 1, "0": 0, "true": 1, "false": 0, "pass": 1, "fail": 0})
        frame = q.reject(frame, passed.isna(), "passed must be 0/1")
        frame["passed"] = passed[frame.index].astype("int64")
        frame = q.reject(frame, frame.duplicated(["machine_id", "batch_id"], keep="first"), "duplicate batch_id")
        columns = ["timestamp", "machine_id", "batch_id", "passed"]
    elif table == "failures":
        event = frame["event"].astype("string").str.strip().str.lower()
        frame = q.reject(frame, ~event.isin(EVENTS), "event names an unknown class: " + event.fillna(""))
        frame["event"] = event[frame.index]
        frame = q.reject(frame, frame.duplicated(["machine_id", "timestamp", "event"], keep="first"), "duplicate event")
        columns = ["timestamp", "machine_id", "event"] + (["failure_type"] if "failure_type" in frame.columns else [])
    else:
        # Any other table (e.g. ``recordings``): its required columns must be non-empty, one row
        # per (machine, timestamp); optional columns are kept as text for the dataset builders.
        for column in required[2:]:
            value = frame[column].astype("string").str.strip()
            frame = q.reject(frame, value.isna() | (value == ""), f"missing {column}")
            frame[column] = value[frame.index]
        frame = q.reject(frame, frame.duplicated(["machine_id", "timestamp"], keep="first"), "duplicate label row")
        columns = [*required, *(c for c in frame.columns if c not in required and not str(c).startswith("_"))]
    kept = frame[columns].sort_values(["machine_id", "timestamp"], kind="stable").reset_index(drop=True)
    kept["machine_id"] = kept["machine_id"].astype(str)
    return kept, q.frame()
