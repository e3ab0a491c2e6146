"""The public benchmark's summary and report files on small synthetic metrics.json dicts (no model runs)."""

import json
import math
import os
from pathlib import Path

import pytest

from benchmarks.public.catalogue import ANCHORS, PUBLIC_TASKS, SCRATCH_TARGET_ID
from benchmarks.public.markdown import render_markdown
from benchmarks.public.outputs import carried_timings, load_reports, merge_earlier_timings, write_outputs
from benchmarks.public.summary import build_summary, dataset_times, paired_gain


def _report(task, metric, higher_is_better, values, extra=None, **fields):
    """``values``: {(model, fraction): [value per seed]}; ``extra``: {(model, fraction): {name: [per seed]}}."""
    results = []
    for (model, fraction), vals in values.items():
        for seed, v in enumerate(vals):
            metrics = {metric: v}
            for name, per_seed in (extra or {}).get((model, fraction), {}).items():
                metrics[name] = per_seed[seed]
            results.append({"model": model, "label_fraction": fraction, "seed": seed, "value": v, "metrics": metrics,
                            "n_labeled": 10, "wall_s": 1.0})
    fractions = sorted({f for _, f in values})
    return {"task": task, "modality": "sensor", "dataset": "d", "kind": "regression" if metric == "rmse" else "classification",
            "metric": metric, "higher_is_better": higher_is_better, "split": "test: by engine", "n_train": 100,
            "n_test": 50, "label_fractions": fractions, "seeds": [0, 1, 2], "timings_s": {"total": 12.0},
            "runtime": {"device": "cpu", "precision": "fp32", "num_threads": 1, "cpu_capability": "AVX2"},
            "results": results, **fields}


def _fd001(pre_all=(12.0, 12.2, 12.4), pre_10=(14.0, 15.0, 16.0), scratch_10=(18.0, 19.0, 20.0)):
    return _report("cmapss_fd001_rul", "rmse", False, {
        ("pretrained", 1.0): list(pre_all), ("pretrained", 0.1): list(pre_10), ("pretrained", 0.05): [20.0, 21.0, 22.0],
        ("scratch", 1.0): [13.0, 13.0, 13.0], ("scratch", 0.1): list(scratch_10), ("scratch", 0.05): [19.0, 20.0, 21.0],
        ("baseline", 1.0): [15.0, 15.5, 16.0],
    }, extra={("pretrained", 1.0): {"phm08": [250.0, 260.0, 270.0]}}, protocol="RUL cap 125")


def _cross_load(n_pairs=12, offset=0.0):
    pairs = [(s, t) for s in range(4) for t in range(4) if s != t][:n_pairs]
    results = []
    for model, base in (("pretrained", 0.95), ("scratch", 0.80), ("baseline", 0.85)):
        for seed in range(3):
            for i, (s, t) in enumerate(pairs):
                v = base + offset + 0.01 * seed + (0.02 if i == 0 else 0.0)
                results.append({"model": model, "label_fraction": 1.0, "seed": seed, "value": v,
                                "metrics": {"accuracy": v}, "source_load": s, "target_load": t})
    return {"task": "cwru_cross_load", "modality": "sensor", "metric": "accuracy", "higher_is_better": True,
            "split": "train one load, test another", "n_train": 400, "n_test": 400, "label_fractions": [1.0],
            "seeds": [0, 1, 2], "runtime": {"device": "cpu", "precision": "fp32"}, "results": results}


def _targets(summary, target_id):
    return [t for t in summary["targets"] if t["id"] == target_id]


def test_fd001_targets_met_missed_and_spread_over_seeds():
    summary = build_summary({"cmapss_fd001_rul": _fd001()})
    [all_labels] = _targets(summary, "fd001_rmse_all")
    assert all_labels["status"] == "met" and all_labels["model"] == "pretrained"
    assert all_labels["value"] == pytest.approx(12.2) and all_labels["n_seeds"] == 3
    [stretch] = _targets(summary, "fd001_rmse_all_stretch")
    assert stretch["status"] == "missed" and stretch["met"] is False and "is not <= 11.5" in stretch["reason"]
    [ten] = _targets(summary, "fd001_rmse_10pct")
    assert ten["status"] == "met" and ten["value"] == pytest.approx(15.0)  # <= 15.0 holds at equality
    assert ten["std"] == pytest.approx(math.sqrt(2 / 3)) and ten["min"] == 14.0 and ten["max"] == 16.0

    stats = summary["tasks"]["cmapss_fd001_rul"]["stats"]
    assert stats["pretrained"]["0.1"]["mean"] == pytest.approx(15.0)
    assert stats["pretrained"]["0.1"]["seeds"] == [0, 1, 2]
    assert summary["tasks"]["cmapss_fd001_rul"]["secondary"]["phm08"]["pretrained"]["1"]["mean"] == pytest.approx(260.0)

    md = render_markdown(summary)
    assert "15.00 ± 0.82" in md and "14.00–16.00" in md  # mean ± std and min–max over seeds
    assert "12.20 ± 0.16" in md and "12.00–12.40" in md
    assert "**MISSED**" in md and "(stretch)" in md
    assert "![cmapss_fd001_rul label efficiency](cmapss_fd001_rul/label_efficiency.png)" in md
    assert "RUL cap 125" in md and "last cycle of each test engine" in md


def test_fewer_than_three_seeds_is_a_miss():
    report = _fd001()
    report["results"] = [r for r in report["results"] if r["seed"] < 2]
    [row] = _targets(build_summary({"cmapss_fd001_rul": report}), "fd001_rmse_all")
    assert row["value"] == pytest.approx(12.1) and row["n_seeds"] == 2
    assert row["status"] == "missed" and "only 2 seed(s)" in row["reason"]


def test_pretrained_vs_scratch_at_low_fractions_lists_each_comparison():
    report = _fd001()
    # scratch minus pretrained RMSE at 10 %, over the test engines: a gain of 1.5 to 6.5 cycles
    report["paired_differences"] = [{"model": "scratch", "versus": "pretrained", "label_fraction": 0.1,
                                     "difference": 4.0, "low": 1.5, "high": 6.5, "reference_better_share": 0.99,
                                     "level": 0.95, "unit": "unit", "n_units": 100, "draws": 2000}]
    summary = build_summary({"cmapss_fd001_rul": report})
    comps = {(c["model"], c["fraction"]): c for c in summary["scratch_comparisons"]}
    assert set(comps) == {("pretrained", 0.05), ("pretrained", 0.1)}  # 1.0 is not a low fraction
    assert comps[("pretrained", 0.1)]["beats"] is True and comps[("pretrained", 0.1)]["gain"] == pytest.approx(4.0)
    assert comps[("pretrained", 0.1)]["seed_wins"] == 3
    lost = comps[("pretrained", 0.05)]
    assert lost["beats"] is False and lost["gain"] == pytest.approx(-1.0) and lost["seed_wins"] == 0
    [target] = _targets(summary, SCRATCH_TARGET_ID)
    assert target["status"] == "missed" and target["n_wins"] == 1 and target["n_comparisons"] == 2
    assert "cmapss_fd001_rul at 0.05: pretrained 21 vs scratch 20" in target["reason"]
    md = render_markdown(summary)
    assert "| cmapss_fd001_rul | pretrained | 0.05 | 21.00 | 20.00 | -1.00 | — | 0/3 | **NO** |" in md
    assert "| cmapss_fd001_rul | pretrained | 0.1 | 15.00 | 19.00 | 4.00 | 1.50 to 6.50 (100 engines) | 3/3 | yes |" in md
    assert "| 0.1 | scratch | +4.00 | +1.50 to +6.50 | 99% |" in md  # the task's own table
    assert "over the test set's 100 engines" in md


def test_the_paired_gain_over_scratch_is_signed_better_is_plus_for_either_direction():
    paired = {"model": "scratch", "versus": "pretrained", "label_fraction": 0.05, "difference": -0.04,
              "low": -0.07, "high": 0.01, "reference_better_share": 0.9, "unit": "text", "n_units": 600}
    higher = {"higher_is_better": True, "paired_differences": [paired]}
    assert paired_gain(higher, "pretrained", 0.05) == {"gain_low": pytest.approx(-0.01), "gain_high": pytest.approx(0.07),
                                                       "gain_share": 0.9, "paired_unit": "text", "paired_units": 600}
    lower = {**higher, "higher_is_better": False}
    assert (paired_gain(lower, "pretrained", 0.05)["gain_low"], paired_gain(lower, "pretrained", 0.05)["gain_high"]) \
        == (pytest.approx(-0.07), pytest.approx(0.01))
    assert paired_gain(higher, "universal", 0.05) == {} and paired_gain(higher, "pretrained", 0.1) == {}
    versus_universal = {**paired, "versus": "universal", "low": -0.02, "high": 0.03}
    both = {**higher, "paired_differences": [paired, versus_universal]}
    assert (paired_gain(both, "universal", 0.05)["gain_low"], paired_gain(both, "universal", 0.05)["gain_high"]) \
        == (pytest.approx(-0.03), pytest.approx(0.02))
    assert paired_gain(both, "pretrained", 0.05)["gain_low"] == pytest.approx(-0.01)


def test_missing_task_is_reported_missing():
    summary = build_summary({"cmapss_fd001_rul": _fd001(), "neu_surface_defect": None})
    assert summary["missing"] == ["neu_surface_defect"]
    assert summary["tasks"]["neu_surface_defect"]["status"] == "missing"
    neu = [t for t in summary["targets"] if t["task"] == "neu_surface_defect"]
    assert {t["id"] for t in neu} == {"neu_acc_all", "neu_acc_5pct"}
    assert all(t["status"] == "missing" and t["met"] is False for t in neu)
    [scratch] = _targets(summary, SCRATCH_TARGET_ID)
    assert scratch["met"] is False and "not measured (no report): neu_surface_defect" in scratch["reason"]
    md = render_markdown(summary)
    assert "**Missing** (no metrics.json, so nothing is claimed for them): neu_surface_defect." in md
    assert "**Missing**: no `neu_surface_defect/metrics.json`" in md
    assert md.count("**MISSING**") == 2


def test_cross_load_pair_table_and_target():
    summary = build_summary({"cwru_cross_load": _cross_load()})
    task = summary["tasks"]["cwru_cross_load"]
    pairs = task["pairs"]
    assert len(pairs["pairs"]) == 12 and pairs["pairs"][0] == "0->1"
    # 0->1 carries +0.02; mean over seeds 0, 1, 2 adds 0.01.
    assert pairs["by_model"]["pretrained"]["1"]["0->1"]["mean"] == pytest.approx(0.98)
    assert pairs["by_model"]["pretrained"]["1"]["2->3"]["mean"] == pytest.approx(0.96)
    # Spread over SEEDS of the per-seed mean over the 12 pairs.
    s = task["stats"]["pretrained"]["1"]
    per_seed = [0.95 + 0.01 * k + 0.02 / 12 for k in range(3)]
    assert s["n"] == 3 and s["mean"] == pytest.approx(sum(per_seed) / 3)
    assert s["min"] == pytest.approx(per_seed[0]) and s["max"] == pytest.approx(per_seed[2])
    [row] = _targets(summary, "cwru_cross_load")
    assert row["status"] == "met" and row["n_pairs"] == 12  # 0.9617 >= 0.96
    md = render_markdown(summary)
    assert "| 0->1 | 0.9800 | 0.8300 | 0.8800 |" in md
    assert "UNLABELED in self-supervised pretraining" in md  # the transductive use of target signals is stated

    low = build_summary({"cwru_cross_load": _cross_load(offset=-0.02)})
    [row] = _targets(low, "cwru_cross_load")
    assert row["status"] == "missed" and row["value"] == pytest.approx(sum(per_seed) / 3 - 0.02)

    partial = build_summary({"cwru_cross_load": _cross_load(n_pairs=11)})
    [row] = _targets(partial, "cwru_cross_load")
    assert row["status"] == "missed" and "only 11 of 12 load pairs" in row["reason"]


def test_excavator_against_the_baseline_and_universal_judged_separately():
    report = _report("excavator_major_system", "macro_f1", True, {
        ("pretrained", 1.0): [0.80, 0.78, 0.79], ("pretrained", 0.1): [0.60, 0.62, 0.61],
        ("baseline", 1.0): [0.77, 0.77, 0.77], ("baseline", 0.1): [0.65, 0.65, 0.65],
        ("scratch", 0.1): [0.40, 0.41, 0.42]})
    summary = build_summary({"excavator_major_system": report})
    [f1] = _targets(summary, "excavator_f1_all")
    assert f1["status"] == "met" and f1["value"] == pytest.approx(0.79)
    [b100] = _targets(summary, "excavator_vs_baseline_all")
    assert b100["status"] == "met" and b100["baseline"] == pytest.approx(0.77)
    [b10] = _targets(summary, "excavator_vs_baseline_10pct")
    assert b10["status"] == "missed" and b10["value"] == pytest.approx(0.61)
    [scratch] = _targets(summary, SCRATCH_TARGET_ID)
    assert scratch["status"] == "met" and scratch["n_wins"] == 1

    sensor = _report("ai4i_machine_failure", "f1", True, {
        ("pretrained", 1.0): [0.80, 0.81, 0.82], ("universal", 1.0): [0.86, 0.87, 0.88]},
        extra={("pretrained", 1.0): {"auroc": [0.95, 0.96, 0.97], "pr_auc": [0.7, 0.7, 0.7]}})
    rows = {t["model"]: t for t in _targets(build_summary({"ai4i_machine_failure": sensor}), "ai4i_f1_all")}
    assert rows["pretrained"]["status"] == "missed" and rows["universal"]["status"] == "met"


def test_anchors_beside_our_numbers_and_leakage_warning():
    summary = build_summary({"cmapss_fd001_rul": _fd001(), "neu_surface_defect": None})
    rows = [a for a in summary["anchor_rows"] if a["task"] == "cmapss_fd001_rul"]
    dast = next(a for a in rows if a["anchor"].startswith("DAST"))
    assert dast["value"] == 11.43 and dast["score"] == 203 and dast["approx"] is True
    assert dast["ours"]["pretrained"] == pytest.approx(12.2) and dast["ours_score"]["pretrained"] == pytest.approx(260.0)
    assert {a["anchor"] for a in rows} == set(ANCHORS["cmapss"]["models"])
    md = render_markdown(summary)
    assert "| cmapss_fd001_rul | DAST transformer (2022) | ~11.43 / score 203 | 12.20 / score 260 |" in md
    assert not summary["warnings"]
    leaky = build_summary({"cmapss_fd001_rul": _fd001(pre_all=(8.0, 8.1, 8.2))})
    assert any("leakage" in w for w in leaky["warnings"])


def test_a_reference_on_the_test_split_is_shown_beside_the_anchors():
    reference = {"name": "the failure rules", "note": "not learnt", "metric": "f1", "value": 0.889}
    ai4i = _report("ai4i_machine_failure", "f1", True, {("pretrained", 1.0): [0.78, 0.79, 0.80]}, reference=reference)
    rows = [a for a in build_summary({"ai4i_machine_failure": ai4i})["anchor_rows"] if a["task"] == "ai4i_machine_failure"]
    assert [a["value"] for a in rows] == [None, 0.889]
    assert rows[1]["anchor"] == "reference (not a model): the failure rules (not learnt)"
    assert rows[1]["ours"]["pretrained"] == pytest.approx(0.79)
    md = render_markdown(build_summary({"ai4i_machine_failure": ai4i}))
    assert "| ai4i_machine_failure | reference (not a model): the failure rules (not learnt) | 0.8890 | 0.7900 |" in md


def test_timings_per_step_and_dataset_and_files(tmp_path):
    from mfg_pipeline.storage import atomic

    timings = {"steps": [{"name": "public data half", "wall_s": 280.0, "status": "ok", "note": "7 days"}],
               "dagster_steps": [
                   {"phase": "public data half", "step_key": "cwru__raw_sensor_readings", "asset": "cwru/raw_sensor_readings",
                    "plant": "cwru", "seconds": 30.0, "runs": 7, "status": "SUCCESS"},
                   {"phase": "public data half", "step_key": "cwru__sensor_corpus", "asset": "cwru/sensor_corpus",
                    "plant": "cwru", "seconds": 5.5, "runs": 1, "status": "SUCCESS"},
                   {"phase": "model half: cwru", "step_key": "cwru__sensor_backbone", "asset": "cwru/sensor_backbone",
                    "plant": "cwru", "seconds": 100.0, "runs": 1, "status": "SUCCESS"}],
               "model_runs_s": {"cwru": 150.0}, "total_s": 430.0}
    meta = {"command": "python -m benchmarks.public_benchmark --only cwru",
            "device": {"cpu": "Some CPU", "cpus": 2, "cuda_available": False}}
    summary = build_summary({"cwru_cross_load": _cross_load(), "cwru_within_load": None}, timings, meta,
                              {"cwru_cross_load": {"curve": "cwru/cwru_cross_load/label_efficiency.png",
                                                   "metrics_json": "cwru/cwru_cross_load/metrics.json", "fresh": True}})
    assert summary["timings"]["datasets"]["cwru"] == {"data_steps_s": 35.5, "model_wall_s": 150.0, "total_s": 185.5}
    md = render_markdown(summary)
    assert "| cwru | 35.5 s | 150.0 s | 185.5 s |" in md
    assert "| public data half | cwru/raw_sensor_readings | 30.0 | 7 | SUCCESS |" in md
    assert "| **total** | **430.0 s** | | |" in md
    assert "](cwru/cwru_cross_load/label_efficiency.png)" in md
    assert "cpu Some CPU" in md and "cpus 2" in md and "device cpu" in md

    md_path, json_path = write_outputs(tmp_path, summary)
    loaded = atomic.read_json(json_path)
    assert loaded["tasks"]["cwru_cross_load"]["stats"]["pretrained"]["1"]["n"] == 3
    assert loaded["missing"] == ["cwru_within_load"]
    assert md_path.read_text(encoding="utf-8") == md
    json.loads(json_path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def test_load_reports_reads_each_tasks_report_folder(tmp_path):
    from mfg_pipeline.storage import atomic

    atomic.write_json(tmp_path / "cmapss_fd001_rul" / "metrics.json", _fd001())
    (tmp_path / "cmapss_fd001_rul" / "label_efficiency.png").write_bytes(b"png")
    atomic.write_json(tmp_path / "neu_surface_defect" / "metrics.json", {"task": "neu_surface_defect"})
    reports, infos = load_reports(tmp_path, ["cmapss_fd001_rul", "neu_surface_defect", "ai4i_machine_failure"],
                                    since=0.0)
    assert reports["cmapss_fd001_rul"]["task"] == "cmapss_fd001_rul" and reports["ai4i_machine_failure"] is None
    assert infos["cmapss_fd001_rul"]["curve"] == "cmapss_fd001_rul/label_efficiency.png"
    assert infos["cmapss_fd001_rul"]["fresh"] is True
    assert infos["neu_surface_defect"]["curve"] is None  # no PNG: no link
    # the folder the benchmark reads is the one the evaluation asset writes
    from mfg_pipeline.assets.evaluation import report_path
    from mfg_pipeline.tasks.registry import get_task

    assert all(report_path(get_task(t), PUBLIC_TASKS[t]["plant"]) == t for t in PUBLIC_TASKS)


def test_an_only_run_keeps_the_other_datasets_times_from_the_earlier_report(tmp_path):
    earlier = {"timings": {"model_runs_s": {"neu": 300.0, "cwru": 100.0},
                           "dagster_steps": [{"phase": "public data half", "plant": "neu", "seconds": 20.0},
                                             {"phase": "public data half", "plant": "cwru", "seconds": 10.0}]}}
    path = tmp_path / "public_benchmark.json"
    path.write_text(json.dumps(earlier))
    now = {"model_runs_s": {"cwru": 80.0}, "dagster_steps": [{"phase": "public data half", "plant": "cwru", "seconds": 5.0}]}
    merged = merge_earlier_timings(now, path, {"cwru"})
    times = dataset_times(merged)
    assert times["cwru"] == {"data_steps_s": 5.0, "model_wall_s": 80.0, "total_s": 85.0}  # this run's, not the old
    assert times["neu"]["total_s"] == 320.0  # carried over
    assert all(s.get("earlier_run") for s in merged["dagster_steps"] if s["plant"] == "neu")
    assert merge_earlier_timings(now, tmp_path / "absent.json", {"cwru"}) == now


def test_a_report_only_re_render_keeps_the_earlier_runs_times_and_says_whose_they_are(tmp_path):
    timings = {"steps": [{"name": "model half: neu", "wall_s": 744.0, "status": "SUCCESS"}], "total_s": 2916.0,
               "model_runs_s": {"neu": 744.0}}
    first = write_outputs(tmp_path, build_summary({"cmapss_fd001_rul": _fd001()}, timings,
                                                  {"command": "python -m benchmarks.public_benchmark",
                                                   "generated": "2026-12-06T10:00:00+00:00"}))[1]
    carried = carried_timings(first)
    assert carried["carried_from"] == {"command": "python -m benchmarks.public_benchmark",
                                       "generated": "2026-12-06T10:00:00+00:00"}
    summary = build_summary({"cmapss_fd001_rul": _fd001()}, carried,
                            {"command": "python -m benchmarks.public_benchmark --report-only",
                             "generated": "2026-12-06T11:00:00+00:00"})
    md = render_markdown(summary)
    assert "| model half: neu | 744.0 s | SUCCESS |" in md and "**2916.0 s**" in md
    assert "python -m benchmarks.public_benchmark`, 2026-12-06T10:00:00+00:00): this invocation only re-rendered" in md
    assert summary["timings"]["datasets"]["neu"]["model_wall_s"] == 744.0
    # a second re-render still names the run that measured them, not the first re-render
    second = write_outputs(tmp_path, summary)[1]
    assert carried_timings(second)["carried_from"]["generated"] == "2026-12-06T10:00:00+00:00"
    assert carried_timings(tmp_path / "absent.json") == {}


def test_the_device_record_names_the_cpu_and_its_kernels_instruction_set():
    import torch

    from benchmarks.public.run import KERNEL_SETTINGS, device_info

    info = device_info()
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability() != ""
    assert info["cpus"] >= 1 and info["torch"] == torch.__version__
    assert {k: info[k] for k in KERNEL_SETTINGS} == {k: os.environ.get(k) for k in KERNEL_SETTINGS}
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text(encoding="utf-8").splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    assert info["cpu"] == (names[0] if names else None)


def test_plants_run_longest_first_by_the_last_report_else_by_the_typical_times(tmp_path):
    from benchmarks.public.run import TYPICAL_MODEL_RUN_S, _longest_first
    from mfg_pipeline.profiles import public_plants

    names = [p.name for p in public_plants()]
    assert set(TYPICAL_MODEL_RUN_S) == set(names)  # a new plant needs its typical time
    # a fresh clone: no report yet
    order, how = _longest_first(names, tmp_path / "absent.json")
    assert order[:2] == ["neu", "ai4i"] and order[-1] == "cmapss_fd003" and how == "longest first (typical times)"
    # the last report's times win; a plant it does not know keeps its typical time, one unknown to both goes first
    path = tmp_path / "public_benchmark.json"
    path.write_text(json.dumps({"timings": {"model_runs_s": {"cmapss_fd003": 1700.0, "neu": 100.0}}}))
    order, how = _longest_first(["neu", "cmapss_fd003", "ai4i", "new_plant"], path)
    assert order == ["new_plant", "cmapss_fd003", "ai4i", "neu"] and how == "longest first (last report's times)"
    assert _longest_first(["plant_b", "plant_a"], tmp_path / "absent.json") == (["plant_b", "plant_a"], "in profile order")
