"""Concurrent writers of the same artifact, in separate processes, never interleave: the final
state is exactly one complete version, written by one of them, and readers never see a gap."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mfg_pipeline.cleaning.partition import read_kept, read_quarantine
from mfg_pipeline.landing.ingest import REJECTED, ROWS
from mfg_pipeline.storage import versioned
from mfg_pipeline_tests.landing_kit import DAY, SENSOR_HEADER, Drop, csv_text, sensor_rows
from mfg_pipeline_tests.process_kit import run_groups, task

WRITERS = ("a", "b", "c")


@pytest.fixture(scope="module")
def raced(tmp_path_factory):
    """Every race, prepared here and run in one batch of child processes (one group per race)."""
    root = tmp_path_factory.mktemp("race")
    drop = Drop(root / "plant")
    for machine in ("M01", "M02", "M03"):
        drop.write("sensor", f"{DAY}/{machine}.csv", csv_text(SENSOR_HEADER, sensor_rows(machine, 200)))
    drop.write("sensor", f"{DAY}/bad.csv", csv_text(SENSOR_HEADER, ["oops", f"{DAY}T00:00:00Z,M09,x,1"]))
    dirs = {name: root / name for name in ("fresh", "same-version", "republish")}
    groups = [
        [task("publish_slow", directory=dirs["fresh"], tag=t, log=root / "fresh.log") for t in WRITERS],
        [task("publish_slow", directory=dirs["same-version"], tag=t, log=root / "same.log", version="v1")
         for t in WRITERS],
        [task("run_day", root=drop.root.parent, source="sensor", day=DAY) for _ in range(2)],
        [task("republish_same_version", directory=dirs["republish"], rounds=300, stop=root / "stop"),
         task("read_while_published", directory=dirs["republish"], stop=root / "stop", out=root / "reads.json")],
    ]
    # The reader needs something to read from its first moment.
    versioned.publish(dirs["republish"], lambda f: (f / "data.txt").write_text("same content") and None, "fixed")
    results = run_groups(groups)
    assert all(s == {"signal": None, "exit": 0} for group in results for s in group), results
    return root, dirs, drop


def _log(path) -> list[dict]:
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["start"])


def _one_complete_current_version(directory) -> str:
    """The current version is whole and from one writer; besides it only the version it
    replaced (kept for readers), also whole; no staging leftovers. Returns the current tag."""
    folder = versioned.current(directory)
    others = sorted(p.name for p in directory.iterdir()
                    if p.name not in (folder.name, "CURRENT.json", ".CURRENT.json.lock"))
    assert len(others) <= 1 and all(name.startswith("v-") for name in others), others
    for version in [folder, *(directory / name for name in others)]:
        tags = {(version / name).read_text() for name in ("a.txt", "b.txt", "c.txt")}
        assert len(tags) == 1, f"files from several writers: {tags}"
    [tag] = {(folder / "a.txt").read_text()}
    assert versioned.pointer(directory)["tag"] == tag
    return tag


def test_concurrent_publishes_are_serialised_and_the_current_version_is_whole(raced):
    root, dirs, _ = raced
    writes = _log(root / "fresh.log")
    assert [w["tag"] for w in writes] != [] and len(writes) == len(WRITERS)
    for before, after in zip(writes, writes[1:]):
        assert before["end"] <= after["start"], "two writers were inside publish at once"
    assert _one_complete_current_version(dirs["fresh"]) == writes[-1]["tag"]  # the last writer wins, whole


def test_concurrent_publishes_of_one_version_write_it_once(raced):
    root, dirs, _ = raced
    writes = _log(root / "same.log")
    assert len(writes) == 1  # the others found it current and kept it
    assert _one_complete_current_version(dirs["same-version"]) == writes[0]["tag"]


def test_two_concurrent_ingest_and_clean_runs_of_one_day_agree(raced):
    _, _, drop = raced
    raw, clean = drop.work / "raw" / "sensor" / DAY, drop.work / "clean" / "sensor" / DAY
    for directory in (raw, clean):
        assert len([p for p in directory.iterdir() if p.name.startswith("v-")]) == 1
        assert not [p for p in directory.iterdir() if p.name.startswith(".staging-")]
    info = versioned.pointer(raw)
    rows = pd.read_parquet(versioned.current(raw) / ROWS)
    rejected = pd.read_parquet(versioned.current(raw) / REJECTED)
    assert (info["rows"], info["rejected"]) == (len(rows), len(rejected)) == (601, 1)
    kept, quarantine = read_kept(clean), read_quarantine(clean)
    assert len(kept) == 600 and len(kept) + len(quarantine) == info["rows"] + info["rejected"]
    assert versioned.pointer(clean)["records_in"] == 602
    index = json.loads((drop.work / "index" / "sensor.json").read_text())
    assert len(index["files"]) == 4


def test_readers_never_see_a_version_disappear_while_it_is_republished(raced):
    root, _, _ = raced
    reads = json.loads((root / "reads.json").read_text())
    assert reads["reads"] > 0 and reads["errors"] == []


MATERIALIZE_DAY = """
import sys
from pathlib import Path
from mfg_pipeline.profiles import default_profile
from mfg_pipeline.runner import materialize_partition
sys.exit(0 if materialize_partition(default_profile(Path(sys.argv[1])), sys.argv[2]) else 1)
"""


def test_two_dagster_materializations_of_the_same_partition_at_once(tiny_profile, tmp_path):
    """Two whole Dagster runs of the same day, started together in two processes over the same
    data directory: both succeed, and the day ends as exactly one complete, balanced version.

    Each process has its own instance: what is under test is our artifact writes; a shared
    SQLite instance is not made for concurrent writers (deployments use PostgreSQL).
    """
    import os
    import subprocess
    import sys

    from mfg_pipeline.assets.cleaning import CLEANED
    from mfg_pipeline_tests.process_kit import REPO

    day = tiny_profile.start_day
    data_root = tiny_profile.work_dir.parent
    runs = []
    for name in ("first", "second"):
        home = tmp_path / f"dagster_home_{name}"
        home.mkdir()
        (home / "dagster.yaml").touch()
        env = {**os.environ, "PYTHONPATH": str(REPO), "DAGSTER_HOME": str(home)}
        runs.append(subprocess.Popen([sys.executable, "-c", MATERIALIZE_DAY, str(data_root), day], env=env, cwd=REPO,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    errors = [run.communicate(timeout=300)[1].decode()[-3000:] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors

    for asset in (CLEANED["sensor"], "raw_sensor_readings"):
        folder = tiny_profile.work_dir / asset / day
        # the current version, and at most the one it replaced; no staging leftovers
        assert versioned.current(folder).is_dir() and len(list(folder.glob("v-*"))) <= 2, asset
        assert not list(folder.glob(".staging-*")), asset
    raw = versioned.pointer(tiny_profile.work_dir / "raw_sensor_readings" / day)
    kept = read_kept(tiny_profile.work_dir / CLEANED["sensor"] / day)
    quarantine = read_quarantine(tiny_profile.work_dir / CLEANED["sensor"] / day)
    assert raw["rows"] + raw["rejected"] == len(kept) + len(quarantine) == 6 * 1440
    assert not kept.duplicated(["machine_id", "timestamp"]).any()
