"""Built-in plant simulator: writes sensor, image, text and label files into a landing zone.

It writes exactly what a real plant would (see ``mfg_pipeline.landing.contract``); ingestion
never imports it.
"""

from mfg_pipeline.simulator.config import SCALES, SimulatorConfig, machine_id, scaled
from mfg_pipeline.simulator.images import IMAGE_CLASSES
from mfg_pipeline.simulator.plant import CHANNELS, FAILURE_TYPES, machine_history
from mfg_pipeline.simulator.quality import quality_pass_probability
from mfg_pipeline.simulator.text import TEXT_CATEGORIES
from mfg_pipeline.simulator.write import days, simulate, write_day

__all__ = [
    "CHANNELS",
    "FAILURE_TYPES",
    "IMAGE_CLASSES",
    "SCALES",
    "TEXT_CATEGORIES",
    "SimulatorConfig",
    "days",
    "machine_history",
    "machine_id",
    "quality_pass_probability",
    "scaled",
    "simulate",
    "write_day",
]
