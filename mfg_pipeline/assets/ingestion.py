"""Raw ingestion: landing-zone files of one day -> one text-typed Parquet table per source."""

import dagster as dg

from mfg_pipeline.assets.keys import key
from mfg_pipeline.assets.metadata import counts_table, preview
from mfg_pipeline.landing.ingest import REJECTED, ROWS, IngestResult, ingest_images_day, ingest_tabular_day
from mfg_pipeline.landing.partitioning import LandingIndex
from mfg_pipeline.profiles import Plant
from mfg_pipeline.resources import DataStore
from mfg_pipeline.storage import atomic

RAW_ASSET = {"sensor": "raw_sensor_readings", "image": "raw_inspection_images", "text": "raw_maintenance_logs",
             "labels": "raw_label_tables"}
RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)
DESCRIPTIONS = {
    "sensor": "Every sensor row of the day, as landed (text), with its source file and row.",
    "image": "Bytes of every inspection image of the day with its labels.csv row.",
    "text": "Every maintenance-log row of the day, as landed (text).",
    "labels": "Label-table rows of the day (quality results, failure events), as landed (text).",
}


def landing_key(plant: Plant, source: str) -> dg.AssetKey:
    return key(plant, f"landing_{source}_files")


def landing_specs(plant: Plant) -> list[dg.AssetSpec]:
    """The landing zone is external: whoever writes it (simulator, adapter, plant) is not ours."""
    return [dg.AssetSpec(landing_key(plant, s), group_name="landing", kinds={"csv"},
                         description=f"Files dropped in the landing zone under {s}/ (README: 'Bring your own data').")
            for s in (*plant.modalities, *plant.label_tables)]


def index_for(store: DataStore, plant: Plant, source: str) -> LandingIndex:
    return LandingIndex(store.landing(plant.name), source, store.asset_dir(plant.path("landing_index")) / f"{source}.json")


def _result(results: dict[str, IngestResult]) -> dg.MaterializeResult:
    metadata: dict = {}
    for source, r in results.items():
        prefix = "" if len(results) == 1 else f"{source}/"
        rejected = atomic.read_parquet(r.path / REJECTED)
        metadata |= {f"{prefix}files": r.files, f"{prefix}rows": r.rows, f"{prefix}rejected_records": r.rejected,
                     f"{prefix}records_in": r.records_in, f"{prefix}reused_unchanged_input": r.reused,
                     f"{prefix}rejected_reasons": counts_table(rejected["reason"].value_counts().to_dict()),
                     f"{prefix}path": dg.MetadataValue.path(str(r.path))}
        if source != "image":
            metadata[f"{prefix}preview"] = preview(atomic.read_parquet(r.path / ROWS).head(5))
    version = "+".join(r.version for r in results.values())
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(version))


def _ingest(store: DataStore, plant: Plant, source: str, day: str) -> dict[str, IngestResult]:
    out = store.asset_dir(plant.path(RAW_ASSET[source]), day)
    if source == "labels":
        return {t: ingest_tabular_day(index_for(store, plant, t), day, out / t) for t in plant.label_tables}
    ingest = ingest_images_day if source == "image" else ingest_tabular_day
    return {source: ingest(index_for(store, plant, source), day, out)}


def _raw_asset(plant: Plant, source: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    deps = [landing_key(plant, t) for t in plant.label_tables] if source == "labels" else [landing_key(plant, source)]

    @dg.asset(key=key(plant, RAW_ASSET[source]), deps=deps,
              partitions_def=partitions, group_name="ingestion", kinds={"parquet"}, retry_policy=RETRY,
              code_version="1", description=DESCRIPTIONS[source])
    def raw_asset(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
        return _result(_ingest(store, plant, source, context.partition_key))

    return raw_asset


def ingestion_assets(plant: Plant, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    sources = [*plant.modalities, *(["labels"] if plant.label_tables else [])]
    return [_raw_asset(plant, source, partitions) for source in sources]
