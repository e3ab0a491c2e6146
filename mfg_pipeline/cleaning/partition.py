"""Clean one daily partition of one source: raw version in -> cleaned version out.

Each output is published as a new immutable version (``storage.versioned``) whose id hashes the
raw version it came from and the cleaning rules, so re-cleaning an unchanged partition is a
no-op that keeps its data version (and downstream sees nothing new).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mfg_pipeline.cleaning.image import ImageCleaningRules, clean_inspection_images
from mfg_pipeline.cleaning.labels import clean_label_table
from mfg_pipeline.cleaning.sensor import SensorCleaningRules, clean_sensor_readings
from mfg_pipeline.cleaning.text import TextCleaningRules, clean_maintenance_logs
from mfg_pipeline.landing.ingest import REJECTED, ROWS
from mfg_pipeline.storage import atomic, versioned

CLEAN_VERSION = "1"
KEPT = "kept.parquet"
QUARANTINE = "quarantine.parquet"
IMAGES = "images.safetensors"


@dataclass(frozen=True)
class CleanResult:
    version: str
    records_in: int
    kept: int
    quarantined: int
    reused: bool
    path: Path

    @property
    def balanced(self) -> bool:
        return self.records_in == self.kept + self.quarantined


def _version(raw_dir: Path, rules: object) -> tuple[str, Path]:
    raw_version = versioned.pointer(raw_dir)["version"]
    digest = hashlib.sha256(f"{raw_version}:{CLEAN_VERSION}:{rules!r}".encode()).hexdigest()[:16]
    return digest, versioned.current(raw_dir)


def _run(raw_dir: Path, out_dir: Path, rules: object, clean) -> CleanResult:
    version, raw = _version(raw_dir, rules)
    info = versioned.pointer(out_dir)
    if info and info["version"] == version:
        return CleanResult(version, info["records_in"], info["kept"], info["quarantined"], True, versioned.current(out_dir))

    def write(folder: Path) -> dict:
        rows = atomic.read_parquet(raw / ROWS)
        rejected = atomic.read_parquet(raw / REJECTED)
        kept, quarantine = clean(rows, rejected, folder)
        atomic.write_parquet(folder / QUARANTINE, quarantine)
        return {"records_in": len(rows) + len(rejected), "kept": kept, "quarantined": len(quarantine)}

    path = versioned.publish(out_dir, write, version)
    info = versioned.pointer(out_dir)
    return CleanResult(version, info["records_in"], info["kept"], info["quarantined"], False, path)


def _table(clean_rows: Callable[[pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]):
    """A cleaner ``(rows, rejected) -> (kept, quarantine)`` whose kept rows are one Parquet table."""
    def clean(rows, rejected, folder):
        kept, quarantine = clean_rows(rows, rejected)
        atomic.write_parquet(folder / KEPT, kept)
        return len(kept), quarantine
    return clean


def clean_sensor_partition(raw_dir: Path, out_dir: Path, rules: SensorCleaningRules) -> CleanResult:
    return _run(raw_dir, out_dir, rules, _table(lambda rows, rejected: clean_sensor_readings(rows, rules, rejected)))


def clean_text_partition(raw_dir: Path, out_dir: Path, rules: TextCleaningRules) -> CleanResult:
    return _run(raw_dir, out_dir, rules, _table(lambda rows, rejected: clean_maintenance_logs(rows, rules, rejected)))


def clean_image_partition(raw_dir: Path, out_dir: Path, rules: ImageCleaningRules) -> CleanResult:
    def clean(rows, rejected, folder):
        images, index, quarantine = clean_inspection_images(rows, rules, rejected)
        atomic.write_tensors(folder / IMAGES, {"images": images})
        atomic.write_parquet(folder / KEPT, index)
        return len(index), quarantine
    return _run(raw_dir, out_dir, rules, clean)


def clean_label_partition(table: str, raw_dir: Path, out_dir: Path, known_machines: set[str] | None) -> CleanResult:
    # The known machines are part of the rules: new sensor data may validate old labels.
    return _run(raw_dir, out_dir, (table, sorted(known_machines or [])),
                _table(lambda rows, rejected: clean_label_table(table, rows, known_machines, rejected)))


def read_kept(out_dir: Path) -> pd.DataFrame:
    return atomic.read_parquet(versioned.current(out_dir) / KEPT)


def read_quarantine(out_dir: Path) -> pd.DataFrame:
    return atomic.read_parquet(versioned.current(out_dir) / QUARANTINE)


def read_images(out_dir: Path):
    folder = versioned.current(out_dir)
    return atomic.read_tensors(folder / IMAGES)["images"], atomic.read_parquet(folder / KEPT)
