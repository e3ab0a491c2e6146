"""Model checks: WARN when the pretrained model does not beat its scratch twin at the lowest
label fraction (the claim the product stands on), per ``evaluation_<task>``.

The comparison reads exactly the report that ``evaluation_<task>`` wrote (``<reports>/<task>/
metrics.json``). The finetuned model is an additional input of the check (Dagster's
new-model-vs-baseline pattern, ``additional_ins``). Our assets return ``MaterializeResult`` and
write through ``DataStore`` (no IO-manager value; a ``dg.Nothing`` input cannot be a check
parameter), so the input is loaded by a small input manager (``model_resources()``, to merge
into the Definitions' resources) that reads exactly ``<work>/finetuned_<task>/task_model.json``
(its test metrics with all labels).
"""


import dagster as dg

from mfg_pipeline.assets.evaluation import report_path
from mfg_pipeline.assets.keys import asset_key
from mfg_pipeline.modalities.base import resolve_dir
from mfg_pipeline.resources import DataStore
from mfg_pipeline.storage import atomic
from mfg_pipeline.tasks import reports
from mfg_pipeline.tasks.registry import TASKS, TaskSpec

CHECK_NAME = "check_pretrained_beats_scratch"
LOADER_KEY = "finetuned_model_json_loader"


@dg.input_manager(required_resource_keys={"store"})
def finetuned_model_json_loader(context: dg.InputContext) -> dict:
    """Load the JSON summary the upstream ``finetuned_<task>`` asset wrote via ``DataStore``."""
    store: DataStore = context.resources.store
    path = resolve_dir(store.asset_dir("/".join(context.asset_key.path))) / "task_model.json"
    return atomic.read_json(path)


def _check(task: TaskSpec, prefix: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key(prefix, task.evaluation_asset),
        name=CHECK_NAME,
        additional_ins={"finetuned": dg.AssetIn(key=asset_key(prefix, task.finetuned_asset),
                                                input_manager_key=LOADER_KEY)},
        description=f"WARN if pretrained does not beat scratch on {task.name} ({task.metric}) at the lowest label fraction.",
        blocking=False,
    )
    def _check_fn(finetuned: dict, store: DataStore) -> dg.AssetCheckResult:
        report = reports.load_task_report(store.report_dir(report_path(task, prefix)))
        low = reports.lowest_fraction_comparison(report)
        passed = bool(low["pretrained_beats_scratch"])
        paired = low["scratch_minus_pretrained"]
        interval = reports.noise_interval_text(low)
        noise = "" if interval is None else f"; scratch - pretrained, 95 % interval: {interval}"
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=(f"pretrained {low['pretrained']:.4f} vs scratch {low['scratch']:.4f} "
                         f"({task.metric}, {'higher' if report['higher_is_better'] else 'lower'} is better) "
                         f"at label fraction {low['fraction']:g}{noise}") if low["pretrained"] is not None else "no results",
            metadata={
                **({} if paired is None else {
                    "scratch_minus_pretrained_interval": dg.MetadataValue.json(paired),
                    "beyond_test_noise": dg.MetadataValue.text(reports.NOISE_VERDICTS[low["beyond_test_noise"]])}),
                "label_fraction": dg.MetadataValue.float(float(low["fraction"] or 0.0)),
                "pretrained": dg.MetadataValue.float(float(low["pretrained"] or float("nan"))),
                "scratch": dg.MetadataValue.float(float(low["scratch"] or float("nan"))),
                "baseline": dg.MetadataValue.float(float(low["baseline"] if low["baseline"] is not None else float("nan"))),
                "finetuned_all_labels_test": dg.MetadataValue.json(finetuned.get("test_metrics", {})),
            },
        )

    return _check_fn


def model_checks(tasks: tuple[TaskSpec, ...] = TASKS, prefix: str = "") -> list[dg.AssetChecksDefinition]:
    return [_check(t, prefix) for t in tasks]


def model_resources() -> dict[str, object]:
    """Resources the model checks need besides ``store``/``compute``: merge into Definitions."""
    return {LOADER_KEY: finetuned_model_json_loader}
