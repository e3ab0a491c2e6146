"""Quarantine bookkeeping shared by every modality: nothing is dropped without a reason."""

from __future__ import annotations

import json

import pandas as pd

from mfg_pipeline.landing.readers import REJECTED_COLUMNS, SOURCE_FILE, SOURCE_ROW


class Quarantine:
    """Collects rejected rows; ``reject`` removes them from the frame it returns."""

    def __init__(self, carried: pd.DataFrame | None = None):
        self.parts: list[pd.DataFrame] = [] if carried is None or carried.empty else [carried]

    def reject(self, frame: pd.DataFrame, mask, reason) -> pd.DataFrame:
        """Move rows where ``mask`` is true into quarantine; ``reason`` is text or a Series."""
        mask = pd.Series(mask, index=frame.index).fillna(False).astype(bool)
        if not mask.any():
            return frame
        bad = frame[mask]
        reasons = reason[mask] if isinstance(reason, pd.Series) else reason
        record = [json.dumps({k: _plain(v) for k, v in r.items() if not str(k).startswith("_")})[:2000]
                  for r in bad.to_dict("records")]
        self.parts.append(pd.DataFrame({
            "source_file": bad[SOURCE_FILE].astype("string") if SOURCE_FILE in bad else pd.NA,
            "source_row": bad[SOURCE_ROW].astype("Int64") if SOURCE_ROW in bad else pd.NA,
            "reason": reasons, "record": record,
        }))
        return frame[~mask]

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype="string") for c in REJECTED_COLUMNS}).astype({"source_row": "Int64"})
        out = pd.concat(self.parts, ignore_index=True)
        return out.astype({"source_file": "string", "source_row": "Int64", "reason": "string", "record": "string"})


def _plain(value):
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """Reason -> count, with per-column details folded ("non-numeric value in torque" -> itself)."""
    return {str(k): int(v) for k, v in quarantine["reason"].value_counts().items()}
