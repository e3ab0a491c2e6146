"""The benchmark's files: the task reports it reads, the summary files it writes (atomically)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.public.markdown import render_markdown
from mfg_pipeline.storage import atomic

SUMMARY_MD, SUMMARY_JSON = "public_benchmark.md", "public_benchmark.json"  # in the public profile's reports dir


def find_report(reports_dir: Path, task: str) -> Path | None:
    """``<reports>/<task>/metrics.json``: where the evaluation asset of a plant-bound task writes
    (``assets.evaluation.report_path``; every public task is bound to its plant)."""
    path = Path(reports_dir) / task / "metrics.json"
    return path if path.is_file() else None


def load_reports(reports_dir: Path, tasks: list[str], since: float | None = None,
                 ) -> tuple[dict[str, dict | None], dict[str, dict]]:
    """task -> report (None when missing or unreadable), and task -> info (paths relative to
    ``reports_dir``, fresh = written after ``since``)."""
    reports: dict[str, dict | None] = {}
    infos: dict[str, dict] = {}
    for task in tasks:
        path = find_report(reports_dir, task)
        if path is None:
            reports[task] = None
            continue
        try:
            reports[task] = atomic.read_json(path)
        except (OSError, ValueError):
            reports[task] = None
            continue
        rel = path.parent.relative_to(reports_dir).as_posix()
        curve = path.parent / "label_efficiency.png"
        infos[task] = {"metrics_json": f"{rel}/metrics.json", "curve": f"{rel}/label_efficiency.png" if curve.exists() else None,
                       "fresh": None if since is None else path.stat().st_mtime >= since,
                       "written": datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")}
    return reports, infos


def earlier_summary(previous_json: Path) -> dict[str, Any]:
    """The summary an earlier run wrote; empty when there is none (or it cannot be read)."""
    try:
        return json.loads(Path(previous_json).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def earlier_timings(previous_json: Path) -> dict[str, Any]:
    """The ``timings`` of the summary an earlier run wrote; empty when there is none."""
    return earlier_summary(previous_json).get("timings", {})


def merge_earlier_timings(timings: dict[str, Any], previous_json: Path, plants: set[str]) -> dict[str, Any]:
    """This run's timings plus, for the plants it did not run, the per-dataset times an earlier
    run recorded (its Dagster steps marked ``earlier_run``), so a report built from several
    ``--only`` runs keeps each dataset's measured time."""
    previous = earlier_timings(previous_json)
    if not previous:
        return timings
    return {**timings,
            "model_runs_s": {**{p: v for p, v in previous.get("model_runs_s", {}).items() if p not in plants},
                             **timings.get("model_runs_s", {})},
            "dagster_steps": [*timings.get("dagster_steps", []),
                              *({**s, "earlier_run": True} for s in previous.get("dagster_steps", [])
                                if s.get("plant") and s["plant"] not in plants)]}


def carried_timings(previous_json: Path) -> dict[str, Any]:
    """For a re-render that runs nothing: the timings of the summary an earlier run wrote, with
    ``carried_from`` naming that run (kept through further re-renders), so the wall-time section
    survives and says whose it is. Empty when there is none."""
    previous = earlier_summary(previous_json)
    timings = previous.get("timings") or {}
    if not timings.get("steps"):
        return {}
    meta = previous.get("meta") or {}
    origin = timings.get("carried_from") or {"command": meta.get("command"), "generated": previous.get("generated")}
    return {**timings, "carried_from": origin}


def write_outputs(reports_dir: Path, summary: dict[str, Any]) -> tuple[Path, Path]:
    md = atomic.write_text(Path(reports_dir) / SUMMARY_MD, render_markdown(summary))
    js = atomic.write_json(Path(reports_dir) / SUMMARY_JSON, summary)
    return md, js
