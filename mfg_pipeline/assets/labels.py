"""Labeled task datasets (one asset per dataset a plant lists), split by machine/unit."""

import dagster as dg

from mfg_pipeline.assets.cleaning import CLEANED, cleaned_days
from mfg_pipeline.assets.keys import key
from mfg_pipeline.assets.metadata import counts_table, preview
from mfg_pipeline.datasets.labeled import DATASETS, DatasetInputs, DatasetSpec
from mfg_pipeline.profiles import Plant
from mfg_pipeline.resources import DataStore
from mfg_pipeline.storage.artifacts import LabeledDataset, save_labeled_dataset


def _metadata(dataset: LabeledDataset) -> dict:
    index, meta = dataset.index, dataset.meta
    by_split = index.groupby("split")["machine_id"].unique()
    metadata = {"dagster/row_count": len(dataset), "n_train": meta["n_train"], "n_test": meta["n_test"],
                "split_rule": meta["split_rule"], "dropped_duplicates": meta["dropped_duplicates"],
                "machines": dg.MetadataValue.json({k: sorted(map(str, v))[:50] for k, v in by_split.items()}),
                "preview": preview(index)}
    if meta["kind"] == "classification":
        names = meta["classes"]
        metadata["class_counts"] = counts_table({f"{names[int(k)]} ({split})": int(v) for (split, k), v in
                                                 index.groupby(["split", "target"]).size().items()}, "class")
    else:
        metadata["target_mean"] = float(index["target"].mean()) if len(index) else 0.0
    return metadata


def _dataset_asset(plant: Plant, spec: DatasetSpec) -> dg.AssetsDefinition:
    sources = {s: key(plant, CLEANED[s]) for s in spec.sources}

    @dg.asset(key=key(plant, spec.name), group_name="labels", code_version="1",
              deps=[dg.AssetDep(k, partition_mapping=dg.AllPartitionMapping()) for k in sources.values()],
              kinds={"pandas" if spec.modality == "text" else "pytorch"}, description=spec.build.__doc__)
    def labeled_dataset(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
        def parts(source: str) -> list:
            return [(d, store.asset_dir(plant.path(CLEANED[source]), d)) for d in cleaned_days(context, sources[source])]

        dataset = spec.build(DatasetInputs.for_plant(plant, spec.sources, parts))
        save_labeled_dataset(store.asset_dir(plant.path(spec.name)), dataset)
        return dg.MaterializeResult(metadata=_metadata(dataset))

    return labeled_dataset


def label_assets(plant: Plant) -> list[dg.AssetsDefinition]:
    return [_dataset_asset(plant, DATASETS[name]) for name in plant.datasets]
