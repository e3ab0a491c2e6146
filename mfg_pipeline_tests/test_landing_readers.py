"""Bad input at the landing boundary: files that cannot be read (or not fully) are refused with
the file and the problem named, the good rows of the same drop still flow, and every record
is accounted for (records in = kept + quarantined)."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mfg_pipeline.landing import contract, readers
from mfg_pipeline_tests.landing_kit import DAY, SENSOR_HEADER, Drop, csv_text, sensor_rows


def read_all(drop: Drop, source: str, relative: str) -> tuple[pd.DataFrame, list[readers.Rejected]]:
    path = drop.path(source, relative)
    stat = path.stat()
    file = contract.LandingFile(path, relative, contract.day_from_path(relative), stat.st_size, stat.st_mtime_ns)
    frames, rejected = [], []
    for frame, bad in readers.read_table(file, contract.SUFFIXES[source]):
        frames.append(frame)
        rejected.extend(bad)
    return pd.concat(frames, ignore_index=True), rejected


@pytest.fixture
def drop(tmp_path):
    drop = Drop(tmp_path)
    drop.write("sensor", f"{DAY}/good.csv", csv_text(SENSOR_HEADER, sensor_rows("M01", 10)))
    return drop


def test_malformed_csv_lines_are_rejected_with_their_text_and_the_rest_of_the_file_flows(drop):
    rows = sensor_rows("M02", 6)
    rows[1] = rows[1].rsplit(",", 1)[0]            # a field short
    rows[3] = rows[3] + ",99"                      # a field too many
    drop.write("sensor", f"{DAY}/ragged.csv", csv_text(SENSOR_HEADER, rows))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/ragged.csv") == ["malformed CSV line: expected 4 fields, got 3",
                                                "malformed CSV line: expected 4 fields, got 5"]
    records = set(out.quarantine["record"])
    assert rows[1] in records and rows[3] in records
    assert (out.kept["machine_id"] == "M02").sum() == 4
    assert (out.kept["machine_id"] == "M01").sum() == 10


@pytest.mark.parametrize("header", ["timestamp,machine_id,temp,temp", "timestamp,,temp,speed"])
def test_a_bad_header_refuses_the_file_with_a_reason(drop, header):
    drop.write("sensor", f"{DAY}/header.csv", csv_text(header, sensor_rows("M02", 3)))
    out = drop.run("sensor")
    out.assert_accounting()
    [reason] = out.reasons(f"{DAY}/header.csv")
    assert reason.startswith("bad header") and "empty or duplicate column names" in reason
    assert len(out.kept) == 10


def test_zero_byte_and_header_only_files_are_quarantined_not_ignored(drop):
    drop.write("sensor", f"{DAY}/zero.csv", b"")
    drop.write("sensor", f"{DAY}/header-only.csv", SENSOR_HEADER + "\n")
    empty = pa.table({name: pa.array([], pa.string()) for name in SENSOR_HEADER.split(",")})
    pq.write_table(empty, drop.path("sensor", f"{DAY}/no-rows.parquet"))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/zero.csv") == ["empty file (0 bytes)"]
    assert out.reasons(f"{DAY}/header-only.csv") == ["no data rows (header only)"]
    assert out.reasons(f"{DAY}/no-rows.parquet") == ["no data rows (header only)"]
    assert len(out.kept) == 10


def test_wrong_suffix_and_corrupt_parquet_are_refused_by_name(drop):
    drop.write("sensor", f"{DAY}/readings.xlsx", b"PK\x03\x04 not really a workbook")
    drop.write("sensor", f"{DAY}/notes", "timestamp\n")
    drop.write("sensor", f"{DAY}/broken.parquet", b"PAR1" + os.urandom(64))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/readings.xlsx") == ["unsupported file type '.xlsx'; expected one of .csv, .parquet"]
    assert out.reasons(f"{DAY}/notes") == ["unsupported file type '(none)'; expected one of .csv, .parquet"]
    [reason] = out.reasons(f"{DAY}/broken.parquet")
    assert reason.startswith("unreadable file: ")
    assert len(out.kept) == 10


def test_parquet_with_native_types_is_read_as_text_and_cleaned(drop):
    table = pa.table({
        "timestamp": pa.array(pd.date_range(f"{DAY} 03:00", periods=4, freq="min", tz="UTC")),
        "machine_id": ["M03"] * 4, "temp": pa.array([20.5, 21.0, 21.5, 22.0]), "speed": pa.array([1000, 1001, 1002, 1003]),
    })
    pq.write_table(table, drop.path("sensor", f"{DAY}/typed.parquet"))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.clean.quarantined == 0
    assert (out.kept["machine_id"] == "M03").sum() == 4


def test_parquet_with_nested_columns_is_refused_not_crashing(drop):
    table = pa.table({"timestamp": [f"{DAY}T05:00:00Z"], "machine_id": ["M04"], "temp": pa.array([[1.0, 2.0]]),
                      "speed": ["1000"]})
    pq.write_table(table, drop.path("sensor", f"{DAY}/nested.parquet"))
    out = drop.run("sensor")
    out.assert_accounting()
    [reason] = out.reasons(f"{DAY}/nested.parquet")
    assert reason.startswith("unreadable file: ")
    assert len(out.kept) == 10


ODD_NAMES = [
    "rm -rf;.csv",                # shell metacharacters
    "a;rm -rf ~.csv",
    "$(reboot).csv",
    "trailing-newline.csv\n",     # '$' in a regex matches before a final newline
    "new\nline.csv",
    "tab\there.csv",
    "prüfung.csv",                # non-ASCII is refused too (the contract is ASCII file names)
    "-leading-dash.csv",
    "back\\slash.csv",
    "quote'.csv",
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_file_names_are_quarantined_with_a_reason_not_skipped(drop, name):
    drop.write("sensor", f"{DAY}/{name}", csv_text(SENSOR_HEADER, sensor_rows("M05", 3)))
    out = drop.run("sensor")
    out.assert_accounting()
    [reason] = out.reasons(f"{DAY}/{name}")
    assert reason == f"unsafe file name component {name!r} (path traversal or odd characters)"
    assert set(out.kept["machine_id"]) == {"M01"}


def test_odd_directory_names_are_quarantined_too(drop):
    drop.write("sensor", f"{DAY}/;reboot/x.csv", csv_text(SENSOR_HEADER, sensor_rows("M05", 3)))
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/;reboot/x.csv") == ["unsafe file name component ';reboot' (path traversal or odd characters)"]


@pytest.mark.parametrize("relative", ["../x.csv", "a/../../x.csv", "a/./../x.csv", "/etc/passwd", "a/\n.csv", "x.csv\n",
                                      "x.csv\x00", " x.csv", ".hidden/x.csv"])
def test_unsafe_name_reason_refuses_traversal_and_control_characters(relative):
    assert contract.unsafe_name_reason(relative) is not None


@pytest.mark.parametrize("relative", [f"{DAY}/M01.csv", "M01 line 2.csv", "a/b/c_d-e+f=g@h,i.parquet"])
def test_unsafe_name_reason_accepts_ordinary_names(relative):
    assert contract.unsafe_name_reason(relative) is None


def test_a_symlink_in_the_landing_zone_is_refused_not_followed(drop, tmp_path):
    secret = tmp_path / "outside.csv"
    secret.write_text(csv_text(SENSOR_HEADER, sensor_rows("SECRET", 3)))
    link = drop.path("sensor", f"{DAY}/link.csv")
    link.symlink_to(secret)
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/link.csv") == ["symbolic link refused (it could point outside the landing zone)"]
    assert "SECRET" not in set(out.kept["machine_id"])


def test_dot_files_are_in_progress_uploads_and_are_not_read(drop):
    # Uploaders write ".name.tmp" and rename when done; a half-written upload is never read.
    drop.write("sensor", f"{DAY}/.upload.csv.tmp", csv_text(SENSOR_HEADER, sensor_rows("M06", 3))[:40])
    out = drop.run("sensor")
    out.assert_accounting()
    assert out.clean.records_in == 10 and out.clean.quarantined == 0


def test_reader_reports_file_problems_before_opening(drop):
    drop.write("sensor", f"{DAY}/zero.csv", b"")
    frame, rejected = read_all(drop, "sensor", f"{DAY}/zero.csv")
    assert frame.empty and [r.as_dict()["reason"] for r in rejected] == ["empty file (0 bytes)"]
    assert rejected[0].source_file == f"{DAY}/zero.csv"
