"""Simulator settings: one frozen dataclass and the named scales."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything the plant simulator needs; the same config always gives the same files."""

    seed: int = 7
    n_machines: int = 8
    n_days: int = 14
    start_day: str = "2026-01-01"
    sample_period_s: int = 60
    batches_per_machine_day: int = 24
    quality_label_fraction: float = 0.3
    images_per_machine_day: int = 12
    image_size: int = 64
    image_label_fraction: float = 0.3
    logs_per_machine_day: int = 6
    text_label_fraction: float = 0.3

    def __post_init__(self) -> None:
        if self.n_machines < 1 or self.n_machines > 99:
            raise ValueError("n_machines must be in 1..99")
        if self.n_days < 1:
            raise ValueError("n_days must be >= 1")
        if self.sample_period_s < 1 or 86400 % self.sample_period_s:
            raise ValueError("sample_period_s must divide one day (86400 s)")
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        for name in ("quality_label_fraction", "image_label_fraction", "text_label_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.image_size < 16:
            raise ValueError("image_size must be >= 16")
        dt.date.fromisoformat(self.start_day)

    @property
    def samples_per_day(self) -> int:
        return 86400 // self.sample_period_s

    @property
    def machine_ids(self) -> list[str]:
        return [machine_id(i) for i in range(self.n_machines)]


def machine_id(index: int) -> str:
    """``0 -> "M01"``: zero-padded so that ids sort like their index."""
    return f"M{index + 1:02d}"


SCALES: dict[str, SimulatorConfig] = {
    "tiny": SimulatorConfig(
        n_machines=6,  # M06 hashes into the test split: tiny runs evaluate too
        n_days=3,
        batches_per_machine_day=8,
        images_per_machine_day=6,
        logs_per_machine_day=4,
    ),
    "default": SimulatorConfig(),
}


def scaled(name: str, **overrides) -> SimulatorConfig:
    """A named scale with some fields replaced, e.g. ``scaled("tiny", seed=3)``."""
    if name not in SCALES:
        raise ValueError(f"unknown simulator scale {name!r}; expected one of {sorted(SCALES)}")
    return dataclasses.replace(SCALES[name], **overrides)
