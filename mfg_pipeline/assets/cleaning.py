"""Cleaning: each day's raw rows -> cleaned rows + a quarantine holding every rejected row.

Checks run in the same step, per partition; the blocking ones (accounting, schema, nulls,
ranges) stop downstream assets from reading a poisoned partition.
"""


import dagster as dg
import pandas as pd

from mfg_pipeline.assets.ingestion import RAW_ASSET, RETRY
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
from mfg_pipeline.landing.contract import LABEL_TABLES
from mfg_pipeline.profiles import Profile
from mfg_pipeline.resources import DataStore

CLEANED = {"sensor": "cleaned_sensor_readings", "image": "cleaned_inspection_images", "text": "cleaned_maintenance_logs",
           "quality": "quality_results", "failures": "failure_events"}
QUARANTINE = {"sensor": "sensor_quarantine", "image": "image_quarantine", "text": "text_quarantine",
              "labels": "label_quarantine"}
# Above this share of quarantined records a partition is suspicious (WARN, not blocking).
QUARANTINE_WARN_RATE = 0.2


def _accounting(asset: str, results: list[CleanResult]) -> dg.AssetCheckResult:
    records_in = sum(r.records_in for r in results)
    kept, quarantined = sum(r.kept for r in results), sum(r.quarantined for r in results)
    return dg.AssetCheckResult(asset_key=asset, check_name="check_accounting", passed=records_in == kept + quarantined,
                               metadata={"records_in": records_in, "kept": kept, "quarantined": quarantined})


def _quarantine_rate(asset: str, results: list[CleanResult]) -> dg.AssetCheckResult:
    records_in = sum(r.records_in for r in results)
    rate = sum(r.quarantined for r in results) / records_in if records_in else 0.0
    return dg.AssetCheckResult(asset_key=asset, check_name="check_quarantine_rate", passed=rate <= QUARANTINE_WARN_RATE,
                               severity=dg.AssetCheckSeverity.WARN, metadata={"rate": rate, "limit": QUARANTINE_WARN_RATE})


def _check_specs(asset: str, extra: tuple[str, ...] = ()) -> list[dg.AssetCheckSpec]:
    blocking = [dg.AssetCheckSpec("check_accounting", asset=asset, blocking=True,
                                  description="records in = records kept + records quarantined")]
    blocking += [dg.AssetCheckSpec(name, asset=asset, blocking=True) for name in extra]
    return blocking + [dg.AssetCheckSpec("check_quarantine_rate", asset=asset,
                                         description=f"at most {QUARANTINE_WARN_RATE:.0%} of records quarantined")]


def _quarantine_result(asset: str, frames: list[pd.DataFrame]) -> dg.MaterializeResult:
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["reason"])
    return dg.MaterializeResult(asset_key=asset, metadata={
        "dagster/row_count": len(frame), "reasons": counts_table(reason_counts(frame)), "preview": preview(frame, 10)})


def cleaning_assets(profile: Profile, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    common = dict(partitions_def=partitions, group_name="cleaning", retry_policy=RETRY, code_version="1")
    channels = [c.name for c in profile.sensor.channels]
    sensor_out, sensor_q = CLEANED["sensor"], QUARANTINE["sensor"]

    @dg.multi_asset(
        name="clean_sensor_readings", **common,
        specs=[dg.AssetSpec(sensor_out, deps=[RAW_ASSET["sensor"]], kinds={"parquet"},
                            description="Typed, deduplicated, ordered, in-range readings."),
               dg.AssetSpec(sensor_q, deps=[RAW_ASSET["sensor"]], kinds={"parquet"},
                            description="Every rejected sensor record with its reason.")],
        check_specs=_check_specs(sensor_out, ("check_schema", "check_no_nulls", "check_ranges")),
    )
    def clean_sensor_readings(context: dg.AssetExecutionContext, store: DataStore):
        day = context.partition_key
        result = clean_sensor_partition(store.asset_dir(RAW_ASSET["sensor"], day), store.asset_dir(sensor_out, day), profile.sensor)
        kept = read_kept(store.asset_dir(sensor_out, day))
        expected = ["timestamp", "machine_id", *channels]
        in_range = all(kept[c.name].between(c.low, c.high).all() for c in profile.sensor.channels)
        yield dg.MaterializeResult(asset_key=sensor_out, data_version=dg.DataVersion(result.version), metadata={
            "dagster/row_count": result.kept, "machines": int(kept["machine_id"].nunique()),
            "reused_unchanged_input": result.reused, "dagster/column_schema": table_schema(kept),
            "channel_stats": numeric_stats(kept, channels), "preview": preview(kept)})
        yield _quarantine_result(sensor_q, [read_quarantine(store.asset_dir(sensor_out, day))])
        yield _accounting(sensor_out, [result])
        yield dg.AssetCheckResult(asset_key=sensor_out, check_name="check_schema", passed=list(kept.columns) == expected,
                                  metadata={"columns": list(map(str, kept.columns))})
        yield dg.AssetCheckResult(asset_key=sensor_out, check_name="check_no_nulls", passed=not kept.isna().any().any(),
                                  metadata={"null_cells": int(kept.isna().sum().sum())})
        yield dg.AssetCheckResult(asset_key=sensor_out, check_name="check_ranges", passed=bool(in_range))
        yield _quarantine_rate(sensor_out, [result])

    image_out, image_q = CLEANED["image"], QUARANTINE["image"]

    @dg.multi_asset(
        name="clean_inspection_images", **common,
        specs=[dg.AssetSpec(image_out, deps=[RAW_ASSET["image"]], kinds={"pytorch"},
                            description=f"Decoded grayscale {profile.image.size}x{profile.image.size} uint8 images."),
               dg.AssetSpec(image_q, deps=[RAW_ASSET["image"]], kinds={"parquet"},
                            description="Every rejected image or label row with its reason.")],
        check_specs=_check_specs(image_out, ("check_shape", "check_labels_known")),
    )
    def clean_inspection_images(context: dg.AssetExecutionContext, store: DataStore):
        day = context.partition_key
        result = clean_image_partition(store.asset_dir(RAW_ASSET["image"], day), store.asset_dir(image_out, day), profile.image)
        images, index = read_images(store.asset_dir(image_out, day))
        size = profile.image.size
        yield dg.MaterializeResult(asset_key=image_out, data_version=dg.DataVersion(result.version), metadata={
            "dagster/row_count": result.kept, "labeled": int(index["label"].notna().sum()),
            "label_counts": counts_table(index["label"].dropna().value_counts().to_dict(), "label"),
            "pixel_mean": float(images.float().mean()) if len(images) else 0.0,
            "reused_unchanged_input": result.reused, "preview": preview(index)})
        yield _quarantine_result(image_q, [read_quarantine(store.asset_dir(image_out, day))])
        yield _accounting(image_out, [result])
        yield dg.AssetCheckResult(asset_key=image_out, check_name="check_shape",
                                  passed=tuple(images.shape[1:]) == (1, size, size) and len(images) == len(index))
        yield dg.AssetCheckResult(asset_key=image_out, check_name="check_labels_known",
                                  passed=bool(index["label"].dropna().isin(profile.image.classes).all()))
        yield _quarantine_rate(image_out, [result])

    text_out, text_q = CLEANED["text"], QUARANTINE["text"]

    @dg.multi_asset(
        name="clean_maintenance_logs", **common,
        specs=[dg.AssetSpec(text_out, deps=[RAW_ASSET["text"]], kinds={"parquet"},
                            description="Normalised log lines with known labels."),
               dg.AssetSpec(text_q, deps=[RAW_ASSET["text"]], kinds={"parquet"},
                            description="Every rejected log row with its reason.")],
        check_specs=_check_specs(text_out, ("check_no_empty_text", "check_labels_known")),
    )
    def clean_maintenance_logs(context: dg.AssetExecutionContext, store: DataStore):
        day = context.partition_key
        result = clean_text_partition(store.asset_dir(RAW_ASSET["text"], day), store.asset_dir(text_out, day), profile.text)
        kept = read_kept(store.asset_dir(text_out, day))
        yield dg.MaterializeResult(asset_key=text_out, data_version=dg.DataVersion(result.version), metadata={
            "dagster/row_count": result.kept, "labeled": int(kept["label"].notna().sum()),
            "label_counts": counts_table(kept["label"].dropna().value_counts().to_dict(), "label"),
            "mean_words": float(kept["text"].str.split().str.len().mean()) if len(kept) else 0.0,
            "reused_unchanged_input": result.reused, "preview": preview(kept)})
        yield _quarantine_result(text_q, [read_quarantine(store.asset_dir(text_out, day))])
        yield _accounting(text_out, [result])
        yield dg.AssetCheckResult(asset_key=text_out, check_name="check_no_empty_text",
                                  passed=bool((kept["text"].str.len() > 0).all()))
        yield dg.AssetCheckResult(asset_key=text_out, check_name="check_labels_known",
                                  passed=bool(kept["label"].dropna().isin(profile.text.classes).all()))
        yield _quarantine_rate(text_out, [result])

    label_q = QUARANTINE["labels"]
    # Label rows are validated against the same day's sensor readings (labels of unknown machines).
    label_deps = [RAW_ASSET["labels"], sensor_out]

    @dg.multi_asset(
        name="clean_label_tables", **common,
        specs=[dg.AssetSpec(CLEANED["quality"], deps=label_deps, kinds={"parquet"}, description="Inspected batches: passed 0/1."),
               dg.AssetSpec(CLEANED["failures"], deps=label_deps, kinds={"parquet"}, description="Failure and maintenance events."),
               dg.AssetSpec(label_q, deps=label_deps, kinds={"parquet"}, description="Every rejected label row with its reason.")],
        check_specs=_check_specs(CLEANED["quality"]) + _check_specs(CLEANED["failures"]),
    )
    def clean_label_tables(context: dg.AssetExecutionContext, store: DataStore):
        day = context.partition_key
        machines = set(read_kept(store.asset_dir(sensor_out, day))["machine_id"].unique())
        quarantines = []
        for table in LABEL_TABLES:
            out = CLEANED[table]
            result = clean_label_partition(table, store.asset_dir(RAW_ASSET["labels"], day) / table,
                                           store.asset_dir(out, day), machines)
            kept = read_kept(store.asset_dir(out, day))
            quarantines.append(read_quarantine(store.asset_dir(out, day)).assign(table=table))
            extra = ({"pass_rate": float(kept["passed"].mean()) if len(kept) else 0.0} if table == "quality"
                     else {"events": counts_table(kept["event"].value_counts().to_dict(), "event")})
            yield dg.MaterializeResult(asset_key=out, data_version=dg.DataVersion(result.version), metadata={
                "dagster/row_count": result.kept, "reused_unchanged_input": result.reused, "preview": preview(kept), **extra})
            yield _accounting(out, [result])
            yield _quarantine_rate(out, [result])
        yield _quarantine_result(label_q, quarantines)

    return [clean_sensor_readings, clean_inspection_images, clean_maintenance_logs, clean_label_tables]


def cleaned_days(context: dg.AssetExecutionContext, asset: str) -> list[str]:
    """Days of ``asset`` that have been materialized, in order (from the Dagster instance)."""
    return sorted(context.instance.get_materialized_partitions(dg.AssetKey(asset)))



