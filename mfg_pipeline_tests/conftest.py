"""Shared fixtures: a tiny simulated plant in a temporary data directory."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from mfg_pipeline.profiles import default_profile

os.environ.setdefault("MFG_NUM_THREADS", "2")
SHARED_DATASETS = Path(os.environ.get("MFG_PUBLIC_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


@pytest.fixture
def tiny_profile(tmp_path: Path):
    from mfg_pipeline.simulator.config import scaled
    from mfg_pipeline.simulator.write import simulate

    profile = default_profile(tmp_path / "data")
    simulate(profile.landing_dir, scaled("tiny", start_day=profile.start_day))
    return profile


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst
