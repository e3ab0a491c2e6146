"""Dagster definitions: one asset graph, assembled per data profile (one code location each)."""

import dagster as dg

from mfg_pipeline.assets.cleaning import cleaning_assets
from mfg_pipeline.assets.corpus import corpus_assets
from mfg_pipeline.assets.ingestion import ingestion_assets, landing_specs
from mfg_pipeline.assets.labels import label_assets
from mfg_pipeline.profiles import Plant, Profile, default_profile
from mfg_pipeline.resources import ComputeResource, DataStore


def daily_partitions(profile: Profile) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=profile.start_day)


def plant_assets(plant: Plant, partitions: dg.PartitionsDefinition) -> list:
    return [*landing_specs(plant), *ingestion_assets(plant, partitions), *cleaning_assets(plant, partitions),
            *corpus_assets(plant), *label_assets(plant)]


def data_assets(profile: Profile) -> list:
    partitions = daily_partitions(profile)
    return [asset for plant in profile.plants for asset in plant_assets(plant, partitions)]


def resources(profile: Profile) -> dict:
    return {
        "store": DataStore(landing_dir=str(profile.landing_dir), work_dir=str(profile.work_dir),
                           reports_dir=str(profile.reports_dir)),
        "compute": ComputeResource(device=dg.EnvVar("MFG_DEVICE").get_value("auto"),
                                   precision=dg.EnvVar("MFG_PRECISION").get_value("fp32")),
    }


def build_definitions(profile: Profile) -> dg.Definitions:
    return dg.Definitions(assets=data_assets(profile), resources=resources(profile))


defs = build_definitions(default_profile())
