import json
import math
from dataclasses import replace

import dagster as dg
import pytest
import torch

from mfg_pipeline.assets.evaluation import evaluation_assets, model_assets
from mfg_pipeline.assets.finetuning import finetuning_assets
from mfg_pipeline.assets.model_checks import CHECK_NAME, model_checks, model_resources
from mfg_pipeline.assets.pretraining import pretraining_assets
from mfg_pipeline.modalities.base import resolve_dir
from mfg_pipeline.resources import ComputeResource, DataStore
from mfg_pipeline.tasks.registry import TASKS, get_task
from mfg_pipeline.tasks.reports import paired_row
from mfg_pipeline_tests.synthetic import write_synthetic_store


def _by_key(assets):
    out = {}
    for a in assets:
        for key in a.keys:
            out[key.to_user_string()] = a
    return out


def _deps(asset: dg.AssetsDefinition) -> set[str]:
    return {k.to_user_string() for k in asset.asset_deps[asset.key]}


def test_registry_to_assets_mapping():
    assets = _by_key(model_assets())
    assert {"sensor_backbone", "image_backbone", "text_backbone", "evaluation_summary"} <= set(assets)
    for task in TASKS:
        ft = assets[f"finetuned_{task.name}"]
        assert _deps(ft) == {f"{task.modality}_backbone", task.dataset}  # exactly its backbone and dataset
        assert ft.group_names_by_key[ft.key] == "finetuning"
        ev = assets[f"evaluation_{task.name}"]
        assert f"finetuned_{task.name}" in _deps(ev) and ev.group_names_by_key[ev.key] == "evaluation"
    for m in ("sensor", "image", "text"):
        bb = assets[f"{m}_backbone"]
        assert _deps(bb) == {f"{m}_corpus"} and bb.group_names_by_key[bb.key] == "pretraining"
    assert _deps(assets["evaluation_summary"]) == {f"evaluation_{t.name}" for t in TASKS}
    checks = model_checks()
    assert {next(iter(c.check_keys)).asset_key.to_user_string() for c in checks} == {f"evaluation_{t.name}" for t in TASKS}
    upstream = [dg.AssetSpec(k) for k in ["sensor_corpus", "image_corpus", "text_corpus", *{t.dataset for t in TASKS}]]
    store = DataStore(landing_dir="l", work_dir="w", reports_dir="r")
    dg.Definitions.validate_loadable(dg.Definitions(
        assets=[*upstream, *model_assets()], asset_checks=checks,
        resources={"store": store, "compute": ComputeResource(), **model_resources()}))


def test_adding_a_task_is_one_registry_entry():
    extra = replace(get_task("equipment_failure"), name="bearing_wear")
    names = {a.key.to_user_string() for a in finetuning_assets((*TASKS, extra))}
    assert "finetuned_bearing_wear" in names and len(evaluation_assets((*TASKS, extra))) == len(TASKS) + 2


# The main job's settings (CPU, fp32), then every task of every modality in bf16 on CPU and, where
# a GPU is (CI has none; `pytest -k cuda` on a lent GPU machine), on CUDA: the same test, so the
# GPU case's own checks are exercised everywhere.
DEVICES = [pytest.param("cpu", "fp32", ("equipment_failure",), id="cpu-fp32"),
           pytest.param("cpu", "bf16", tuple(t.name for t in TASKS), id="cpu-bf16-every-task"),
           pytest.param("cuda", "bf16", tuple(t.name for t in TASKS), id="cuda-bf16-every-task",
                        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"))]


@pytest.mark.parametrize(("device", "precision", "names"), DEVICES)
def test_materialize_backbone_finetuned_evaluation(tmp_path, device, precision, names):
    write_synthetic_store(tmp_path / "work")
    tasks = tuple(replace(get_task(n), steps=4, eval_every=2, label_fractions=(0.05, 1.0)) for n in names)
    store = DataStore(landing_dir=str(tmp_path / "landing"), work_dir=str(tmp_path / "work"),
                      reports_dir=str(tmp_path / "reports"))
    assets = model_assets(tasks, pretrain_scale=0.02)
    compute = ComputeResource(device=device, precision=precision)
    result = dg.materialize([*assets, *model_checks(tasks)],
                            resources={"store": store, "compute": compute, **model_resources()})
    assert result.success
    for task in tasks:
        rows = json.loads((tmp_path / "reports" / task.name / "metrics.json").read_text())["results"]
        assert len(rows) == 3 * 2 * len(task.seeds) and all(math.isfinite(r["value"]) for r in rows)
    assert (resolve_dir(tmp_path / "work" / "sensor_backbone") / "model.safetensors").exists()
    assert (resolve_dir(tmp_path / "work" / "finetuned_equipment_failure") / "task_model.safetensors").exists()
    assert not (tmp_path / "work" / "sensor_backbone" / "checkpoints").exists()
    saved = json.loads((resolve_dir(tmp_path / "work" / "finetuned_equipment_failure") / "task_model.json").read_text())
    assert saved["n_val"] > 0 and not saved["refit_on_fit_and_val"] and saved["n_trained_on"] == saved["n_fit"]
    assert saved["decision_threshold"] is None  # argmax task: no threshold to ship
    metrics = json.loads((tmp_path / "reports" / "equipment_failure" / "metrics.json").read_text())
    assert {r["model"] for r in metrics["results"]} == {"pretrained", "scratch", "baseline"}
    assert (tmp_path / "reports" / "summary.md").read_text().count("equipment_failure") >= 1
    evals = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert len(evals) == len(tasks) and evals["evaluation_equipment_failure"].check_name == CHECK_NAME
    assert evals["evaluation_equipment_failure"].severity == dg.AssetCheckSeverity.WARN
    # the check says whether the lowest fraction's gap is beyond the test machines' noise
    interval = evals["evaluation_equipment_failure"].metadata["scratch_minus_pretrained_interval"].value
    assert interval["difference"] == pytest.approx(paired_row(metrics, "scratch", "pretrained", 0.05)["difference"])
    assert f"{interval['low']:+.4f} to {interval['high']:+.4f}" in evals["evaluation_equipment_failure"].description
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    md = mats["sensor_backbone"].materialization.metadata
    assert md["steps"].value == 4 and md["params"].value > 0 and "loss_curve" in md


def test_pretraining_assets_one_per_modality():
    keys = {a.key.to_user_string() for a in pretraining_assets()}
    assert keys == {"sensor_backbone", "image_backbone", "text_backbone", "tabular_backbone"}


def test_plant_prefix_gives_a_second_independent_model_graph():
    from mfg_pipeline.tasks.registry import tasks_for_plant

    tasks = tasks_for_plant("cmapss", ["rul_dataset", "failure_dataset"])
    assert [t.name for t in tasks] == ["equipment_failure", "remaining_useful_life"]
    prefixed = _by_key(model_assets(tasks, prefix="cmapss"))
    assert set(prefixed) == {"cmapss/sensor_backbone", "cmapss/finetuned_equipment_failure",
                             "cmapss/finetuned_remaining_useful_life", "cmapss/evaluation_equipment_failure",
                             "cmapss/evaluation_remaining_useful_life", "cmapss/evaluation_summary"}
    assert _deps(prefixed["cmapss/finetuned_remaining_useful_life"]) == {"cmapss/sensor_backbone", "cmapss/rul_dataset"}
    upstream = [dg.AssetSpec(k) for k in ["sensor_corpus", "image_corpus", "text_corpus", *{t.dataset for t in TASKS}]]
    upstream += [dg.AssetSpec(["cmapss", k]) for k in ["sensor_corpus", "rul_dataset", "failure_dataset"]]
    store = DataStore(landing_dir="l", work_dir="w", reports_dir="r")
    dg.Definitions.validate_loadable(dg.Definitions(
        assets=[*upstream, *model_assets(), *model_assets(tasks, prefix="cmapss")],
        asset_checks=[*model_checks(), *model_checks(tasks, prefix="cmapss")],
        resources={"store": store, "compute": ComputeResource(), **model_resources()}))
