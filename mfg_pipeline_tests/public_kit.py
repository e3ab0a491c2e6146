"""Helpers for the public-dataset tests: the shared datasets (or a skip), and a plant's landing
zone ingested and cleaned day by day without Dagster (the same functions the assets call)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfg_pipeline.cleaning import partition as cleaning
from mfg_pipeline.datasets.labeled import DATASETS, DatasetInputs
from mfg_pipeline.landing import ingest
from mfg_pipeline.landing.contract import LandingLayout
from mfg_pipeline.landing.partitioning import LandingIndex
from mfg_pipeline.profiles import Plant, public_plants
from mfg_pipeline_tests.conftest import SHARED_DATASETS

PLANTS = {p.name: p for p in public_plants()}


def shared(name: str) -> Path:
    """The shared copy of one public dataset, or skip the test with the reason."""
    folder = SHARED_DATASETS / name
    if not folder.is_dir():
        pytest.skip(f"public dataset {name!r} not found under {SHARED_DATASETS} (set MFG_PUBLIC_DATASETS)")
    return folder


def clean_plant(plant: Plant, landing_root: Path, work: Path) -> dict[str, list[tuple[str, Path]]]:
    """Ingest and clean every landed day of every source of ``plant``; source -> [(day, cleaned dir)]."""
    layout = LandingLayout(landing_root / plant.name)
    out: dict[str, list[tuple[str, Path]]] = {}
    sources = [*plant.modalities, *plant.label_tables]
    days = sorted({d for s in sources for d in LandingIndex(layout, s, work / "index" / f"{s}.json").days()})
    for day in days:
        machines = None
        for source in sources:
            index = LandingIndex(layout, source, work / "index" / f"{source}.json")
            raw, clean = work / "raw" / source / day, work / "clean" / source / day
            (ingest.ingest_images_day if source == "image" else ingest.ingest_tabular_day)(index, day, raw)
            if source == "sensor":
                cleaning.clean_sensor_partition(raw, clean, plant.sensor)
                machines = set(cleaning.read_kept(clean)["machine_id"])
            elif source == "image":
                cleaning.clean_image_partition(raw, clean, plant.image)
            elif source == "text":
                cleaning.clean_text_partition(raw, clean, plant.text)
            else:
                cleaning.clean_label_partition(source, raw, clean, machines)
            out.setdefault(source, []).append((day, clean))
    return out


def build(plant: Plant, cleaned: dict[str, list[tuple[str, Path]]], dataset: str | None = None):
    spec = DATASETS[dataset or plant.datasets[0]]

    return spec.build(DatasetInputs.for_plant(plant, spec.sources, lambda source: cleaned.get(source, [])))
