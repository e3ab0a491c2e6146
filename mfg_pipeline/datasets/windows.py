"""Cutting fixed-length sensor windows out of cleaned readings, never across gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def to_ns(values) -> np.ndarray:
    """UTC timestamps (Series or array, any resolution) -> int64 nanoseconds since the epoch."""
    series = pd.Series(values)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def contiguous_segments(timestamps: np.ndarray, max_gap_s: float) -> list[tuple[int, int]]:
    """[start, end) index ranges in which consecutive ns timestamps are at most ``max_gap_s`` apart."""
    if len(timestamps) == 0:
        return []
    gaps = np.diff(timestamps) / 1e9 > max_gap_s
    cuts = np.flatnonzero(gaps) + 1
    bounds = np.r_[0, cuts, len(timestamps)]
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def sliding_windows(frame: pd.DataFrame, channels: list[str], length: int, stride: int,
                    max_gap_s: float) -> tuple[torch.Tensor, pd.DataFrame]:
    """All windows [N, C, L] of one machine's sorted readings, with (machine_id, start, end)."""
    values = frame[channels].to_numpy(np.float32)
    times = frame["timestamp"].to_numpy()
    chunks, rows = [], []
    for start, end in contiguous_segments(to_ns(frame["timestamp"]), max_gap_s):
        if end - start < length:
            continue
        segment = torch.from_numpy(values[start:end].T.copy())
        cut = segment.unfold(1, length, stride)  # [C, n, L]
        chunks.append(cut.permute(1, 0, 2))
        starts = np.arange(start, end - length + 1, stride)[: cut.shape[1]]
        rows.append(pd.DataFrame({"start": times[starts], "end": times[starts + length - 1]}))
    if not chunks:
        return torch.zeros((0, len(channels), length)), pd.DataFrame({"start": [], "end": []})
    return torch.cat(chunks), pd.concat(rows, ignore_index=True)


def windows_ending_at(frame: pd.DataFrame, channels: list[str], ends: pd.Series, length: int,
                      max_gap_s: float) -> tuple[torch.Tensor, np.ndarray]:
    """The window of ``length`` readings ending at or just before each time in ``ends``.

    Returns the windows and a boolean mask over ``ends`` of those that had a complete,
    gap-free window (the others have too little history).
    """
    times = to_ns(frame["timestamp"])
    values = frame[channels].to_numpy(np.float32)
    targets = to_ns(ends)
    last = np.searchsorted(times, targets, side="right") - 1
    ok = last >= length - 1
    out = []
    for i, stop in enumerate(last):
        if not ok[i]:
            continue
        first = stop - length + 1
        span = np.diff(times[first: stop + 1]) / 1e9
        if (span > max_gap_s).any() or (targets[i] - times[stop]) / 1e9 > max_gap_s:
            ok[i] = False
            continue
        out.append(values[first: stop + 1].T)
    tensor = torch.from_numpy(np.stack(out)) if out else torch.zeros((0, len(channels), length))
    return tensor, ok
