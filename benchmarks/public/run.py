"""Running the benchmark's steps as Dagster runs against the persistent instance, each timed:
the public data half (adapters, daily partitions, corpora, labeled datasets), the simulator's
sensor corpus, then the model half (the universal backbone, one run per plant in parallel worker
processes, the shared assets last), with every Dagster step's seconds from the instance."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.machine import machine_info
from benchmarks.public.outputs import SUMMARY_JSON, earlier_timings

UNIVERSAL_KEY = "universal_sensor_backbone"
DATA_GROUPS = ("corpus", "labels")  # = mfg_pipeline.runner.DATA_GROUPS (not imported: that imports Dagster)
BENCH_TAG = "mfg/public_benchmark"
# Settings of torch's, MKL's and oneDNN's kernel choice: each changes a training run's floats
KERNEL_SETTINGS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")


def _partition_run(profile, day: str, plants: tuple[str, ...] | None, tag: str) -> tuple[bool, str | None]:
    """``runner.run_partition`` restricted to ``plants`` and tagged, in a worker process."""
    from mfg_pipeline.runner import run_partition

    result = run_partition(profile, day, plants=plants, tags={BENCH_TAG: tag})
    return (True, None) if result is None else (result.success, result.run_id)


def _partitions(profile, days: list[str], plants: tuple[str, ...] | None, workers: int, tag: str,
                ) -> tuple[list[str], list[str]]:
    """(failed days, run ids)."""
    if workers <= 1:
        results = [_partition_run(profile, d, plants, tag) for d in days]
    else:
        # spawn, not fork: a forked child of a process that already ran torch ops can hang in
        # torch's thread pool (seen: the benchmark's simulator partitions after the public half)
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_partition_run, [profile] * len(days), days, [plants] * len(days),
                                    [tag] * len(days)))
    return [d for d, (ok, _) in zip(days, results) if not ok], [r for _, r in results if r]


def _model_run(profile, keys: list, run_config: dict) -> tuple[bool, str, float]:
    """One plant's model half as its own Dagster run, in a worker process: (ok, run id, wall s)."""
    import dagster as dg

    from mfg_pipeline.runner import materialize_rest

    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = materialize_rest(profile, instance, selection=keys, run_config=run_config)
    return result.success, result.run_id, time.perf_counter() - t0


# Each plant's model-half wall time (s) in the last whole `make benchmark` (b242a28, 2 workers on a
# 2-core AMD EPYC, 2026-12-07): a fresh clone has no report to order by, and in profile order
# the two longest plants (NEU, AI4I) started late and one worker idled at the end (that run:
# 4,652 s for the plants; these times scheduled longest first: ~4,440 s).
TYPICAL_MODEL_RUN_S = {"neu": 2151, "ai4i": 1665, "cwru": 1505, "cmapss_fd004": 1295, "cmapss_fd001": 733,
                       "maintenance": 602, "cmapss_fd002": 464, "cmapss_fd003": 394}


def _longest_first(names: list[str], previous_json: Path) -> tuple[list[str], str]:
    """Plants ordered by their model-half wall time, longest first, so that parallel workers end
    together instead of waiting on a long plant started last: the last report's time where it has
    one, else ``TYPICAL_MODEL_RUN_S`` (plants in neither go first). Also says how they were ordered."""
    earlier = earlier_timings(previous_json).get("model_runs_s", {})
    times = {**TYPICAL_MODEL_RUN_S, **earlier}
    if not any(n in times for n in names):
        return list(names), "in profile order"
    source = "last report's times" if any(n in earlier for n in names) else "typical times"
    return sorted(names, key=lambda n: -float(times.get(n, math.inf))), f"longest first ({source})"


def _step_map(defs) -> dict[str, str]:
    """op name -> asset key (user string) of every asset of the definitions."""
    out = {}
    for a in defs.assets or []:
        try:
            keys = list(a.keys)
            name = a.node_def.name
        except Exception:  # noqa: BLE001 - specs and external assets have no op
            continue
        out[name] = ", ".join(sorted(k.to_user_string() for k in keys))
    return out


def step_times(instance, run_ids: list[str], phase: str, step_assets: dict[str, str],
               plants: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every step of the runs: seconds summed per step key over the runs (partition runs)."""
    agg: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        for s in instance.get_run_step_stats(run_id):
            seconds = (s.end_time - s.start_time) if s.start_time and s.end_time else 0.0
            row = agg.setdefault(s.step_key, {"phase": phase, "step_key": s.step_key, "asset": step_assets.get(s.step_key),
                                              "plant": None, "seconds": 0.0, "runs": 0, "statuses": set()})
            prefix = s.step_key.split("__", 1)[0] if "__" in s.step_key else None
            row["plant"] = prefix if prefix in plants else None
            row["seconds"] += seconds
            row["runs"] += 1
            row["statuses"].add(s.status.value if s.status is not None else "NOT_FINISHED")
    out = []
    for row in agg.values():
        statuses = row.pop("statuses")
        row["status"] = "SUCCESS" if statuses == {"SUCCESS"} else "/".join(sorted(statuses))
        out.append(row)
    return sorted(out, key=lambda r: (r["plant"] or "", -r["seconds"]))


def device_info() -> dict[str, Any]:
    import torch

    info = {**machine_info(), "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cuda_available": torch.cuda.is_available(),
            "MFG_DEVICE": os.environ.get("MFG_DEVICE", "auto"), "MFG_PRECISION": os.environ.get("MFG_PRECISION", "fp32"),
            **{k: os.environ.get(k) for k in KERNEL_SETTINGS}}  # None: the library chose by the CPU
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _evaluation_config(defs, keys, seeds: list[int] | None) -> dict:
    if not seeds:
        return {}
    ops = {}
    for a in defs.assets or []:
        try:
            asset_keys = list(a.keys)
            name = a.node_def.name
        except Exception:  # noqa: BLE001
            continue
        for k in asset_keys:
            if k in keys and k.path[-1].startswith("evaluation_") and k.path[-1] != "evaluation_summary":
                ops[name] = {"config": {"seeds": list(seeds)}}
    return {"ops": ops} if ops else {}


def run_benchmark(args, timings: dict[str, Any]) -> bool:
    """Steps 1-3, filling ``timings`` as they go (so a crash leaves the steps done); returns all ok."""
    from mfg_pipeline.cli import _instance, adapt_landing, simulate_landing
    from mfg_pipeline.definitions import build_definitions
    from mfg_pipeline.profiles import default_profile, public_profile
    from mfg_pipeline.runner import materialize_rest
    from mfg_pipeline.tasks.registry import tasks_for_plant

    started = time.perf_counter()
    profile = public_profile()
    instance = _instance(profile)
    plant_names = tuple(p.name for p in profile.plants)
    only = tuple(args.only) if args.only else None
    if only:
        unknown = sorted(set(only) - set(plant_names))
        if unknown:
            raise SystemExit(f"--only: unknown plants {unknown}; known: {list(plant_names)}")
    selected = [p for p in profile.plants if only is None or p.name in only]
    defs = build_definitions(profile)
    graph = defs.resolve_asset_graph()
    step_assets = _step_map(defs)
    tag = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    steps: list[dict[str, Any]] = timings.setdefault("steps", [])
    dagster_steps: list[dict[str, Any]] = timings.setdefault("dagster_steps", [])
    model_runs: dict[str, float] = timings.setdefault("model_runs_s", {})
    ok = True

    def record(name: str, t0: float, good: bool, note: str = "", wall: float | None = None) -> None:
        """A step that started at ``t0`` (or took ``wall`` seconds elsewhere, in a worker)."""
        nonlocal ok
        ok = ok and good
        wall = time.perf_counter() - t0 if wall is None else wall
        steps.append({"name": name, "wall_s": round(wall, 2), "status": "ok" if good else "FAILED", "note": note})
        print(json.dumps(steps[-1]), flush=True)

    universal = UNIVERSAL_KEY if any(k.to_user_string() == UNIVERSAL_KEY for k in graph.materializable_asset_keys) else None
    needs_universal = universal is not None and any(t.shared_backbone for p in selected
                                                    for t in tasks_for_plant(p.name, p.datasets))

    if args.skip_data:
        steps.append({"name": "public data half", "wall_s": 0.0, "status": "skipped", "note": "--skip-data"})
        steps.append({"name": "simulator data half (sensor corpus)", "wall_s": 0.0, "status": "skipped",
                      "note": "--skip-data"})
    else:
        # 1. Public data half: adapters, daily partitions (parallel runs), corpora + labeled datasets.
        t0 = time.perf_counter()
        days, adapters = adapt_landing(profile)
        record("public data half: adapters", t0, True,
               f"{len(adapters)} adapters, {len(days)} days with landed rows")
        t0 = time.perf_counter()
        failed, run_ids = _partitions(profile, days, only, args.workers, tag)
        record("public data half: daily partitions", t0, not failed,
               f"{len(run_ids)} runs on {args.workers} worker(s)" + (f"; FAILED days {failed}" if failed else ""))
        t0 = time.perf_counter()
        data_keys = [k for k in graph.materializable_asset_keys if not graph.get(k).is_partitioned
                     and graph.get(k).group_name in DATA_GROUPS and (only is None or k.path[0] in only)]
        if not failed and data_keys:
            result = materialize_rest(profile, instance, selection=data_keys)
            run_ids.append(result.run_id)
            record("public data half: corpora + labeled datasets", t0, result.success, f"{len(data_keys)} assets")
        else:
            steps.append({"name": "public data half: corpora + labeled datasets", "wall_s": 0.0, "status": "skipped",
                          "note": "a partition failed" if failed else "no asset"})
        dagster_steps += step_times(instance, run_ids, "public data half", step_assets, plant_names)

        # 2. The simulator's sensor corpus (an input of the universal sensor backbone).
        t0 = time.perf_counter()
        if needs_universal:
            sim = default_profile()
            sim_defs = build_definitions(sim)
            sim_days = simulate_landing(sim)
            failed, sim_runs = _partitions(sim, sim_days, None, args.workers, tag)
            good = not failed
            if good:
                result = materialize_rest(sim, instance, groups=("corpus",))
                sim_runs.append(result.run_id)
                good = result.success
            dagster_steps += step_times(instance, sim_runs, "simulator data half", _step_map(sim_defs), plant_names)
            record("simulator data half (sensor corpus)", t0, good, f"{len(sim_days)} days")
        else:
            steps.append({"name": "simulator data half (sensor corpus)", "wall_s": 0.0, "status": "skipped",
                          "note": "no universal_sensor_backbone in the graph" if universal is None
                          else "no selected task uses the universal backbone"})

    if args.data_only:
        steps.append({"name": "model half", "wall_s": 0.0, "status": "skipped", "note": "--data-only"})
        timings["total_s"] = round(time.perf_counter() - started, 2)
        return ok

    # 3. Model half: universal backbone, then one run per plant.
    def model_keys(prefix: str | None) -> list:
        return [k for k in graph.materializable_asset_keys if not graph.get(k).is_partitioned
                and graph.get(k).group_name not in DATA_GROUPS
                and (k.path[0] == prefix if prefix else (len(k.path) == 1 or k.path[0] not in plant_names))]

    def finish(name: str, phase: str, good: bool, run_id: str, wall: float, n_keys: int) -> None:
        dagster_steps.extend(step_times(instance, [run_id], phase, step_assets, plant_names))
        model_runs[phase.split(": ", 1)[-1]] = round(wall, 2)
        record(name, 0.0, good, f"{n_keys} assets", wall=wall)

    def run_model(name: str, keys: list, phase: str) -> None:
        if not keys:
            steps.append({"name": name, "wall_s": 0.0, "status": "skipped", "note": "no model assets in the graph"})
            return
        finish(name, phase, *_model_run(profile, keys, _evaluation_config(defs, set(keys), args.seeds)), len(keys))

    if needs_universal:  # first: the sensor tasks of every plant below read it
        run_model("universal sensor backbone", [k for k in graph.materializable_asset_keys
                                                if k.to_user_string() == UNIVERSAL_KEY], f"model half: {UNIVERSAL_KEY}")
    jobs = {p.name: model_keys(p.name) for p in selected}
    if only is None:
        rest = [k for k in model_keys(None) if k.to_user_string() != UNIVERSAL_KEY]
        if rest:
            jobs["shared"] = rest
    order, ordered_by = _longest_first([n for n in jobs if n != "shared"], profile.reports_dir / SUMMARY_JSON)
    label = {n: "model half: shared assets" if n == "shared" else f"model half: {n}" for n in jobs}
    if args.workers <= 1:
        for name in order:
            run_model(label[name], jobs[name], f"model half: {name}")
    else:
        # The plants' model runs are independent (each its own Dagster run against the shared
        # instance): with one torch thread per process, one worker per core. The shared assets
        # (evaluation_summary) read every plant's reports, so they run last.
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {name: pool.submit(_model_run, profile, jobs[name],
                                         _evaluation_config(defs, set(jobs[name]), args.seeds))
                       for name in order if jobs[name]}
            results = {name: future.result() for name, future in futures.items()}
        for name, (good, run_id, wall) in results.items():
            finish(label[name], f"model half: {name}", good, run_id, wall, len(jobs[name]))
        steps.append({"name": "model half: plants in parallel", "wall_s": round(time.perf_counter() - t0, 2),
                      "status": "ok" if all(r[0] for r in results.values()) else "FAILED",
                      "note": f"{len(futures)} plant runs on {args.workers} worker(s), "
                              + ordered_by})
    if "shared" in jobs:
        run_model(label["shared"], jobs["shared"], "model half: shared")
    timings["total_s"] = round(time.perf_counter() - started, 2)
    return ok
