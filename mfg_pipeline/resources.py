"""Runtime choices as typed Dagster resources: where data lives, and what computes."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from mfg_pipeline.landing.contract import LandingLayout


class DataStore(dg.ConfigurableResource):
    """Where a profile's landing zone, work artifacts and reports live.

    Artifacts are keyed by asset (and partition): a downstream asset reads exactly the path
    its upstream wrote, never "the newest file in a folder".
    """

    landing_dir: str
    work_dir: str
    reports_dir: str

    def landing(self, plant: str = "") -> LandingLayout:
        """A plant's landing zone: the landing root, or its subfolder for a named plant."""
        root = Path(self.landing_dir)
        return LandingLayout(root / plant if plant else root)

    def asset_dir(self, asset: str, partition: str | None = None) -> Path:
        base = Path(self.work_dir) / asset
        return base / partition if partition else base

    def report_dir(self, name: str) -> Path:
        return Path(self.reports_dir) / name


class ComputeResource(dg.ConfigurableResource):
    """Device and precision for training; ``auto`` picks CUDA when present.

    Switching a deployment to GPU is configuration only (``MFG_DEVICE=cuda``,
    ``MFG_PRECISION=bf16``), never a code change.
    """

    device: str = "auto"
    precision: str = "fp32"
    num_threads: int = 0
