"""Files -> daily partitions (late files, midnight, offsets), idempotent partitions, the rolling
window and split stability: the domain functions, without Dagster runs."""

from __future__ import annotations

import hashlib
import os

import pandas as pd
import pytest

from mfg_pipeline.assets.corpus import CorpusConfig, window
from mfg_pipeline.assets.ingestion import index_for
from mfg_pipeline.cleaning.partition import KEPT, clean_sensor_partition, read_kept
from mfg_pipeline.datasets.splits import assign_splits, machine_split
from mfg_pipeline.landing.ingest import ROWS, ingest_tabular_day
from mfg_pipeline.landing.partitioning import day_of, parse_timestamps
from mfg_pipeline.landing.readers import SOURCE_FILE
from mfg_pipeline.resources import DataStore
from mfg_pipeline.simulator.config import machine_id
from mfg_pipeline.storage import versioned

HEADER = "timestamp,machine_id,vibration_rms,bearing_temp,motor_temp,pressure,spindle_speed,torque,current,coolant_flow\n"
VALUES = "1.0,40.0,50.0,100.0,1500.0,10.0,20.0,5.0"


def _store(profile) -> DataStore:
    return DataStore(landing_dir=str(profile.landing_dir), work_dir=str(profile.work_dir),
                     reports_dir=str(profile.reports_dir))


def _drop(profile, relative: str, stamps: list[str], machine: str = "M99") -> str:
    """Drop a sensor file into the landing zone (later than the simulator's files)."""
    path = profile.landing_dir / "sensor" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{t},{machine},{VALUES}\n" for t in stamps))
    return relative


def _ingest(profile, day: str):
    store = _store(profile)
    plant = profile.plants[0]
    return ingest_tabular_day(index_for(store, plant, "sensor"), day, store.asset_dir("raw_sensor_readings", day))


def _rows(result) -> pd.DataFrame:
    return pd.read_parquet(result.path / ROWS)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_late_file_with_an_earlier_days_rows_lands_in_that_day(tiny_profile):
    day1, _, day3 = "2026-01-01", "2026-01-02", "2026-01-03"
    before = {d: _ingest(tiny_profile, d) for d in (day1, day3)}
    # Dropped into day 3's folder (its home day), but every row is stamped day 1.
    late = _drop(tiny_profile, f"{day3}/resend.csv", [f"{day1}T05:00:00Z", f"{day1}T05:01:00Z"])
    index = index_for(_store(tiny_profile), tiny_profile.plants[0], "sensor")
    assert late in {f.relative for f, _ in index.files_for_day(day1)}
    after1, after3 = _ingest(tiny_profile, day1), _ingest(tiny_profile, day3)
    rows1 = _rows(after1)
    assert (rows1["machine_id"] == "M99").sum() == 2 and after1.rows == before[day1].rows + 2
    assert set(rows1.loc[rows1["machine_id"] == "M99", SOURCE_FILE]) == {late}
    assert after1.version != before[day1].version and not after1.reused
    # Day 3 holds none of its rows (the file is listed there only as its home day, for rejects).
    assert (_rows(after3)["machine_id"] == "M99").sum() == 0 and after3.rows == before[day3].rows


def test_file_spanning_midnight_lands_in_both_days(tiny_profile):
    day1, day2 = "2026-01-01", "2026-01-02"
    stamps = [f"{day1}T23:58:00Z", f"{day1}T23:59:00Z", f"{day2}T00:00:00Z", f"{day2}T00:01:00Z", f"{day2}T00:02:00Z"]
    relative = _drop(tiny_profile, "overnight/M99_shift.csv", stamps)
    index = index_for(_store(tiny_profile), tiny_profile.plants[0], "sensor")
    days = {f.relative: d for f, d, _ in index.entries()}
    assert days[relative] == [day1, day2]
    assert (_rows(_ingest(tiny_profile, day1))["machine_id"] == "M99").sum() == 2
    assert (_rows(_ingest(tiny_profile, day2))["machine_id"] == "M99").sum() == 3


def test_mixed_timezone_offsets_are_partitioned_by_utc_day():
    stamps = pd.Series(["2026-01-02T01:30:00+02:00",  # 2026-01-01T23:30Z
                        "2026-01-01T22:30:00-03:00",  # 2026-01-02T01:30Z
                        "2026-01-01T12:00:00",  # naive = UTC
                        "2026-01-01T23:59:59Z", "not a time"])
    assert day_of(parse_timestamps(stamps)).tolist()[:4] == ["2026-01-01", "2026-01-02", "2026-01-01", "2026-01-01"]
    assert pd.isna(day_of(parse_timestamps(stamps)).iloc[4])


def test_mixed_offsets_in_one_file_split_across_days(tiny_profile):
    day1, day2 = "2026-01-01", "2026-01-02"
    relative = _drop(tiny_profile, "tz/M99_local.csv", [f"{day2}T01:30:00+02:00", f"{day1}T22:30:00-03:00"])
    days = {f.relative: d for f, d, _ in index_for(_store(tiny_profile), tiny_profile.plants[0], "sensor").entries()}
    assert days[relative] == [day1, day2]
    assert (_rows(_ingest(tiny_profile, day1))["machine_id"] == "M99").sum() == 1
    assert (_rows(_ingest(tiny_profile, day2))["machine_id"] == "M99").sum() == 1


def test_rerunning_a_partition_is_idempotent(tiny_profile):
    day = "2026-01-02"
    rules = tiny_profile.plants[0].sensor
    clean_dir = tiny_profile.work_dir / "cleaned_sensor_readings" / day
    raw1 = _ingest(tiny_profile, day)
    clean1 = clean_sensor_partition(raw1.path.parent, clean_dir, rules)
    raw_bytes, kept_bytes = _sha(raw1.path / ROWS), _sha(clean1.path / KEPT)
    raw2 = _ingest(tiny_profile, day)
    clean2 = clean_sensor_partition(raw2.path.parent, clean_dir, rules)
    assert raw2.reused and clean2.reused
    assert (raw2.version, clean2.version) == (raw1.version, clean1.version)
    assert (_sha(raw2.path / ROWS), _sha(clean2.path / KEPT)) == (raw_bytes, kept_bytes)
    assert len(read_kept(clean_dir)) == clean1.kept and clean1.balanced and clean1.records_in == raw1.records_in


def test_a_changed_file_changes_only_its_own_days_versions(tiny_profile):
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    before = {d: _ingest(tiny_profile, d).version for d in days}
    target = tiny_profile.landing_dir / "sensor" / days[1] / "M01.csv"
    stat = target.stat()
    target.write_text(target.read_text() + f"{days[1]}T12:00:30Z,M01,{VALUES}\n")  # a corrected re-delivery
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # even within the mtime granularity
    after = {d: _ingest(tiny_profile, d) for d in days}
    assert after[days[1]].version != before[days[1]]
    for d in (days[0], days[2]):
        assert after[d].reused and after[d].version == before[d]


def test_rolling_window_keeps_the_last_days():
    days = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-05"]
    assert window(days, CorpusConfig(window_days=2)) == ["2026-01-05"]  # 01-04 is missing: calendar days
    assert window(days, CorpusConfig(window_days=3)) == ["2026-01-03", "2026-01-05"]
    assert window(days, CorpusConfig(window_days=2, end_day="2026-01-03")) == ["2026-01-02", "2026-01-03"]
    assert window(days, CorpusConfig(window_days=30)) == days
    assert window([], CorpusConfig(window_days=2)) == []


@pytest.mark.parametrize("test_fraction", [0.25, 0.5])
def test_split_is_stable_as_days_and_machines_are_added(test_fraction):
    def index(n_machines: int, n_days: int) -> pd.DataFrame:
        return pd.DataFrame([{"machine_id": machine_id(m), "day": d, "key": f"{m}-{d}"}
                             for m in range(n_machines) for d in range(n_days)])

    def splits(frame: pd.DataFrame) -> dict[str, str]:
        out = assign_splits(frame, test_fraction, duplicate_key="key")
        by_machine = out.groupby("machine_id")["split"].unique()
        assert all(len(s) == 1 for s in by_machine)  # a machine never sits on both sides
        return {m: s[0] for m, s in by_machine.items()}

    small, grown = splits(index(8, 3)), splits(index(40, 30))
    assert {m: grown[m] for m in small} == small
    assert {"train", "test"} <= set(grown.values())
    assert all(machine_split(m, test_fraction) == s for m, s in grown.items())
