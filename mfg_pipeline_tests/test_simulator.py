"""Plant simulator: determinism, landing-zone contract, and that the data carries its signal."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mfg_pipeline.landing.contract import (
    LABEL_TABLE_COLUMNS,
    SUFFIXES,
    LandingLayout,
    discover,
    image_label_files,
    unsafe_name_reason,
)
from mfg_pipeline.simulator import (
    CHANNELS,
    IMAGE_CLASSES,
    SCALES,
    TEXT_CATEGORIES,
    days,
    machine_history,
    quality_pass_probability,
    scaled,
    simulate,
    write_day,
)
from mfg_pipeline.simulator.images import render_image, sample_image_labels
from mfg_pipeline.simulator.quality import day_batches
from mfg_pipeline.simulator.seeds import stream
from mfg_pipeline.simulator.text import day_logs

TINY = SCALES["tiny"]
DEFAULT = SCALES["default"]
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def tiny_landing(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("landing")
    return root, simulate(root, TINY)


def test_scales_and_overrides():
    assert TINY.n_machines == 6 and TINY.n_days == 3
    assert DEFAULT.n_machines == 8 and DEFAULT.n_days == 14
    assert DEFAULT.machine_ids == [f"M0{i}" for i in range(1, 9)]
    assert scaled("tiny", seed=3).seed == 3 and scaled("tiny", seed=3).n_machines == 6
    assert days(TINY) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    with pytest.raises(ValueError):
        scaled("huge")
    with pytest.raises(ValueError):
        scaled("tiny", sample_period_s=7)


def test_no_dagster_in_simulator():
    package = Path(__file__).resolve().parents[1] / "mfg_pipeline" / "simulator"
    for source in package.glob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+dagster", source.read_text(), re.M), source


def test_same_config_gives_identical_bytes(tiny_landing, tmp_path):
    root, _ = tiny_landing
    simulate(tmp_path, TINY)
    first, second = _hashes(root), _hashes(tmp_path)
    assert first == second
    assert len(first) > 50


def test_other_seed_gives_other_data(tiny_landing, tmp_path):
    root, _ = tiny_landing
    write_day(tmp_path, scaled("tiny", seed=8), "2026-01-01")
    for rel in ("sensor/2026-01-01/M01.csv", "text/2026-01-01/M01.csv", "image/2026-01-01/labels.csv"):
        assert (root / rel).read_bytes() != (tmp_path / rel).read_bytes(), rel


def test_one_day_alone_matches_full_run(tiny_landing, tmp_path):
    root, _ = tiny_landing
    write_day(tmp_path, TINY, "2026-01-02")
    alone = _hashes(tmp_path)
    full = {k: v for k, v in _hashes(root).items() if "2026-01-02" in k}
    assert alone == full


def test_earlier_days_do_not_depend_on_run_length(tiny_landing, tmp_path):
    root, _ = tiny_landing
    simulate(tmp_path, scaled("tiny", n_days=2))
    shorter = _hashes(tmp_path)
    full = {k: v for k, v in _hashes(root).items() if "2026-01-03" not in k}
    assert shorter == full


def test_layout_and_columns_follow_contract(tiny_landing):
    root, counts = tiny_landing
    layout = LandingLayout(root)
    spd = TINY.samples_per_day
    for source in ("sensor", "image", "text", "quality", "failures"):
        files = discover(layout, source)
        assert files, source
        for f in files:
            assert f.path.suffix in SUFFIXES[source] and unsafe_name_reason(f.relative) is None
            assert f.day_hint in days(TINY)
    sensor_files = discover(layout, "sensor")
    assert [f.relative for f in sensor_files[:3]] == [f"2026-01-01/M0{i}.csv" for i in (1, 2, 3)]
    frame = pd.read_csv(sensor_files[0].path)
    assert list(frame.columns) == ["timestamp", "machine_id", *CHANNELS]
    assert len(frame) == spd and frame["timestamp"].map(ISO_Z.match).all()
    assert frame["timestamp"].iloc[1] == "2026-01-01T00:01:00Z" and (frame["machine_id"] == "M01").all()
    running = frame[frame["spindle_speed"] > 0]
    assert running["spindle_speed"].between(1000, 3000).all()
    assert running["bearing_temp"].between(30, 100).all() and running["motor_temp"].between(30, 110).all()
    assert counts["sensor"] == spd * TINY.n_machines * TINY.n_days

    text = pd.read_csv(discover(layout, "text")[0].path, keep_default_na=False)
    assert list(text.columns) == ["timestamp", "machine_id", "text", "label"]
    assert set(text["label"]) <= {"", *TEXT_CATEGORIES}
    quality = pd.read_csv(discover(layout, "quality")[0].path)
    assert list(quality.columns) == list(LABEL_TABLE_COLUMNS["quality"])
    assert set(quality["passed"]) <= {0, 1} and quality["batch_id"].is_unique
    failures = pd.concat(pd.read_csv(f.path, keep_default_na=False) for f in discover(layout, "failures"))
    assert list(failures.columns) == [*LABEL_TABLE_COLUMNS["failures"], "failure_type"]
    assert set(failures["event"]) <= {"failure", "maintenance"}
    assert (failures["event"] == "failure").sum() >= 1

    label_files = image_label_files(layout)
    assert len(label_files) == TINY.n_days
    for labels_csv in label_files:
        labels = pd.read_csv(labels_csv, keep_default_na=False)
        assert list(labels.columns) == ["file", "label", "machine_id", "timestamp"]
        pngs = sorted(p.name for p in labels_csv.parent.glob("*.png"))
        assert sorted(labels["file"]) == pngs  # every image is listed, labeled or not
        assert all(re.fullmatch(r"M\d{2}_\d{6}_\d+\.png", name) for name in pngs)
        assert set(labels["label"]) <= {"", *IMAGE_CLASSES}


def test_label_fractions_roughly_as_configured(tiny_landing):
    _, counts = tiny_landing
    assert 0.12 <= counts["image_labeled"] / counts["image"] <= 0.5
    assert 0.1 <= counts["text_labeled"] / counts["text"] <= 0.55
    assert 0.15 <= counts["quality"] / counts["batches"] <= 0.45
    # at the default scale, computed without writing
    batches = [b for m in range(DEFAULT.n_machines) for d in range(DEFAULT.n_days) for b in day_batches(DEFAULT, m, d, "x")]
    assert abs(np.mean([b.inspected for b in batches]) - DEFAULT.quality_label_fraction) < 0.05


def test_failures_are_preceded_by_rising_vibration():
    histories = [machine_history(DEFAULT, m) for m in range(DEFAULT.n_machines)]
    n_failures = sum(e.event == "failure" for h in histories for e in h.events)
    assert 25 <= n_failures <= 45
    per_hour = 3600 // DEFAULT.sample_period_s
    before, after = [], []
    for h in histories:
        vib = h.channel("vibration_rms")
        resets = [0] + [e.sample for e in h.events if e.event == "maintenance"]
        for e in h.events:
            if e.event != "failure":
                continue
            last_reset = max(r for r in resets if r < e.sample)
            if e.sample - last_reset < 12 * per_hour or last_reset == 0:
                continue
            before.append(vib[e.sample - 3 * per_hour : e.sample].mean())
            after.append(vib[last_reset : last_reset + 3 * per_hour].mean())
            assert h.health[e.sample - 1] < 0.05 < h.health[last_reset]
            assert not h.running[e.sample]
    assert len(before) >= 15
    before, after = np.array(before), np.array(after)
    assert np.mean(before > after) >= 0.9 and before.mean() > 1.5 * after.mean()


def test_health_is_learnable_from_a_window():
    h = machine_history(DEFAULT, 0)
    window = 64
    starts = np.arange(0, len(h.wear) - window, window)
    ok = [s for s in starts if h.running[s : s + window].all()]
    vib = h.channel("vibration_rms")
    feature = [np.abs(np.diff(vib[s : s + window])).mean() for s in ok]  # high-frequency content
    wear = [h.wear[s : s + window].mean() for s in ok]
    assert np.corrcoef(feature, wear)[0, 1] > 0.7


def test_quality_depends_on_health_and_settings():
    batches = [b for m in range(DEFAULT.n_machines) for d in range(DEFAULT.n_days) for b in day_batches(DEFAULT, m, d, "x")]
    pass_rate = np.mean([b.passed for b in batches])
    assert 0.65 <= pass_rate <= 0.88
    p = quality_pass_probability(health=0.9, spindle_speed=2000.0, torque=46.0)
    assert isinstance(p, float) and 0.0 < p < 1.0
    healths = np.array([1.0, 0.7, 0.4, 0.1])
    curve = quality_pass_probability(healths, 2000.0, 46.0)
    assert np.all(np.diff(curve) < 0)
    assert quality_pass_probability(0.9, 2000.0, 90.0) < quality_pass_probability(0.9, 2000.0, 46.0)


def test_every_class_present_at_default_counts():
    n_images = DEFAULT.images_per_machine_day * DEFAULT.n_machines * DEFAULT.n_days
    labels = sample_image_labels(stream(DEFAULT.seed, "test"), n_images)
    shares = {c: labels.count(c) / n_images for c in IMAGE_CLASSES}
    assert 0.33 <= shares["none"] <= 0.47
    assert all(0.08 <= shares[c] <= 0.16 for c in IMAGE_CLASSES[1:])

    logs = [
        x
        for m in range(DEFAULT.n_machines)
        for d in range(DEFAULT.n_days)
        for x in day_logs(DEFAULT, m, d, f"M{m + 1:02d}")
    ]
    categories = {x.label for x in logs}
    assert categories == set(TEXT_CATEGORIES)
    assert abs(np.mean([x.labeled for x in logs]) - DEFAULT.text_label_fraction) < 0.06


def test_image_classes_differ_in_shape_not_mean():
    means = {c: [render_image(c, stream(1, c, i), 64).mean() for i in range(12)] for c in IMAGE_CLASSES}
    spread = np.mean([np.std(v) for v in means.values()])
    for c in IMAGE_CLASSES[1:]:
        assert abs(np.mean(means[c]) - np.mean(means["none"])) < spread  # not separable by mean
    img = render_image("scratch", stream(1, "s"), 64)
    assert img.dtype == np.uint8 and img.shape == (64, 64)


def test_text_with_commas_round_trips(tiny_landing):
    root, _ = tiny_landing
    for path in sorted((root / "text").rglob("*.csv")):
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        assert all(len(r) == 4 for r in rows), path
        assert all(ISO_Z.match(r[0]) for r in rows[1:])
