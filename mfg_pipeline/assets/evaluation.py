"""Evaluation assets: ``evaluation_<task>`` runs the label-efficiency protocol on the held-out
TEST split and writes ``<reports>/<task>/`` (metrics.json, PNG curve, Markdown table);
``evaluation_summary`` writes ``<reports>/summary.md`` across tasks (group ``evaluation``)."""


import time
from dataclasses import replace
from pathlib import Path

import dagster as dg

from mfg_pipeline.assets.keys import asset_key
from mfg_pipeline.assets.pretraining import asset_path
from mfg_pipeline.modalities import get_modality
from mfg_pipeline.resources import ComputeResource, DataStore
from mfg_pipeline.storage import artifacts
from mfg_pipeline.tasks import reports
from mfg_pipeline.tasks.protocol import class_names, run_protocol
from mfg_pipeline.tasks.registry import TASKS, TaskSpec
from mfg_pipeline.training.device import Runtime


class EvaluationConfig(dg.Config):
    scale: float = 1.0  # multiplies the task's step budget
    seeds: list[int] | None = None  # default: the TaskSpec's seeds
    label_fractions: list[float] | None = None  # default: the TaskSpec's fractions


UNIVERSAL = "universal_sensor_backbone"


def report_path(task: TaskSpec, prefix: str = "") -> str:
    """``<task>`` for a task of one plant (names are unique: public reports land in
    ``data/reports/<task>``); ``<plant>/<task>`` when several plants share the task."""
    return task.name if task.plant else asset_path(prefix, task.name)


def evaluate_task(task: TaskSpec, store: DataStore, runtime: Runtime, log=None, prefix: str = "") -> dict:
    """Work of ``evaluation_<task>``: protocol -> ``<reports>/<task>/`` files. Returns the report."""
    backbone = get_modality(task.modality).load(store.asset_dir(asset_path(prefix, task.backbone_asset)))
    dataset = artifacts.load_labeled_dataset(store.asset_dir(asset_path(prefix, task.dataset)))
    others = {}
    if task.shared_backbone:
        from mfg_pipeline.modalities.universal import load_universal

        others["universal"] = load_universal(store.asset_dir(UNIVERSAL), stats_features=task.shared_backbone_stats,
                                             scales=list(task.shared_backbone_scales),
                                             max_pool=task.shared_backbone_max_pool,
                                             channel_mean=task.shared_backbone_channel_mean)
    protocol = run_protocol(task, backbone, dataset, runtime, log=log, others=others)
    report = reports.build_report(task, protocol, split=f"test: {dataset.meta.get('split_rule', 'held-out test split')}",
                                  runtime=protocol["runtime"], protocol=dataset.meta.get("protocol"),
                                  n_classes=protocol["n_classes"], classes=class_names(dataset),
                                  # a dataset may know a non-model reference figure on its test split
                                  **({"reference": dataset.meta["reference"]} if dataset.meta.get("reference") else {}))
    reports.write_task_report(store.report_dir(report_path(task, prefix)), report)
    return report


def _evaluation_asset(task: TaskSpec, prefix: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(prefix, task.evaluation_asset),
        group_name="evaluation",
        kinds={"pytorch", "scikitlearn"},
        deps=[asset_key(prefix, task.finetuned_asset), asset_key(prefix, task.backbone_asset),
              asset_key(prefix, task.dataset), *([dg.AssetKey(UNIVERSAL)] if task.shared_backbone else [])],
        description=f"Label-efficiency protocol for {task.name}: pretrained vs scratch vs baseline at label "
                    f"fractions {list(task.label_fractions)} x seeds {list(task.seeds)}, on the TEST split.",
    )
    def _asset(context: dg.AssetExecutionContext, config: EvaluationConfig, store: DataStore,
               compute: ComputeResource) -> dg.MaterializeResult:
        started = time.perf_counter()
        spec = task.scaled(config.scale)
        if config.seeds:
            spec = replace(spec, seeds=tuple(config.seeds))
        if config.label_fractions:
            spec = replace(spec, label_fractions=tuple(config.label_fractions))
        report = evaluate_task(spec, store, Runtime.from_settings(compute), log=context.log.debug, prefix=prefix)
        low = reports.lowest_fraction_comparison(report)
        wall = time.perf_counter() - started
        context.log.info(f"{task.evaluation_asset}: at fraction {low['fraction']}: pretrained {low['pretrained']} "
                         f"scratch {low['scratch']} baseline {low['baseline']} ({wall:.1f}s)")
        report_dir = store.report_dir(report_path(task, prefix))
        return dg.MaterializeResult(metadata={
            "table": dg.MetadataValue.md(reports.markdown_table(report)),
            "lowest_fraction": dg.MetadataValue.json(low),
            "pretrained_beats_scratch_at_lowest_fraction": dg.MetadataValue.bool(bool(low["pretrained_beats_scratch"])),
            "n_runs": dg.MetadataValue.int(len(report["results"])),
            "n_train": dg.MetadataValue.int(report["n_train"]),
            "n_test": dg.MetadataValue.int(report["n_test"]),
            "timings_s": dg.MetadataValue.json(report["timings_s"]),
            "wall_time_s": dg.MetadataValue.float(round(wall, 2)),
            "metrics_json": dg.MetadataValue.path(str(report_dir / "metrics.json")),
            "curve": dg.MetadataValue.path(str(report_dir / "label_efficiency.png")),
        })

    return _asset


def _summary_asset(tasks: tuple[TaskSpec, ...], prefix: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(prefix, "evaluation_summary"),
        group_name="evaluation",
        deps=[asset_key(prefix, t.evaluation_asset) for t in tasks],
        description="summary.md across tasks: where pretrained beats scratch at the lowest label fraction, and where not.",
    )
    def _asset(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
        task_reports = [reports.load_task_report(store.report_dir(report_path(t, prefix))) for t in tasks]
        path = reports.write_summary(Path(store.reports_dir) / prefix if prefix else Path(store.reports_dir),
                                     task_reports)
        wins = {r["task"]: reports.lowest_fraction_comparison(r)["pretrained_beats_scratch"] for r in task_reports}
        return dg.MaterializeResult(metadata={
            "summary": dg.MetadataValue.md(path.read_text(encoding="utf-8")),
            "pretrained_beats_scratch": dg.MetadataValue.json(wins),
            "n_wins": dg.MetadataValue.int(sum(bool(v) for v in wins.values())),
            "n_tasks": dg.MetadataValue.int(len(task_reports)),
            "path": dg.MetadataValue.path(str(path)),
        })

    return _asset


def evaluation_assets(tasks: tuple[TaskSpec, ...] = TASKS, prefix: str = "") -> list[dg.AssetsDefinition]:
    return [_evaluation_asset(t, prefix) for t in tasks] + [_summary_asset(tasks, prefix)]


def model_assets(tasks: tuple[TaskSpec, ...] = TASKS, pretrain_scale: float = 1.0,
                 prefix: str = "", pretrain_overrides: dict | None = None) -> list[dg.AssetsDefinition]:
    """The whole model half: backbones of the modalities the tasks use, ``finetuned_<task>``,
    ``evaluation_<task>`` and ``evaluation_summary``; keys prefixed by ``prefix`` (a plant name)
    when given, artifacts under ``<work>/<prefix>/...``, reports under ``<reports>/<task>/``
    (task names are unique across plants) and the summary under ``<reports>/<prefix>/``.
    ``pretrain_overrides``: per modality, the plant's model config and budget (``Plant.pretrain``)."""
    from mfg_pipeline.assets.finetuning import finetuning_assets
    from mfg_pipeline.assets.pretraining import pretraining_assets
    from mfg_pipeline.modalities import MODALITIES

    used = {t.modality for t in tasks}
    mods = {name: spec for name, spec in MODALITIES.items() if name in used}
    return [*pretraining_assets(mods, pretrain_scale, prefix, pretrain_overrides), *finetuning_assets(tasks, prefix),
            *evaluation_assets(tasks, prefix)]
