"""Public-data benchmark: materialize the ``public`` profile end to end and write our numbers
beside the published anchors (``/work/shared/ANCHORS.md``), the targets and whether each is met.

    python -m benchmarks.public_benchmark                       # everything (data half, simulator corpus, models)
    python -m benchmarks.public_benchmark --only cmapss_fd001,cwru --skip-data
    python -m benchmarks.public_benchmark --data-only           # steps 1-2 only (then the report, tasks missing)
    python -m benchmarks.public_benchmark --report-only         # re-render from the existing metrics.json

Steps, each timed (and every Dagster step of each run, from the instance's step stats):

1. public data half: adapters, daily partitions, corpora and labeled datasets;
2. the simulator's data half (default profile) up to its ``sensor_corpus``, which the universal
   sensor backbone of the public location pretrains on (skipped when the graph has none);
3. the model half: ``universal_sensor_backbone`` first, then one Dagster run per plant (its
   backbones, ``finetuned_<task>``, ``evaluation_<task>``), in ``--workers`` processes, so that
   the wall time of each dataset is known; then ``evaluation_summary``;
4. reads each task's ``metrics.json`` (written by the evaluation assets) and writes
   ``<reports>/public_benchmark.md`` and ``<reports>/public_benchmark.json`` atomically.

Runs against the persistent instance under ``DAGSTER_HOME`` (default ``data/dagster_home``) like
the CLI. The parts live in ``benchmarks/public/``: ``catalogue`` (tasks, protocol notes, anchors,
targets), ``run`` (the Dagster steps), ``summary`` and ``markdown`` (pure: loaded reports and
timings in, no model run), ``outputs`` (reading the reports, writing the two files). Every number
in the output comes from the reports and the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # ``python benchmarks/public_benchmark.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.public.catalogue import PLANTS, PUBLIC_TASKS  # noqa: E402
from benchmarks.public.outputs import (  # noqa: E402
    SUMMARY_JSON, carried_timings, load_reports, merge_earlier_timings, write_outputs)
from benchmarks.public.run import device_info, run_benchmark  # noqa: E402
from benchmarks.public.summary import build_summary  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.public_benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()], default=None,
                        help=f"plants, comma-separated (of {', '.join(PLANTS)})")
    parser.add_argument("--skip-data", action="store_true", help="reuse the data half (steps 1 and 2)")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",") if x.strip()], default=None,
                        help="seeds of every evaluation, comma-separated (default: each task's own)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("MFG_WORKERS", "2")),
                        help="worker processes for the daily partitions and for the plants' model runs")
    parser.add_argument("--data-only", action="store_true", help="stop after the data half (steps 1 and 2)")
    parser.add_argument("--report-only", action="store_true", help="run nothing: re-render from the existing reports")
    args = parser.parse_args(argv)

    from mfg_pipeline.profiles import public_profile

    reports_dir = public_profile().reports_dir
    # Always every task: with --only the others come from earlier runs (flagged as such), so the
    # report stays whole when datasets are re-run one at a time.
    tasks = list(PUBLIC_TASKS)
    timings: dict[str, Any] = {}
    ok, since = True, None
    if not args.report_only:
        since = time.time()
        try:
            ok = run_benchmark(args, timings)
        except Exception as exc:  # noqa: BLE001 - still write what was measured, then fail
            import traceback

            traceback.print_exc()
            ok = False
            timings.setdefault("steps", []).append({"name": "benchmark", "wall_s": round(time.time() - since, 2),
                                                    "status": "FAILED", "note": f"{type(exc).__name__}: {exc}"})
    if args.report_only:
        timings = carried_timings(reports_dir / SUMMARY_JSON)
    elif args.only:
        timings = merge_earlier_timings(timings, reports_dir / SUMMARY_JSON, set(args.only))
    reports, infos = load_reports(reports_dir, tasks, since)
    command = "python -m benchmarks.public_benchmark" + (f" {' '.join(argv)}" if argv else
                                                          (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""))
    meta = {"command": command.strip(), "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "only": args.only, "seeds_requested": args.seeds, "workers": args.workers,
            "dagster_home": os.environ.get("DAGSTER_HOME"), "device": device_info()}
    summary = build_summary(reports, timings, meta, infos)
    md, js = write_outputs(reports_dir, summary)
    short = {"ok": ok, "missing": summary["missing"], "targets_met": f"{summary['n_targets_met']}/{summary['n_targets']}",
             "not_met": sorted({t["id"] for t in summary["targets"] if not t["met"]}),
             "steps": {s["name"]: {"wall_s": s["wall_s"], "status": s["status"]} for s in timings.get("steps", [])},
             "total_s": timings.get("total_s"), "markdown": str(md), "json": str(js)}
    print(json.dumps(short, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
