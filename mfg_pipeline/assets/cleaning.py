"""Cleaning: each day's raw rows -> cleaned rows + a quarantine holding every rejected row.

Checks run in the same step, per partition; the blocking ones (accounting, schema, nulls,
ranges, known labels) stop downstream assets from reading a poisoned partition.
"""

import dagster as dg
import pandas as pd

from mfg_pipeline.assets.ingestion import RAW_ASSET, RETRY
from mfg_pipeline.assets.keys import key, op_name
from mfg_pipeline.assets.metadata import counts_table, numeric_stats, preview, table_schema
from mfg_pipeline.cleaning.partition import (
    CleanResult,
    clean_image_partition,
    clean_label_partition,
    clean_sensor_partition,
    clean_text_partition,
    read_images,
    read_kept,
    read_quarantine,
)
from mfg_pipeline.cleaning.quarantine import reason_counts
from mfg_pipeline.profiles import Plant
from mfg_pipeline.resources import DataStore

CLEANED = {"sensor": "cleaned_sensor_readings", "image": "cleaned_inspection_images", "text": "cleaned_maintenance_logs",
           "quality": "quality_results", "failures": "failure_events", "recordings": "recording_labels"}
QUARANTINE = {"sensor": "sensor_quarantine", "image": "image_quarantine", "text": "text_quarantine",
              "labels": "label_quarantine"}
# Above this share of quarantined records a partition is suspicious (WARN, not blocking).
QUARANTINE_WARN_RATE = 0.2
BLOCKING_CHECKS = {
    "sensor": ("check_schema", "check_no_nulls", "check_ranges"),
    "image": ("check_shape", "check_labels_known"),
    "text": ("check_no_empty_text", "check_labels_known"),
}


def _check(asset: dg.AssetKey, name: str, passed: bool, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(asset_key=asset, check_name=name, passed=bool(passed), metadata=metadata)


def _accounting(asset: dg.AssetKey, result: CleanResult) -> dg.AssetCheckResult:
    return _check(asset, "check_accounting", result.balanced, records_in=result.records_in,
                  kept=result.kept, quarantined=result.quarantined)


def _quarantine_rate(asset: dg.AssetKey, result: CleanResult) -> dg.AssetCheckResult:
    rate = result.quarantined / result.records_in if result.records_in else 0.0
    return dg.AssetCheckResult(asset_key=asset, check_name="check_quarantine_rate", passed=rate <= QUARANTINE_WARN_RATE,
                               severity=dg.AssetCheckSeverity.WARN, metadata={"rate": rate, "limit": QUARANTINE_WARN_RATE})


def _check_specs(asset: dg.AssetKey, extra: tuple[str, ...] = ()) -> list[dg.AssetCheckSpec]:
    specs = [dg.AssetCheckSpec("check_accounting", asset=asset, blocking=True,
                               description="records in = records kept + records quarantined")]
    specs += [dg.AssetCheckSpec(name, asset=asset, blocking=True) for name in extra]
    return specs + [dg.AssetCheckSpec("check_quarantine_rate", asset=asset,
                                      description=f"at most {QUARANTINE_WARN_RATE:.0%} of records quarantined")]


def _quarantine_result(asset: dg.AssetKey, frame: pd.DataFrame) -> dg.MaterializeResult:
    return dg.MaterializeResult(asset_key=asset, metadata={
        "dagster/row_count": len(frame), "reasons": counts_table(reason_counts(frame)), "preview": preview(frame, 10)})


def _sensor(plant: Plant, asset: dg.AssetKey, raw, out) -> tuple[CleanResult, dict, list]:
    result = clean_sensor_partition(raw, out, plant.sensor)
    kept = read_kept(out)
    metadata = {"machines": int(kept["machine_id"].nunique()), "dagster/column_schema": table_schema(kept),
                "channel_stats": numeric_stats(kept, plant.channels), "preview": preview(kept)}
    checks = [
        _check(asset, "check_schema", list(kept.columns) == ["timestamp", "machine_id", *plant.channels],
               columns=list(map(str, kept.columns))),
        _check(asset, "check_no_nulls", not kept.isna().any().any(), null_cells=int(kept.isna().sum().sum())),
        _check(asset, "check_ranges", all(kept[c.name].between(c.low, c.high).all() for c in plant.sensor.channels)),
    ]
    return result, metadata, checks


def _image(plant: Plant, asset: dg.AssetKey, raw, out) -> tuple[CleanResult, dict, list]:
    result = clean_image_partition(raw, out, plant.image)
    images, index = read_images(out)
    size = plant.image.size
    metadata = {"labeled": int(index["label"].notna().sum()),
                "label_counts": counts_table(index["label"].dropna().value_counts().to_dict(), "label"),
                "pixel_mean": float(images.float().mean()) if len(images) else 0.0, "preview": preview(index)}
    checks = [
        _check(asset, "check_shape", tuple(images.shape[1:]) == (1, size, size) and len(images) == len(index)),
        _check(asset, "check_labels_known", index["label"].dropna().isin(plant.image.classes).all()),
    ]
    return result, metadata, checks


def _text(plant: Plant, asset: dg.AssetKey, raw, out) -> tuple[CleanResult, dict, list]:
    result = clean_text_partition(raw, out, plant.text)
    kept = read_kept(out)
    metadata = {"labeled": int(kept["label"].notna().sum()),
                "label_counts": counts_table(kept["label"].dropna().value_counts().to_dict(), "label"),
                "mean_words": float(kept["text"].str.split().str.len().mean()) if len(kept) else 0.0,
                "preview": preview(kept)}
    checks = [
        _check(asset, "check_no_empty_text", (kept["text"].str.len() > 0).all()),
        _check(asset, "check_labels_known", kept["label"].dropna().isin(plant.text.classes).all()),
    ]
    return result, metadata, checks


CLEANERS = {"sensor": _sensor, "image": _image, "text": _text}
KINDS = {"sensor": "parquet", "image": "pytorch", "text": "parquet"}


def _modality_asset(plant: Plant, modality: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    out_key, q_key = key(plant, CLEANED[modality]), key(plant, QUARANTINE[modality])
    raw_key = key(plant, RAW_ASSET[modality])

    @dg.multi_asset(
        name=op_name(plant, f"clean_{modality}"), partitions_def=partitions, group_name="cleaning",
        retry_policy=RETRY, code_version="1",
        specs=[dg.AssetSpec(out_key, deps=[raw_key], kinds={KINDS[modality]},
                            description=f"Cleaned {modality} records of the day (typed, normalised, validated)."),
               dg.AssetSpec(q_key, deps=[raw_key], kinds={"parquet"},
                            description=f"Every rejected {modality} record of the day with its reason.")],
        check_specs=_check_specs(out_key, BLOCKING_CHECKS[modality]),
    )
    def clean(context: dg.AssetExecutionContext, store: DataStore):
        day = context.partition_key
        out = store.asset_dir(plant.path(CLEANED[modality]), day)
        result, metadata, checks = CLEANERS[modality](plant, out_key, store.asset_dir(plant.path(RAW_ASSET[modality]), day), out)
        yield dg.MaterializeResult(asset_key=out_key, data_version=dg.DataVersion(result.version), metadata={
            "dagster/row_count": result.kept, "reused_unchanged_input": result.reused, **metadata})
        yield _quarantine_result(q_key, read_quarantine(out))
        yield _accounting(out_key, result)
        yield from checks
        yield _quarantine_rate(out_key, result)

    return clean


def _label_asset(plant: Plant, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    q_key = key(plant, QUARANTINE["labels"])
    # Label rows are validated against the same day's sensor readings (labels of unknown machines).
    deps = [key(plant, RAW_ASSET["labels"])] + ([key(plant, CLEANED["sensor"])] if "sensor" in plant.modalities else [])
    outs = {t: key(plant, CLEANED[t]) for t in plant.label_tables}

    @dg.multi_asset(
        name=op_name(plant, "clean_label_tables"), partitions_def=partitions, group_name="cleaning",
        retry_policy=RETRY, code_version="1",
        specs=[dg.AssetSpec(k, deps=deps, kinds={"parquet"}, description=f"Cleaned {t} label rows of the day.")
               for t, k in outs.items()]
        + [dg.AssetSpec(q_key, deps=deps, kinds={"parquet"}, description="Every rejected label row with its reason.")],
        check_specs=[spec for k in outs.values() for spec in _check_specs(k)],
    )
    def clean_labels(context: dg.AssetExecutionContext, store: DataStore):
        day = context.partition_key
        machines = (set(read_kept(store.asset_dir(plant.path(CLEANED["sensor"]), day))["machine_id"].unique())
                    if "sensor" in plant.modalities else None)
        quarantines = []
        for table, out_key in outs.items():
            out = store.asset_dir(plant.path(CLEANED[table]), day)
            result = clean_label_partition(table, store.asset_dir(plant.path(RAW_ASSET["labels"]), day) / table, out, machines)
            kept = read_kept(out)
            quarantines.append(read_quarantine(out).assign(table=table))
            extra = ({"pass_rate": float(kept["passed"].mean()) if len(kept) else 0.0} if table == "quality"
                     else {"events": counts_table(kept["event"].value_counts().to_dict(), "event")} if table == "failures"
                     else {"labels": counts_table(kept["label"].value_counts().to_dict(), "label")})
            yield dg.MaterializeResult(asset_key=out_key, data_version=dg.DataVersion(result.version), metadata={
                "dagster/row_count": result.kept, "reused_unchanged_input": result.reused, "preview": preview(kept), **extra})
            yield _accounting(out_key, result)
            yield _quarantine_rate(out_key, result)
        yield _quarantine_result(q_key, pd.concat(quarantines, ignore_index=True))

    return clean_labels


def cleaning_assets(plant: Plant, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    assets = [_modality_asset(plant, m, partitions) for m in plant.modalities]
    return assets + ([_label_asset(plant, partitions)] if plant.label_tables else [])


def cleaned_days(context: dg.AssetExecutionContext, asset: dg.AssetKey) -> list[str]:
    """Days of ``asset`` that have been materialized, in order (from the Dagster instance)."""
    return sorted(context.instance.get_materialized_partitions(asset))
