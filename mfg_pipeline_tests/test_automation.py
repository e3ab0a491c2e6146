"""Jobs, the new-file sensor and the retraining schedule of a profile (tiny simulated plant)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import dagster as dg
import pytest

from mfg_pipeline.assets.cleaning import CLEANED
from mfg_pipeline.automation import INGEST_JOB, RETRAIN_JOB, SENSOR_NAME, corpus_run_config
from mfg_pipeline.cleaning.partition import read_kept
from mfg_pipeline.definitions import build_definitions, resources
from mfg_pipeline.profiles import SIMULATED_PLANT
from mfg_pipeline.runner import materialize_partition, materialize_rest
from mfg_pipeline.storage.artifacts import load_corpus

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]
HEADER = "timestamp,machine_id,vibration_rms,bearing_temp,motor_temp,pressure,spindle_speed,torque,current,coolant_flow\n"
VALUES = "1.0,40.0,50.0,100.0,1500.0,10.0,20.0,5.0"


def _drop(profile, relative: str, stamps: list[str], machine: str = "M06") -> None:
    path = profile.landing_dir / "sensor" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{t},{machine},{VALUES}\n" for t in stamps))


def _tick(defs: dg.Definitions, profile, instance, cursor: str | None):
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"store": resources(profile)["store"]},
                                      definitions=defs)
    return sensor.evaluate_tick(context)


def _days(tick) -> list[str]:
    return sorted(r.partition_key for r in tick.run_requests)


def _cleaned_version(instance, day: str) -> str:
    record = instance.get_latest_data_version_record(dg.AssetKey(CLEANED["sensor"]), partition_key=day)
    return record.asset_materialization.tags["dagster/data_version"]


def test_definitions_hold_jobs_schedule_and_sensor(tiny_profile):
    defs = build_definitions(tiny_profile)
    dg.Definitions.validate_loadable(defs)
    ingest, retrain = defs.resolve_job_def(INGEST_JOB), defs.resolve_job_def(RETRAIN_JOB)
    assert ingest.partitions_def == dg.DailyPartitionsDefinition(start_date=tiny_profile.start_day)
    assert {n.name for n in ingest.nodes} >= {"raw_sensor_readings", "clean_sensor", "clean_label_tables"}
    assert retrain.partitions_def is None
    assert {n.name for n in retrain.nodes} >= {"sensor_corpus", "image_corpus", "text_corpus", "quality_dataset"}
    assert defs.resolve_schedule_def(f"{RETRAIN_JOB}_schedule").job_name == RETRAIN_JOB
    assert defs.resolve_sensor_def(SENSOR_NAME).job_name == INGEST_JOB


def test_sensor_requests_exactly_the_changed_partitions(tiny_profile, instance):
    defs = build_definitions(tiny_profile)
    first = _tick(defs, tiny_profile, instance, None)
    assert _days(first) == DAYS  # everything is new on the first tick
    again = _tick(defs, tiny_profile, instance, None)  # a repeated tick: same run keys, deduplicated by Dagster
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]
    assert len({r.run_key for r in first.run_requests}) == 3

    second = _tick(defs, tiny_profile, instance, first.cursor)
    assert second.run_requests == [] and "no new or changed" in second.skip_message

    # A late file whose rows are all from day 1: only day 1.
    _drop(tiny_profile, "late/resend.csv", [f"{DAYS[0]}T08:00:30Z", f"{DAYS[0]}T08:01:30Z"])
    late = _tick(defs, tiny_profile, instance, second.cursor)
    assert _days(late) == [DAYS[0]]
    assert _days(_tick(defs, tiny_profile, instance, late.cursor)) == []
    # Dropped into day 3's folder, day 3 is its home day (where its unreadable rows would go, so
    # ingestion's version of day 3 changes too): day 1 and day 3, never day 2.
    _drop(tiny_profile, f"{DAYS[2]}/late_resend.csv", [f"{DAYS[0]}T09:00:30Z"])
    late = _tick(defs, tiny_profile, instance, late.cursor)
    assert _days(late) == [DAYS[0], DAYS[2]]

    # A file spanning midnight (with a +01:00 offset): both days, nothing else.
    _drop(tiny_profile, "overnight.csv", [f"{DAYS[1]}T23:59:30Z", f"{DAYS[2]}T01:00:30+01:00"])
    overnight = _tick(defs, tiny_profile, instance, late.cursor)
    assert _days(overnight) == [DAYS[1], DAYS[2]]

    # Files for a day that is no partition yet (the future) are not requested nor remembered.
    _drop(tiny_profile, "future.csv", ["2099-01-01T00:00:00Z"])
    future = _tick(defs, tiny_profile, instance, overnight.cursor)
    assert future.run_requests == []
    assert "2099-01-01" not in json.loads(future.cursor)["days"][""]


def test_sensor_run_ingests_the_late_rows_and_leaves_other_days_alone(tiny_profile, instance):
    defs = build_definitions(tiny_profile)
    for day in DAYS:
        assert materialize_partition(tiny_profile, day, instance)
    versions = {d: _cleaned_version(instance, d) for d in DAYS}
    cursor = _tick(defs, tiny_profile, instance, None).cursor

    _drop(tiny_profile, "late/resend.csv", [f"{DAYS[0]}T08:00:30Z", f"{DAYS[0]}T08:01:30Z"])
    tick = _tick(defs, tiny_profile, instance, cursor)
    assert _days(tick) == [DAYS[0]]
    request = tick.run_requests[0]
    result = defs.resolve_job_def(INGEST_JOB).execute_in_process(
        partition_key=request.partition_key, instance=instance, tags=request.tags)
    assert result.success
    late = read_kept(tiny_profile.work_dir / CLEANED["sensor"] / DAYS[0])
    assert (late["timestamp"].dt.strftime("%H:%M:%S").isin(["08:00:30", "08:01:30"])).sum() == 2
    assert _cleaned_version(instance, DAYS[0]) != versions[DAYS[0]]

    # Unchanged inputs: re-running another day recomputes nothing and keeps its data version.
    assert materialize_partition(tiny_profile, DAYS[1], instance)
    event = instance.get_latest_materialization_event(dg.AssetKey(CLEANED["sensor"]))
    assert event.asset_materialization.metadata["reused_unchanged_input"].value is True
    assert {d: _cleaned_version(instance, d) for d in DAYS[1:]} == {d: versions[d] for d in DAYS[1:]}

    # The schedule's window (2 days) reaches the corpus asset under its op name.
    run_config = corpus_run_config(tiny_profile, 2)
    corpus_keys = [dg.AssetKey(k) for k in ("sensor_corpus", "image_corpus", "text_corpus")]
    assert materialize_rest(tiny_profile, instance, selection=corpus_keys, run_config=run_config).success
    assert sorted(load_corpus(tiny_profile.work_dir / "sensor_corpus").meta["days"]) == DAYS[1:]


def test_schedule_passes_the_corpus_window(tiny_profile, instance, monkeypatch):
    monkeypatch.setenv("MFG_CORPUS_WINDOW_DAYS", "7")
    defs = build_definitions(tiny_profile)
    schedule = defs.resolve_schedule_def(f"{RETRAIN_JOB}_schedule")
    assert schedule.cron_schedule == "0 3 * * 1" and schedule.execution_timezone == "UTC"
    when = dt.datetime(2026, 1, 5, 3, tzinfo=dt.UTC)
    tick = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
    [request] = tick.run_requests
    assert request.run_config == {"ops": {name: {"config": {"window_days": 7}}
                                          for name in ("sensor_corpus", "image_corpus", "text_corpus")}}
    assert request.tags["mfg/corpus_window_days"] == "7"
    dg.validate_run_config(defs.resolve_job_def(RETRAIN_JOB), request.run_config)


def test_several_plants_get_their_own_runs_and_op_names(tiny_profile, instance):
    plants = tuple(dataclasses.replace(SIMULATED_PLANT, name=n) for n in ("press", "lathe"))
    profile = dataclasses.replace(tiny_profile, plants=plants)
    (profile.landing_dir / "press").mkdir()
    for source in ("sensor", "image", "text", "labels"):  # the tiny plant becomes plant "press"
        (profile.landing_dir / source).rename(profile.landing_dir / "press" / source)
    defs = build_definitions(profile)
    tick = _tick(defs, profile, instance, None)
    assert _days(tick) == DAYS
    for request in tick.run_requests:
        assert request.run_key.startswith("press:")
        assert request.asset_selection and all(k.path[0] == "press" for k in request.asset_selection)
    subset = defs.resolve_job_def(INGEST_JOB).get_subset(asset_selection=set(tick.run_requests[0].asset_selection))
    assert {n.name for n in subset.nodes} == {f"press__{n}" for n in (
        "raw_sensor_readings", "raw_inspection_images", "raw_maintenance_logs", "raw_label_tables",
        "clean_sensor", "clean_image", "clean_text", "clean_label_tables")}
    run_config = corpus_run_config(profile, 14)
    assert set(run_config["ops"]) == {f"{p}__{m}_corpus" for p in ("press", "lathe") for m in ("sensor", "image", "text")}
    dg.validate_run_config(defs.resolve_job_def(RETRAIN_JOB), run_config)


@pytest.mark.parametrize("value", ["0", "-3"])
def test_window_must_be_positive(monkeypatch, value):
    from mfg_pipeline.automation import window_days

    monkeypatch.setenv("MFG_CORPUS_WINDOW_DAYS", value)
    with pytest.raises(ValueError):
        window_days()
