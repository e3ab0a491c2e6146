"""Reports + timings -> the benchmark summary (a JSON-able dict): statistics over seeds, each
target met or missed with its reason, pretrained vs scratch, our numbers beside the anchors.
Pure: it runs no model; every number comes from the task reports it is given."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

from benchmarks.public.catalogue import (ANCHORS, LOW_FRACTION, MIN_SEEDS, MODEL_ORDER, OUR_MODELS, PROTOCOL_NOTES,
                                         PUBLIC_TASKS, SCRATCH_TARGET_ID, SCRATCH_TARGET_TEXT, TARGETS)
from mfg_pipeline.tasks.reports import aggregate, paired_row

# ---------------------------------------------------------------------------------------------
# Statistics over seeds
# ---------------------------------------------------------------------------------------------

def _fkey(fraction: Any) -> float:
    return round(float(fraction), 6)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def seed_rows(report: dict[str, Any], metric: str | None = None) -> list[dict[str, Any]]:
    """One row per (model, fraction, seed): the mean over that seed's rows (the 12 load pairs of a
    cross-load task; a single row elsewhere). ``metric``: a secondary metric instead of ``value``."""
    groups: dict[tuple[str, float, Any], list[float]] = defaultdict(list)
    for row in report.get("results", []):
        value = row.get("value") if metric is None else (row.get("metrics") or {}).get(metric)
        if value is None:
            continue
        groups[(row["model"], _fkey(row["label_fraction"]), row.get("seed"))].append(float(value))
    out = []
    for (model, fraction, seed), values in groups.items():
        finite = [v for v in values if math.isfinite(v)]
        out.append({"model": model, "label_fraction": fraction, "seed": seed,
                    "value": sum(finite) / len(finite) if finite else float("nan"), "n_rows": len(values)})
    return out


def seed_stats(report: dict[str, Any], metric: str | None = None) -> dict[str, dict[float, dict[str, Any]]]:
    """model -> fraction -> {mean, std, min, max, n (seeds), seeds}: spread over SEEDS (population
    std, as in the per-task tables; ``reports.aggregate`` over the per-seed means)."""
    rows = seed_rows(report, metric)
    stats = aggregate({"results": rows}) if rows else {}
    seeds: dict[tuple[str, float], set] = defaultdict(set)
    for row in rows:
        seeds[(row["model"], row["label_fraction"])].add(row["seed"])
    out: dict[str, dict[float, dict[str, Any]]] = {}
    for model, by_fraction in stats.items():
        out[model] = {}
        for fraction, s in by_fraction.items():
            key = _fkey(fraction)
            out[model][key] = {**s, "n": len(seeds[(model, key)]),
                               "seeds": sorted(seeds[(model, key)], key=lambda x: (str(type(x)), x))}
    return out


def secondary_metrics(report: dict[str, Any]) -> list[str]:
    """The names in the rows' ``metrics`` other than the primary one (in first-seen order)."""
    names: dict[str, None] = {}
    for row in report.get("results", []):
        for name in row.get("metrics") or {}:
            if name != report.get("metric"):
                names[name] = None
    return list(names)


def pair_table(report: dict[str, Any]) -> dict[str, Any]:
    """Cross-load rows: model -> fraction -> "s->t" -> {mean, n} over seeds; plus the pairs seen."""
    groups: dict[tuple[str, float, int, int], list[float]] = defaultdict(list)
    for row in report.get("results", []):
        if "source_load" not in row or "target_load" not in row:
            continue
        groups[(row["model"], _fkey(row["label_fraction"]), int(row["source_load"]), int(row["target_load"]))].append(
            float(row["value"]))
    table: dict[str, dict[float, dict[str, dict[str, float]]]] = defaultdict(lambda: defaultdict(dict))
    pairs = set()
    for (model, fraction, source, target), values in sorted(groups.items()):
        finite = [v for v in values if math.isfinite(v)]
        table[model][fraction][f"{source}->{target}"] = {
            "mean": sum(finite) / len(finite) if finite else float("nan"), "n": len(values)}
        pairs.add((source, target))
    return {"pairs": [f"{s}->{t}" for s, t in sorted(pairs)],
            "by_model": {m: {f: dict(v) for f, v in by_f.items()} for m, by_f in table.items()}}


def _compare(value: float, op: str, threshold: float) -> bool:
    return {"<=": value <= threshold, ">=": value >= threshold, "<": value < threshold, ">": value > threshold}[op]


# ---------------------------------------------------------------------------------------------
# Targets and comparisons
# ---------------------------------------------------------------------------------------------

def evaluate_target(target: dict[str, Any], report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per model of ours in the report: status met / missed / missing, with the reason."""
    base = {"id": target["id"], "text": target["text"], "task": target["task"], "fraction": target["fraction"],
            "op": target["op"], "threshold": target["threshold"], "stretch": bool(target.get("stretch"))}
    if report is None:
        return [{**base, "model": None, "status": "missing", "met": False, "value": None, "n_seeds": 0,
                 "reason": "no metrics.json for this task"}]
    stats = seed_stats(report)
    models = [m for m in OUR_MODELS if m in stats]
    if not models:
        return [{**base, "model": None, "status": "missing", "met": False, "value": None, "n_seeds": 0,
                 "reason": f"the report has no {' / '.join(OUR_MODELS)} rows"}]
    fraction = _fkey(target["fraction"])
    pairs = pair_table(report) if target.get("pairs") else None
    out = []
    for model in models:
        s = stats[model].get(fraction)
        row = {**base, "model": model, "value": None, "n_seeds": 0, "std": None, "min": None, "max": None}
        if s is None or not _finite(s["mean"]):
            out.append({**row, "status": "missing", "met": False,
                        "reason": f"no {model} result at label fraction {target['fraction']:g}"})
            continue
        row.update(value=s["mean"], n_seeds=s["n"], std=s["std"], min=s["min"], max=s["max"])
        threshold = target["threshold"]
        if threshold == "baseline":
            b = stats.get("baseline", {}).get(fraction)
            if b is None or not _finite(b["mean"]):
                out.append({**row, "status": "missing", "met": False, "baseline": None,
                            "reason": f"no baseline result at label fraction {target['fraction']:g}"})
                continue
            threshold = b["mean"]
            row["baseline"] = threshold
        reasons = []
        ok = _compare(s["mean"], target["op"], threshold)
        if not ok:
            reasons.append(f"{s['mean']:.4g} is not {target['op']} {threshold:.4g}")
        if s["n"] < MIN_SEEDS:
            ok = False
            reasons.append(f"only {s['n']} seed(s); the target is a mean over >= {MIN_SEEDS}")
        if pairs is not None:
            n_pairs = len(pairs["by_model"].get(model, {}).get(fraction, {}))
            row["n_pairs"] = n_pairs
            if n_pairs < target["pairs"]:
                ok = False
                reasons.append(f"only {n_pairs} of {target['pairs']} load pairs")
        out.append({**row, "status": "met" if ok else "missed", "met": ok, "reason": "; ".join(reasons)})
    return out


def scratch_comparisons(reports: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Pretrained (and universal) vs the scratch twin at every label fraction <= 10 %, per task:
    means over seeds, and on how many seeds (same labelled subset) the model wins."""
    out = []
    for task, report in reports.items():
        if report is None:
            continue
        hib = bool(report["higher_is_better"])
        stats = seed_stats(report)
        per_seed = defaultdict(dict)
        for row in seed_rows(report):
            per_seed[(row["model"], row["label_fraction"])][row["seed"]] = row["value"]
        for model in OUR_MODELS:
            for fraction in sorted(stats.get(model, {})):
                if fraction > LOW_FRACTION + 1e-9:
                    continue
                ours, scratch = stats[model][fraction], stats.get("scratch", {}).get(fraction)
                row = {"task": task, "model": model, "fraction": fraction, "metric": report["metric"],
                       "higher_is_better": hib, "value": ours["mean"], "n_seeds": ours["n"],
                       "scratch": None, "beats": None, "gain": None, "seed_wins": None, "seeds_compared": 0}
                if scratch is not None and _finite(ours["mean"]) and _finite(scratch["mean"]):
                    gain = (ours["mean"] - scratch["mean"]) * (1 if hib else -1)
                    a, b = per_seed[(model, fraction)], per_seed[("scratch", fraction)]
                    common = [s for s in a if s in b and math.isfinite(a[s]) and math.isfinite(b[s])]
                    wins = sum(1 for s in common if (a[s] > b[s] if hib else a[s] < b[s]))
                    row.update(scratch=scratch["mean"], beats=gain > 0, gain=gain, seed_wins=wins,
                               seeds_compared=len(common))
                    row.update(paired_gain(report, model, fraction))
                out.append(row)
    return out


def paired_gain(report: dict[str, Any], model: str, fraction: float) -> dict[str, Any]:
    """The paired interval of ``model``'s gain over scratch (better = +), from the report's
    scratch-minus-``model`` differences (``tasks/paired.py``)."""
    p = paired_row(report, "scratch", model, fraction)
    if p is None:
        return {}
    flip = -1.0 if report["higher_is_better"] else 1.0
    low, high = sorted((flip * p["low"], flip * p["high"]))
    return {"gain_low": low, "gain_high": high, "gain_share": p["reference_better_share"],
            "paired_unit": p["unit"], "paired_units": p["n_units"]}


def scratch_target(reports: dict[str, dict[str, Any] | None], comparisons: list[dict[str, Any]]) -> dict[str, Any]:
    """The pretrained model (not universal) must beat scratch at every fraction <= 10 % of every task
    that has such fractions; a task without a report cannot be counted as a win."""
    mine = [c for c in comparisons if c["model"] == "pretrained"]
    reasons = []
    missing = [t for t, r in reports.items() if r is None]
    if missing:
        reasons.append("not measured (no report): " + ", ".join(missing))
    losses = [c for c in mine if c["beats"] is not True]
    for c in losses:
        reasons.append(f"{c['task']} at {c['fraction']:g}: " + ("no scratch result" if c["beats"] is None else
                       f"pretrained {c['value']:.4g} vs scratch {c['scratch']:.4g}"))
    few = [c for c in mine if c["beats"] is True and c["n_seeds"] < MIN_SEEDS]
    for c in few:
        reasons.append(f"{c['task']} at {c['fraction']:g}: only {c['n_seeds']} seed(s)")
    if not mine and not missing:
        reasons.append("no comparison at a fraction <= 10 %")
    met = not reasons
    status = "met" if met else ("missing" if not mine and missing and not losses else "missed")
    return {"id": SCRATCH_TARGET_ID, "text": SCRATCH_TARGET_TEXT, "task": None, "model": "pretrained", "status": status, "met": met,
            "n_comparisons": len(mine), "n_wins": sum(1 for c in mine if c["beats"] is True),
            "reason": "; ".join(reasons)}


# ---------------------------------------------------------------------------------------------
# The summary
# ---------------------------------------------------------------------------------------------

def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf -> None, float keys -> strings, tuples -> lists."""
    if isinstance(obj, dict):
        return {(f"{k:g}" if isinstance(k, float) else k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def task_summary(task: str, report: dict[str, Any] | None, info: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = PUBLIC_TASKS.get(task, {})
    info = info or {}
    base = {"task": task, "plant": spec.get("plant"), "dataset": spec.get("dataset"),
            "notes": list(PROTOCOL_NOTES.get(task, [])), "curve": info.get("curve", f"{task}/label_efficiency.png"),
            "metrics_json": info.get("metrics_json", f"{task}/metrics.json"), "fresh": info.get("fresh")}
    if report is None:
        return {**base, "status": "missing"}
    extra = {name: seed_stats(report, name) for name in secondary_metrics(report)}
    out = {**base, "status": "present", "metric": report["metric"], "higher_is_better": bool(report["higher_is_better"]),
           "modality": report.get("modality"), "kind": report.get("kind"), "split": report.get("split"),
           "protocol": report.get("protocol"), "n_train": report.get("n_train"), "n_test": report.get("n_test"),
           "label_fractions": report.get("label_fractions"), "seeds": report.get("seeds"),
           "runtime": report.get("runtime"), "timings_s": report.get("timings_s", {}),
           "stats": seed_stats(report), "secondary": extra, "reference": report.get("reference"),
           "paired_differences": report.get("paired_differences") or []}
    if any("source_load" in r for r in report.get("results", [])):
        out["pairs"] = pair_table(report)
    return out


def _our_value(tasks: dict[str, Any], task: str, fraction: float = 1.0, model: str = "pretrained",
               metric: str | None = None) -> float | None:
    t = tasks.get(task)
    if not t or t["status"] != "present":
        return None
    stats = t["stats"] if metric is None else t["secondary"].get(metric, {})
    s = stats.get(model, {}).get(_fkey(fraction))
    return s["mean"] if s and _finite(s["mean"]) else None


def anchor_rows(tasks: dict[str, Any]) -> list[dict[str, Any]]:
    """Our means (all labels) beside each published figure."""
    rows = []
    for task, spec in PUBLIC_TASKS.items():
        if task not in tasks:
            continue
        anchor = ANCHORS[spec["anchor"]]
        ours = {m: _our_value(tasks, task, 1.0, m) for m in MODEL_ORDER}
        if spec["anchor"] == "cmapss":
            subset = spec["subset"]
            ours_score = {m: _our_value(tasks, task, 1.0, m, "phm08") for m in MODEL_ORDER}
            for name, by_subset in anchor["models"].items():
                cell = by_subset.get(subset)
                if cell:
                    rows.append({"task": task, "anchor": name, "metric": "rmse", "value": cell["rmse"],
                                 "score": cell.get("score"), "approx": bool(cell.get("approx")), "ours": ours,
                                 "ours_score": ours_score})
        elif anchor["models"]:
            for name, cell in anchor["models"].items():
                rows.append({"task": task, "anchor": name, "metric": "accuracy", "value": cell["accuracy"],
                             "score": None, "approx": bool(cell.get("approx")), "ours": ours})
        else:
            rows.append({"task": task, "anchor": None, "metric": tasks[task].get("metric"), "value": None,
                         "score": None, "approx": False, "ours": ours, "note": anchor["note"]})
        reference = tasks[task].get("reference")
        if reference:  # computed on the same test split by the dataset (e.g. AI4I's failure rules)
            rows.append({"task": task, "anchor": f"reference (not a model): {reference['name']} ({reference['note']})",
                         "metric": reference["metric"], "value": reference["value"], "score": None, "approx": False,
                         "ours": ours})
    return rows


def dataset_times(timings: dict[str, Any]) -> dict[str, dict[str, float]]:
    """plant -> data-half step seconds (sum over its steps of all partition runs), model-half wall
    (its own run), and the two added."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"data_steps_s": 0.0, "model_wall_s": 0.0})
    for step in timings.get("dagster_steps", []):
        if step.get("phase") == "public data half" and step.get("plant"):
            out[step["plant"]]["data_steps_s"] += float(step.get("seconds") or 0.0)
    for plant, seconds in timings.get("model_runs_s", {}).items():
        out[plant]["model_wall_s"] += float(seconds)
    return {p: {**v, "total_s": v["data_steps_s"] + v["model_wall_s"]} for p, v in out.items()}


def build_summary(reports: dict[str, dict[str, Any] | None], timings: dict[str, Any] | None = None,
                  meta: dict[str, Any] | None = None, infos: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the two summary files say. ``reports``: task -> loaded metrics.json or None
    (missing); ``timings``: {"steps": [...], "dagster_steps": [...], "model_runs_s": {plant: s},
    "total_s"}; ``infos``: task -> {"curve", "metrics_json" (paths relative to the reports dir),
    "fresh"}."""
    timings = timings or {}
    infos = infos or {}
    tasks = {t: task_summary(t, r, infos.get(t)) for t, r in reports.items()}
    present = {t: r for t, r in reports.items() if r is not None}
    targets = [row for target in TARGETS if target["task"] in reports
               for row in evaluate_target(target, reports[target["task"]])]
    comparisons = scratch_comparisons(reports)
    targets.append(scratch_target(reports, comparisons))
    warnings = []
    fd001 = _our_value(tasks, "cmapss_fd001_rul")
    if fd001 is not None and fd001 < ANCHORS["cmapss"]["leakage_rmse_fd001"]:
        warnings.append(f"FD001 RMSE {fd001:.2f} is below ~{ANCHORS['cmapss']['leakage_rmse_fd001']:g}: almost always "
                        "leakage; check the split before quoting it")
    stale = [t for t, info in infos.items() if info.get("fresh") is False and reports.get(t) is not None]
    if stale:
        warnings.append("reports from an EARLIER run (not rewritten by this one): " + ", ".join(stale))
    devices = sorted({json.dumps(r.get("runtime"), sort_keys=True) for r in present.values() if r.get("runtime")})
    return _clean({
        "generated": (meta or {}).get("generated"),
        "meta": meta or {},
        "device": {"reports": [json.loads(d) for d in devices], **(meta or {}).get("device", {})},
        "tasks": tasks,
        "missing": [t for t, r in reports.items() if r is None],
        "targets": targets,
        "n_targets_met": sum(1 for t in targets if t["met"]),
        "n_targets": len(targets),
        "scratch_comparisons": comparisons,
        "anchors": ANCHORS,
        "anchor_rows": anchor_rows(tasks),
        "timings": {**timings, "datasets": dataset_times(timings)},
        "warnings": warnings,
    })
