"""Materialize the asset graph: every day's partitions (in parallel worker processes), then the
unpartitioned rest. Used by the CLI and the capacity benchmark; each partition is its own
Dagster run, recorded in the instance like a UI backfill."""

from __future__ import annotations

import contextlib
import time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import dagster as dg

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.profiles import Profile


@dataclass(frozen=True)
class RunSummary:
    days: list[str]
    partition_seconds: float
    rest_seconds: float
    failed: list[str]


def _assets(defs: dg.Definitions) -> list:
    """Assets and asset checks: ``materialize`` runs the checks of the selected assets too."""
    return [*(defs.assets or []), *(defs.asset_checks or [])]


def partitioned_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    return [k for k in graph.materializable_asset_keys if graph.get(k).is_partitioned]


def run_partition(profile: Profile, day: str, instance: dg.DagsterInstance | None = None,
                  plants: tuple[str, ...] | None = None, tags: dict[str, str] | None = None,
                  ) -> dg.ExecuteInProcessResult | None:
    """One day's partitioned assets (of ``plants`` only, when given) as one Dagster run; None
    when the selection is empty."""
    defs = build_definitions(profile)
    keys = [k for k in partitioned_keys(defs) if plants is None or (len(k.path) > 1 and k.path[0] in plants)]
    if not keys:
        return None
    with dg.DagsterInstance.get() if instance is None else contextlib.nullcontext(instance) as inst:
        return dg.materialize(_assets(defs), selection=keys, partition_key=day, resources=defs.resources,
                              instance=inst, raise_on_error=False, tags={"mfg/partition_run": day, **(tags or {})})


def materialize_partition(profile: Profile, day: str, instance: dg.DagsterInstance | None = None) -> bool:
    return run_partition(profile, day, instance).success


DATA_GROUPS = ("corpus", "labels")


def materialize_rest(profile: Profile, instance: dg.DagsterInstance, groups: tuple[str, ...] | None = None,
                     run_config: dict | None = None, selection: list[dg.AssetKey] | None = None,
                     ) -> dg.ExecuteInProcessResult:
    """Every unpartitioned asset (corpora, datasets, models, reports), those of ``groups``, or
    exactly ``selection``."""
    defs = build_definitions(profile)
    graph = defs.resolve_asset_graph()
    keys = selection or [k for k in graph.materializable_asset_keys
                         if not graph.get(k).is_partitioned and (groups is None or graph.get(k).group_name in groups)]
    return dg.materialize(_assets(defs), selection=keys, resources=defs.resources, instance=instance,
                          run_config=run_config or {}, raise_on_error=False)


def materialize_all(profile: Profile, days: list[str], instance: dg.DagsterInstance, workers: int = 1,
                    rest: bool = True, groups: tuple[str, ...] | None = None) -> RunSummary:
    start = time.perf_counter()
    if workers <= 1:
        ok = [materialize_partition(profile, d, instance) for d in days]
    else:
        # Separate processes, each its own Dagster run against the shared (persistent) instance.
        # spawn, not fork: a forked child of a process that already ran torch ops can hang in
        # torch's thread pool (seen: the benchmark's simulator partitions after the public half)
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            ok = list(pool.map(materialize_partition, [profile] * len(days), days))
    middle = time.perf_counter()
    failed = [d for d, good in zip(days, ok) if not good]
    if rest and not failed:
        result = materialize_rest(profile, instance, groups)
        if not result.success:
            failed.append("unpartitioned assets")
    return RunSummary(days, middle - start, time.perf_counter() - middle, failed)
