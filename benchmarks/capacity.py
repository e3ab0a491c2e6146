"""Capacity plan: what one daily partition costs, how a backfill scales over workers, and how
many workers a 1,000-machine x 100-channel x 1 Hz plant needs to keep up (one day per hour).

    python -m benchmarks.capacity            # full: 1/4/16 machines, 30-day backfill on 1 and 2 workers
    python -m benchmarks.capacity --quick    # smoke: 3-day backfill

Writes ``data/reports/capacity.json`` (``MFG_DATA_DIR`` moves ``data``). Every measurement runs
in a fresh temporary data directory and Dagster instance; partition costs are measured in a
spawned child process so that its peak RSS (``resource.getrusage``) is that of one partition
run. Timings on a shared machine are noisy: report the machine and its load with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # ``python benchmarks/capacity.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import machine_info  # noqa: E402
from mfg_pipeline.profiles import default_profile  # noqa: E402

SIM_CHANNELS = 8
SIM_SAMPLE_PERIOD_S = 60
SIM_ROWS_PER_MACHINE_DAY = 86400 // SIM_SAMPLE_PERIOD_S
TARGET = {"machines": 1000, "channels": 100, "rows_per_machine_day": 86400, "deadline_s": 3600}
WORKER_MEMORY_BUDGET = 8 * 2**30  # bytes of RAM a worker may use for one partition


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def _maxrss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _cpu_s(who: str = "self") -> float:
    """CPU seconds (user + system): far less sensitive than wall time to others' load."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF if who == "self" else resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _partition_child(data_root: str, day: str, queue) -> None:
    """One ingest+clean run of ``day`` (a Dagster run, in-process executor), then an unchanged re-run."""
    import dagster as dg

    from mfg_pipeline.runner import materialize_partition

    profile = default_profile(Path(data_root))
    baseline = _maxrss_bytes()
    with dg.instance_for_test() as instance:
        started, cpu = time.perf_counter(), _cpu_s()
        ok = materialize_partition(profile, day, instance)
        wall, cpu = time.perf_counter() - started, _cpu_s() - cpu
        peak = _maxrss_bytes()
        started, cpu_again = time.perf_counter(), _cpu_s()
        ok_again = materialize_partition(profile, day, instance)
        rerun, cpu_again = time.perf_counter() - started, _cpu_s() - cpu_again
    queue.put({"ok": ok and ok_again, "wall_s": wall, "cpu_s": cpu, "rerun_unchanged_wall_s": rerun,
               "rerun_unchanged_cpu_s": cpu_again, "peak_rss_bytes": peak,
               "baseline_rss_bytes": baseline, "bytes_written": _bytes(profile.work_dir)})


def measure_partition(n_machines: int) -> dict:
    from mfg_pipeline.simulator.config import scaled
    from mfg_pipeline.simulator.write import write_day

    with tempfile.TemporaryDirectory(prefix="mfg-capacity-") as tmp:
        profile = default_profile(Path(tmp) / "data")
        config = scaled("default", n_machines=n_machines, n_days=1, start_day=profile.start_day)
        counts = write_day(profile.landing_dir, config, profile.start_day)
        landed = _bytes(profile.landing_dir)
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        child = ctx.Process(target=_partition_child, args=(str(profile.landing_dir.parent), profile.start_day, queue))
        child.start()
        result = queue.get()
        child.join()
    return {"machines": n_machines, "sensor_rows": counts["sensor"], "sensor_values": counts["sensor"] * SIM_CHANNELS,
            "images": counts["image"], "log_rows": counts["text"], "bytes_landed": landed, **result,
            "rss_delta_bytes": result["peak_rss_bytes"] - result["baseline_rss_bytes"]}


def _backfill_child(data_root: str, home: str, days: list[str], workers: int, queue) -> None:
    os.environ["DAGSTER_HOME"] = home  # worker processes open the same persistent instance
    import dagster as dg

    from mfg_pipeline.runner import materialize_all

    profile = default_profile(Path(data_root))
    cpu = _cpu_s() + _cpu_s("children")
    with dg.DagsterInstance.get() as instance:
        summary = materialize_all(profile, days, instance, workers=workers, rest=False)
    cpu = _cpu_s() + _cpu_s("children") - cpu  # the pool's workers have exited: counted as children
    queue.put({"partition_s": summary.partition_seconds, "cpu_s": cpu, "failed": summary.failed})


def measure_backfill(n_days: int, n_machines: int, workers: tuple[int, ...]) -> list[dict]:
    from mfg_pipeline.simulator.config import scaled
    from mfg_pipeline.simulator.write import days as sim_days
    from mfg_pipeline.simulator.write import simulate

    results = []
    with tempfile.TemporaryDirectory(prefix="mfg-capacity-landing-") as landing_tmp:
        landing = Path(landing_tmp) / "raw"
        config = scaled("default", n_machines=n_machines, n_days=n_days, start_day=default_profile().start_day)
        simulate(landing, config)
        days = sim_days(config)
        for w in workers:
            with tempfile.TemporaryDirectory(prefix="mfg-capacity-") as tmp:
                root = Path(tmp) / "data"
                root.mkdir()
                os.symlink(landing, root / "raw")  # same landed files, fresh work dir and instance
                home = Path(tmp) / "dagster_home"
                home.mkdir()
                (home / "dagster.yaml").touch()
                ctx = mp.get_context("spawn")
                queue = ctx.Queue()
                child = ctx.Process(target=_backfill_child, args=(str(root), str(home), days, w, queue))
                child.start()
                result = queue.get()
                child.join()
            results.append({"days": n_days, "machines": n_machines, "workers": w, **result,
                            "s_per_partition": result["partition_s"] / n_days, "cpu_s_per_partition": result["cpu_s"] / n_days,
                            "partitions_per_hour": 3600 * n_days / result["partition_s"]})
    return results


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares ``y = a + b x``."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def plan(partitions: list[dict], backfills: list[dict]) -> dict:
    machines = [p["machines"] for p in partitions]
    # CPU seconds, not wall: a worker is one core, and wall time here mostly measures others' load.
    fixed_s, per_machine_s = _fit(machines, [p["cpu_s"] for p in partitions])
    fixed_wall_s, per_machine_wall_s = _fit(machines, [p["wall_s"] for p in partitions])
    _, rss_per_machine = _fit(machines, [p["rss_delta_bytes"] for p in partitions])
    _, written_per_machine = _fit(machines, [p["bytes_written"] for p in partitions])
    _, landed_per_machine = _fit(machines, [p["bytes_landed"] for p in partitions])
    values_per_machine_day = SIM_ROWS_PER_MACHINE_DAY * SIM_CHANNELS
    per_value_s = max(per_machine_s, 1e-12) / values_per_machine_day
    per_value_rss = max(rss_per_machine, 1.0) / values_per_machine_day
    target_values_per_machine = TARGET["rows_per_machine_day"] * TARGET["channels"]
    target_values = TARGET["machines"] * target_values_per_machine
    compute_s = per_value_s * target_values
    # One partition must fit a worker's memory: split the day by machine group.
    machines_per_partition = max(1, min(TARGET["machines"],
                                        int(WORKER_MEMORY_BUDGET // (per_value_rss * target_values_per_machine))))
    n_partitions = math.ceil(TARGET["machines"] / machines_per_partition)
    total_s = compute_s + n_partitions * fixed_s
    by_workers = {b["workers"]: b for b in backfills}
    efficiency = cpu_ratio = None
    if 1 in by_workers and len(by_workers) > 1:
        w = max(by_workers)
        efficiency = by_workers[1]["partition_s"] / by_workers[w]["partition_s"] / w
        # Same CPU per partition on w workers as on 1 = no contention inside the work itself
        # (wall speedup is then bounded only by the free cores).
        cpu_ratio = by_workers[w]["cpu_s_per_partition"] / by_workers[1]["cpu_s_per_partition"]
    workers_ideal = math.ceil(total_s / TARGET["deadline_s"])
    return {
        "assumptions": [
            "cost is linear in rows x channels (values); fitted CPU seconds = fixed + per_machine x machines over the "
            "one-day runs (wall-time fit reported alongside)",
            f"the simulator lands {SIM_ROWS_PER_MACHINE_DAY} rows x {SIM_CHANNELS} channels per machine-day (1/60 Hz) plus "
            "images, logs and labels; all per-machine cost is charged to sensor values (conservative for sensors)",
            f"target: {TARGET['machines']} machines x {TARGET['channels']} channels x 1 Hz = "
            f"{target_values:.3g} values/day, processed within {TARGET['deadline_s']} s",
            f"a worker holds one partition in memory (cleaning reads the raw partition whole): at most "
            f"{WORKER_MEMORY_BUDGET / 2**30:.0f} GiB per partition, so the day is split into machine groups "
            "(e.g. one plant per group or a day x machine-group MultiPartitionsDefinition)",
            "workers scale across partitions with the measured parallel efficiency (1.0 = ideal); one partition "
            "is single-threaded",
        ],
        "fixed_cpu_s_per_partition": fixed_s,
        "cpu_s_per_machine_day_simulated": per_machine_s,
        "fixed_wall_s_per_partition": fixed_wall_s,
        "wall_s_per_machine_day_simulated": per_machine_wall_s,
        "cpu_s_per_value": per_value_s,
        "rss_bytes_per_value": per_value_rss,
        "landed_bytes_per_machine_day_simulated": landed_per_machine,
        "written_bytes_per_machine_day_simulated": written_per_machine,
        "target_values_per_day": target_values,
        "target_cpu_s_per_day": total_s,
        "machines_per_partition": machines_per_partition,
        "partitions_per_day": n_partitions,
        "landed_bytes_per_day_estimate": landed_per_machine / values_per_machine_day * target_values,
        "written_bytes_per_day_estimate": written_per_machine / values_per_machine_day * target_values,
        "measured_parallel_efficiency": efficiency,
        "cpu_per_partition_ratio_max_workers_vs_1": cpu_ratio,
        "workers_needed_ideal": workers_ideal,
        "workers_needed_at_measured_efficiency": (math.ceil(workers_ideal / efficiency) if efficiency else None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3-day backfill (a smoke run, not a measurement)")
    parser.add_argument("--machines", default="1,4,16,64",
                        help="machines of the one-day partition runs (64: so the per-machine slope is not all noise)")
    parser.add_argument("--backfill-days", type=int, default=None)
    parser.add_argument("--backfill-machines", type=int, default=4)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    n_days = args.backfill_days or (3 if args.quick else 30)
    out = args.out or default_profile().reports_dir / "capacity.json"
    started = time.perf_counter()
    partitions = []
    for m in (int(x) for x in args.machines.split(",")):
        partitions.append(measure_partition(m))
        print(json.dumps(partitions[-1]), flush=True)
    backfills = measure_backfill(n_days, args.backfill_machines, tuple(int(w) for w in args.workers.split(",")))
    for b in backfills:
        print(json.dumps(b), flush=True)
    report = {
        "machine": {**machine_info(), "loadavg_at_end": os.getloadavg()},
        "quick": args.quick, "partition": partitions, "backfill": backfills, "plan": plan(partitions, backfills),
        "benchmark_s": time.perf_counter() - started,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["plan"], indent=2))
    print(f"wrote {out}")
    return 0 if all(p["ok"] for p in partitions) and not any(b["failed"] for b in backfills) else 1


if __name__ == "__main__":
    sys.exit(main())
