"""Command line: ``mfg-pipeline run`` simulates the plant (default profile) and materializes
the whole asset graph into the persistent Dagster instance under data/dagster_home."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _instance(profile):
    import dagster as dg

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(profile.work_dir.parent / "dagster_home"))).resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch()
    return dg.DagsterInstance.get()


def simulate_landing(profile, scale: str | None = None) -> list[str]:
    """Write the simulator's days that are not in the landing zone yet (idempotent)."""
    from mfg_pipeline.simulator.config import scaled
    from mfg_pipeline.simulator.write import days, write_day

    config = scaled(scale or profile.simulator_scale or "default", start_day=profile.start_day)
    all_days = days(config)
    for day in all_days:
        if not (profile.landing_dir / "sensor" / day).exists():
            write_day(profile.landing_dir, config, day)
    return all_days


def adapt_landing(profile) -> tuple[list[str], list[dict]]:
    """Public profile: run the adapters (idempotent) and return the days that hold landed rows."""
    from mfg_pipeline.landing.adapters import run_adapters
    from mfg_pipeline.landing.contract import LandingLayout
    from mfg_pipeline.landing.partitioning import LandingIndex

    reports = run_adapters(profile.source_dir, profile.landing_dir)
    days: set[str] = set()
    for plant in profile.plants:
        for source in (*plant.modalities, *plant.label_tables):
            cache = profile.work_dir / plant.path("landing_index") / f"{source}.json"
            days.update(LandingIndex(LandingLayout(profile.landing_for(plant)), source, cache).days())
    return sorted(days), [r.summary() for r in reports]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mfg-pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="simulate (default profile) and materialize the whole graph")
    run.add_argument("--workers", type=int, default=int(os.environ.get("MFG_WORKERS", "2")))
    run.add_argument("--scale", default=None, help="simulator scale (tiny|default)")
    run.add_argument("--data-only", action="store_true", help="stop after the data half (corpora and labeled datasets)")
    run.add_argument("--profile", choices=("default", "public"), default="default",
                     help="default: the plant simulator; public: adapters over the public datasets (MFG_PUBLIC_DATASETS)")
    args = parser.parse_args(argv)

    from mfg_pipeline.profiles import default_profile, public_profile
    from mfg_pipeline.runner import DATA_GROUPS, materialize_all

    profile = public_profile() if args.profile == "public" else default_profile()
    instance = _instance(profile)
    started = time.perf_counter()
    adapters = None
    if args.profile == "public":
        days, adapters = adapt_landing(profile)
    else:
        days = simulate_landing(profile, args.scale)
    simulated = time.perf_counter() - started
    groups = DATA_GROUPS if args.data_only else None
    summary = materialize_all(profile, days, instance, workers=args.workers, rest=True, groups=groups)
    report = {"days": len(days), "simulate_s": round(simulated, 1), "partitions_s": round(summary.partition_seconds, 1),
              "rest_s": round(summary.rest_seconds, 1), "total_s": round(time.perf_counter() - started, 1),
              "failed": summary.failed, "dagster_home": os.environ["DAGSTER_HOME"]}
    if adapters is not None:
        report["adapters"] = adapters
    print(json.dumps(report, indent=2))
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
