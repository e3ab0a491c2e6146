"""Public labeled datasets: adapter slice -> ingestion -> cleaning -> builder, checked against
the protocols of ANCHORS.md (no engine, recording or identical text/image on both sides of a
split; RUL cap; last-cycle test rows; cross-load metadata)."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from mfg_pipeline.datasets.public import RUL_CAP, stratified_group_split
from mfg_pipeline.landing.adapters import ai4i, cmapss, cwru, maintenance, neu
from mfg_pipeline.landing.contract import LandingLayout
from mfg_pipeline.landing.partitioning import LandingIndex
from mfg_pipeline.profiles import public_profile
from mfg_pipeline_tests.public_kit import PLANTS, build, clean_plant, shared


def _sides(index: pd.DataFrame, column: str) -> tuple[set, set]:
    return (set(index.loc[index["split"] == "train", column]), set(index.loc[index["split"] == "test", column]))


def test_public_definitions_load_without_the_datasets(monkeypatch, tmp_path):
    monkeypatch.setenv("MFG_PUBLIC_DATASETS", str(tmp_path / "absent"))
    from mfg_pipeline.definitions import build_definitions

    defs = build_definitions(public_profile(data_root=tmp_path))
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().materializable_asset_keys}
    for plant in PLANTS.values():
        assert f"{plant.name}/{plant.datasets[0]}" in keys
    assert "cwru/recording_labels" in keys and "cmapss_fd004/sensor_corpus" in keys
    # Nothing landed: every plant's landing index is simply empty.
    profile = public_profile(data_root=tmp_path)
    assert not LandingIndex(LandingLayout(profile.landing_for(PLANTS["cwru"])), "sensor", tmp_path / "i.json").days()


def test_stratified_group_split_keeps_groups_whole_and_classes_balanced():
    labels = pd.Series(["a"] * 40 + ["b"] * 40)
    groups = pd.Series([f"g{i // 2}" for i in range(80)])  # pairs of rows share a group
    split = stratified_group_split(labels, groups, 0.25)
    frame = pd.DataFrame({"label": labels, "group": groups, "split": split})
    assert frame.groupby("group")["split"].nunique().max() == 1
    assert frame[frame["split"] == "test"].groupby("label").size().tolist() == [10, 10]
    assert split.equals(stratified_group_split(labels, groups, 0.25))  # deterministic


@pytest.mark.parametrize("subset", ["FD001", "FD002"])
def test_cmapss_rul_protocol(tmp_path, subset):
    source = shared("cmapss")
    landing = tmp_path / "raw"
    cmapss.adapt(source, landing, limit=8, subsets=(subset,))
    plant = PLANTS[f"cmapss_{subset.lower()}"]
    dataset = build(plant, clean_plant(plant, landing, tmp_path / "work"))
    index, meta = dataset.index, dataset.meta
    assert dataset.inputs.shape[1:] == (14, cmapss.WINDOWS[subset]) and meta["channels"] == list(cmapss.INFORMATIVE)
    train, test = _sides(index, "unit")
    assert not train & test
    assert all(u.startswith(f"{subset}-train-") for u in train) and all(u.startswith(f"{subset}-test-") for u in test)
    # RUL capped at 125 for target and truth; uncapped `rul` kept.
    assert index["target"].between(0, RUL_CAP).all() and index["target"].max() == RUL_CAP
    assert np.allclose(index["target"], np.minimum(index["rul"], RUL_CAP))
    # Test rows: exactly the last cycle of each test engine, truth from RUL_FD00x.
    test_rows = index[index["split"] == "test"].set_index("unit")
    assert len(test_rows) == 8 and test_rows["is_last_cycle"].all()
    truth = pd.read_csv(source / f"RUL_{subset}.txt.gz", header=None)[0].head(8).to_numpy()
    order = [f"{subset}-test-{u:03d}" for u in range(1, 9)]
    assert np.allclose(test_rows.loc[order, "rul"], truth) and np.allclose(test_rows.loc[order, "target"], np.minimum(truth, RUL_CAP))
    raw_test = pd.read_csv(source / f"test_{subset}.txt.gz", sep=r"\s+", header=None)
    assert (test_rows.loc[order, "cycle"].to_numpy() == raw_test[raw_test[0] <= 8].groupby(0)[1].max().to_numpy()).all()
    # Train: every window of each train engine, the last one at RUL 0.
    train_rows = index[index["split"] == "train"]
    assert (train_rows.groupby("unit")["rul"].min() == 0).all()
    # Scaling fitted on train-engine readings only (one regime for FD001, six for FD002).
    regimes = meta["scaling"]["regimes"]
    assert len(regimes) == (1 if subset == "FD001" else 6)
    n_train_readings = int((pd.read_csv(source / f"train_{subset}.txt.gz", sep=r"\s+", header=None)[0] <= 8).sum())
    assert sum(r["fitted_on_train_readings"] for r in regimes.values()) == n_train_readings


def test_cwru_fault_protocol(tmp_path):
    source = shared("cwru")
    landing = tmp_path / "raw"
    cwru.adapt(source, landing, limit=3, max_samples=2048 * 8)  # B007 at loads 0, 1, 2
    plant = PLANTS["cwru"]
    dataset = build(plant, clean_plant(plant, landing, tmp_path / "work"))
    index, meta = dataset.index, dataset.meta
    assert dataset.inputs.shape == (24, 1, 2048) and meta["classes"] == list(cwru.FAULT_CLASSES)
    assert sorted(index["load"].unique()) == [0, 1, 2] == meta["loads"]
    assert [1, 2] in meta["cross_load_pairs"] and [2, 1] in meta["wdcnn_pairs"] and meta["sample_rate_hz"] == 12000
    for recording, rows in index.groupby("recording"):
        assert rows["load"].nunique() == 1 and rows["target"].nunique() == 1
        # Within-load split: the test windows of a recording are one contiguous time block.
        test_positions = rows.loc[rows["split"] == "test", "window_in_recording"].to_numpy()
        assert len(test_positions) == 2 and (np.diff(test_positions) == 1).all()
        assert rows.loc[rows["split"] == "test", "block"].nunique() == 1
        # Non-overlapping windows: consecutive windows start 2048 samples (ms) apart.
        starts = pd.to_datetime(rows["start"], utc=True).diff().dropna()
        assert (starts == pd.Timedelta(milliseconds=2048)).all()
    # Windows are the landed samples, unchanged.
    first = pd.read_parquet(landing / f"cwru/sensor/2020-01-01/{cwru.machine_id('ball_0.007', 0)}.parquet")
    assert np.allclose(dataset.inputs[index["recording"] == cwru.machine_id("ball_0.007", 0)][0, 0].numpy(),
                       first["de"].to_numpy()[:2048], atol=1e-6)


def test_cwru_normal_recording_is_excluded(tmp_path):
    source = shared("cwru")
    index = pd.read_csv(source / "index.csv")
    fake = tmp_path / "src"
    fake.mkdir()
    rows = index[(index["label"] == "normal") | (index["cwru_file_id"] == 105)]
    for file in rows["file"]:
        (fake / file).symlink_to(source / file)
    rows.to_csv(fake / "index.csv", index=False)
    cwru.adapt(fake, tmp_path / "raw", max_samples=2048 * 4)
    dataset = build(PLANTS["cwru"], clean_plant(PLANTS["cwru"], tmp_path / "raw", tmp_path / "work"))
    assert set(dataset.index["label"]) == {"inner_race_0.007"}
    assert "cwru-normal-0" in dataset.meta["excluded"]


def test_neu_defect_split_keeps_identical_images_together(tmp_path):
    source = shared("neu_surface")
    landing = tmp_path / "raw"
    index = pd.read_csv(source / "index.csv")
    # A slice: 20 images per class, plus the duplicate pair.
    keep = index.groupby("label").head(20)["image"].tolist() + ["images/patches/patches_101.jpg", "images/patches/patches_105.jpg"]
    fake = tmp_path / "src"
    for image in keep:
        (fake / image).parent.mkdir(parents=True, exist_ok=True)
        (fake / image).symlink_to(source / image)
    index[index["image"].isin(keep)].to_csv(fake / "index.csv", index=False)
    neu.adapt(fake, landing)
    plant = PLANTS["neu"]
    dataset = build(plant, clean_plant(plant, landing, tmp_path / "work"))
    frame = dataset.index
    assert dataset.inputs.shape == (122, 1, 200, 200) and dataset.meta["duplicate_images"] == 2
    train, test = _sides(frame, "sha256")
    assert not train & test
    pair = frame[frame["file"].isin(["2020-01-01/patches_101.jpg", "2020-01-01/patches_105.jpg"])]
    assert len(pair) == 2 and pair["split"].nunique() == 1
    per_class = frame[frame["split"] == "test"].groupby("label").size()
    assert per_class.min() >= 5 and per_class.max() <= 6  # stratified: 25% of 20-22 groups per class


def test_ai4i_failure_dataset_has_no_leaking_inputs(tmp_path):
    source = shared("ai4i2020")
    landing = tmp_path / "raw"
    ai4i.adapt(source, landing, limit=3000)
    plant = PLANTS["ai4i"]
    dataset = build(plant, clean_plant(plant, landing, tmp_path / "work"))
    index, meta = dataset.index, dataset.meta
    assert dataset.inputs.shape == (3000, 11, 1)
    assert meta["channels"] == [*ai4i.CHANNELS, "temp_rise_k", "power_w", "strain_nm_min", "type_L", "type_M", "type_H"]
    assert not {"TWF", "HDF", "PWF", "OSF", "RNF", "failure_type", "failure_mode"} & set(meta["channels"])
    assert not {"TWF", "HDF", "PWF", "OSF", "RNF", "failure_type"} & set(index.columns)
    truth = pd.read_csv(source / "ai4i2020.csv", encoding="utf-8-sig").head(3000)
    assert int(index["target"].sum()) == int(truth["Machine failure"].sum())
    # a label, never an input: each failure's mode (mechanisms first: TWF+OSF -> OSF), from the
    # failure events' failure_type; random and unflagged failures are "other"
    failed = truth["Machine failure"].to_numpy() == 1
    expected = np.select([truth[m].to_numpy() == 1 for m in ("HDF", "PWF", "OSF", "TWF")], ["HDF", "PWF", "OSF", "TWF"],
                         "other")
    assert list(index["failure_mode"]) == list(np.where(failed, expected, "none"))
    assert meta["classes_of"]["failure_mode"] == ["none", "HDF", "PWF", "OSF", "TWF", "other"]
    assert {"PWF", "OSF", "TWF", "other"} <= set(index["failure_mode"])  # no HDF in the first 3,000 rows
    # The inputs are the process readings of the same row (sorted by time = UDI order).
    assert np.allclose(dataset.inputs[:, 3, 0].numpy(), truth["Torque [Nm]"].to_numpy(np.float32))
    # derived from the same row: temperature rise, power (W = Nm * rad/s), strain (Nm * min)
    torque, speed = truth["Torque [Nm]"].to_numpy(), truth["Rotational speed [rpm]"].to_numpy()
    assert np.allclose(dataset.inputs[:, 5, 0].numpy(), truth["Process temperature [K]"] - truth["Air temperature [K]"], atol=1e-3)
    assert np.allclose(dataset.inputs[:, 6, 0].numpy(), torque * speed * 2 * np.pi / 60, rtol=1e-5)
    assert np.allclose(dataset.inputs[:, 7, 0].numpy(), torque * truth["Tool wear [min]"], rtol=1e-5)
    positives = index[index["target"] == 1].groupby("split").size()
    assert positives["test"] == round(0.25 * positives.sum())  # stratified
    # The failure rules, scored on the test rows: recomputed here from the source file's mode flags
    # (a rule-determined failure is one with an HDF, PWF or OSF flag; the rules flag nothing else)
    test = (index["split"] == "test").to_numpy()
    ruled = (truth[["HDF", "PWF", "OSF"]].sum(axis=1) > 0).to_numpy()[test]
    y = index["target"].to_numpy()[test] == 1
    reference = meta["reference"]
    assert reference["metric"] == "f1" and reference["precision"] == 1.0
    assert reference["recall"] == pytest.approx((ruled & y).sum() / y.sum())
    assert 0.5 < reference["value"] < 1.0


def test_excavator_identical_texts_never_straddle_the_split(tmp_path):
    source = shared("maintenance_text")
    landing = tmp_path / "raw"
    maintenance.adapt(source, landing)
    plant = PLANTS["maintenance"]
    dataset = build(plant, clean_plant(plant, landing, tmp_path / "work"))
    index, meta = dataset.index, dataset.meta
    assert len(index) == 3085 and (index["machine_id"].str.startswith("excavator-")).all()
    train, test = _sides(index, "text")
    assert not train & test and meta["duplicate_text_rows"] > 500
    assert meta["classes"][-1] == "other" and "hydraulic_system" in meta["classes"]
    counts = index["label"].value_counts()
    assert counts.drop("other").min() >= meta["min_class_count"]
    assert set(index.loc[index["label"] == "other", "system"]) == set(meta["folded_into_other"])
    assert (index.groupby("label")["split"].apply(lambda s: (s == "test").mean()) > 0.1).all()
