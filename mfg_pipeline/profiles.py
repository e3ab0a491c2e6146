"""Data profiles: one asset graph, several sources of landing-zone files.

A profile says where its files live and what its cleaning rules and classes are; everything
else (assets, checks, models) is the same code. ``default`` is the built-in plant simulator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
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
    # Per modality: model config and self-supervised budget of this plant's backbone
    # ({"sensor": {"model": {"patch_len": 32}, "steps": 300}}); the registry defaults otherwise.
    pretrain: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)
    # Build the pretraining corpus from this labeled dataset's TRAIN-split inputs (labels
    # dropped) instead of the cleaned partitions: same representation as the task (C-MAPSS: 14
    # informative sensors scaled per regime), and nothing of the test side (NEU's protocol).
    corpus_from: str | None = None

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
    # Where adapters read a public profile's source datasets (None: files land by other means).
    source_dir: Path | None = None

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


# ---------------------------------------------------------------------------------------------
# Public profile (issue 12): the public datasets of ``/work/shared/datasets`` through the same
# graph. ``landing.adapters`` write each dataset into its plant's landing subfolder.
# ---------------------------------------------------------------------------------------------

# Backbone configs and budgets of the public plants (measured on 2 CPU cores; see the README).
# C-MAPSS: 3,000 steps (~60 s on one core). The SSL loss still falls at 300 (3.1) and flattens
# by 3,000-5,000 (2.7-2.5); chosen on validation RMSE of held-out TRAIN engines (FD001, 3 seeds,
# 5/10/100 %): 300 steps 19.3/19.0/14.9, 3,000 17.5/18.5/14.3, 6,000 19.4/18.9/14.6.
# The window features include each channel's change across the window (``trend_feature``).
# Development splits (30 % of the TRAIN engines held out, 4 cuts each, 2 draws x 3 seeds), same
# backbone weights, pretrained RMSE at 5 / 10 / 100 %: FD001 19.6 / 17.5 / 14.0 -> 19.8 / 16.5 /
# 13.7, FD004 27.2 / 25.0 / 22.5 -> 26.3 / 23.3 / 21.9; FD002 with all engines 19.8 -> 18.6. With
# all engines every one of the 6 runs improves on each subset.
CMAPSS_PRETRAIN = {"sensor": {"model": {"patch_len": 5, "stride": 5, "channel_mixing": True, "trend_feature": True},
                              "steps": 3000}}
# 12 kHz vibration: faults live in frequency bands, so the backbone reads each window's
# log-spectrum (1,024 bins, 32-bin patches) and keeps every token (where energy sits is the
# information; pooled tokens probed at 0.45 cross-load). Seed 0, against time-domain patches:
# within-load 0.993/0.996 at 5/10 % (was 0.897/0.94; scratch twin 0.908/0.953), cross-load
# 0.894 (was 0.884). No window level/scale features: amplitude changes with motor load, a
# shortcut that breaks cross-load transfer (load 1 -> 0 at 0.44 with them). The probe reads the
# pretrained patch embeddings (feature_depth 0): the transformer's contextual tokens are
# load-specific (3 seeds, same backbone: cross-load 0.886 from the last layer, 0.981 from the
# patch embeddings; within-load at 5 % 0.993 -> 1.000).
CWRU_PRETRAIN = {"sensor": {"model": {"patch_len": 32, "stride": 32, "stats_features": False, "spectrum": True,
                                      "pool": "tokens", "feature_depth": 0}, "steps": 300}}
# NEU defects are surface textures. The image backbone is a patch dictionary (k-means on
# whitened 7x7 patches of the 200 px images average-pooled by 2 and by 4, at first 256 atoms each;
# ``modalities.patch_dictionary``) learnt from the training split's images in ~10 s, plus a few
# gradient steps on the same k-means objective. At 1/2 it reads every other patch position:
# 5x cheaper to train the scratch twin (0.45 s per step of 16 images), same accuracy. Against the
# 150-step SimCLR shufflenet it replaced, benchmark means over 3 seeds at 100/10/5 % of the
# labels: 0.947/0.838/0.785 (dad0954) -> 0.9896/0.925/0.870 (7cff0d8); with the task training on
# the 8 rotations/reflections of each labeled image (TaskSpec.augment) 0.9933/0.934/0.882
# (1afec1b; scratch twin 0.866/0.812/0.811).
# The dictionary's matches are VLAD-encoded (``encoding="vlad"``: per atom, the sum of the
# residuals of the patches nearest to it) with 64 atoms per scale instead of counted per atom with
# 256. Development data (25 % of each class of the TRAIN images held out, 3 draws x 3 seeds; the
# test split untouched), probe accuracy with 11 / 22 labeled images per class (the 5 / 10 % of the
# benchmark): counts 0.896 / 0.932 -> VLAD with 64 atoms 0.935 / 0.960 (256 atoms at the same
# strides 0.931 at 5 %; 256 atoms, every other position at both scales 0.936). Four rounds of
# self-training the counted probe on its confident pseudo-labels of the unlabeled TRAIN images
# gave 0.909 -> 0.912 (one draw), label spreading on a k-NN graph of the counts 0.82-0.87 (3
# draws): what was missing is in the encoding. 64 atoms also embed 3x faster than 256 (66 s vs 180 s
# for the 1,350 TRAIN images x 8 views). Benchmark (77da1d8), 3 seeds, at 100/10/5 %: 0.9933/0.934/
# 0.882 -> 0.997/0.969/0.936. The scratch twin (random atoms, no whitening, VLAD, trained end to end)
# gains as much, 0.866/0.812/0.811 -> 0.963/0.944/0.936: at 5 % the k-means atoms add ~nothing.
NEU_PRETRAIN = {"image": {"model": {"arch": "patch_dictionary", "image_size": 200, "strides": [2, 1], "atoms": 64,
                                    "encoding": "vlad"}, "steps": 20, "lr": 1e-3}}
# MaintNet + excavator text has ~10x the simulator's vocabulary. The excavator probe reads the
# bag of the corpus-trained pieces: macro-F1 0.84/0.53 at 100/10 % of the labels, against 0.63/0.32
# from the pooled MLM states (3 seeds on the benchmark's backbone, before adoption). Each piece is
# weighted by the square root of its idf over the corpus. Development splits of the training texts
# (25 % of the text groups held out, 6 draws x 3 seeds), at 10 / 100 %: unweighted 0.426 / 0.765,
# idf ** 0.5 0.441 / 0.757, TF-IDF baseline 0.448 / 0.696; on the first 3 draws the full idf gave
# 0.416 / 0.712 (unweighted 0.399 / 0.764).
# AI4I: the encoder also reads each reading's piecewise-linear encoding over 32 corpus-quantile
# bins, narrow in the tails (``modalities.tabular``: failures sit at sharp thresholds of power,
# strain and temperature rise, where a smooth MLP trails trees). Development splits (a stratified
# quarter of the TRAIN rows held out, 2 draws x 3 seeds), F1 at 5 / 100 %: pretrained 0.403 / 0.765
# -> 0.450 / 0.793, scratch twin 0.396 / 0.777 -> 0.421 / 0.814 (boosting 0.299 / 0.781). 24 and 48
# bins (an earlier session) lifted 100 % as much; at 5 % the scratch twin led with 48. Pretraining
# that also predicts each replaced reading's bin lowered the pretrained model (0.392 / 0.760).
AI4I_PRETRAIN = {"tabular": {"model": {"bins": 32}}}
MAINTENANCE_PRETRAIN = {"text": {"model": {"vocab_size": 4000, "features": "pieces", "idf_power": 0.5},
                                 "steps": 600}}


def public_plants() -> tuple[Plant, ...]:
    """One plant per public dataset (per sub-dataset for C-MAPSS: its window differs)."""
    from mfg_pipeline.landing.adapters import ai4i, cmapss, cwru, maintenance, neu

    cmapss_channels = tuple(ChannelSpec(c, *cmapss.RANGES[c]) for c in cmapss.CHANNELS)
    plants = [
        # Constant channels are the design of the simulation (one operating condition, fixed
        # settings), not stuck sensors: the stuck-run rule is off.
        Plant(name=f"cmapss_{subset.lower()}", modalities=("sensor",), label_tables=("failures",),
              sensor=SensorCleaningRules(cmapss_channels, stuck_run=0), datasets=("cmapss_rul_dataset",),
              sample_period_s=60.0, window=cmapss.WINDOWS[subset], window_stride=5,
              corpus_from="cmapss_rul_dataset", pretrain=CMAPSS_PRETRAIN)
        for subset in cmapss.SUBSETS
    ]
    plants += [
        # sample_period_s is the synthetic 1 ms of the landed timestamps; the true rate is 12 kHz.
        Plant(name=cwru.PLANT, modalities=("sensor",), label_tables=("recordings",),
              sensor=SensorCleaningRules((ChannelSpec("de", -50.0, 50.0),)), datasets=("cwru_fault_dataset",),
              sample_period_s=cwru.SYNTHETIC_PERIOD_S, window=2048, window_stride=2048, pretrain=CWRU_PRETRAIN),
        Plant(name=neu.PLANT, modalities=("image",), label_tables=(),
              image=ImageCleaningRules(neu.CLASSES, size=neu.IMAGE_SIZE), datasets=("neu_defect_dataset",),
              corpus_from="neu_defect_dataset", pretrain=NEU_PRETRAIN),
        # Process runs are independent readings (window 1); repeated values are legitimate. The
        # corpus is the dataset's train rows, so that it has the derived physical channels too.
        Plant(name=ai4i.PLANT, modalities=("sensor",), label_tables=("failures",),
              sensor=SensorCleaningRules((ChannelSpec("air_temp_k", 250.0, 350.0), ChannelSpec("process_temp_k", 250.0, 350.0),
                                          ChannelSpec("speed_rpm", 0.0, 5000.0), ChannelSpec("torque_nm", 0.0, 200.0),
                                          ChannelSpec("tool_wear_min", 0.0, 1000.0)), stuck_run=0),
              datasets=("ai4i_failure_dataset",), corpus_from="ai4i_failure_dataset", sample_period_s=60.0,
              window=1, window_stride=1, pretrain=AI4I_PRETRAIN),
        Plant(name=maintenance.PLANT, modalities=("text",), label_tables=(),
              text=TextCleaningRules(maintenance.SYSTEM_LABELS), datasets=("excavator_system_dataset",),
              pretrain=MAINTENANCE_PRETRAIN),
    ]
    return tuple(plants)


def public_profile(datasets_dir: Path | str | None = None, data_root: Path | None = None) -> Profile:
    """The public datasets: landing ``data/public/raw``, work ``data/public/work``, reports
    ``data/reports`` (``data`` = ``data_root`` or ``MFG_DATA_DIR``). The datasets directory is
    only read by the adapters (``source_dir``); definitions load without it."""
    from mfg_pipeline.landing.adapters import START_DAY, public_datasets_dir

    root = Path(data_root or os.environ.get("MFG_DATA_DIR", REPO_ROOT / "data")).resolve()
    return Profile(
        name="public",
        landing_dir=root / "public" / "raw",
        work_dir=root / "public" / "work",
        reports_dir=root / "reports",
        start_day=START_DAY,
        plants=public_plants(),
        source_dir=public_datasets_dir(datasets_dir),
    )
