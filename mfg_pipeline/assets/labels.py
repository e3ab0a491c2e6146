"""Labeled task datasets (one asset per dataset registry entry), split by machine."""


import dagster as dg

from mfg_pipeline.assets.cleaning import CLEANED, cleaned_days
from mfg_pipeline.assets.metadata import counts_table, preview
from mfg_pipeline.datasets.labeled import DATASETS, DatasetInputs, DatasetSpec
from mfg_pipeline.profiles import Profile
from mfg_pipeline.resources import DataStore
from mfg_pipeline.storage.artifacts import save_labeled_dataset

SOURCES = ("sensor", "image", "text", "quality", "failures")


def _dataset_asset(spec: DatasetSpec, profile: Profile) -> dg.AssetsDefinition:
    deps = [dg.AssetDep(CLEANED[s], partition_mapping=dg.AllPartitionMapping()) for s in spec.sources]

    @dg.asset(name=spec.name, deps=deps, group_name="labels", kinds={"pytorch" if spec.modality != "text" else "pandas"},
              code_version="1", description=spec.build.__doc__)
    def labeled_dataset(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
        def parts(source: str):
            if source not in spec.sources:
                return []
            return [(d, store.asset_dir(CLEANED[source], d)) for d in cleaned_days(context, CLEANED[source])]

        inputs = DatasetInputs(
            sensor=parts("sensor"), image=parts("image"), text=parts("text"), quality=parts("quality"),
            failures=parts("failures"), channels=[c.name for c in profile.sensor.channels], window=profile.window,
            sample_period_s=profile.sample_period_s, test_fraction=profile.test_fraction,
            classes={"image": profile.image.classes, "text": profile.text.classes})
        dataset = spec.build(inputs)
        save_labeled_dataset(store.asset_dir(spec.name), dataset)
        index, meta = dataset.index, dataset.meta
        by_split = index.groupby("split")["machine_id"].unique()
        metadata = {"dagster/row_count": len(dataset), "n_train": meta["n_train"], "n_test": meta["n_test"],
                    "split_rule": meta["split_rule"], "dropped_duplicates": meta["dropped_duplicates"],
                    "machines": dg.MetadataValue.json({k: sorted(map(str, v)) for k, v in by_split.items()}),
                    "preview": preview(index.drop(columns=[c for c in ("text",) if c in index and spec.modality != "text"]))}
        if meta["kind"] == "classification":
            names = meta["classes"]
            metadata["class_counts"] = counts_table({f"{names[int(k)]} ({split})": int(v) for (split, k), v in
                                                     index.groupby(["split", "target"]).size().items()}, "class")
        else:
            metadata["target_mean"] = float(index["target"].mean()) if len(index) else 0.0
        return dg.MaterializeResult(metadata=metadata)

    return labeled_dataset


def label_assets(profile: Profile) -> list[dg.AssetsDefinition]:
    return [_dataset_asset(spec, profile) for spec in DATASETS.values()]
