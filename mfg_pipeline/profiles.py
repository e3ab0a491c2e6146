"""Data profiles: one asset graph, several sources of landing-zone files.

A profile says where its files live and what its cleaning rules and classes are; everything
else (assets, checks, models) is the same code. ``default`` is the built-in plant simulator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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
class Profile:
    name: str
    landing_dir: Path
    work_dir: Path
    reports_dir: Path
    start_day: str
    sensor: SensorCleaningRules
    image: ImageCleaningRules
    text: TextCleaningRules
    sample_period_s: float = 60.0
    window: int = 64
    window_stride: int = 32
    corpus_window_days: int = 30
    test_fraction: float = 0.25
    simulator_scale: str | None = "default"
    notes: dict = field(default_factory=dict)



def default_profile(data_root: Path | None = None) -> Profile:
    root = Path(data_root or os.environ.get("MFG_DATA_DIR", REPO_ROOT / "data")).resolve()
    return Profile(
        name="default",
        landing_dir=root / "raw",
        work_dir=root / "work",
        reports_dir=root / "reports",
        start_day=os.environ.get("MFG_START_DAY", "2026-01-01"),
        sensor=SensorCleaningRules(SIMULATOR_CHANNELS),
        image=ImageCleaningRules(DEFECT_CLASSES, size=64),
        text=TextCleaningRules(LOG_CATEGORIES),
        simulator_scale=os.environ.get("MFG_SCALE", "default"),
    )
