"""Model checks: WARN when the pretrained model does not beat its scratch twin at the lowest
label fraction (the claim the product stands on), per ``evaluation_<task>``.

The comparison reads exactly the report that ``evaluation_<task>`` wrote (``<reports>/<task>/
metrics.json``). The finetuned model is an additional input of the check (Dagster's
new-model-vs-baseline pattern, ``additional_ins``): our assets return ``MaterializeResult`` and
store their artifacts through ``DataStore``, so the input is a dependency without a loaded value
(``dg.Nothing``), and its test metric is read from ``finetuned_<task>/task_model.json``.
"""

from __future__ import annotations

import dagster as dg

from mfg_pipeline.resources import DataStore
from mfg_pipeline.storage import atomic
from mfg_pipeline.tasks import reports
from mfg_pipeline.tasks.registry import TASKS, TaskSpec

CHECK_NAME = "check_pretrained_beats_scratch"


def _check(task: TaskSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(task.evaluation_asset),
        name=CHECK_NAME,
        additional_ins={"finetuned": dg.AssetIn(key=dg.AssetKey(task.finetuned_asset), dagster_type=dg.Nothing)},
        description=f"WARN if pretrained does not beat scratch on {task.name} ({task.metric}) at the lowest label fraction.",
        blocking=False,
    )
    def _check_fn(store: DataStore) -> dg.AssetCheckResult:
        report = reports.load_task_report(store.report_dir(task.name))
        low = reports.lowest_fraction_comparison(report)
        finetuned_path = store.asset_dir(task.finetuned_asset) / "task_model.json"
        finetuned = atomic.read_json(finetuned_path).get("test_metrics", {}) if finetuned_path.exists() else {}
        passed = bool(low["pretrained_beats_scratch"])
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=(f"pretrained {low['pretrained']:.4f} vs scratch {low['scratch']:.4f} "
                         f"({task.metric}, {'higher' if report['higher_is_better'] else 'lower'} is better) "
                         f"at label fraction {low['fraction']:g}") if low["pretrained"] is not None else "no results",
            metadata={
                "label_fraction": dg.MetadataValue.float(float(low["fraction"] or 0.0)),
                "pretrained": dg.MetadataValue.float(float(low["pretrained"] or float("nan"))),
                "scratch": dg.MetadataValue.float(float(low["scratch"] or float("nan"))),
                "baseline": dg.MetadataValue.float(float(low["baseline"] if low["baseline"] is not None else float("nan"))),
                "finetuned_all_labels_test": dg.MetadataValue.json(finetuned),
            },
        )

    return _check_fn


def model_checks(tasks: tuple[TaskSpec, ...] = TASKS) -> list[dg.AssetChecksDefinition]:
    return [_check(t) for t in tasks]
