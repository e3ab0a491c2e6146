"""Bad sensor input: every bad row is quarantined with a specific reason, the good rows of the
same drop are kept, and records in = kept + quarantined."""

from __future__ import annotations

import pandas as pd
import pytest

from mfg_pipeline_tests.landing_kit import DAY, NEXT_DAY, SENSOR_HEADER, Drop, csv_text, sensor_rows


@pytest.fixture
def drop(tmp_path):
    drop = Drop(tmp_path)
    drop.write("sensor", f"{DAY}/good.csv", csv_text(SENSOR_HEADER, sensor_rows("M01", 10)))
    return drop


def good_flows(out, n: int = 10) -> None:
    assert (out.kept["machine_id"] == "M01").sum() == n


def test_a_file_missing_a_channel_column_quarantines_its_rows(drop):
    drop.write("sensor", f"{DAY}/no-speed.csv", csv_text("timestamp,machine_id,temp",
                                                         [r.rsplit(",", 1)[0] for r in sensor_rows("M02", 3)]))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/no-speed.csv") == ["column speed absent in source file"] * 3
    good_flows(out)


def test_a_file_with_wrong_key_columns_quarantines_its_rows(drop):
    rows = sensor_rows("M02", 3)
    drop.write("sensor", f"{DAY}/renamed.csv", csv_text("time,machine,temp,speed", rows))
    out = drop.run("sensor")
    out.assert_accounting()
    # The file has no timestamp column: its rows go to its home day (the date in its path).
    assert out.reasons(f"{DAY}/renamed.csv") == ["unparseable timestamp"] * 3
    good_flows(out)


def test_a_drop_where_every_file_lacks_required_columns_is_quarantined_whole(tmp_path):
    drop = Drop(tmp_path)
    drop.write("sensor", f"{DAY}/renamed.csv", csv_text("time,machine,temp,speed", sensor_rows("M02", 3)))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.reasons() == ["missing required column(s): timestamp, machine_id"] * 3
    assert out.kept.empty and list(out.kept.columns) == ["timestamp", "machine_id", "temp", "speed"]


def test_text_and_junk_in_numeric_columns(drop):
    base = sensor_rows("M02", 5, start_minute=100)
    rows = [base[0].replace(",20.00,", ",hot,"), base[1].rsplit(",", 1)[0] + ",1 000", base[2].rsplit(",", 1)[0] + ",0x10",
            base[3].replace(",21.50,", ",,"), base[4].rsplit(",", 1)[0] + ",1e400"]
    drop.write("sensor", f"{DAY}/junk.csv", csv_text(SENSOR_HEADER, rows))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/junk.csv") == ["infinite value in speed", "missing or NaN value in temp",
                                              "non-numeric value in speed", "non-numeric value in speed",
                                              "non-numeric value in temp"]
    junk = out.quarantine[out.quarantine["source_file"] == f"{DAY}/junk.csv"]
    assert junk["source_row"].notna().all() and '"temp": "hot"' in " ".join(junk["record"])
    good_flows(out)


def test_out_of_physical_range_and_missing_machine(drop):
    rows = sensor_rows("M02", 3, start_minute=200)
    rows[0] = rows[0].replace(",20.00,", ",900.0,")
    rows[1] = rows[1].replace(",M02,", ",  ,")
    drop.write("sensor", f"{DAY}/range.csv", csv_text(SENSOR_HEADER, rows))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/range.csv") == ["missing machine_id", "temp out of physical range [-20.0, 200.0]"]
    assert (out.kept["machine_id"] == "M02").sum() == 1
    good_flows(out)


def test_duplicate_timestamps_keep_the_first_and_quarantine_the_rest(drop):
    rows = sensor_rows("M01", 3)
    # The same instant written twice by another file, and once more with a different offset.
    same_instant = rows[2].replace(f"{DAY}T00:02:00Z", f"{DAY}T01:02:00+01:00")
    drop.write("sensor", f"{DAY}/resent.csv", csv_text(SENSOR_HEADER, rows[:2] + [same_instant]))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/resent.csv") == ["duplicate timestamp for machine (first occurrence kept)"] * 3
    assert not out.kept.duplicated(["machine_id", "timestamp"]).any()
    good_flows(out)


def test_out_of_order_rows_are_kept_and_sorted(tmp_path):
    drop = Drop(tmp_path)
    rows = sensor_rows("M01", 10)
    drop.write("sensor", f"{DAY}/shuffled.csv", csv_text(SENSOR_HEADER, rows[5:] + rows[::-1][5:]))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.clean.quarantined == 0 and len(out.kept) == 10
    assert out.kept["timestamp"].is_monotonic_increasing


def test_mixed_time_zones_land_in_the_correct_utc_day(tmp_path):
    drop = Drop(tmp_path)
    rows = [
        f"{DAY}T12:00:00Z,M01,20.0,1000",          # UTC
        f"{DAY}T13:00:00,M01,20.5,1001",           # naive: taken as UTC
        f"{DAY}T23:30:00-02:00,M01,21.0,1002",     # 2026-01-02 01:30 UTC: next day
        f"{NEXT_DAY}T00:30:00+02:00,M01,21.5,1003",  # 2026-01-01 22:30 UTC: this day
        f"{NEXT_DAY}T03:00:00+05:30,M01,22.0,1004",  # 2026-01-01 21:30 UTC: this day
    ]
    drop.write("sensor", f"{DAY}/zones.csv", csv_text(SENSOR_HEADER, rows))
    first, second = drop.run("sensor", DAY), drop.run("sensor", NEXT_DAY)
    for out in (first, second):
        out.assert_accounting()
        assert out.clean.quarantined == 0
    assert first.clean.records_in + second.clean.records_in == len(rows)
    assert first.kept["timestamp"].dt.strftime("%H:%M").tolist() == ["12:00", "13:00", "21:30", "22:30"]
    assert second.kept["timestamp"].tolist() == [pd.Timestamp(f"{NEXT_DAY}T01:30:00Z")]
    assert str(first.kept["timestamp"].dt.tz) == "UTC"


def test_nan_and_inf_floods_are_quarantined_and_good_files_flow(drop):
    values = ["nan", "NaN", "inf", "-inf", "Infinity", "", "+inf", "NAN"]
    rows = [f"{DAY}T{2 + i // 60:02d}:{i % 60:02d}:00Z,M02,{values[i % len(values)]},{1000 + i}" for i in range(400)]
    drop.write("sensor", f"{DAY}/flood.csv", csv_text(SENSOR_HEADER, rows))
    out = drop.run("sensor")
    out.assert_accounting()
    counts = pd.Series(out.reasons(f"{DAY}/flood.csv")).value_counts().to_dict()
    assert counts == {"missing or NaN value in temp": 200, "infinite value in temp": 200}
    assert not (out.kept["machine_id"] == "M02").any()
    good_flows(out)


def test_a_stuck_sensor_is_quarantined_from_stuck_run_readings(drop):
    rows = sensor_rows("M02", 20, start_minute=300)
    stuck = [r.split(",") for r in rows]
    for fields in stuck[2:8]:     # 6 readings >= stuck_run (5)
        fields[2] = "42.00"
    for fields in stuck[12:16]:   # 4 readings < stuck_run: a plateau, not a stuck sensor
        fields[2] = "43.00"
    drop.write("sensor", f"{DAY}/stuck.csv", csv_text(SENSOR_HEADER, [",".join(f) for f in stuck]))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/stuck.csv") == ["sensor stuck: temp constant for >= 5 readings"] * 6
    m02 = out.kept[out.kept["machine_id"] == "M02"]
    assert len(m02) == 14 and (m02["temp"] == 43.0).sum() == 4
    good_flows(out)
