"""Data profiles: one asset graph, several sources of landing-zone files.

A profile says where its files live and what its cleaning rules and classes are; everything
else (assets, checks, models) is the same code. ``default`` is the built-in plant simulator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mfg_pipeline.cleaning.image import ImageCleaningRules
from mfg_pipeline.cleaning.sensor import ChannelSpec, SensorCleaningRules
from mfg_pipeline.cleaning.text import TextCleaningRules

REPO_ROOT = Path(__file__).resolve().parent.parent

SIMULATOR_CHANNELS = (
    ChannelSpec("vibration_rms", 0.0, 100.0),
    ChannelSpec("bearing_temp", -20.0, 200.0),
    ChannelSpec("motor_temp", -20.0, 200.0),
    ChannelSpec("pressure", 0.0, 500.0),
    ChannelSpec("spindle_speed", 0.0, 20000.0),
    ChannelSpec("torque", -1000.0, 1000.0),
    ChannelSpec("current", 0.0, 1000.0),
    ChannelSpec("coolant_flow", 0.0, 1000.0),
)
DEFECT_CLASSES = ("none", "scratch", "inclusion", "patch", "pitting", "crazing")
LOG_CATEGORIES = ("electrical", "hydraulic", "mechanical", "lubrication", "sensor_fault", "pneumatic")


@dataclass(frozen=True)
class Plant:
    """One kind of plant: one landing zone, one set of channels and classes, its own datasets.

    Its assets are prefixed with its name (``cmapss/cleaned_sensor_readings``), except a
    profile's single unnamed plant. Every plant runs through the same asset graph code.
    """

    name: str = ""
    modalities: tuple[str, ...] = ("sensor", "image", "text")
    label_tables: tuple[str, ...] = ("quality", "failures")
    sensor: SensorCleaningRules | None = None
    image: ImageCleaningRules | None = None
    text: TextCleaningRules | None = None
    datasets: tuple[str, ...] = ()
    sample_period_s: float = 60.0
    window: int = 64
    window_stride: int = 32
    test_fraction: float = 0.25

    def path(self, asset: str) -> str:
        """Where an asset's artifacts live relative to the work directory."""
        return f"{self.name}/{asset}" if self.name else asset

    @property
    def channels(self) -> list[str]:
        return [c.name for c in self.sensor.channels] if self.sensor else []


@dataclass(frozen=True)
class Profile:
    """A code location: where files live, which plants there are, when partitions start."""

    name: str
    landing_dir: Path
    work_dir: Path
    reports_dir: Path
    start_day: str
    plants: tuple[Plant, ...]
    simulator_scale: str | None = None

    def landing_for(self, plant: Plant) -> Path:
        return self.landing_dir / plant.name if plant.name else self.landing_dir


SIMULATED_PLANT = Plant(
    sensor=SensorCleaningRules(SIMULATOR_CHANNELS),
    image=ImageCleaningRules(DEFECT_CLASSES, size=64),
    text=TextCleaningRules(LOG_CATEGORIES),
    datasets=("quality_dataset", "failure_dataset", "rul_dataset", "defect_dataset", "maintenance_log_dataset"),
)


def default_profile(data_root: Path | None = None) -> Profile:
    """The built-in plant simulator, under ``data/`` (or ``MFG_DATA_DIR``)."""
    root = Path(data_root or os.environ.get("MFG_DATA_DIR", REPO_ROOT / "data")).resolve()
    return Profile(
        name="default",
        landing_dir=root / "raw",
        work_dir=root / "work",
        reports_dir=root / "reports",
        start_day=os.environ.get("MFG_START_DAY", "2026-01-01"),
        plants=(SIMULATED_PLANT,),
        simulator_scale=os.environ.get("MFG_SCALE", "default"),
    )
