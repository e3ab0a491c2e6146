"""Raw ingestion: landing-zone files of one day -> one text-typed Parquet table per source."""


import dagster as dg

from mfg_pipeline.assets.metadata import counts_table, preview
from mfg_pipeline.landing.contract import LABEL_TABLES, MODALITIES
from mfg_pipeline.landing.ingest import REJECTED, ROWS, IngestResult, ingest_images_day, ingest_tabular_day
from mfg_pipeline.landing.partitioning import LandingIndex
from mfg_pipeline.resources import DataStore
from mfg_pipeline.storage import atomic

RAW_ASSET = {"sensor": "raw_sensor_readings", "image": "raw_inspection_images", "text": "raw_maintenance_logs",
             "labels": "raw_label_tables"}
RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)


def landing_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(f"landing_{source}_files")


def landing_specs() -> list[dg.AssetSpec]:
    """The landing zone is external: whoever writes it (simulator, adapter, plant) is not ours."""
    return [dg.AssetSpec(landing_key(s), group_name="landing", kinds={"csv"},
                         description=f"Files dropped under <landing>/{'labels/' if s in LABEL_TABLES else ''}{s}/ "
                                     "(see README, 'Bring your own data').")
            for s in (*MODALITIES, *LABEL_TABLES)]


def index_for(store: DataStore, source: str) -> LandingIndex:
    return LandingIndex(store.landing, source, store.asset_dir("landing_index") / f"{source}.json")


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


def ingestion_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    common = dict(partitions_def=partitions, group_name="ingestion", kinds={"parquet"}, retry_policy=RETRY,
                  code_version="1")

    @dg.asset(name=RAW_ASSET["sensor"], deps=[landing_key("sensor")], **common)
    def raw_sensor_readings(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
        """Every sensor row of the day, as landed (text), with its source file and row."""
        day = context.partition_key
        return _result({"sensor": ingest_tabular_day(index_for(store, "sensor"), day, store.asset_dir(RAW_ASSET["sensor"], day))})

    @dg.asset(name=RAW_ASSET["image"], deps=[landing_key("image")], **common)
    def raw_inspection_images(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
        """Bytes of every inspection image of the day with its labels.csv row."""
        day = context.partition_key
        return _result({"image": ingest_images_day(index_for(store, "image"), day, store.asset_dir(RAW_ASSET["image"], day))})

    @dg.asset(name=RAW_ASSET["text"], deps=[landing_key("text")], **common)
    def raw_maintenance_logs(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
        """Every maintenance-log row of the day, as landed (text)."""
        day = context.partition_key
        return _result({"text": ingest_tabular_day(index_for(store, "text"), day, store.asset_dir(RAW_ASSET["text"], day))})

    @dg.asset(name=RAW_ASSET["labels"], deps=[landing_key(t) for t in LABEL_TABLES], **common)
    def raw_label_tables(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
        """Quality results and failure/maintenance events of the day, as landed (text)."""
        day = context.partition_key
        return _result({t: ingest_tabular_day(index_for(store, t), day, store.asset_dir(RAW_ASSET["labels"], day) / t)
                        for t in LABEL_TABLES})

    return [raw_sensor_readings, raw_inspection_images, raw_maintenance_logs, raw_label_tables]
