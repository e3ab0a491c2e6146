"""Backfill a range of daily partitions without a Dagster daemon:

    python -m mfg_pipeline.backfill --from 2026-01-01 --to 2026-01-14 --workers 2

Each day is its own Dagster run (ingestion + cleaning of every plant) in the persistent instance
(``DAGSTER_HOME``, default ``data/dagster_home``), ``--workers`` days at a time in separate
processes; ``--rest`` then rebuilds the unpartitioned assets (corpora, datasets, models).
Unchanged days are cheap: their ingestion and cleaning reuse the published versions.
With a daemon (``dagster dev``), the UI and ``dagster job backfill`` do the same (docs/partitions.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys


def day_range(start: str, end: str) -> list[str]:
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if last < first:
        raise ValueError(f"--to {end} is before --from {start}")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mfg_pipeline.backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="start", required=True, help="first day (YYYY-MM-DD)")
    parser.add_argument("--to", dest="end", required=True, help="last day, inclusive (YYYY-MM-DD)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("MFG_WORKERS", "2")))
    parser.add_argument("--profile", choices=("default", "public"), default="default")
    parser.add_argument("--rest", action="store_true", help="then materialize the unpartitioned assets")
    args = parser.parse_args(argv)

    from mfg_pipeline.automation import daily_partitions
    from mfg_pipeline.cli import _instance
    from mfg_pipeline.profiles import default_profile, public_profile
    from mfg_pipeline.runner import materialize_all

    profile = public_profile() if args.profile == "public" else default_profile()
    days = day_range(args.start, args.end)
    partitions = daily_partitions(profile)
    invalid = [d for d in days if not partitions.has_partition_key(d)]
    if invalid:
        parser.error(f"not daily partitions of profile {profile.name!r} (start {profile.start_day}, "
                     f"up to yesterday): {', '.join(invalid[:5])}{' ...' if len(invalid) > 5 else ''}")
    instance = _instance(profile)
    summary = materialize_all(profile, days, instance, workers=args.workers, rest=args.rest)
    print(json.dumps({"days": len(days), "from": days[0], "to": days[-1], "workers": args.workers,
                      "partitions_s": round(summary.partition_seconds, 1), "rest_s": round(summary.rest_seconds, 1),
                      "failed": summary.failed, "dagster_home": os.environ["DAGSTER_HOME"]}, indent=2))
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
