"""Maintenance-log text: normalised lines with known labels, or quarantine with a reason."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pandas as pd

from mfg_pipeline.cleaning.quarantine import Quarantine
from mfg_pipeline.landing.partitioning import parse_timestamps

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class TextCleaningRules:
    classes: tuple[str, ...]
    max_chars: int = 2000


def normalise_text(text: str) -> str:
    """NFKC, no control characters, single spaces, lower case (technicians' case is noise)."""
    text = unicodedata.normalize("NFKC", text)
    return _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip().lower()


def clean_maintenance_logs(raw: pd.DataFrame, rules: TextCleaningRules,
                           rejected: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    q = Quarantine(rejected)
    frame = raw.copy()
    missing = [c for c in ("timestamp", "machine_id", "text") if c not in frame.columns]
    if missing:
        frame = q.reject(frame, pd.Series(True, index=frame.index), f"missing required column(s): {', '.join(missing)}")
        for column in missing:
            frame[column] = pd.Series(dtype="string")
    if "label" not in frame.columns:
        frame["label"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    timestamps = parse_timestamps(frame["timestamp"])
    frame = q.reject(frame, timestamps.isna(), "unparseable timestamp")
    frame["timestamp"] = timestamps[frame.index]
    machine = frame["machine_id"].astype("string").str.strip()
    frame = q.reject(frame, machine.isna() | (machine == ""), "missing machine_id")
    text = frame["text"].astype("string")
    frame = q.reject(frame, text.isna() | (text.str.strip() == ""), "empty text")
    text = frame["text"].astype("string")
    frame = q.reject(frame, text.str.len() > rules.max_chars, f"text longer than {rules.max_chars} characters")
    frame["text"] = frame["text"].astype(str).map(normalise_text)
    frame = q.reject(frame, frame["text"] == "", "text empty after normalisation")
    label = frame["label"].astype("string").str.strip().str.lower()
    label = label.mask(label == "")
    frame = q.reject(frame, label.notna() & ~label.isin(rules.classes), "label names an unknown class: " + label.fillna(""))
    frame["label"] = label[frame.index]
    frame = frame.sort_values(["machine_id", "timestamp", "_source_file", "_source_row"], kind="stable")
    kept = frame[["timestamp", "machine_id", "text", "label"]].reset_index(drop=True)
    kept["machine_id"] = kept["machine_id"].astype(str).str.strip()
    return kept, q.frame()
