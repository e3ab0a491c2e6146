"""Asset keys of a plant: prefixed with the plant's name unless it is a profile's only plant."""

import dagster as dg

from mfg_pipeline.profiles import Plant


def key(plant: Plant, asset: str) -> dg.AssetKey:
    return dg.AssetKey([plant.name, asset]) if plant.name else dg.AssetKey(asset)


def op_name(plant: Plant, name: str) -> str:
    return f"{plant.name}__{name}" if plant.name else name
