"""Bad label tables, and one mixed bad drop end to end through the Dagster graph.

The per-modality catalogue lives in test_landing_readers.py, test_cleaning_sensor.py,
test_cleaning_image.py and test_cleaning_text.py (domain level, fast); this file holds the
label tables and the graph-level test.
"""

from __future__ import annotations

import dagster as dg
import pytest

from mfg_pipeline.assets.cleaning import CLEANED, QUARANTINE
from mfg_pipeline.assets.ingestion import RAW_ASSET
from mfg_pipeline.cleaning.partition import read_kept, read_quarantine
from mfg_pipeline.runner import materialize_partition
from mfg_pipeline.storage import versioned
from mfg_pipeline_tests.landing_kit import DAY, Drop, csv_text, png_bytes, png_header_only

QUALITY_HEADER = "timestamp,machine_id,batch_id,passed"
FAILURES_HEADER = "timestamp,machine_id,event"


@pytest.fixture
def drop(tmp_path):
    return Drop(tmp_path)


def test_quality_rows_for_unknown_machines_bad_flags_and_duplicates(drop):
    drop.write("quality", f"{DAY}/quality.csv", csv_text(QUALITY_HEADER, [
        f"{DAY}T06:00:00Z,M01,B1,1",
        f"{DAY}T06:00:00Z,M01,B2,pass",
        f"{DAY}T06:00:00Z,M99,B3,1",       # no sensor readings for M99
        f"{DAY}T07:00:00Z,M01,B4,maybe",
        f"{DAY}T08:00:00Z,M01,B1,0",       # B1 again
        f"not-a-time,M01,B5,1",
    ]))
    out = drop.run("quality", known_machines={"M01", "M02"})
    out.assert_accounting()
    assert out.reasons(f"{DAY}/quality.csv") == ["duplicate batch_id", "label references a machine with no sensor readings",
                                                "passed must be 0/1", "unparseable timestamp"]
    assert out.kept[["batch_id", "passed"]].values.tolist() == [["B1", 1], ["B2", 1]]


def test_failure_events_naming_unknown_classes(drop):
    drop.write("failures", f"{DAY}/failures.csv", csv_text(FAILURES_HEADER, [
        f"{DAY}T06:00:00Z,M01,failure", f"{DAY}T07:00:00Z,M01,Explosion", f"{DAY}T08:00:00Z,M01,MAINTENANCE",
        f"{DAY}T08:00:00Z,M01,maintenance",
    ]))
    out = drop.run("failures", known_machines={"M01"})
    out.assert_accounting()
    assert out.reasons(f"{DAY}/failures.csv") == ["duplicate event", "event names an unknown class: explosion"]
    assert out.kept["event"].tolist() == ["failure", "maintenance"]


def test_a_label_table_without_required_columns_is_quarantined_whole(drop):
    drop.write("quality", f"{DAY}/quality.csv", "timestamp,machine_id,result\n" f"{DAY}T06:00:00Z,M01,ok\n")
    out = drop.run("quality")
    out.assert_accounting()
    assert out.reasons() == ["missing required column(s): batch_id, passed"]


# --------------------------------------------------------------------------- end to end
def _accounted(work, raw_asset: str, cleaned_asset: str) -> tuple[int, int]:
    raw = versioned.pointer(work / raw_asset)
    kept, quarantine = read_kept(work / cleaned_asset), read_quarantine(work / cleaned_asset)
    assert raw["rows"] + raw["rejected"] == len(kept) + len(quarantine), cleaned_asset
    return len(kept), len(quarantine)


def test_a_mixed_bad_drop_end_to_end_through_the_graph(tiny_profile, instance):
    day, land, work = tiny_profile.start_day, tiny_profile.landing_dir, tiny_profile.work_dir
    header = (land / "sensor" / day / "M01.csv").read_text().splitlines()[0]
    bad = {
        "sensor": {
            "ragged.csv": header + f"\n{day}T00:00:30Z,M01,1,2\n",
            "zero.csv": "",
            "header-only.csv": header + "\n",
            "a;rm -rf ~.csv": header + "\n",
            "flood.csv": header + "".join(f"\n{day}T00:{m:02d}:30Z,M02" + ",nan" * 8 for m in range(30)) + "\n",
        },
        "text": {"notes.csv": (f"timestamp,machine_id,text,label\n{day}T05:00:00Z,M01,".encode()
                               + b"\xff\xfe broken," + f"\n{day}T05:01:00Z,M01,water everywhere,plumbing\n".encode())},
        "image": {"bomb.png": png_header_only(20000, 20000), "truncated.png": png_bytes((64, 64))[:50],
                  "notes.png": b"plain text", "x\ny.png": png_bytes((64, 64)), "icon.bmp": png_bytes((9, 9), "RGB", "BMP")},
        "labels/quality": {"late.csv": f"timestamp,machine_id,batch_id,passed\n{day}T23:00:00Z,M99,X-1,1\n"},
    }
    for folder, files in bad.items():
        for name, data in files.items():
            path = land / folder / day / name
            path.write_bytes(data.encode() if isinstance(data, str) else data)
    with (land / "image" / day / "labels.csv").open("a") as fh:
        fh.write(f"ghost.png,scratch,M01,{day}T00:00:00Z\n")

    assert materialize_partition(tiny_profile, day, instance)

    def reasons(asset: str, name: str) -> list[str]:
        q = read_quarantine(work / asset / day)
        return sorted(q.loc[q["source_file"] == f"{day}/{name}", "reason"].astype(str))

    assert reasons(CLEANED["sensor"], "ragged.csv") == ["malformed CSV line: expected 10 fields, got 4"]
    assert reasons(CLEANED["sensor"], "zero.csv") == ["empty file (0 bytes)"]
    assert reasons(CLEANED["sensor"], "header-only.csv") == ["no data rows (header only)"]
    assert reasons(CLEANED["sensor"], "a;rm -rf ~.csv") == [
        "unsafe file name component 'a;rm -rf ~.csv' (path traversal or odd characters)"]
    assert reasons(CLEANED["sensor"], "flood.csv") == ["missing or NaN value in vibration_rms"] * 30
    assert reasons(CLEANED["text"], "notes.csv") == ["bytes that are not valid UTF-8",
                                                     "label names an unknown class: plumbing"]
    assert reasons(CLEANED["image"], "bomb.png")[0].startswith("decompression bomb refused")
    assert reasons(CLEANED["image"], "truncated.png")[0].startswith("corrupt or truncated image")
    assert reasons(CLEANED["image"], "notes.png") == ["not an image (unidentified format)"]
    assert reasons(CLEANED["image"], "x\ny.png") == [
        "unsafe file name component 'x\\ny.png' (path traversal or odd characters)"]
    assert reasons(CLEANED["image"], "icon.bmp") == []  # 9x9 is small but usable: normalised and kept
    assert reasons(CLEANED["image"], "labels.csv") == ["label row references missing image 'ghost.png'"]
    assert reasons(CLEANED["quality"], "late.csv") == ["label references a machine with no sensor readings"]

    # Nothing lost: records in = kept + quarantined for every cleaned asset, and the good data flowed.
    kept, _ = _accounted(work, f"{RAW_ASSET['sensor']}/{day}", f"{CLEANED['sensor']}/{day}")
    sensor_q = read_quarantine(work / CLEANED["sensor"] / day)
    simulator_faults = (~sensor_q["source_file"].isin([f"{day}/{n}" for n in bad["sensor"]])).sum()
    assert kept == 6 * 1440 - simulator_faults  # every good simulated reading still flows
    kept_images, _ = _accounted(work, f"{RAW_ASSET['image']}/{day}", f"{CLEANED['image']}/{day}")
    assert kept_images >= 30
    _accounted(work, f"{RAW_ASSET['text']}/{day}", f"{CLEANED['text']}/{day}")
    for table in ("quality", "failures"):
        _accounted(work, f"{RAW_ASSET['labels']}/{day}/{table}", f"{CLEANED[table]}/{day}")
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(CLEANED[m]), "check_accounting") for m in ("sensor", "image", "text")])
    assert {c.status.value for c in checks.values()} == {"SUCCEEDED"}
    event = instance.get_latest_materialization_event(dg.AssetKey(QUARANTINE["image"]))
    assert event.asset_materialization.metadata["dagster/row_count"].value == len(
        read_quarantine(work / CLEANED["image"] / day))
