"""Which landing files (and rows) belong to which daily partition.

A tabular row belongs to the day of its own UTC timestamp, so late files and files that span
midnight land in the right partitions. A row whose timestamp cannot be parsed, and a file that
cannot be read at all, belong to the file's *home day*: the date in its path, else its first
row's day, else its modification date. Images carry no timestamps: their day is the date in
their path, else their modification date.

Reading every file's timestamps for every partition would cost O(days x files); the days of a
file are therefore cached in a small JSON index keyed by (path, size, mtime).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pandas as pd

from mfg_pipeline.landing.contract import SUFFIXES, LandingFile, LandingLayout, discover
from mfg_pipeline.landing.readers import read_table
from mfg_pipeline.storage import atomic

INDEX_VERSION = 1


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO 8601 text -> UTC timestamps; naive times are UTC, offsets are converted, junk -> NaT."""
    return pd.to_datetime(values.astype("string"), utc=True, format="ISO8601", errors="coerce")


def day_of(timestamps: pd.Series) -> pd.Series:
    return timestamps.dt.strftime("%Y-%m-%d")


def _mtime_day(file: LandingFile) -> str:
    return dt.datetime.fromtimestamp(file.mtime_ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d")


def _scan_days(file: LandingFile, source: str) -> tuple[list[str], str]:
    days: set[str] = set()
    first: str | None = None
    for frame, _ in read_table(file, SUFFIXES[source]):
        if "timestamp" not in frame.columns or frame.empty:
            continue
        parsed = day_of(parse_timestamps(frame["timestamp"])).dropna()
        if first is None and len(parsed):
            first = str(parsed.iloc[0])
        days.update(parsed.unique().tolist())
    home = file.day_hint or first or _mtime_day(file)
    return sorted(days | {home}), home


class LandingIndex:
    """Cached map landing file -> (days it holds rows for, home day), for one source."""

    def __init__(self, layout: LandingLayout, source: str, cache_path: Path):
        self.layout = layout
        self.source = source
        self.cache_path = Path(cache_path)

    def entries(self) -> list[tuple[LandingFile, list[str], str]]:
        files = discover(self.layout, self.source)
        with atomic.artifact_lock(self.cache_path):
            cache = {}
            if self.cache_path.exists():
                stored = atomic.read_json(self.cache_path)
                if stored.get("version") == INDEX_VERSION:
                    cache = stored["files"]
            result, fresh, changed = [], {}, False
            for file in files:
                hit = cache.get(file.relative)
                if hit and hit["fingerprint"] == file.fingerprint:
                    days, home = hit["days"], hit["home"]
                else:
                    changed = True
                    if self.source == "image":
                        home = file.day_hint or _mtime_day(file)
                        days = [home]
                    else:
                        days, home = _scan_days(file, self.source)
                fresh[file.relative] = {"fingerprint": file.fingerprint, "days": days, "home": home}
                result.append((file, days, home))
            if changed or len(fresh) != len(cache):
                atomic.write_json(self.cache_path, {"version": INDEX_VERSION, "files": fresh})
        return result

    def files_for_day(self, day: str) -> list[tuple[LandingFile, str]]:
        """(file, home day) for every file holding rows of ``day``."""
        return [(file, home) for file, days, home in self.entries() if day in days]

    def days(self) -> list[str]:
        return sorted({d for _, days, _ in self.entries() for d in days})

    def days_of(self, relatives: set[str]) -> set[str]:
        return {d for file, days, _ in self.entries() if file.relative in relatives for d in days}


def fingerprint(files: list[LandingFile], salt: str = "") -> str:
    """A data version for a partition: changes when any contributing file changes."""
    digest = hashlib.sha256(salt.encode())
    for file in sorted(files, key=lambda f: f.relative):
        digest.update(file.fingerprint.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]
