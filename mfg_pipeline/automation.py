"""Automation of a profile: the daily-partition job, the new-file sensor, the retraining schedule.

* ``ingest_day_job``: ingestion + cleaning of one day (all partitioned assets of every plant).
  The sensor launches it per changed day; a backfill launches it per day of a range.
* ``new_landing_files_sensor``: scans every plant's landing zone through the same cached
  ``LandingIndex`` that ingestion uses, and requests a run for exactly the days whose files are
  new or changed (a late file with yesterday's rows -> yesterday; a file spanning midnight ->
  both days). Its cursor holds one digest per (plant, day), so it stays small as files pile up.
* ``retrain_job`` + ``retrain_job_schedule``: the unpartitioned rest (corpus -> labeled datasets
  -> backbones -> finetuned models -> evaluation), weekly, with the corpus rolling window
  (``MFG_CORPUS_WINDOW_DAYS``, default 30) in its run config.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict

import dagster as dg

from mfg_pipeline.assets.cleaning import cleaning_assets
from mfg_pipeline.assets.corpus import CORPUS, CorpusConfig
from mfg_pipeline.assets.ingestion import index_for, ingestion_assets
from mfg_pipeline.assets.keys import key
from mfg_pipeline.landing import contract
from mfg_pipeline.profiles import Plant, Profile
from mfg_pipeline.resources import DataStore

INGEST_GROUPS = ("ingestion", "cleaning")
RETRAIN_GROUPS = ("corpus", "labels", "pretraining", "finetuning", "evaluation")
INGEST_JOB = "ingest_day_job"
RETRAIN_JOB = "retrain_job"
SENSOR_NAME = "new_landing_files_sensor"
CURSOR_VERSION = 1
# Weekly, Monday 03:00 UTC: after the night's partitions have landed and been cleaned.
DEFAULT_RETRAIN_CRON = "0 3 * * 1"
DEFAULT_WINDOW_DAYS = CorpusConfig().window_days


def daily_partitions(profile: Profile) -> dg.DailyPartitionsDefinition:
    """Equal (by value) to the partitions of the profile's assets (``definitions.daily_partitions``)."""
    return dg.DailyPartitionsDefinition(start_date=profile.start_day)


# --- jobs -------------------------------------------------------------------------------------

def ingest_day_job() -> dg.UnresolvedAssetJobDefinition:
    """Partitioned like its assets (daily); Dagster infers the partitions from the selection."""
    return dg.define_asset_job(
        INGEST_JOB, selection=dg.AssetSelection.groups(*INGEST_GROUPS),
        description="Ingest and clean one daily partition of every plant (landing files -> cleaned + quarantine).",
        tags={"mfg/stage": "data"})


def retrain_job() -> dg.UnresolvedAssetJobDefinition:
    """The unpartitioned assets, selected by group so model assets join when they are added."""
    return dg.define_asset_job(
        RETRAIN_JOB, selection=dg.AssetSelection.groups(*RETRAIN_GROUPS),
        description="Rolling-window corpora -> labeled datasets -> backbones -> finetuned models -> reports.",
        tags={"mfg/stage": "retrain"})


# --- the new-file sensor --------------------------------------------------------------------

def _digest(parts: list[str]) -> str:
    digest = hashlib.sha256()
    for part in sorted(parts):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def partition_fingerprints(store: DataStore, plant: Plant) -> dict[str, str]:
    """day -> digest of every landing file (any source) holding rows of that day.

    A file's fingerprint is (path, size, mtime): a new, rewritten or removed file changes the
    digest of every day it holds rows for, and of no other day. An image ``labels.csv`` counts
    for the day of its folder (for every image day when its path has no date), as in ingestion.
    """
    files: dict[str, list[str]] = defaultdict(list)
    for source in (*plant.modalities, *plant.label_tables):
        for file, days, _home in index_for(store, plant, source).entries():
            for day in days:
                files[day].append(f"{source}/{file.fingerprint}")
    if "image" in plant.modalities:
        layout = store.landing(plant.name)
        base = layout.directory("image")
        image_days = [d for d, parts in files.items() if any(p.startswith("image/") for p in parts)]
        for path in contract.image_label_files(layout):
            relative = path.relative_to(base).as_posix()
            stat = path.stat()
            stamp = f"image-labels/{relative}:{stat.st_size}:{stat.st_mtime_ns}"
            hint = contract.day_from_path(relative)
            for day in [hint] if hint else image_days:
                files[day].append(stamp)
    return {day: _digest(parts) for day, parts in files.items()}


def _load_cursor(cursor: str | None) -> dict[str, dict[str, str]]:
    if not cursor:
        return {}
    try:
        stored = json.loads(cursor)
    except json.JSONDecodeError:
        return {}
    return stored.get("days", {}) if stored.get("version") == CURSOR_VERSION else {}


def _dump_cursor(days: dict[str, dict[str, str]]) -> str:
    return json.dumps({"version": CURSOR_VERSION, "days": days}, sort_keys=True, separators=(",", ":"))


def plant_partitioned_keys(plant: Plant, partitions: dg.PartitionsDefinition) -> list[dg.AssetKey]:
    return sorted({k for a in [*ingestion_assets(plant, partitions), *cleaning_assets(plant, partitions)] for k in a.keys},
                  key=lambda k: k.to_user_string())


def run_key(plant: Plant, day: str, digest: str) -> str:
    """Deterministic: the same files of the same day always give the same key (no duplicate runs)."""
    return f"{plant.name or 'plant'}:{day}:{digest}"


def new_files_sensor(profile: Profile, job, minimum_interval_seconds: int = 60) -> dg.SensorDefinition:
    partitions = daily_partitions(profile)
    # With several plants a run touches only the plant whose files changed.
    selections = ({p.name: plant_partitioned_keys(p, partitions) for p in profile.plants}
                  if len(profile.plants) > 1 else {})

    @dg.sensor(name=SENSOR_NAME, job=job, minimum_interval_seconds=minimum_interval_seconds,
               description="One ingest_day_job run per daily partition whose landing files are new or changed.")
    def new_landing_files_sensor(context: dg.SensorEvaluationContext, store: DataStore):
        seen = _load_cursor(context.cursor)
        cursor: dict[str, dict[str, str]] = {}
        requests: list[dg.RunRequest] = []
        waiting: list[str] = []
        for plant in profile.plants:
            before = seen.get(plant.name, {})
            now = partition_fingerprints(store, plant)
            kept: dict[str, str] = {}
            for day in sorted(now):
                if not partitions.has_partition_key(day):
                    # Today (not complete yet), the future, or before the start day: not a partition
                    # (yet). Left out of the cursor, so it is requested once it becomes one.
                    waiting.append(f"{plant.name or 'plant'}:{day}")
                    continue
                kept[day] = now[day]
                if before.get(day) != now[day]:
                    requests.append(dg.RunRequest(
                        run_key=run_key(plant, day, now[day]), partition_key=day,
                        asset_selection=selections.get(plant.name),
                        tags={"mfg/trigger": "new_landing_files", "mfg/plant": plant.name or "default"}))
            # Days whose files all disappeared (landing-zone retention) are not re-run: cleaning an
            # empty day would erase history. They just leave the cursor.
            cursor[plant.name] = kept
        if waiting:
            context.log.info(f"files for days that are not partitions (yet): {', '.join(waiting[:20])}")
        if not requests:
            return dg.SensorResult(skip_reason=dg.SkipReason("no new or changed landing files"),
                                   cursor=_dump_cursor(cursor))
        context.log.info(f"changed partitions: {', '.join(r.run_key for r in requests)}")
        return dg.SensorResult(run_requests=requests, cursor=_dump_cursor(cursor))

    return new_landing_files_sensor


# --- the retraining schedule -----------------------------------------------------------------

def window_days() -> int:
    value = int(os.environ.get("MFG_CORPUS_WINDOW_DAYS", DEFAULT_WINDOW_DAYS))
    if value < 1:
        raise ValueError(f"MFG_CORPUS_WINDOW_DAYS must be >= 1, got {value}")
    return value


def corpus_run_config(profile: Profile, days: int) -> dict:
    """Run config giving every corpus asset of every plant the rolling window ``days``.

    Config is keyed by op name: ``sensor_corpus``, or ``cmapss__sensor_corpus`` for a named plant.
    """
    return {"ops": {key(plant, CORPUS[m]).to_python_identifier(): {"config": {"window_days": days}}
                    for plant in profile.plants for m in plant.modalities if m in CORPUS}}


def retrain_schedule(profile: Profile, job, cron: str | None = None) -> dg.ScheduleDefinition:
    @dg.schedule(name=f"{RETRAIN_JOB}_schedule", job=job, execution_timezone="UTC",
                 cron_schedule=cron or os.environ.get("MFG_RETRAIN_CRON", DEFAULT_RETRAIN_CRON),
                 description="Weekly retraining on the corpus rolling window (MFG_CORPUS_WINDOW_DAYS, default 30).")
    def retrain_job_schedule(context: dg.ScheduleEvaluationContext):
        # No run_key: the scheduler already deduplicates runs of one tick (scheduled time).
        days = window_days()
        return dg.RunRequest(run_config=corpus_run_config(profile, days),
                             tags={"mfg/trigger": "retrain_schedule", "mfg/corpus_window_days": str(days)})

    return retrain_job_schedule


def automation_defs(profile: Profile) -> dict:
    """Jobs, schedules and sensors of a profile, as keyword arguments of ``dg.Definitions``."""
    ingest, retrain = ingest_day_job(), retrain_job()
    return {"jobs": [ingest, retrain], "schedules": [retrain_schedule(profile, retrain)],
            "sensors": [new_files_sensor(profile, ingest)]}
