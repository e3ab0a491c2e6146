import json
from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import f1_score

from mfg_pipeline.modalities import get_modality
from mfg_pipeline.tasks import reports
from mfg_pipeline.tasks.baselines import Baseline, exact_split_points
from mfg_pipeline.tasks.metrics import compute_metrics
from mfg_pipeline.tasks.protocol import MODELS, label_subset, run_protocol, validation_split
from mfg_pipeline.tasks.registry import TASKS, TaskSpec, get_task
from mfg_pipeline.training.device import cpu_runtime
from mfg_pipeline_tests import synthetic as S


def test_default_registry_has_the_five_tasks():
    names = {t.name: t for t in TASKS}
    assert set(names) == {"product_quality", "equipment_failure", "remaining_useful_life", "surface_defect_type",
                          "maintenance_log_category"}
    rul = names["remaining_useful_life"]
    assert rul.kind == "regression" and rul.metric == "rmse" and rul.higher_is_better is False
    assert names["surface_defect_type"].modality == "image" and names["maintenance_log_category"].modality == "text"
    for t in TASKS:
        assert len(t.seeds) >= 3 and min(t.label_fractions) <= 0.01 and max(t.label_fractions) == 1.0
        assert t.finetune_mode in {"full", "linear_probe"}
    assert get_task("product_quality").dataset == "quality_dataset"
    assert TASKS[0].scaled(0.1).steps == max(2, round(TASKS[0].steps * 0.1))


def test_label_subsets_are_deterministic_nested_stratified():
    rng = np.random.default_rng(0)
    y = np.concatenate([np.zeros(500, int), np.ones(20, int), np.full(3, 2)])
    rng.shuffle(y)
    a = label_subset(y, 0.01, seed=1, kind="classification")
    b = label_subset(y, 0.01, seed=1, kind="classification")
    assert np.array_equal(a, b)  # same subset for every model at a seed
    assert set(np.unique(y[a])) == {0, 1, 2}  # at least one per class
    c = label_subset(y, 0.1, seed=1, kind="classification")
    assert set(a) <= set(c)  # nested
    assert not np.array_equal(a, label_subset(y, 0.01, seed=2, kind="classification"))
    assert len(label_subset(y, 1.0, seed=1, kind="classification")) == len(y)
    r = label_subset(np.linspace(0, 1, 300), 0.05, seed=0, kind="regression")
    assert len(r) == 15


def test_validation_split_is_by_machine():
    machines = np.repeat([f"M{i}" for i in range(10)], 10)
    fit, val = validation_split(np.arange(100), machines, seed=0, min_val_samples=40)
    assert val is not None and not set(machines[fit]) & set(machines[val])
    fit2, val2 = validation_split(np.arange(10), machines, seed=0, min_val_samples=40)
    assert val2 is None and len(fit2) == 10


def test_metrics_values():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    m = compute_metrics("classification", y, proba)
    assert m["accuracy"] == 0.75 and m["auroc"] == 1.0
    r = compute_metrics("regression", np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    assert r["rmse"] == pytest.approx(np.sqrt(2.5)) and r["mae"] == 1.5


def _tiny(task: TaskSpec) -> TaskSpec:
    return replace(task, steps=6, eval_every=3, seeds=(0, 1, 2), label_fractions=(0.05, 1.0), min_val_samples=30)


def test_protocol_and_report_schema(tmp_path):
    task = _tiny(get_task("equipment_failure"))
    backbone = get_modality("sensor").build(S.sensor_corpus(64), d_model=32, ff_dim=64)
    dataset = S.sensor_dataset("failure_dataset", 120)
    protocol = run_protocol(task, backbone, dataset)
    rows = protocol["results"]
    assert len(rows) == len(task.seeds) * len(task.label_fractions) * len(MODELS)
    # every model at a (seed, fraction) saw the same number of labels
    for s in task.seeds:
        for f in task.label_fractions:
            n = {r["n_labeled"] for r in rows if r["seed"] == s and r["label_fraction"] == f}
            assert len(n) == 1
    # paired intervals over the held-out machines: one per (fraction, model other than pretrained),
    # the difference that of the seed means in ``results``
    mean = {(m, f): np.mean([r["value"] for r in rows if (r["model"], r["label_fraction"]) == (m, f)])
            for m in MODELS for f in task.label_fractions}
    paired = {(p["model"], p["label_fraction"]): p for p in protocol["paired_differences"]}
    assert set(paired) == {(m, f) for m in ("scratch", "baseline") for f in task.label_fractions}
    for (m, f), p in paired.items():
        assert p["difference"] == pytest.approx(mean[(m, f)] - mean[("pretrained", f)], abs=1e-9)
        assert p["low"] <= p["high"] and p["unit"] == "machine_id"
        assert p["n_units"] == dataset.index.loc[dataset.index["split"] == "test", "machine_id"].nunique()
    report = reports.build_report(task, protocol, split="test: held-out machines")
    paths = reports.write_task_report(tmp_path / task.name, report)
    data = json.loads(paths["metrics"].read_text())
    for key in ("task", "modality", "metric", "higher_is_better", "split", "n_train", "n_test", "results"):
        assert key in data
    assert data["split"] == "test: held-out machines" and data["n_test"] == int((dataset.index["split"] == "test").sum())
    for r in data["results"]:
        assert r["model"] in {"pretrained", "scratch", "baseline"} and np.isfinite(r["value"])
        assert set(r) >= {"model", "label_fraction", "seed", "value"}
    assert paths["curve"].read_bytes()[:4] == b"\x89PNG"
    assert "| pretrained |" in paths["table"].read_text()
    assert "Difference to `pretrained`" in paths["table"].read_text() and data["paired_differences"]
    summary = reports.write_summary(tmp_path, [data]).read_text()
    assert "equipment_failure" in summary and "of 1" in summary
    low = reports.lowest_fraction_comparison(data)
    interval = low["scratch_minus_pretrained"]
    assert interval["difference"] == pytest.approx(paired[("scratch", 0.05)]["difference"])
    assert f"{interval['low']:+.4f} to {interval['high']:+.4f}" in summary
    # a handful of held-out machines: the interval is printed with its caveat, and no gap is judged
    assert interval["n_units"] < 10 and low["beyond_test_noise"] is None and reports.NOISE_VERDICTS[None] in summary
    assert f"Only {interval['n_units']} units" in paths["table"].read_text()


def test_protocol_regression_and_text():
    task = _tiny(get_task("remaining_useful_life"))
    backbone = get_modality("sensor").build(S.sensor_corpus(64), d_model=32, ff_dim=64)
    out = run_protocol(replace(task, seeds=(0,)), backbone, S.sensor_dataset("rul_dataset", 80, kind="regression"))
    assert {r["model"] for r in out["results"]} == set(MODELS)
    text_task = replace(_tiny(get_task("maintenance_log_category")), seeds=(0,), label_fractions=(0.1,))
    text_bb = get_modality("text").build(S.text_corpus(100), hidden_size=32, intermediate_size=64, vocab_size=300)
    out = run_protocol(text_task, text_bb, S.maintenance_log_dataset(60))
    assert all(0.0 <= r["value"] <= 1.0 for r in out["results"])


def test_the_protocol_trains_a_probe_by_the_loop_on_the_features_as_they_are():
    # the loop's probe reads [n, dim] features, not the closed-form probe's [views, n, dim]
    task = replace(_tiny(get_task("remaining_useful_life")), seeds=(0,), label_fractions=(1.0,), probe="sgd",
                   head_hidden=16)
    backbone = get_modality("sensor").build(S.sensor_corpus(64), d_model=32, ff_dim=64)
    (row,) = run_protocol(task, backbone, S.sensor_dataset("rul_dataset", 80, kind="regression"),
                          models=("pretrained",))["results"]
    assert row["steps_done"] >= 1 and np.isfinite(row["value"]) and row["value"] > 0


def test_summary_says_where_pretrained_loses():
    base = {"task": "t", "modality": "sensor", "metric": "rmse", "higher_is_better": False, "split": "test",
            "n_train": 10, "n_test": 5}
    results = [{"model": "pretrained", "label_fraction": 0.01, "seed": s, "value": 10.0} for s in range(3)]
    results += [{"model": "scratch", "label_fraction": 0.01, "seed": s, "value": 8.0} for s in range(3)]
    text = reports.summary_markdown([{**base, "results": results}])
    assert "NOT beat scratch" in text and "**t**" in text and "0 of 1" in text


def test_task_model_with_tied_text_weights_saves_as_safetensors(tmp_path):
    from mfg_pipeline.storage import atomic
    from mfg_pipeline.tasks.heads import HeadSettings, train_head

    bb = get_modality("text").build(S.text_corpus(80), hidden_size=32, intermediate_size=64, vocab_size=300)
    data = S.maintenance_log_dataset(40)
    inputs = bb.prepare(data)
    y = data.index["target"].to_numpy()
    for mode in ("linear_probe", "full"):
        pred = train_head(bb, inputs, y, HeadSettings("classification", 5, mode, steps=3, batch_size=8))
        pred.save(tmp_path / mode)
        state = atomic.read_tensors(tmp_path / mode / "task_model.safetensors")
        assert any(k.startswith("head.") for k in state) and any(k.startswith("backbone.") for k in state)
        assert pred.predict(inputs).shape == (40, 5)


def test_closed_form_probe_classification_matches_sklearn_and_picks_c_by_cv():
    import torch
    from sklearn.linear_model import LogisticRegression

    from mfg_pipeline.tasks.heads import HeadSettings, fit_probe, train_head

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = rng.normal(size=(60, 10)) * 3 + 5
    x[:, 0] += 12 * y  # one informative feature
    feats = torch.as_tensor(x, dtype=torch.float32)
    pred = train_head(None, feats, y, HeadSettings("classification", 4, "linear_probe", steps=0))
    assert pred.result.steps_done == 0 and pred.result.best_value in set(np.logspace(-3, 1, 9).tolist())
    proba = pred.predict(feats)
    assert proba.shape == (60, 4) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert proba[:, 3].max() < 1e-6  # a class without labels is never predicted
    assert (proba.argmax(1) == y).mean() > 0.9
    xs = (x - x.mean(0)) / x.std(0)
    ref = LogisticRegression(C=pred.result.best_value, class_weight="balanced", max_iter=1000).fit(xs, y)
    assert np.allclose(proba[:, :3], ref.predict_proba(xs), atol=1e-4)
    # one label per class: no CV possible, the strongly regularised prior
    one = fit_probe(None, feats[[0, 20, 40]], y[[0, 20, 40]], HeadSettings("classification", 3, "linear_probe", 0))
    assert one.result.best_value == 1e-2


def test_closed_form_probe_binary_and_regression():
    import torch

    from mfg_pipeline.tasks.heads import HeadSettings, train_head

    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 6))
    yb = (x[:, 1] > 0).astype(int)
    feats = torch.as_tensor(x, dtype=torch.float32)
    pb = train_head(None, feats, yb, HeadSettings("classification", 2, "linear_probe", steps=0)).predict(feats)
    assert compute_metrics("classification", yb, pb)["auroc"] > 0.98
    yr = (3 * x[:, 2] - x[:, 0] + 50).astype(np.float32)
    pr = train_head(None, feats, yr, HeadSettings("regression", 1, "linear_probe", steps=0))
    assert pr.result.best_value <= 1.0  # clean linear target: little shrinkage chosen by LOO
    assert compute_metrics("regression", yr, pr.predict(feats))["rmse"] < 0.2
    # the SGD probe stays available
    sgd = train_head(None, feats, yr, HeadSettings("regression", 1, "linear_probe", steps=5, probe="sgd"))
    assert sgd.result.steps_done == 5


def test_regression_predictions_stay_in_the_training_target_range():
    import torch

    from mfg_pipeline.tasks.heads import HeadSettings, train_head

    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 4))
    y = np.minimum(40 * x[:, 0] + 100, 125).astype(np.float32)  # capped, like C-MAPSS RUL
    feats = torch.as_tensor(x, dtype=torch.float32)
    far = torch.as_tensor([[5.0, 0, 0, 0], [-5.0, 0, 0, 0]])  # a linear head would say ~300 and ~-100
    for settings in (HeadSettings("regression", 1, "linear_probe", steps=0),
                     HeadSettings("regression", 1, "linear_probe", steps=200, probe="sgd", lr=3e-2)):
        pred = train_head(None, feats, y, settings).predict(far)
        assert pred[0] == y.max() and pred[1] == y.min()


def test_refit_trains_again_on_fit_and_validation_for_the_chosen_steps():
    import torch

    from mfg_pipeline.tasks.heads import HeadSettings, train_head

    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.normal(size=(200, 5)), dtype=torch.float32)
    y = (x[:, 0] * 2 + 0.1 * torch.as_tensor(rng.normal(size=200), dtype=torch.float32)).numpy()
    settings = HeadSettings("regression", 1, "linear_probe", steps=60, probe="sgd", eval_every=10, patience=2, lr=1e-2)
    val = (x[150:], y[150:])
    once = train_head(None, x[:150], y[:150], settings, val=val)
    again = train_head(None, x[:150], y[:150], replace(settings, refit=True), val=val)
    assert once.chosen_by is None and again.chosen_by is not None
    assert again.chosen_by.best_step == once.result.best_step
    assert again.result.steps_done == once.result.best_step and again.result.val_history == []
    # the refit saw the validation rows: its standardisation is that of all 200 targets
    assert abs(float(again.model.head.target_mean) - float(np.mean(y))) < 1e-4
    # no validation data: nothing to refit on
    assert train_head(None, x[:150], y[:150], replace(settings, refit=True)).chosen_by is None


def test_class_weight_none_trains_on_plain_cross_entropy():
    import torch

    from mfg_pipeline.tasks.heads import HeadSettings, train_head

    # 5 % positives that barely separate: balanced weights push the rare class's scores up
    rng = np.random.default_rng(4)
    y = (rng.random(400) < 0.05).astype(np.int64)
    x = torch.as_tensor(rng.normal(size=(400, 3)) + 0.3 * y[:, None], dtype=torch.float32)
    settings = HeadSettings("classification", 2, "linear_probe", steps=200, probe="sgd", lr=5e-2)
    balanced = train_head(None, x, y, settings).predict(x)[:, 1]
    plain = train_head(None, x, y, replace(settings, class_weight="none")).predict(x)[:, 1]
    assert balanced.mean() > 0.3 and plain.mean() < 0.15  # plain: scores near the 5 % base rate
    with pytest.raises(ValueError, match="class_weight"):
        train_head(None, x, y, replace(settings, class_weight="inverse"))


def test_refit_is_refused_where_validation_data_chooses_the_threshold():
    with pytest.raises(ValueError, match="refit"):
        TaskSpec("x", "sensor", "d", "classification", "f1", threshold="validation", refit=True)
    with pytest.raises(ValueError, match="refit"):
        TaskSpec("x", "sensor", "d", "classification", "f1", threshold="cross_fit", validate_by="row", refit=True)
    with pytest.raises(ValueError, match="cross_fit needs"):  # folds by machine are not built
        TaskSpec("x", "sensor", "d", "classification", "f1", threshold="cross_fit")
    with pytest.raises(ValueError, match="threshold must be one of"):
        TaskSpec("x", "sensor", "d", "classification", "f1", threshold="best")
    with pytest.raises(ValueError, match="train_target refines the classes"):
        TaskSpec("x", "sensor", "d", "regression", "rmse", train_target="stage")


def test_a_hidden_layer_in_the_head_fits_what_a_linear_head_cannot(tmp_path):
    import torch
    from safetensors.torch import load_file

    from mfg_pipeline.tasks.heads import HeadSettings, train_head

    # |x0| -- wear that shows in how far a reading strays either way -- has no linear fit
    rng = np.random.default_rng(5)
    x = torch.as_tensor(rng.normal(size=(300, 3)), dtype=torch.float32)
    y = (10 * x[:, 0].abs()).numpy()
    settings = HeadSettings("regression", 1, "linear_probe", steps=400, probe="sgd", lr=1e-2, seed=0)
    rmse = {}
    for hidden in (0, 32):
        fitted = train_head(None, x, y, replace(settings, hidden=hidden))
        rmse[hidden] = compute_metrics("regression", y, fitted.predict(x))["rmse"]
    assert rmse[0] > 5.0 and rmse[32] < 0.4 * rmse[0]
    fitted.save(tmp_path)  # the hidden-layer head, the loop's last
    assert load_file(tmp_path / "task_model.safetensors")["head.hidden.0.weight"].shape == (32, 3)
    assert fitted.predict(x[:0]).shape == (0,)
    with pytest.raises(ValueError, match="hidden layer is trained by the loop"):
        train_head(None, x, y, HeadSettings("regression", 1, "linear_probe", steps=0, hidden=32))
    with pytest.raises(ValueError, match="x: a head with a hidden layer needs"):
        TaskSpec("x", "sensor", "d", "regression", "rmse", head_hidden=32)
    with pytest.raises(ValueError, match="shared_backbone_steps"):
        TaskSpec("x", "sensor", "d", "regression", "rmse", head_hidden=32, finetune_mode="full", shared_backbone=True)
    assert TaskSpec("x", "sensor", "d", "regression", "rmse", head_hidden=32, probe="sgd").head_hidden == 32


def test_a_registry_entry_with_an_unknown_class_weight_fails_when_it_is_built():
    with pytest.raises(ValueError, match="x: class_weight must be one of"):
        TaskSpec("x", "sensor", "d", "classification", "f1", class_weight="inverse")


def test_augmented_probe_fits_every_copy_and_cv_keeps_an_inputs_copies_in_one_fold():
    import torch
    from sklearn.linear_model import LogisticRegression

    from mfg_pipeline.tasks.heads import HeadSettings, fit_probe, probe_folds

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 12)
    x = rng.normal(size=(2, 36, 6)) + 4 * y[None, :, None] * (np.arange(6) == 0)
    feats = torch.as_tensor(x, dtype=torch.float32)  # two copies of each of 36 inputs
    pred = fit_probe(None, feats, y, HeadSettings("classification", 3, "linear_probe", 0, augment="dihedral"))
    rows = x.reshape(72, 6)
    xs = (rows - rows.mean(0)) / rows.std(0)
    ref = LogisticRegression(C=pred.result.best_value, class_weight="balanced", max_iter=1000).fit(xs, np.tile(y, 2))
    assert np.allclose(pred.predict(feats[1]), ref.predict_proba(xs[36:]), atol=1e-4)
    groups = np.tile(np.arange(36), 2)
    folds = probe_folds(np.tile(y, 2), groups, seed=0)
    assert len(folds) == 3
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test]) and len(set(np.tile(y, 2)[test])) == 3


def test_a_class_with_one_label_is_fitted_in_every_fold_and_does_not_switch_the_cv_off():
    import torch

    from mfg_pipeline.tasks.heads import HeadSettings, fit_probe, probe_folds

    y = np.array([0] * 8 + [1] * 8 + [2])
    folds = probe_folds(np.tile(y, 2), np.tile(np.arange(17), 2), seed=0)
    assert len(folds) == 3
    for train, test in folds:
        assert {16, 33} <= set(train) and not {16, 33} & set(test)  # both copies of the single class-2 input
        assert sorted(set(np.tile(y, 2)[test])) == [0, 1]
    assert sorted(np.concatenate([test for _, test in folds]).tolist()) == [i for i in range(34) if i not in (16, 33)]
    assert probe_folds(np.array([0, 0, 1, 2]), np.arange(4), seed=0) == []  # one class with two labels: the prior

    rng = np.random.default_rng(0)
    x = rng.normal(size=(17, 4)) * 0.1 + 10 * np.eye(4)[y]
    pred = fit_probe(None, torch.as_tensor(x, dtype=torch.float32), y, HeadSettings("classification", 3, "linear_probe", 0))
    assert pred.result.best_value == 10.0  # separable classes: CV picks the weakest regularisation, not the 1e-2 prior
    assert (pred.predict(torch.as_tensor(x, dtype=torch.float32)).argmax(1) == y).all()


def test_augment_is_checked_against_the_modality_and_the_head():
    from mfg_pipeline.tasks.heads import HeadSettings

    with pytest.raises(ValueError, match="sensor tasks can augment with"):
        replace(get_task("equipment_failure"), augment="dihedral")
    with pytest.raises(ValueError, match="closed-form probe"):
        HeadSettings("classification", 3, "linear_probe", 5, probe="sgd", augment="dihedral")
    assert get_task("neu_surface_defect").augment == "dihedral"


def test_protocol_with_dihedral_augment_trains_the_scratch_twin_on_random_views_and_scores_every_view(monkeypatch):
    import torch

    from mfg_pipeline.modalities.image import ImageBackbone, dihedral
    from mfg_pipeline.tasks import protocol

    calls, scored = [], []
    original, original_views = ImageBackbone.random_view, protocol.predict_views

    def spy(self, inputs, augment, gen):
        calls.append(len(inputs))
        return original(self, inputs, augment, gen)

    def spy_views(predictor, views, runtime=None):
        scored.append(views)
        return original_views(predictor, views, runtime)

    monkeypatch.setattr(ImageBackbone, "random_view", spy)
    monkeypatch.setattr(protocol, "predict_views", spy_views)
    task = replace(_tiny(get_task("surface_defect_type")), seeds=(0,), label_fractions=(1.0,), augment="dihedral")
    backbone = get_modality("image").build(S.image_corpus(32), arch="patch_dictionary", patch=5, atoms=12, scales=[2])
    dataset = S.defect_dataset(60)
    out = run_protocol(task, backbone, dataset)
    by_model = {r["model"]: r for r in out["results"]}
    assert set(by_model) == set(MODELS) and all(np.isfinite(r["value"]) for r in out["results"])
    assert by_model["scratch"]["steps_done"] > 0 and len(calls) >= by_model["scratch"]["steps_done"]
    # both networks score the test images' 8 copies (the pretrained probe from their features, the
    # scratch twin from the images), the images as they are first
    n_test = by_model["pretrained"]["n_test"]
    test_scored = [views for views in scored if len(views[0]) == n_test]
    assert len(test_scored) == 2 and all(len(views) == 8 for views in test_scored)
    test_images = backbone.prepare(dataset)[torch.as_tensor(np.where(dataset.index["split"].to_numpy() == "test")[0])]
    assert all(torch.equal(v, dihedral(test_images, k)) for k, v in enumerate(test_scored[1]))
    assert torch.allclose(test_scored[0][3], backbone.embed(dihedral(test_images, 3)), atol=1e-5)


def test_the_finetuned_asset_scores_the_test_images_over_their_eight_copies_too(tmp_path, monkeypatch):
    import torch

    from mfg_pipeline.assets import finetuning
    from mfg_pipeline.modalities.image import dihedral
    from mfg_pipeline.resources import DataStore
    from mfg_pipeline.storage import artifacts

    store = DataStore(landing_dir=str(tmp_path / "landing"), work_dir=str(tmp_path / "work"),
                      reports_dir=str(tmp_path / "reports"))
    dataset = S.defect_dataset(60)
    task = replace(_tiny(get_task("surface_defect_type")), augment="dihedral")
    artifacts.save_labeled_dataset(tmp_path / "work" / task.dataset, dataset)
    backbone = get_modality("image").build(S.image_corpus(32), arch="patch_dictionary", patch=5, atoms=12, scales=[2])
    backbone.save(tmp_path / "work" / task.backbone_asset)
    scored = []
    original = finetuning.predict_views
    monkeypatch.setattr(finetuning, "predict_views", lambda p, views, runtime=None: scored.append(views)
                        or original(p, views, runtime))
    out = finetuning.finetune_task(task, store, cpu_runtime())
    test = torch.as_tensor(np.where(dataset.index["split"].to_numpy() == "test")[0])
    [views] = scored
    assert len(views) == 8 and all(torch.equal(v, dihedral(backbone.prepare(dataset)[test], k)) for k, v in enumerate(views))
    assert 0 <= out["metrics"]["macro_f1"] <= 1


def test_predict_views_is_the_mean_prediction_and_one_view_the_plain_one():
    import torch

    from mfg_pipeline.tasks.heads import HeadSettings, fit_probe, predict_views

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    x = torch.as_tensor(rng.normal(size=(30, 4)) + 3 * np.eye(4)[y], dtype=torch.float32)
    pred = fit_probe(None, x, y, HeadSettings("classification", 3, "linear_probe", 0))
    views = [x, x.flip(1), 2 * x]
    assert np.array_equal(predict_views(pred, [x]), pred.predict(x))
    assert np.allclose(predict_views(pred, views), sum(pred.predict(v) for v in views) / 3, atol=1e-7)


def test_unstandardised_probe_fits_the_bag_as_it_is_and_a_bag_cannot_be_finetuned():
    import torch
    from sklearn.linear_model import LogisticRegression

    from mfg_pipeline.tasks.heads import HeadSettings, fit_probe, train_head

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 15)
    x = rng.poisson(0.3, size=(45, 30)).astype(float)
    x[np.arange(45), y] += 2  # one piece per class
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    feats = torch.as_tensor(x, dtype=torch.float32)
    pred = fit_probe(None, feats, y, HeadSettings("classification", 3, "linear_probe", 0, standardize=False))
    assert float(pred.model.head.feat_mean.abs().sum()) == 0.0 and torch.equal(pred.model.head.feat_std, torch.ones(30))
    ref = LogisticRegression(C=pred.result.best_value, class_weight="balanced", max_iter=1000).fit(x, y)
    assert np.allclose(pred.predict(feats), ref.predict_proba(x), atol=1e-4)
    bags = get_modality("text").build(S.text_corpus(60), features="pieces", hidden_size=32, intermediate_size=64,
                                      vocab_size=200)
    with pytest.raises(ValueError, match="no weights to finetune"):
        train_head(bags, bags.tokenize(["a", "b"]), np.array([0, 1]), HeadSettings("classification", 2, "full", 2))


def test_self_training_pseudo_labels_the_confident_share_of_the_pool_per_class(monkeypatch):
    import torch

    from mfg_pipeline.tasks import heads

    rng = np.random.default_rng(0)
    centres = 3.0 * np.eye(8)[:3]

    def blobs(labels):
        return torch.as_tensor(centres[labels] + rng.normal(size=(len(labels), 8)), dtype=torch.float32)[None]

    y = np.array([0, 0, 1, 1, 1, 1, 2, 2])  # class 1 has half of the labels
    pool_y = rng.choice(3, 200, p=[0.25, 0.5, 0.25])  # the pool has the labels' class shares
    pool, test_y = blobs(pool_y), rng.integers(0, 3, 300)
    test = blobs(test_y)[0]
    settings = heads.HeadSettings("classification", 3, "linear_probe", 0)
    fits = []
    original = heads.fit_probe

    def spy(backbone, x, labels, s, **kw):
        fits.append(np.bincount(labels, minlength=3))
        return original(backbone, x, labels, s, **kw)

    monkeypatch.setattr(heads, "fit_probe", spy)
    features = blobs(y)
    probe, same = heads.self_trained_probe(features, y, pool, settings, rounds=0)
    assert len(fits) == 1 and probe is same and np.allclose(probe.predict(test), original(None, features, y, settings).predict(test))
    fits.clear()
    trained, labels_only = heads.self_trained_probe(features, y, pool, settings, rounds=4)
    assert np.allclose(labels_only.predict(test), probe.predict(test))
    # per round, 200 x share of the class's labels x 0.8 x round / 4 join the labeled ones
    # (when that many are predicted the class: these blobs are well apart)
    expected = [np.bincount(y, minlength=3)] + [
        np.bincount(y, minlength=3) + np.round(200 * np.array([0.25, 0.5, 0.25]) * 0.8 * r / 4) for r in range(1, 5)]
    assert [f.tolist() for f in fits] == [e.astype(int).tolist() for e in expected]
    accuracy = {name: (p.predict(test).argmax(1) == test_y).mean() for name, p in (("probe", probe), ("self", trained))}
    assert accuracy["self"] > accuracy["probe"] + 0.03  # measured 0.877 -> 0.933


def test_the_protocol_self_trains_only_the_pretrained_probe_on_unlabeled_train_inputs(monkeypatch):
    from mfg_pipeline.tasks import heads, protocol

    pools = []
    original = heads.self_trained_probe

    def spy(features, y, pool, settings, rounds, **kw):
        pools.append((features.shape[1], pool.shape[1], rounds))
        return original(features, y, pool, settings, rounds, **kw)

    monkeypatch.setattr(protocol, "self_trained_probe", spy)
    task = replace(_tiny(get_task("surface_defect_type")), seeds=(0,), label_fractions=(0.2, 1.0), self_training_rounds=2)
    backbone = get_modality("image").build(S.image_corpus(32), arch="patch_dictionary", patch=5, atoms=12, scales=[2])
    dataset = S.defect_dataset(60)
    out = run_protocol(task, backbone, dataset)
    n_train = int((dataset.index["split"] == "train").sum())
    by_fraction = {r["label_fraction"]: r["n_labeled"] for r in out["results"] if r["model"] == "pretrained"}
    # one call, for the fraction with unlabeled inputs, and its pool is the rest of TRAIN
    assert pools == [(by_fraction[0.2], n_train - by_fraction[0.2], 2)]
    [row] = [r for r in out["results"] if r["model"] == "pretrained" and r["label_fraction"] == 0.2]
    assert 0.0 <= row["labels_only_macro_f1"] <= 1.0  # the probe before self-training, reported beside it
    assert all("labels_only_macro_f1" not in r for r in out["results"] if r is not row)
    with pytest.raises(ValueError, match="self-training refits the closed-form probe"):
        replace(task, finetune_mode="full")


def test_exact_boosting_finds_a_sharp_rare_conjunction_and_an_unknown_method_is_refused():
    """``gbm_exact`` (shallow trees, splits between any two readings) learns a failure rule of two
    sharp thresholds from a few dozen positives, as AI4I's heat-dissipation rule is."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(6000, 3))
    y = ((x[:, 0] < 0.06) & (x[:, 1] < 0.5)).astype(int)  # ~3 % positives
    fit, test = slice(0, 3000), slice(3000, None)
    exact = Baseline("tabular", "classification", "gbm_exact", 2, seed=0).fit(x[fit], y[fit])
    assert f1_score(y[test], exact.predict_scores(x[test])[:, 1] >= 0.5) >= 0.95
    regressor = Baseline("tabular", "regression", "gbm_exact", 1, seed=0).fit(x[fit], 10 * x[fit, 0])
    assert np.abs(regressor.predict_scores(x[test]) - 10 * x[test, 0]).mean() < 0.3
    with pytest.raises(ValueError, match="baseline method"):
        Baseline("tabular", "classification", "xgboost", 2)


def test_exact_split_points_sit_at_the_rules_thresholds():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(3000, 3))
    y = ((x[:, 0] < 0.06) & (x[:, 1] < 0.5)).astype(int)
    points = exact_split_points(x, y, trees=20)
    assert len(points) == 3 and all(p == sorted(p) for p in points)
    assert min(abs(np.array(points[0]) - 0.06)) < 0.01 and min(abs(np.array(points[1]) - 0.5)) < 0.02
    assert exact_split_points(x, np.zeros(3000, int)) == [[], [], []]
