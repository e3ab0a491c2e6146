"""Adapters: public datasets -> landing-zone contract, on small slices of the shared copies.

Deterministic and idempotent output, the contract's layout and columns, the synthetic time
rules, and no record dropped silently (write-through to cleaning's quarantine, or the adapter
quarantine CSV with a reason).
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil

import pandas as pd
import pyarrow.parquet as pq

from mfg_pipeline.cleaning.partition import read_kept, read_quarantine
from mfg_pipeline.landing.adapters import ADAPTER_QUARANTINE, ADAPTERS, ai4i, cmapss, cwru, maintenance, neu
from mfg_pipeline.landing.contract import LABEL_TABLE_COLUMNS
from mfg_pipeline_tests.public_kit import PLANTS, clean_plant, shared


def _files(root):
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _quarantine(landing, plant) -> pd.DataFrame:
    return pd.read_csv(landing / plant / ADAPTER_QUARANTINE, dtype=str, keep_default_na=False)


def test_registry_names_every_public_plant():
    plants = {p for a in ADAPTERS.values() for p in a.plants}
    assert plants == set(PLANTS)


def test_cmapss_slice_times_failures_and_idempotence(tmp_path):
    source = shared("cmapss")
    landing = tmp_path / "raw"
    [report] = cmapss.adapt(source, landing, limit=3, subsets=("FD001",))
    assert report.records > 0 and not report.quarantined
    root = landing / "cmapss_fd001"
    train = pq.read_table(root / "sensor/2020-01-01/FD001-train.parquet").to_pandas()
    assert list(train.columns) == ["timestamp", "machine_id", *cmapss.CHANNELS]
    assert sorted(train["machine_id"].unique()) == ["FD001-train-001", "FD001-train-002", "FD001-train-003"]
    first = train[train["machine_id"] == "FD001-train-001"]
    assert first["timestamp"].iloc[0] == "2020-01-01T00:00:00" and first["timestamp"].iloc[1] == "2020-01-01T00:01:00"
    assert first["s2"].iloc[0] == "641.82"  # the original token, not a float repr
    events = pd.read_csv(root / "labels/failures/2020-01-01/FD001-train.csv")
    assert list(events.columns) == list(LABEL_TABLE_COLUMNS["failures"])
    # A train engine fails at its last cycle.
    assert events.set_index("machine_id").loc["FD001-train-001", "timestamp"] == first["timestamp"].iloc[-1]
    # A test engine fails at last cycle + true RUL (RUL_FD001: 112, 98, 69).
    test = pq.read_table(root / "sensor/2020-01-02/FD001-test.parquet").to_pandas()
    test_events = pd.read_csv(root / "labels/failures/2020-01-02/FD001-test.csv").set_index("machine_id")
    for unit, rul in ((1, 112), (2, 98), (3, 69)):
        machine = f"FD001-test-{unit:03d}"
        last = pd.Timestamp(test.loc[test["machine_id"] == machine, "timestamp"].iloc[-1])
        assert pd.Timestamp(test_events.loc[machine, "timestamp"]) - last == pd.Timedelta(minutes=rul)
    # Idempotent: a second run rewrites nothing (same bytes, same mtimes).
    before = _files(landing)
    [again] = cmapss.adapt(source, landing, limit=3, subsets=("FD001",))
    assert not again.written and len(again.unchanged) == len(before)
    assert _files(landing) == before


def test_cmapss_unreadable_lines_are_quarantined_with_a_reason(tmp_path):
    source = shared("cmapss")
    with gzip.open(source / "train_FD001.txt.gz", "rt") as fh:
        lines = [next(fh) for _ in range(40)]  # unit 1, cycles 1..40
    tokens = lines[5].split()
    tokens[4] = "12x.5"                                # op3 junk -> written through
    lines[5] = " ".join(tokens) + "\n"
    lines[7] = " ".join(lines[7].split()[:10]) + "\n"  # truncated -> adapter quarantine
    fake = tmp_path / "src"
    fake.mkdir()
    with gzip.open(fake / "train_FD001.txt.gz", "wt") as fh:
        fh.writelines(lines)
    for name in ("test_FD001.txt.gz", "RUL_FD001.txt.gz"):
        shutil.copy(source / name, fake / name)
    landing = tmp_path / "raw"
    cmapss.adapt(fake, landing, limit=1, subsets=("FD001",))
    adapter_q = _quarantine(landing, "cmapss_fd001")
    assert adapter_q.to_dict("records") == [
        {"source_file": "train_FD001.txt.gz", "source_row": "8", "reason": "expected 26 fields, got 10",
         "record": lines[7].strip()}]
    cleaned = clean_plant(PLANTS["cmapss_fd001"], landing, tmp_path / "work")
    day, folder = cleaned["sensor"][0]
    quarantine = read_quarantine(folder)
    assert quarantine["reason"].tolist() == ["non-numeric value in op3"]
    assert len(read_kept(folder)) == 40 - 2  # 38 kept, 1 quarantined by cleaning, 1 by the adapter


def test_cwru_recordings_time_and_unreadable_file(tmp_path):
    source = shared("cwru")
    with open(source / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    normal = next(r for r in rows if r["label"] == "normal")
    fault = next(r for r in rows if r["load_hp"] == "2")
    fake = tmp_path / "src"
    fake.mkdir()
    for row in (normal, fault):
        os.symlink(source / row["file"], fake / row["file"])
    broken = {**fault, "file": "broken.mat.xz", "cwru_file_id": "999"}
    (fake / "broken.mat.xz").write_bytes(b"not xz")
    with open(fake / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([fault, broken, normal])
    landing = tmp_path / "raw"
    [report] = cwru.adapt(fake, landing, max_samples=6000)
    root = landing / "cwru"
    machine = cwru.machine_id(fault["label"], 2)
    series = pq.read_table(root / f"sensor/2020-01-03/{machine}.parquet").to_pandas()
    assert list(series.columns) == ["timestamp", "machine_id", "de"] and len(series) == 6000
    stamps = pd.to_datetime(series["timestamp"], utc=True, format="ISO8601")
    assert (stamps.diff().dropna() == pd.Timedelta(milliseconds=1)).all()  # synthetic 1 ms per sample
    recordings = pd.read_csv(root / "labels/recordings/2020-01-03/recordings.csv")
    assert recordings.loc[0, "machine_id"] == machine and recordings.loc[0, "load_hp"] == 2
    assert recordings.loc[0, "sample_rate_hz"] == 12000 and recordings.loc[0, "label"] == fault["label"]
    # The 48 kHz normal baseline is decimated to 12 kHz before landing.
    normal_row = pd.read_csv(root / "labels/recordings/2020-01-01/recordings.csv").iloc[0]
    assert normal_row["label"] == "normal" and normal_row["source_sample_rate_hz"] == 48000
    assert any("decimated" in note for note in report.notes)
    # The undecodable file cannot be landed: adapter quarantine, with the reason.
    adapter_q = _quarantine(landing, "cwru")
    assert len(adapter_q) == 1 and adapter_q.loc[0, "source_row"] == "2"
    assert "broken.mat.xz" in adapter_q.loc[0, "reason"] and "unreadable" in adapter_q.loc[0, "reason"]


def test_neu_duplicate_images_share_a_machine(tmp_path):
    source = shared("neu_surface")
    fake = tmp_path / "src"
    (fake / "images" / "patches").mkdir(parents=True)
    (fake / "images" / "crazing").mkdir(parents=True)
    index = pd.read_csv(source / "index.csv")
    subset = index[index["image"].isin(["images/patches/patches_101.jpg", "images/patches/patches_105.jpg",
                                        "images/crazing/crazing_1.jpg"])]
    for image in subset["image"]:
        os.symlink(source / image, fake / image)
    missing = pd.DataFrame([{"image": "images/crazing/crazing_999.jpg", "label": "crazing", "annotation": "",
                             "n_boxes": 0, "sha256": ""}])
    pd.concat([subset, missing]).to_csv(fake / "index.csv", index=False)
    landing = tmp_path / "raw"
    neu.adapt(fake, landing)
    labels = pd.read_csv(landing / "neu/image/2020-01-01/labels.csv").set_index("file")
    assert labels.loc["patches_101.jpg", "machine_id"] == labels.loc["patches_105.jpg", "machine_id"]
    assert labels.loc["crazing_1.jpg", "machine_id"] != labels.loc["patches_101.jpg", "machine_id"]
    assert (landing / "neu/image/2020-01-01/patches_105.jpg").read_bytes() == (source / "images/patches/patches_105.jpg").read_bytes()
    adapter_q = _quarantine(landing, "neu")
    assert adapter_q["reason"].str.contains("missing").tolist() == [True]


def test_ai4i_failure_modes_stay_out_of_the_readings(tmp_path):
    source = shared("ai4i2020")
    landing = tmp_path / "raw"
    [report] = ai4i.adapt(source, landing, limit=2000)
    assert report.records == 2000 and not report.quarantined
    readings = pd.concat(pd.read_csv(p) for p in sorted((landing / "ai4i/sensor").rglob("*.csv")))
    assert list(readings.columns) == ["timestamp", "machine_id", *ai4i.CHANNELS]
    assert not set(ai4i.MODES) & set(readings.columns) and "Machine failure" not in readings.columns
    assert set(readings["machine_id"]) == {"ai4i-L", "ai4i-M", "ai4i-H"}
    assert readings["timestamp"].iloc[0] == "2020-01-01T00:00:00" and readings["timestamp"].iloc[-1] == "2020-01-02T09:19:00"
    events = pd.concat(pd.read_csv(p) for p in sorted((landing / "ai4i/labels/failures").rglob("*.csv")))
    truth = pd.read_csv(source / "ai4i2020.csv", encoding="utf-8-sig").head(2000)
    assert len(events) == int(truth["Machine failure"].sum())
    assert set(events["event"]) == {"failure"} and events["failure_type"].notna().all()


def test_maintenance_labels_dates_and_write_through(tmp_path):
    source = shared("maintenance_text")
    landing = tmp_path / "raw"
    [report] = maintenance.adapt(source, landing)
    assert report.records == 5485 + 6169 and not report.quarantined
    texts = pd.concat(pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted((landing / "maintenance/text").rglob("*.csv")))
    excavators = texts[texts["machine_id"].str.startswith("excavator-")]
    assert len(excavators) == 5485 and set(excavators["machine_id"]) == {f"excavator-{a}" for a in "ABCDE"}
    labels = excavators["label"]
    assert (labels == "").sum() == 2399  # MajorSystem NA -> unlabeled
    assert set(labels[labels != ""]) - set(maintenance.SYSTEM_LABELS) == {"180"}  # written through, cleaning quarantines it
    # One real day = one synthetic minute: 2004-07-01 is 1277 days after 2001-01-01.
    first = excavators.iloc[0] if excavators.iloc[0]["text"] == "BUCKET WON'T OPEN" else None
    assert first is not None and first["timestamp"] == "2020-01-01T21:17:00"
    assert maintenance.canonical_system("Hydraulic System_Engine") == maintenance.canonical_system("Engine_Hydraulic System")
    maintnet = texts[texts["machine_id"] == "maintnet"]
    assert len(maintnet) == 6169 and (maintnet["label"] == "").all() and (maintnet["text"].str.len() > 0).all()
    cleaned = clean_plant(PLANTS["maintenance"], landing, tmp_path / "work")
    reasons = pd.concat(read_quarantine(folder) for _, folder in cleaned["text"])["reason"].tolist()
    assert reasons == ["label names an unknown class: 180"]
