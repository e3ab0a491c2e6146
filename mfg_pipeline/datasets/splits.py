"""Held-out splits by physical thing (machine, unit, recording), stable as data grows.

A machine's split is a pure function of its id: adding days or machines never moves a machine
from test to train. Identical samples (same text, same image bytes) never sit on both sides.
"""

from __future__ import annotations

import hashlib

import pandas as pd

SPLIT_SALT = "mfg-split-v1"
SPLIT_RULE = "by machine_id: sha256(salt + machine_id) < test_fraction; identical samples kept out of train"


def machine_split(machine_id: str, test_fraction: float, salt: str = SPLIT_SALT) -> str:
    value = int(hashlib.sha256(f"{salt}:{machine_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if value < test_fraction else "train"


def assign_splits(index: pd.DataFrame, test_fraction: float, duplicate_key: str | None = None) -> pd.DataFrame:
    """Add a ``split`` column by machine; with ``duplicate_key``, train rows whose key also
    occurs in test are dropped (returned count in ``attrs['dropped_duplicates']``)."""
    out = index.copy()
    out["split"] = [machine_split(str(m), test_fraction) for m in out["machine_id"]]
    dropped = 0
    if duplicate_key is not None and len(out):
        test_keys = set(out.loc[out["split"] == "test", duplicate_key])
        leak = (out["split"] == "train") & out[duplicate_key].isin(test_keys)
        dropped = int(leak.sum())
        out = out[~leak]
    out.attrs["dropped_duplicates"] = dropped
    return out
