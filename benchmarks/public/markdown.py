"""The benchmark summary -> ``public_benchmark.md`` (pure)."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.public.catalogue import ANCHORS, LOW_FRACTION, MIN_SEEDS, MODEL_ORDER, SCRATCH_TARGET_ID
from mfg_pipeline.tasks.reports import paired_lines, unit_noun


def _fmt(value: Any, metric: str | None = None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if metric in ("rmse", "mae"):
        return f"{value:.2f}"
    if metric == "phm08":
        return f"{value:.0f}"
    return f"{value:.4f}"


def _cell(s: dict[str, Any] | None, metric: str | None) -> tuple[str, str, str]:
    if not s or s.get("mean") is None:
        return "—", "—", "0"
    return (f"{_fmt(s['mean'], metric)} ± {_fmt(s['std'], metric)}",
            f"{_fmt(s['min'], metric)}–{_fmt(s['max'], metric)}", str(s["n"]))


def _threshold_text(row: dict[str, Any], metric: str | None = None) -> str:
    if row["threshold"] == "baseline":
        return f"{row['op']} baseline" + (f" ({_fmt(row.get('baseline'), metric)})" if row.get("baseline") is not None else "")
    return f"{row['op']} {row['threshold']:g}"


def _timing_lines(summary: dict[str, Any]) -> list[str]:
    timings = summary["timings"]
    lines = ["## Wall time", ""]
    device = summary.get("device", {})
    lines.append("Device: " + (", ".join(f"{k} {v}" for k, v in device.items() if k != "reports" and v is not None) or "—")
                 + ("; the evaluation assets report " + "; ".join(
                     ", ".join(f"{k} {v}" for k, v in d.items()) for d in device.get("reports", []))
                    if device.get("reports") else "") + ".")
    lines.append("")
    if timings.get("carried_from"):
        origin = timings["carried_from"]
        lines += [f"These times are those of the run that wrote the earlier report (`{origin.get('command')}`, "
                  f"{origin.get('generated')}): this invocation only re-rendered it and ran nothing.", ""]
    if timings.get("steps"):
        lines += ["| step | wall | status | note |", "|---|---:|---|---|"]
        for s in timings["steps"]:
            lines.append(f"| {s['name']} | {s.get('wall_s', 0):.1f} s | {s.get('status', '—')} | {s.get('note', '')} |")
        if timings.get("total_s") is not None:
            lines.append(f"| **total** | **{timings['total_s']:.1f} s** | | |")
        lines.append("")
    else:
        lines += ["No step ran in this invocation, and no earlier report recorded any.", ""]
    if timings.get("datasets"):
        lines += ["Per dataset: the data half's steps ran inside shared partition runs (one per day, all plants, "
                  "in parallel workers): their seconds are summed over steps; the model half is the plant's own "
                  "run (wall).", "",
                  "| dataset (plant) | data-half steps | model-half run | total |", "|---|---:|---:|---:|"]
        for plant, t in sorted(timings["datasets"].items()):
            lines.append(f"| {plant} | {t['data_steps_s']:.1f} s | {t['model_wall_s']:.1f} s | {t['total_s']:.1f} s |")
        lines.append("")
    steps = timings.get("dagster_steps") or []
    if steps:
        lines += ["Every Dagster step (from the instance's step stats; a partitioned step is summed over its "
                  "partition runs, `runs` says how many):", "",
                  "| phase | step (asset) | seconds | runs | status |", "|---|---|---:|---:|---|"]
        for s in steps:
            lines.append(f"| {s['phase']} | {s['asset'] or s['step_key']} | {s['seconds']:.1f} | {s['runs']} | "
                         f"{s['status']} |")
        lines.append("")
    return lines


def render_markdown(summary: dict[str, Any]) -> str:
    tasks = summary["tasks"]
    meta = summary.get("meta", {})
    lines = ["# Public-data benchmark", "",
             "Our models on the public datasets (the `public` code location: same asset graph code, one plant per "
             "dataset), beside the published anchors of `ANCHORS.md`. `pretrained`: the plant's self-supervised "
             "backbone, finetuned; `universal`: the universal sensor backbone (pretrained on every sensor corpus), "
             "probed (C-MAPSS: a hidden-layer head on its embeddings averaged over the channels, cut to their 8 "
             "leading principal directions over the training windows, and each channel's window level, scale and "
             "trend; CWRU: linear probe, cross-load on its crops at 1, 1/2, 1/4 and 1/8 of "
             "the 12 kHz rate, mean- and max-pooled); "
             "`scratch`: the same architecture from random weights, same budget; `baseline`: a classical model. "
             "Values: mean ± std (population) over seeds and min–max over seeds, on the test split; every number "
             "comes from `data/reports/<task>/metrics.json` written by the evaluation assets.", ""]
    if meta.get("command"):
        lines += [f"Command: `{meta['command']}`" + (f" ({meta['generated']})" if meta.get("generated") else ""), ""]
    for w in summary.get("warnings", []):
        lines += [f"> **Warning:** {w}", ""]
    if summary.get("missing"):
        lines += ["**Missing** (no metrics.json, so nothing is claimed for them): "
                  + ", ".join(summary["missing"]) + ".", ""]

    # Targets
    lines += ["## Targets", "",
              f"**{summary['n_targets_met']} of {summary['n_targets']}** target rows met. A target is the mean over "
              f">= {MIN_SEEDS} seeds; each of our models present is judged separately.", "",
              "| target | model | ours | required | seeds | status | why |", "|---|---|---:|---|---:|---|---|"]
    for t in summary["targets"]:
        metric = tasks.get(t.get("task"), {}).get("metric")
        if t["id"] == SCRATCH_TARGET_ID:
            ours, required = f"{t['n_wins']} of {t['n_comparisons']} comparisons won", "all"
            seeds = "—"
        else:
            ours, required, seeds = _fmt(t.get("value"), metric), _threshold_text(t, metric), str(t.get("n_seeds", 0))
        status = {"met": "met", "missed": "**MISSED**", "missing": "**MISSING**"}[t["status"]]
        lines.append(f"| {t['text']} | {t.get('model') or '—'} | {ours} | {required} | {seeds} | {status} | "
                     f"{t.get('reason') or ''} |")
    lines.append("")

    # Pretrained vs scratch
    comps = summary["scratch_comparisons"]
    lines += [f"### Pretrained vs scratch at label fractions <= {LOW_FRACTION:.0%}", ""]
    if comps:
        lines += ["Paired interval: 95 % of the gain over draws that reweight the test units (engines, recordings, "
                  "images, texts, rows; Bayesian bootstrap, paired: both models scored on each draw's units); "
                  "it says how far the gain could move on other test units, the seeds how far it moves with "
                  "the training draw.", "",
                  "| task | model | fraction | ours | scratch | gain (better = +) | paired interval of the gain "
                  "| seeds won | beats scratch |",
                  "|---|---|---:|---:|---:|---:|---|---:|---|"]
        for c in comps:
            beats = "—" if c["beats"] is None else ("yes" if c["beats"] else "**NO**")
            won = "—" if c["seed_wins"] is None else f"{c['seed_wins']}/{c['seeds_compared']}"
            interval = (f"{_fmt(c['gain_low'], c['metric'])} to {_fmt(c['gain_high'], c['metric'])} "
                        f"({c['paired_units']} {unit_noun(c['paired_unit'])})" if "gain_low" in c else "—")
            lines.append(f"| {c['task']} | {c['model']} | {c['fraction']:g} | {_fmt(c['value'], c['metric'])} | "
                         f"{_fmt(c['scratch'], c['metric'])} | {_fmt(c['gain'], c['metric'])} | {interval} | {won} "
                         f"| {beats} |")
    else:
        lines.append("No comparison: no report has a label fraction <= 10 %.")
    lines += ["", f"Literature (ANCHORS.md): {ANCHORS['label_efficiency']}.", ""]

    # Anchors
    lines += ["## Our numbers beside the published anchors", "",
              "All labels (fraction 1.0), mean over seeds. `~`: figure from a secondary copy (ANCHORS.md).", "",
              "| task | published model | published | pretrained | universal | scratch | baseline |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for a in summary["anchor_rows"]:
        metric = tasks.get(a["task"], {}).get("metric") or a["metric"]
        if a["anchor"] is None:
            published, name = "—", f"none: {a.get('note', '')}"
        else:
            published = ("~" if a["approx"] else "") + _fmt(a["value"], a["metric"])
            if a.get("score") is not None:
                published += f" / score {a['score']}"
            name = a["anchor"]
        ours = []
        for m in MODEL_ORDER:
            cell = _fmt(a["ours"].get(m), metric)
            if a.get("ours_score") and a["ours_score"].get(m) is not None:
                cell += f" / score {_fmt(a['ours_score'][m], 'phm08')}"
            ours.append(cell)
        lines.append(f"| {a['task']} | {name} | {published} | " + " | ".join(ours) + " |")
    lines += ["", f"C-MAPSS protocol of the anchors: {ANCHORS['cmapss']['protocol']}. {ANCHORS['cmapss']['note']}",
              f"CWRU cross-load anchors: {ANCHORS['cwru_cross_load']['note']}.", ""]

    # Per task
    lines += ["## Per task", ""]
    for task, t in tasks.items():
        lines += [f"### {task}", ""]
        if t["status"] == "missing":
            lines += [f"**Missing**: no `{t['metrics_json']}` (the evaluation did not run or failed). Dataset: "
                      f"{t.get('dataset') or '—'}.", ""]
            for note in t["notes"]:
                lines.append(f"- Protocol: {note}.")
            lines.append("")
            continue
        arrow = "higher is better" if t["higher_is_better"] else "lower is better"
        lines += [f"{t.get('dataset') or ''} — primary metric **{t['metric']}** ({arrow}); train pool {t['n_train']}, "
                  f"test {t['n_test']}; seeds {t.get('seeds')}; label fractions {t.get('label_fractions')}."
                  + (" (Report from an earlier run.)" if t.get("fresh") is False else ""), ""]
        lines.append(f"- Split: {t.get('split')}.")
        if t.get("protocol"):
            lines.append(f"- Protocol (report): {t['protocol']}")
        for note in t["notes"]:
            lines.append(f"- Protocol: {note}.")
        lines.append("")
        secondary = list(t["secondary"])
        header = "| model | fraction | mean ± std | min–max | seeds |" + "".join(f" {n} (mean) |" for n in secondary)
        lines += [header, "|---|---:|---:|---:|---:|" + "---:|" * len(secondary)]
        for model in [m for m in MODEL_ORDER if m in t["stats"]] + sorted(set(t["stats"]) - set(MODEL_ORDER)):
            for fraction in sorted(t["stats"][model], key=float):
                s = t["stats"][model][fraction]
                mean_std, spread, n = _cell(s, t["metric"])
                extra = "".join(f" {_fmt(t['secondary'][name].get(model, {}).get(fraction, {}).get('mean'), name)} |"
                                for name in secondary)
                lines.append(f"| {model} | {float(fraction):g} | {mean_std} | {spread} | {n} |{extra}")
        lines.append("")
        if t["paired_differences"]:
            lines += paired_lines(t) + [""]
        if t.get("pairs"):
            pairs = t["pairs"]
            models = [m for m in MODEL_ORDER if m in pairs["by_model"]]
            fractions = sorted({f for m in models for f in pairs["by_model"][m]}, key=float)
            for fraction in fractions:
                lines += [f"Per load pair (source -> target), fraction {float(fraction):g}, mean over seeds:", "",
                          "| pair | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
                for pair in pairs["pairs"]:
                    cells = [_fmt(pairs["by_model"][m].get(fraction, {}).get(pair, {}).get("mean"), t["metric"])
                             for m in models]
                    lines.append(f"| {pair} | " + " | ".join(cells) + " |")
                lines.append("")
        if t.get("curve"):
            lines += [f"![{task} label efficiency]({t['curve']})", ""]
        if t.get("runtime"):
            lines += ["Runtime: " + ", ".join(f"{k} {v}" for k, v in t["runtime"].items())
                      + (("; protocol timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in t["timings_s"].items()
                                                            if isinstance(v, (int, float))))
                         if t.get("timings_s") else "") + ".", ""]

    lines += _timing_lines(summary)
    return "\n".join(lines).rstrip() + "\n"
