"""Asset keys of a plant: prefixed with the plant's name unless it is a profile's only plant."""

import dagster as dg

from mfg_pipeline.profiles import Plant


def asset_key(prefix: str, asset: str) -> dg.AssetKey:
    """``[prefix, asset]`` for a named plant, ``asset`` otherwise."""
    return dg.AssetKey([prefix, asset]) if prefix else dg.AssetKey(asset)


def key(plant: Plant, asset: str) -> dg.AssetKey:
    return asset_key(plant.name, asset)


def op_name(plant: Plant, name: str) -> str:
    return f"{plant.name}__{name}" if plant.name else name
