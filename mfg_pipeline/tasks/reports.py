"""Per-task reports (metrics.json, label-efficiency PNG, Markdown table) and the summary.

Every number comes from the protocol run passed in; nothing here is hard-coded.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mfg_pipeline.storage import atomic
from mfg_pipeline.tasks.paired import MIN_UNITS
from mfg_pipeline.tasks.registry import TaskSpec

MODEL_ORDER = ("pretrained", "universal", "scratch", "baseline")
REQUIRED_KEYS = ("task", "modality", "metric", "higher_is_better", "split", "n_train", "n_test", "results")


def build_report(task: TaskSpec, outcome: dict[str, Any], split: str = "held-out test split of the dataset",
                 **extra: Any) -> dict[str, Any]:
    """``outcome``: what ``run_protocol`` returned; ``split`` says how the test samples were
    held out (the dataset's split rule)."""
    return {
        "task": task.name,
        "modality": task.modality,
        "dataset": task.dataset,
        "kind": task.kind,
        "metric": task.metric,
        "higher_is_better": task.higher_is_better,
        "split": split,
        "n_train": outcome["n_train"],
        "n_test": outcome["n_test"],
        "finetune_mode": task.finetune_mode,
        "adapt": task.adapt,
        "label_fractions": list(task.label_fractions),
        "seeds": list(task.seeds),
        "steps": task.steps,
        "results": outcome["results"],
        "paired_differences": outcome.get("paired_differences", []),
        "timings_s": outcome.get("timings_s", {}),
        **extra,
    }


def aggregate(report: dict[str, Any]) -> dict[str, dict[float, dict[str, float]]]:
    """model -> fraction -> {mean, std, min, max, n}."""
    values: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in report["results"]:
        values[row["model"]][float(row["label_fraction"])].append(float(row["value"]))
    out: dict[str, dict[float, dict[str, float]]] = {}
    for model, by_frac in values.items():
        out[model] = {}
        for frac, vals in sorted(by_frac.items()):
            arr = np.asarray(vals, dtype=float)
            finite = arr[np.isfinite(arr)]
            out[model][frac] = {
                "mean": float(finite.mean()) if len(finite) else float("nan"),
                "std": float(finite.std()) if len(finite) else float("nan"),
                "min": float(finite.min()) if len(finite) else float("nan"),
                "max": float(finite.max()) if len(finite) else float("nan"),
                "n": int(len(arr)),
            }
    return out


def lowest_fraction_comparison(report: dict[str, Any]) -> dict[str, Any]:
    """Pretrained vs scratch (and baseline) at the lowest label fraction, mean over seeds."""
    agg = aggregate(report)
    fractions = sorted({float(r["label_fraction"]) for r in report["results"]})
    if not fractions:
        return {"fraction": None, "pretrained": None, "scratch": None, "baseline": None, "pretrained_beats_scratch": None,
                "scratch_minus_pretrained": None, "beyond_test_noise": None}
    low = fractions[0]
    mean = {m: agg.get(m, {}).get(low, {}).get("mean") for m in MODEL_ORDER}
    beats = None
    if mean["pretrained"] is not None and mean["scratch"] is not None:
        p, s = mean["pretrained"], mean["scratch"]
        beats = bool(p > s) if report["higher_is_better"] else bool(p < s)
    row = paired_row(report, "scratch", "pretrained", low)
    paired = None if row is None else {k: row[k] for k in ("difference", "low", "high", "unit", "n_units")}
    return {"fraction": low, **mean, "pretrained_beats_scratch": beats,
            "gain": None if beats is None else (mean["pretrained"] - mean["scratch"]) * (1 if report["higher_is_better"] else -1),
            "scratch_minus_pretrained": paired, "beyond_test_noise": None if paired is None or beats is None
            or paired["n_units"] < MIN_UNITS else bool(paired["low"] > 0 or paired["high"] < 0)}


def paired_row(report: dict[str, Any], model: str, versus: str, fraction: float) -> dict[str, Any] | None:
    """The report's paired difference ``model`` minus ``versus`` at ``fraction``, if it has one."""
    return next((p for p in report.get("paired_differences") or []
                 if (p["model"], p["versus"]) == (model, versus) and math.isclose(float(p["label_fraction"]), fraction)),
                None)


# What ``lowest_fraction_comparison``'s ``beyond_test_noise`` says, in words
NOISE_VERDICTS = {None: "too few units to tell", True: "beyond test noise", False: "within test noise"}


def noise_interval_text(comparison: dict[str, Any]) -> str | None:
    """A ``lowest_fraction_comparison``'s scratch-minus-pretrained interval, its units and verdict."""
    p = comparison["scratch_minus_pretrained"]
    if p is None:
        return None
    return (f"{p['low']:+.4f} to {p['high']:+.4f} ({p['n_units']} {unit_noun(p['unit'])}: "
            f"{NOISE_VERDICTS[comparison['beyond_test_noise']]})")


def markdown_table(report: dict[str, Any]) -> str:
    agg = aggregate(report)
    fractions = sorted({float(r["label_fraction"]) for r in report["results"]})
    arrow = "higher is better" if report["higher_is_better"] else "lower is better"
    lines = [f"### {report['task']} ({report['modality']}, {report['metric']}, {arrow})", "",
             f"Test split: {report['n_test']} samples from held-out machines; train pool {report['n_train']}. "
             f"Mean ± std over seeds {report.get('seeds')}.", "",
             "| model | " + " | ".join(f"{f:g}" for f in fractions) + " |",
             "|---|" + "---|" * len(fractions)]
    for model in MODEL_ORDER:
        if model not in agg:
            continue
        cells = []
        for f in fractions:
            s = agg[model].get(f)
            cells.append("—" if s is None else f"{s['mean']:.4f} ± {s['std']:.4f}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    paired = paired_lines(report)
    return "\n".join(lines + ([""] + paired if paired else [])) + "\n"


# The reports' names for the independent test units (``TaskSpec.independent_unit``'s columns)
UNIT_NOUNS = {"machine_id": "machines", "unit": "engines", "recording": "recordings", "sha256": "distinct images",
              "text": "distinct texts", "row": "rows"}


def unit_noun(unit: str) -> str:
    return UNIT_NOUNS.get(unit, f"values of `{unit}`")


def share_text(share: float) -> str:
    """A share of draws as a percentage that never rounds a few draws away."""
    if 0 < share < 0.005:
        return "<1%"
    if 0.995 <= share < 1:
        return ">99%"
    return f"{share:.0%}"


def paired_lines(report: dict[str, Any]) -> list[str]:
    """The paired intervals (``tasks/paired.py``) as a Markdown table, or nothing."""
    rows = [r for r in report.get("paired_differences") or [] if r["versus"] == "pretrained"]
    if not rows:
        return []
    first = rows[0]
    lines = [f"Difference to `{first['versus']}` ({report['metric']}, model minus {first['versus']}, mean over "
                 f"seeds), with its {first['level']:.0%} interval over the test set's {first['n_units']} "
                 f"{unit_noun(first['unit'])} (Bayesian bootstrap, {first['draws']} draws, paired):", "",
             *([f"Only {first['n_units']} units: the intervals describe how these {first['n_units']} disagree, "
                f"not what other {unit_noun(first['unit'])} would show.", ""] if first["n_units"] < MIN_UNITS else []),
             "| fraction | model | difference | interval | draws where " + first["versus"] + " is better |",
             "|---|---|---|---|---|"]
    places = 2 if report["metric"] in ("rmse", "mae") else 4
    for r in rows:
        lines.append(f"| {r['label_fraction']:g} | {r['model']} | {r['difference']:+.{places}f} | "
                     f"{r['low']:+.{places}f} to {r['high']:+.{places}f} | {share_text(r['reference_better_share'])} |")
    return lines


def plot_curve(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(report)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=100)
    for model in MODEL_ORDER:
        if model not in agg:
            continue
        fr = sorted(agg[model])
        mean = np.array([agg[model][f]["mean"] for f in fr])
        lo = np.array([agg[model][f]["min"] for f in fr])
        hi = np.array([agg[model][f]["max"] for f in fr])
        ax.plot(fr, mean, marker="o", label=model)
        ax.fill_between(fr, lo, hi, alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("label fraction of the train split")
    ax.set_ylabel(f"{report['metric']} ({'higher' if report['higher_is_better'] else 'lower'} is better)")
    ax.set_title(f"{report['task']}: mean, min–max over seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()

    def _write(p: Path) -> None:
        fig.savefig(p, format="png")

    atomic.atomic_write(Path(path), _write)
    plt.close(fig)
    return Path(path)


def write_task_report(report_dir: Path, report: dict[str, Any]) -> dict[str, Path]:
    report_dir = Path(report_dir)
    missing = [k for k in REQUIRED_KEYS if k not in report]
    if missing:
        raise ValueError(f"report lacks keys {missing}")
    report = {**report, "lowest_fraction": lowest_fraction_comparison(report)}
    paths = {"table": report_dir / "table.md", "curve": report_dir / "label_efficiency.png",
             "metrics": report_dir / "metrics.json"}
    atomic.write_text(paths["table"], markdown_table(report))
    plot_curve(report, paths["curve"])
    atomic.write_json(paths["metrics"], report)  # last: marks a complete report
    return paths


def load_task_report(report_dir: Path) -> dict[str, Any]:
    return atomic.read_json(Path(report_dir) / "metrics.json")


def summary_markdown(reports: list[dict[str, Any]]) -> str:
    lines = ["# Label-efficiency summary", "",
             "Self-supervised pretraining then finetuning (`pretrained`) vs the same architecture from "
             "random weights with the same steps (`scratch`) vs a classical model on hand features "
             "(`baseline`), on the held-out test machines. Values are means over seeds at the lowest "
             "label fraction; every number comes from the evaluation run that wrote this file.", "",
             "| task | metric | lowest fraction | pretrained | scratch | baseline | pretrained beats scratch "
             "| scratch − pretrained, 95 % interval over the test units | pretrained beats baseline |",
             "|---|---|---|---|---|---|---|---|---|"]
    losses, base_losses = [], []
    comparisons = [lowest_fraction_comparison(r) for r in reports]
    for r, c in zip(reports, comparisons):
        arrow = "↑" if r["higher_is_better"] else "↓"

        def fmt(v: Any) -> str:
            return "—" if v is None else f"{v:.4f}"

        vs_base = None
        if c["pretrained"] is not None and c["baseline"] is not None:
            vs_base = c["pretrained"] > c["baseline"] if r["higher_is_better"] else c["pretrained"] < c["baseline"]
            if not vs_base:
                base_losses.append(r["task"])
        if c["pretrained_beats_scratch"] is False:
            losses.append((r["task"], c))
        interval = noise_interval_text(c) or "—"
        lines.append(f"| {r['task']} | {r['metric']} {arrow} | {c['fraction']:g} | {fmt(c['pretrained'])} | "
                     f"{fmt(c['scratch'])} | {fmt(c['baseline'])} | "
                     f"{'yes' if c['pretrained_beats_scratch'] else 'NO'} | {interval} | "
                     f"{'—' if vs_base is None else ('yes' if vs_base else 'NO')} |")
    n_win = sum(1 for c in comparisons if c["pretrained_beats_scratch"])
    lines += ["", f"Pretrained beats scratch at the lowest label fraction on **{n_win} of {len(reports)}** tasks.", ""]
    if losses:
        lines.append("## Where pretraining does NOT beat scratch")
        lines.append("")
        for name, c in losses:
            lines.append(f"- **{name}** at fraction {c['fraction']:g}: pretrained {c['pretrained']:.4f} vs scratch "
                         f"{c['scratch']:.4f}. The claim does not hold for this task on this run.")
        lines.append("")
    else:
        lines += ["Pretraining beat scratch at the lowest label fraction on every task in this run.", ""]
    if base_losses:
        lines.append("The classical baseline matches or beats the pretrained model at the lowest fraction on: "
                     + ", ".join(base_losses) + ".")
        lines.append("")
    lines.append("Per-task tables and curves: `<task>/table.md`, `<task>/label_efficiency.png`, `<task>/metrics.json`.")
    return "\n".join(lines) + "\n"


def write_summary(reports_dir: Path, reports: list[dict[str, Any]]) -> Path:
    path = Path(reports_dir) / "summary.md"
    atomic.write_text(path, summary_markdown(reports))
    atomic.write_json(Path(reports_dir) / "summary.json",
                      {r["task"]: lowest_fraction_comparison(r) for r in reports})
    return path
