"""The data half of the graph materialized in-process on a tiny simulated plant."""

from __future__ import annotations

import dagster as dg
import pytest

from mfg_pipeline.assets.cleaning import CLEANED, QUARANTINE
from mfg_pipeline.cleaning.partition import read_kept, read_quarantine
from mfg_pipeline.datasets.splits import machine_split
from mfg_pipeline.definitions import defs
from mfg_pipeline.landing.contract import LandingLayout
from mfg_pipeline.landing.partitioning import LandingIndex
from mfg_pipeline.runner import DATA_GROUPS, materialize_partition, materialize_rest
from mfg_pipeline.storage import versioned
from mfg_pipeline.storage.artifacts import load_corpus, load_labeled_dataset

GROUPS = {"ingestion", "cleaning", "corpus", "labels"}


def test_definitions_load_with_the_expected_groups():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.materializable_asset_keys}
    assert GROUPS <= groups
    # True lineage: cleaned readings come from raw readings, the corpus from cleaned readings.
    assert dg.AssetKey("raw_sensor_readings") in graph.get(dg.AssetKey("cleaned_sensor_readings")).parent_keys
    assert dg.AssetKey("cleaned_sensor_readings") in graph.get(dg.AssetKey("sensor_corpus")).parent_keys
    assert graph.get(dg.AssetKey("defect_dataset")).parent_keys == {dg.AssetKey("cleaned_inspection_images")}


@pytest.fixture
def materialized(tiny_profile, instance):
    days = LandingIndex(LandingLayout(tiny_profile.landing_dir), "sensor", tiny_profile.work_dir / "idx.json").days()
    assert len(days) == 3
    for day in days:
        assert materialize_partition(tiny_profile, day, instance)
    result = materialize_rest(tiny_profile, instance, groups=DATA_GROUPS)
    assert result.success
    return tiny_profile, days, instance


def test_data_half_values(materialized):
    profile, days, instance = materialized
    work = profile.work_dir
    for day in days:
        raw_info = versioned.pointer(work / "raw_sensor_readings" / day)
        kept = read_kept(work / CLEANED["sensor"] / day)
        quarantine = read_quarantine(work / CLEANED["sensor"] / day)
        # Accounting: every landed record is kept or quarantined, none vanish.
        assert raw_info["rows"] + raw_info["rejected"] == len(kept) + len(quarantine)
        assert kept["timestamp"].dt.strftime("%Y-%m-%d").eq(day).all()
        assert not kept.duplicated(["machine_id", "timestamp"]).any()
        assert kept["machine_id"].nunique() == 6
    corpus = load_corpus(work / "sensor_corpus")
    assert corpus.inputs.shape[1:] == (8, 64) and len(corpus) > 100
    assert sorted(corpus.meta["days"]) == days
    for name in ("quality_dataset", "failure_dataset", "rul_dataset", "defect_dataset", "maintenance_log_dataset"):
        dataset = load_labeled_dataset(work / name)
        train = set(dataset.index.loc[dataset.index["split"] == "train", "machine_id"])
        test = set(dataset.index.loc[dataset.index["split"] == "test", "machine_id"])
        assert train and test and not (train & test), name
        assert all(machine_split(m, profile.plants[0].test_fraction) == "test" for m in test)
        if dataset.inputs is not None:
            assert len(dataset.inputs) == len(dataset.index)
    rul = load_labeled_dataset(work / "rul_dataset")
    assert rul.index["target"].between(0, rul.meta["cap_h"]).all()
    logs = load_labeled_dataset(work / "maintenance_log_dataset")
    test_texts = set(logs.index.loc[logs.index["split"] == "test", "text"])
    assert not (set(logs.index.loc[logs.index["split"] == "train", "text"]) & test_texts)


def test_rerunning_an_unchanged_partition_reuses_its_version(materialized):
    profile, days, instance = materialized
    folder = profile.work_dir / CLEANED["sensor"] / days[0]
    before = versioned.pointer(folder)["version"], versioned.current(folder).stat().st_mtime_ns
    assert materialize_partition(profile, days[0], instance)
    after = versioned.pointer(folder)["version"], versioned.current(folder).stat().st_mtime_ns
    assert before == after
    event = instance.get_latest_materialization_event(dg.AssetKey(CLEANED["sensor"]))
    assert event.asset_materialization.metadata["reused_unchanged_input"].value is True


def test_bad_file_is_quarantined_while_good_files_flow(tiny_profile, instance):
    day = tiny_profile.start_day
    bad = tiny_profile.landing_dir / "sensor" / day / "broken.csv"
    bad.write_text("timestamp,machine_id,vibration_rms\n" f"{day}T01:00:00Z,M01,not-a-number\n")
    assert materialize_partition(tiny_profile, day, instance)
    kept = read_kept(tiny_profile.work_dir / CLEANED["sensor"] / day)
    quarantine = read_quarantine(tiny_profile.work_dir / CLEANED["sensor"] / day)
    broken = quarantine[quarantine["source_file"] == f"{day}/broken.csv"]
    assert len(broken) == 1 and broken["reason"].iloc[0] == "non-numeric value in vibration_rms"
    assert len(kept) == 6 * 1440 - (len(quarantine) - len(broken))
    event = instance.get_latest_materialization_event(dg.AssetKey(QUARANTINE["sensor"]))
    assert event.asset_materialization.metadata["dagster/row_count"].value == len(quarantine)
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(CLEANED["sensor"]), "check_accounting")])
    assert list(checks.values())[0].status.value == "SUCCEEDED"


def test_runner_passes_the_asset_checks_along():
    """``make run`` materializes through the runner: the model checks must run with their assets."""
    from mfg_pipeline.assets.model_checks import CHECK_NAME
    from mfg_pipeline.runner import _assets

    checks = [c for c in _assets(defs) if isinstance(c, dg.AssetChecksDefinition)]
    names = {key.name for c in checks for key in c.check_keys}
    assert names == {CHECK_NAME} and len(checks) == 5
