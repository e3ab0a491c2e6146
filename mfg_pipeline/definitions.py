"""Dagster definitions: one asset graph, assembled per data profile (one code location each)."""

import dagster as dg

from mfg_pipeline.assets.cleaning import cleaning_assets
from mfg_pipeline.assets.corpus import corpus_assets
from mfg_pipeline.assets.evaluation import model_assets
from mfg_pipeline.assets.ingestion import ingestion_assets, landing_specs
from mfg_pipeline.assets.labels import label_assets
from mfg_pipeline.assets.model_checks import model_checks, model_resources
from mfg_pipeline.assets.universal import universal_backbone_assets
from mfg_pipeline.automation import automation_defs
from mfg_pipeline.profiles import Plant, Profile, default_profile, public_profile
from mfg_pipeline.resources import ComputeResource, DataStore
from mfg_pipeline.tasks.registry import tasks_for_plant


def daily_partitions(profile: Profile) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=profile.start_day)


def plant_assets(plant: Plant, partitions: dg.PartitionsDefinition) -> list:
    return [*landing_specs(plant), *ingestion_assets(plant, partitions), *cleaning_assets(plant, partitions),
            *corpus_assets(plant), *label_assets(plant), *model_assets(tasks_for_plant(plant.name, plant.datasets), prefix=plant.name, pretrain_overrides=plant.pretrain)]


def plant_checks(plant: Plant) -> list:
    return model_checks(tasks_for_plant(plant.name, plant.datasets), prefix=plant.name)


def data_assets(profile: Profile) -> list:
    partitions = daily_partitions(profile)
    return [asset for plant in profile.plants for asset in plant_assets(plant, partitions)]


def resources(profile: Profile) -> dict:
    return {
        "store": DataStore(landing_dir=str(profile.landing_dir), work_dir=str(profile.work_dir),
                           reports_dir=str(profile.reports_dir)),
        "compute": ComputeResource(device=dg.EnvVar("MFG_DEVICE").get_value("auto"),
                                   precision=dg.EnvVar("MFG_PRECISION").get_value("fp32"),
                                   num_threads=int(dg.EnvVar("MFG_NUM_THREADS").get_value("0"))),
        **model_resources(),
    }


def build_definitions(profile: Profile) -> dg.Definitions:
    assets = data_assets(profile)
    if any(t.shared_backbone for p in profile.plants for t in tasks_for_plant(p.name, p.datasets)):
        # One sensor backbone over every plant's corpus, the simulator's (default location) included.
        assets += universal_backbone_assets(profile, default_profile().work_dir / "sensor_corpus")
    return dg.Definitions(assets=assets, asset_checks=[c for p in profile.plants for c in plant_checks(p)],
                          resources=resources(profile), **automation_defs(profile))


defs = build_definitions(default_profile())
# The public datasets (issue 12), a second code location; loads without the datasets directory
# (the adapters read it, not the definitions: assets then just find no landing files).
public_defs = build_definitions(public_profile())
