"""The public benchmarks' protocols: label fractions by engine / contiguous block, cross-load
pairs, last-cycle RUL scoring with the PHM08 score, F1 at a threshold chosen on held-out labels
(a validation split, or cross-fitting), and pretraining corpora that never see a test sample."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from mfg_pipeline.assets import finetuning
from mfg_pipeline.assets.evaluation import evaluate_task
from mfg_pipeline.datasets.corpus import corpus_from_dataset
from mfg_pipeline.landing.adapters import cmapss
from mfg_pipeline.modalities import get_modality
from mfg_pipeline.modalities.base import resolve_dir
from mfg_pipeline.resources import DataStore
from mfg_pipeline.storage import artifacts, atomic
from mfg_pipeline.storage.artifacts import LabeledDataset
from mfg_pipeline.tasks.metrics import best_f1_threshold, compute_metrics, phm08_score
from mfg_pipeline.tasks import protocol
from mfg_pipeline.tasks.baselines import Baseline, hand_features
from mfg_pipeline.tasks.protocol import (common_scale, cross_fit_folds, encode_targets, evaluated_scores, experiments,
                                         label_subset, run_protocol, training_targets)
from mfg_pipeline.tasks.registry import PUBLIC_TASKS, TASKS, get_task, tasks_for_plant
from mfg_pipeline.training.device import cpu_runtime
from mfg_pipeline_tests.public_kit import PLANTS, build, clean_plant, shared


def test_every_public_task_belongs_to_one_plant_that_builds_its_dataset():
    for task in PUBLIC_TASKS:
        plant = PLANTS[task.plant]
        assert task.dataset in plant.datasets
        assert tasks_for_plant(plant.name, plant.datasets).count(task) == 1
        assert len(task.seeds) >= 3
    # Simulator tasks never leak into public plants, nor public tasks into the simulator.
    assert not {t.name for t in TASKS} & {t.name for p in PLANTS.values() for t in tasks_for_plant(p.name, p.datasets)}
    assert tasks_for_plant("", ("rul_dataset",)) == (get_task("remaining_useful_life"),)
    fd = {t.name: t.label_fractions for t in PUBLIC_TASKS if t.name.startswith("cmapss")}
    assert fd["cmapss_fd001_rul"] == fd["cmapss_fd004_rul"] == (0.05, 0.1, 0.2, 1.0)
    assert fd["cmapss_fd002_rul"] == fd["cmapss_fd003_rul"] == (1.0,)


def test_label_fractions_by_engine_are_whole_nested_and_seeded():
    units = np.repeat([f"FD001-train-{u:03d}" for u in range(1, 101)], 7)
    y = np.tile(np.arange(7, dtype=float), 100)
    picks = {f: label_subset(y, f, seed=3, kind="regression", groups=units) for f in (0.05, 0.1, 0.2, 1.0)}
    assert [len(set(units[p])) for p in picks.values()] == [5, 10, 20, 100]
    for p in picks.values():  # whole engines: every window of a chosen engine is labeled
        assert len(p) == 7 * len(set(units[p]))
    assert set(units[picks[0.05]]) <= set(units[picks[0.1]]) <= set(units[picks[0.2]])
    again = label_subset(y, 0.1, seed=3, kind="regression", groups=units)
    assert np.array_equal(again, picks[0.1])
    assert set(units[label_subset(y, 0.1, seed=4, kind="regression", groups=units)]) != set(units[picks[0.1]])


def test_label_fractions_by_block_are_one_contiguous_run_per_recording():
    recording = np.repeat(["a", "b", "c"], 40)
    order = np.tile(np.arange(40), 3)
    shuffled = np.random.default_rng(0).permutation(len(order))  # rows need not be in time order
    recording, order = recording[shuffled], order[shuffled]
    y = np.zeros(len(order), int)
    for fraction, k in ((0.05, 2), (0.1, 4), (1.0, 40)):
        pos = label_subset(y, fraction, seed=1, kind="classification", blocks=(recording, order))
        for name in "abc":
            taken = np.sort(order[pos][recording[pos] == name])
            assert len(taken) == k and (np.diff(taken) == 1).all()


def _cwru_like(loads=(0, 1, 2, 3), per_recording=6) -> LabeledDataset:
    rows = []
    for load in loads:
        for cls in range(3):
            for w in range(per_recording):
                rows.append({"machine_id": f"r{cls}-{load}", "recording": f"r{cls}-{load}", "load": load,
                             "window_in_recording": w, "target": cls, "split": "test" if w >= per_recording - 2 else "train"})
    index = pd.DataFrame(rows)
    x = torch.randn(len(index), 1, 64, generator=torch.Generator().manual_seed(0)) * (1 + torch.tensor(index["target"].to_numpy(), dtype=torch.float32)[:, None, None])
    meta = {"kind": "classification", "classes": ["a", "b", "c"],
            "cross_load_pairs": [[a, b] for a in loads for b in loads if a != b]}
    return LabeledDataset("cwru_fault_dataset", "sensor", x, index, meta)


def test_cross_load_runs_all_twelve_pairs_and_tests_only_on_the_target_load():
    dataset = _cwru_like()
    task = get_task("cwru_cross_load")
    y = dataset.index["target"].to_numpy()
    runs = experiments(task, dataset, y)
    assert len(runs) == 12 * len(task.seeds)
    pairs = {(r["extra"]["source_load"], r["extra"]["target_load"]) for r in runs}
    assert len(pairs) == 12 and all(a != b for a, b in pairs)
    loads = dataset.index["load"].to_numpy()
    for r in runs:
        a, b = r["extra"]["source_load"], r["extra"]["target_load"]
        assert set(loads[r["labeled"]]) == {a} and set(loads[r["test"]]) == {b}
        assert set(loads[r["fit"]]) == {a} and set(loads[r["val"]]) == {a}
        assert not set(r["fit"]) & set(r["val"])
        assert len(r["labeled"]) == int((loads == a).sum())  # all source labels
        assert np.array_equal(r["unlabeled"], r["test"])  # self-training reads the target load's inputs


def test_cross_load_protocol_reports_each_pair_for_every_model():
    dataset = _cwru_like(loads=(0, 1))
    task = replace(get_task("cwru_cross_load"), seeds=(0,), shared_backbone=False)
    spec = get_modality("sensor")
    backbone = spec.build(None, 0, channels=1, window=64)
    out = run_protocol(task, backbone, dataset)
    rows = pd.DataFrame(out["results"])
    assert set(map(tuple, rows[["source_load", "target_load"]].drop_duplicates().to_numpy())) == {(0, 1), (1, 0)}
    assert set(rows["model"]) == {"pretrained", "scratch", "baseline"}
    assert (rows["n_test"] == 18).all() and (rows["n_labeled"] == 18).all()
    # the synthetic classes differ in amplitude: window statistics do far better than chance (1/3)
    assert rows.loc[rows["model"] == "baseline", "value"].min() > 0.6
    # the probe self-trained on the target load (the task's setting); its labels-only twin is reported beside it
    assert task.self_training_rounds > 0
    assert rows.loc[rows["model"] == "pretrained", "labels_only_accuracy"].between(0, 1).all()
    assert rows.loc[rows["model"] != "pretrained", "labels_only_accuracy"].isna().all()


def test_per_domain_standardisation_gives_the_target_its_own_statistics():
    from mfg_pipeline.tasks.protocol import per_domain_standardised

    rng = np.random.default_rng(0)
    f = torch.as_tensor(rng.normal(size=(1, 30, 4)) * 3 + 5, dtype=torch.float32)
    f[:, 20:] = f[:, 20:] * 10 - 40  # the target load: another scale and offset
    labeled, target = np.arange(0, 12), np.arange(20, 30)
    out = per_domain_standardised(f, labeled, target, target)
    assert torch.allclose(out[0, target].mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(out[0, target].std(0, unbiased=False), torch.ones(4), atol=1e-4)
    assert torch.allclose(out[0, labeled].mean(0), torch.zeros(4), atol=1e-5)
    mean, std = f[0, labeled].mean(0), f[0, labeled].std(0, unbiased=False)
    assert torch.allclose(out[0, 12:20], (f[0, 12:20] - mean) / std, atol=1e-5)  # other rows: the labeled statistics
    with pytest.raises(ValueError, match="scored rows to be the unlabeled target"):
        per_domain_standardised(f, labeled, target, np.arange(12, 30))



@pytest.mark.parametrize("steps", [0, 4])
def test_extra_backbone_is_probed_or_finetuned_on_its_own_budget(steps):
    dataset = _cwru_like(loads=(0, 1))
    task = replace(get_task("cwru_within_load"), seeds=(0,), label_fractions=(1.0,), finetune_mode="full", steps=3,
                   eval_every=0, shared_backbone_steps=steps, shared_backbone_batch=8)
    backbone = get_modality("sensor").build(None, 0, channels=1, window=64)
    extra = get_modality("sensor").build(None, 1, channels=1, window=64)
    before = {k: v.clone() for k, v in extra.state_dict().items()}
    rows = pd.DataFrame(run_protocol(task, backbone, dataset, models=("pretrained",),
                                     others={"universal": extra})["results"])
    universal = rows[rows["model"] == "universal"].iloc[0]
    # finetuned: the loop ran its own budget (not the task's 3 steps), on a copy; probed: closed form, no loop
    assert universal["steps_done"] == steps
    assert rows.loc[rows["model"] == "pretrained", "steps_done"].iloc[0] == 3
    assert all(torch.equal(before[k], v) for k, v in extra.state_dict().items())

def test_phm08_score_and_f1_threshold():
    assert phm08_score(np.array([50.0, 50.0]), np.array([37.0, 60.0])) == pytest.approx((np.e - 1) + (np.e - 1))
    assert phm08_score(np.array([10.0]), np.array([10.0])) == 0.0
    # late predictions cost more than early ones of the same size
    assert phm08_score(np.array([50.0]), np.array([60.0])) > phm08_score(np.array([50.0]), np.array([40.0]))
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.9])
    t = best_f1_threshold(y, p)
    assert t == pytest.approx(0.35)
    m = compute_metrics("classification", y, np.stack([1 - p, p], 1), threshold=t)
    assert m["f1"] == 1.0 and m["threshold"] == pytest.approx(0.35)
    assert compute_metrics("classification", y, np.stack([1 - p, p], 1))["f1"] == pytest.approx(2 / 3)
    assert 0 < m["pr_auc"] <= 1


def _failure_rows(n: int = 600) -> LabeledDataset:
    """Rows failing by one of two mechanisms (~8 % positives), each failure labeled with its mode."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4, 1)).astype(np.float32)
    overheat, overload = x[:, 0, 0] > 1.75, x[:, 1, 0] < -1.75
    mode = np.where(overheat, "overheat", np.where(overload, "overload", "none"))
    index = pd.DataFrame({"machine_id": [f"row{i}" for i in range(n)], "target": (mode != "none").astype(int),
                          "failure_mode": mode, "split": np.where(np.arange(n) % 4 == 0, "test", "train")})
    return LabeledDataset("ai4i_failure_dataset", "sensor", torch.from_numpy(x), index,
                          {"kind": "classification", "classes": ["ok", "failure"],
                           "classes_of": {"failure_mode": ["none", "overheat", "overload"]}})


@pytest.mark.parametrize("threshold", ["validation", "cross_fit"])
def test_threshold_is_chosen_on_held_out_labels_for_every_model(threshold):
    task = replace(get_task("ai4i_machine_failure"), threshold=threshold, seeds=(0,), label_fractions=(1.0,),
                   steps=30, eval_every=10)
    backbone = get_modality("tabular").build(None, 0, n_features=4)
    rows = run_protocol(task, backbone, _failure_rows())["results"]
    assert {r["model"] for r in rows} == {"pretrained", "scratch", "baseline"}
    for r in rows:
        assert r["n_val"] > 0 and r["n_fit"] + r["n_val"] == r["n_labeled"]
        assert r["value"] == r["metrics"]["f1"] and "pr_auc" in r["metrics"] and "auroc" in r["metrics"]
        assert 0 < r["metrics"]["threshold"] < 1
        if threshold == "cross_fit":
            assert r["cross_fit_folds"] == 5 and r["n_val"] == 90  # 450 labels, a fifth held out per copy
            if r["model"] != "baseline":
                assert len(r["steps_done"]) == 5
    assert max(r["value"] for r in rows) > 0.5


@pytest.mark.parametrize("threshold", ["cross_fit", "argmax"])
def test_the_deployable_model_ships_the_threshold_its_task_is_evaluated_at(tmp_path, monkeypatch, threshold):
    store = DataStore(landing_dir=str(tmp_path / "landing"), work_dir=str(tmp_path / "work"),
                      reports_dir=str(tmp_path / "reports"))
    dataset = _failure_rows()
    artifacts.save_labeled_dataset(tmp_path / "work" / "ai4i_failure_dataset", dataset)
    get_modality("tabular").build(None, 0, n_features=4).save(tmp_path / "work" / "tabular_backbone")
    task = replace(get_task("ai4i_machine_failure"), threshold=threshold, steps=60, eval_every=20)
    chosen_on = []
    monkeypatch.setattr(finetuning, "best_f1_threshold",
                        lambda yt, p: chosen_on.append(yt) or best_f1_threshold(yt, p))
    out = finetuning.finetune_task(task, store, cpu_runtime())
    saved = atomic.read_json(resolve_dir(tmp_path / "work" / "finetuned_ai4i_machine_failure") / "task_model.json")
    assert any(saved["backbone_config"]["split_points"])  # the steps it reads ship with it
    if threshold == "argmax":
        assert saved["decision_threshold"] is None and out["threshold"] is None and not chosen_on
        assert saved["test_metrics"]["threshold"] == 0.5
        return
    # chosen once, on the model's own validation rows (a fifth of each class of TRAIN), and the
    # reported test metrics are taken at it
    [y_val] = chosen_on
    train = dataset.index["target"][dataset.index["split"] == "train"]
    assert len(y_val) == saved["n_val"] == round(0.2 * (train == 0).sum()) + round(0.2 * (train == 1).sum())
    assert y_val.sum() == round(0.2 * (train == 1).sum())
    assert 0 < saved["decision_threshold"] < 1 and saved["decision_threshold"] == out["threshold"]
    assert saved["test_metrics"]["threshold"] == saved["decision_threshold"]
    # the weights output the failure modes they were trained on; the threshold is on 1 - P(none)
    assert saved["n_outputs"] == 3 and saved["output_classes"] == ["none", "overheat", "overload"]


def test_the_evaluation_report_carries_the_datasets_reference_figure(tmp_path):
    store = DataStore(landing_dir=str(tmp_path / "landing"), work_dir=str(tmp_path / "work"),
                      reports_dir=str(tmp_path / "reports"))
    dataset = _failure_rows()
    reference = {"name": "the rule the rows were drawn by", "note": "not learnt", "metric": "f1", "value": 1.0}
    artifacts.save_labeled_dataset(tmp_path / "work" / "ai4i_failure_dataset",
                                   replace(dataset, meta={**dataset.meta, "reference": reference}))
    get_modality("tabular").build(None, 0, n_features=4).save(tmp_path / "work" / "tabular_backbone")
    task = replace(get_task("ai4i_machine_failure"), seeds=(0,), label_fractions=(1.0,), steps=20, eval_every=10)
    evaluate_task(task, store, cpu_runtime())
    saved = atomic.read_json(tmp_path / "reports" / "ai4i_machine_failure" / "metrics.json")
    assert saved["reference"] == reference and {r["model"] for r in saved["results"]} == {"pretrained", "scratch", "baseline"}


def test_cross_fitting_partitions_the_labels_and_averages_the_copies(monkeypatch):
    y = np.r_[np.zeros(90, int), np.ones(13, int)]
    positions = np.arange(1000, 1103)
    folds = cross_fit_folds(positions, np.r_[np.zeros(1000, int), y], 5, seed=0, min_val_samples=40)
    held = [h for _, h in folds]
    assert np.array_equal(np.sort(np.concatenate(held)), positions)  # every label held out exactly once
    for fit, h in folds:
        assert not np.intersect1d(fit, h).size and len(fit) + len(h) == len(positions)
        assert sum(y[h - 1000]) in (2, 3)  # positives dealt round the folds
    assert max(map(len, held)) - min(map(len, held)) <= 1
    again = cross_fit_folds(positions, np.r_[np.zeros(1000, int), y], 5, seed=0, min_val_samples=40)
    other = cross_fit_folds(positions, np.r_[np.zeros(1000, int), y], 5, seed=1, min_val_samples=40)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(folds, again))
    assert not all(np.array_equal(a, b) for (_, a), (_, b) in zip(folds, other))
    assert cross_fit_folds(positions[:30], y, 5, seed=0, min_val_samples=40) is None  # too few: fixed budget

    # one scale: a copy whose logits are another's stretched and shifted scores the same
    rng = np.random.default_rng(0)
    held, test = rng.uniform(0.01, 0.99, 20), rng.uniform(0.01, 0.99, 10)
    def squash(p, a, b):
        return 1 / (1 + np.exp(-(a * np.log(p / (1 - p)) + b)))
    oof, test_z = common_scale([held, squash(held, 3.0, 2.0)], [test, squash(test, 3.0, 2.0)])
    alone, alone_test = common_scale([held], [test])
    np.testing.assert_allclose(oof[20:], oof[:20], atol=1e-5)
    np.testing.assert_allclose(test_z, alone_test, atol=1e-5)
    assert np.all(np.diff(alone) * np.diff(held) > 0) and abs(np.median(alone)) < 1e-9  # order kept, centred

    # the protocol: 5 copies; the threshold sees every labeled row's out-of-fold score; the test
    # scores are the copies' mean on the common scale
    dataset = _failure_rows()
    # histogram boosting: exact boosting separates these rows the same way from every fold, and the
    # last line checks that the copies differ
    task = replace(get_task("ai4i_machine_failure"), seeds=(0,), label_fractions=(1.0,), baseline="gbm")
    chosen_on, scored = [], []
    real_threshold, real_metrics = protocol.best_f1_threshold, protocol.compute_metrics
    monkeypatch.setattr(protocol, "best_f1_threshold", lambda yt, p: chosen_on.append(len(yt)) or real_threshold(yt, p))
    monkeypatch.setattr(protocol, "compute_metrics",
                        lambda kind, yt, s, threshold=None: scored.append(s) or real_metrics(kind, yt, s, threshold))
    backbone = get_modality("tabular").build(None, 0, n_features=4)
    [row] = run_protocol(task, backbone, dataset, models=("baseline",))["results"]
    [run] = experiments(task, dataset, encode_targets(dataset, task))
    assert chosen_on == [row["n_labeled"]] == [len(run["labeled"])] and run["val"] is None
    hand, target = hand_features(dataset), encode_targets(dataset, task)
    z = []
    for fit, held_out in run["folds"]:
        gbm = Baseline("sensor", "classification", task.baseline, 2, 0).fit(hand[fit], target[fit])
        lh, lt = (np.log(np.clip(p, 1e-7, 1 - 1e-7) / (1 - np.clip(p, 1e-7, 1 - 1e-7)))
                  for p in (gbm.predict_scores(hand[held_out])[:, 1], gbm.predict_scores(hand[run["test"]])[:, 1]))
        z.append((lt - np.median(lh)) / (lh.std() + 1e-6))
    np.testing.assert_allclose(scored[0][:, 1], 1 / (1 + np.exp(-np.mean(z, axis=0))), rtol=1e-6)
    assert not np.allclose(z[0], z[1])


def test_models_train_on_the_failure_modes_and_are_scored_on_failure(monkeypatch):
    """AI4I's neural models learn each failure mode as its own class (one mechanism each); the task
    is still scored on Machine failure, with P(failure) = 1 - P(none), on the same labeled rows. The
    baseline fits Machine failure."""
    task = replace(get_task("ai4i_machine_failure"), seeds=(0,), label_fractions=(1.0,), threshold="validation",
                   steps=30, eval_every=10)
    assert task.train_target == "failure_mode"
    dataset = _failure_rows()
    y = encode_targets(dataset, task)
    modes, n_modes = training_targets(dataset, task, y)
    assert n_modes == 3 and np.array_equal(modes > 0, y == 1) and set(modes[y == 1]) == {1, 2}
    np.testing.assert_allclose(evaluated_scores(task, np.array([[0.7, 0.2, 0.1], [0.1, 0.0, 0.9]])),
                               [[0.7, 0.3], [0.1, 0.9]])
    trained, scored = [], []
    real_train, real_metrics = protocol.train_head, protocol.compute_metrics
    monkeypatch.setattr(protocol, "train_head", lambda body, x, yt, settings, **kw: trained.append(
        (settings.n_outputs, set(yt.tolist()), set(kw["val"][1].tolist()))) or real_train(body, x, yt, settings, **kw))
    monkeypatch.setattr(protocol, "compute_metrics",
                        lambda kind, yt, s, threshold=None: scored.append((set(yt.tolist()), s.shape[1]))
                        or real_metrics(kind, yt, s, threshold))
    rows = run_protocol(task, get_modality("tabular").build(None, 0, n_features=4), dataset)["results"]
    assert [t[0] for t in trained] == [3, 3] and all(t[1] == t[2] == {0, 1, 2} for t in trained)
    assert scored == [({0, 1}, 2)] * 3  # pretrained, scratch, baseline: binary truth, binary scores
    fitted, real_fit = [], Baseline.fit
    monkeypatch.setattr(Baseline, "fit", lambda self, x, yt: fitted.append(set(yt.tolist())) or real_fit(self, x, yt))
    run_protocol(task, get_modality("tabular").build(None, 0, n_features=4), dataset, models=("baseline",))
    assert fitted == [{0, 1}]
    # the same labeled rows as a task trained on Machine failure itself
    binary = replace(task, train_target=None)
    assert [len(r["labeled"]) for r in experiments(binary, dataset, y)] == [r["n_labeled"] for r in rows[:1]]
    assert all(r["metrics"]["auroc"] > 0.8 for r in rows)


def test_cmapss_protocol_scores_the_last_cycle_of_each_test_engine_on_whole_engines(tmp_path):
    source = shared("cmapss")
    landing = tmp_path / "raw"
    cmapss.adapt(source, landing, limit=10, subsets=("FD001",))
    plant = PLANTS["cmapss_fd001"]
    dataset = build(plant, clean_plant(plant, landing, tmp_path / "work"))
    task = replace(get_task("cmapss_fd001_rul"), seeds=(0, 1, 2), label_fractions=(0.2, 1.0), steps=4, eval_every=2,
                   shared_backbone=False)
    corpus = corpus_from_dataset(dataset)
    assert len(corpus) == int((dataset.index["split"] == "train").sum())  # no test engine in pretraining
    assert set(corpus.index["machine_id"]) == set(dataset.index.loc[dataset.index["split"] == "train", "machine_id"])
    backbone, _ = get_modality("sensor").pretrain(corpus, steps=2, model_overrides=plant.pretrain["sensor"]["model"])
    out = run_protocol(task, backbone, dataset)
    rows = pd.DataFrame(out["results"])
    assert out["n_test"] == 10 and (rows["n_test"] == 10).all()
    test = dataset.index[dataset.index["split"] == "test"]
    assert test["is_last_cycle"].all() and test["unit"].is_unique and (test["target"] <= 125).all()
    # Every model at a (seed, fraction) trains on the same engines: 20% of 10 = 2 engines.
    y = dataset.index["target"].to_numpy()
    for run in experiments(task, dataset, y):
        units = set(dataset.index["unit"].to_numpy()[run["labeled"]])
        assert len(units) == (2 if run["fraction"] == 0.2 else 10)
        assert not units & set(test["unit"])
    same = rows.groupby(["seed", "label_fraction"])["n_labeled"].nunique()
    assert (same == 1).all()
    for _, r in rows.iterrows():
        truth = np.minimum(test["rul"].to_numpy(), 125)
        assert r["metrics"]["phm08"] >= 0 and r["metrics"]["rmse"] > 0
        assert r["metrics"]["rmse"] <= np.sqrt(np.mean((truth - 0) ** 2)) * 2  # a sane scale, not garbage


def test_row_validation_is_stratified_so_rare_failures_reach_it():
    from mfg_pipeline.tasks.protocol import stratified_validation_split

    y = np.array([1] * 10 + [0] * 290)
    fit, val = stratified_validation_split(np.arange(300), y, seed=0, min_val_samples=40)
    assert not set(fit) & set(val) and len(fit) + len(val) == 300
    assert (y[val] == 1).sum() == 2 and (y[val] == 0).sum() == 58  # 20% of each class
    assert stratified_validation_split(np.arange(30), y, seed=0, min_val_samples=40)[1] is None
    # AI4I's three "machines" are product types: the task validates per reading instead
    assert get_task("ai4i_machine_failure").validate_by == "row"


def test_finetuning_and_protocol_hold_out_validation_the_same_way():
    from mfg_pipeline.tasks.protocol import hold_out_validation

    # AI4I-like: three "machines" (product types); validating by machine would hold out a whole type
    index = pd.DataFrame({"machine_id": np.repeat(["ai4i-L", "ai4i-M", "ai4i-H"], [120, 60, 20]),
                          "target": np.tile([0] * 9 + [1], 20), "split": "train"})
    dataset = LabeledDataset("ai4i_failure_dataset", "sensor", torch.zeros(200, 4, 1), index, {"kind": "classification"})
    y = index["target"].to_numpy()
    fit, val = hold_out_validation(get_task("ai4i_machine_failure"), dataset, y, np.arange(200), seed=0)
    assert set(index["machine_id"][fit]) == set(index["machine_id"][val]) == {"ai4i-L", "ai4i-M", "ai4i-H"}
    assert (y[val] == 1).sum() == 4  # 20% of the 20 failures
    units = np.array([f"FD001-train-{i // 10:03d}" for i in range(200)])
    engines = LabeledDataset("cmapss_rul_dataset", "sensor", None, index.assign(machine_id=units), {})
    fit, val = hold_out_validation(get_task("cmapss_fd001_rul"), engines, y, np.arange(200), seed=0)
    assert not set(units[fit]) & set(units[val])  # C-MAPSS validates by engine


def _shifted_target(dataset: LabeledDataset, load: int = 1) -> LabeledDataset:
    """The ``load`` windows get another gain, offset and a drift: a domain shift that survives
    per-window normalisation (the drift changes the waveform's shape)."""
    x = dataset.inputs.clone()
    on = torch.as_tensor(dataset.index["load"].to_numpy() == load)
    ramp = torch.linspace(-1, 1, x.shape[-1])
    x[on] = 3.0 * x[on] + 2.0 + 4.0 * ramp
    return LabeledDataset(dataset.name, dataset.modality, x, dataset.index, dataset.meta)


def test_target_stats_adaptation_uses_target_inputs_never_target_labels(monkeypatch):
    from mfg_pipeline.tasks.heads import HeadSettings, feature_stats, train_head

    assert get_task("cwru_cross_load").adapt == "target_stats"
    assert all(t.adapt == "none" for t in (*TASKS, *PUBLIC_TASKS) if t.name != "cwru_cross_load")
    with pytest.raises(ValueError):
        replace(get_task("cwru_cross_load"), adapt="target_labels")

    dataset = _shifted_target(_cwru_like(loads=(0, 1), per_recording=10))
    dataset.meta["cross_load_pairs"] = [[0, 1]]  # load 1 is only ever the (unlabeled) target
    loads = dataset.index["load"].to_numpy()
    source, target = np.where(loads == 0)[0], np.where(loads == 1)[0]
    y = dataset.index["target"].to_numpy()

    # the head: standardised with the target's feature statistics, the linear layer unchanged
    backbone = get_modality("sensor").build(None, 0, channels=1, window=64)
    settings = HeadSettings(kind="classification", n_outputs=3, mode="full", steps=3, batch_size=8, seed=0)
    predictor = train_head(backbone, dataset.inputs[source], y[source], settings)
    adapted = predictor.adapted(dataset.inputs[target])
    mean, std = feature_stats(predictor.features(dataset.inputs[target]))
    assert torch.allclose(adapted.model.head.feat_mean, mean) and torch.allclose(adapted.model.head.feat_std, std)
    assert not torch.allclose(predictor.model.head.feat_mean, mean)  # the source model is left as it was
    assert torch.equal(adapted.model.head.linear.weight, predictor.model.head.linear.weight)
    hand = hand_features(dataset)
    base = Baseline("sensor", "classification", "logreg", 3).fit(hand[source], y[source])
    scaler = dict(base.adapted(hand[target]).model.steps)["standardscaler"]
    assert np.allclose(scaler.mean_, hand[target].mean(0))
    assert np.allclose(dict(base.model.steps)["standardscaler"].mean_, hand[source].mean(0))

    # the protocol: scores depend on the target's inputs only -- permuting its labels changes nothing
    scored: list[np.ndarray] = []
    real_metrics = protocol.compute_metrics

    def spy(kind, y_true, scores, threshold=None):
        scored.append(np.asarray(scores).copy())
        return real_metrics(kind, y_true, scores, threshold)

    monkeypatch.setattr(protocol, "compute_metrics", spy)
    task = replace(get_task("cwru_cross_load"), seeds=(0,), shared_backbone=False, steps=6, eval_every=3)

    def scores_of(ds, adapt):
        scored.clear()
        rows = run_protocol(replace(task, adapt=adapt), backbone, ds)["results"]
        assert [r["model"] for r in rows] == ["pretrained", "scratch", "baseline"]
        assert all(r["n_test"] == len(target) for r in rows)
        return list(scored)

    adapted_scores = scores_of(dataset, "target_stats")
    index = dataset.index.copy()
    index.loc[target, "target"] = np.random.default_rng(0).permutation(y[target])
    assert (index["target"].to_numpy()[target] != y[target]).any()
    permuted = LabeledDataset(dataset.name, dataset.modality, dataset.inputs, index, dataset.meta)
    for a, b in zip(adapted_scores, scores_of(permuted, "target_stats")):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    # ... while the adaptation does change what every model predicts on the shifted target
    for a, b in zip(adapted_scores, scores_of(dataset, "none")):
        assert not np.allclose(a, b, atol=1e-4)


def test_neu_backbone_is_a_patch_dictionary_whose_scratch_twin_trains_its_atoms():
    from mfg_pipeline_tests import synthetic as S

    overrides = PLANTS["neu"].pretrain["image"]
    assert overrides["model"]["arch"] == "patch_dictionary" and overrides["model"]["encoding"] == "vlad"
    model = {**overrides["model"], "image_size": 32, "atoms": 8, "scales": [1, 2]}  # tiny: seconds on a CPU
    backbone, _ = get_modality("image").pretrain(S.image_corpus(16), steps=2, lr=overrides["lr"], model_overrides=model)
    task = replace(get_task("neu_surface_defect"), seeds=(0,), label_fractions=(1.0,), steps=3, eval_every=0)
    rows = pd.DataFrame(run_protocol(task, backbone, S.defect_dataset(40))["results"]).set_index("model")
    assert set(rows.index) == {"pretrained", "scratch", "baseline"}
    assert rows.loc["scratch", "steps_done"] == 3 and rows.loc["pretrained", "steps_done"] == 0  # probe: closed form
    # gradients reach the atoms: the twin is a trainable convolution, not frozen random features
    twin = backbone.fresh(1)
    twin(backbone.prepare(S.defect_dataset(4)).float() / 255).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in twin.encoder.atoms)


def test_excavator_probe_reads_the_piece_bag_and_the_scratch_twin_its_own_vocabulary(monkeypatch):
    """The excavator's pretrained part is its corpus-trained vocabulary: the scratch twin learns
    one from the run's labeled texts alone and is fitted by the same probe."""
    from mfg_pipeline.modalities import text
    from mfg_pipeline_tests import synthetic as S

    overrides = PLANTS["maintenance"].pretrain["text"]
    assert overrides["model"]["features"] == "pieces"
    model = {**overrides["model"], "vocab_size": 300, "hidden_size": 32, "intermediate_size": 64}
    backbone, _ = get_modality("text").pretrain(S.text_corpus(100), steps=2, model_overrides=model)
    learned = []
    original = text.train_tokenizer
    monkeypatch.setattr(text, "train_tokenizer", lambda texts, *a, **k: learned.append(list(texts)) or original(texts, *a, **k))
    task = replace(get_task("excavator_major_system"), seeds=(0,), label_fractions=(0.5,))
    dataset = S.maintenance_log_dataset(80)
    out = run_protocol(task, backbone, dataset)
    rows = pd.DataFrame(out["results"]).set_index("model")
    assert set(rows.index) == {"pretrained", "scratch", "baseline"}
    assert (rows.loc[["pretrained", "scratch"], "steps_done"] == 0).all()  # both closed-form probes
    (run,) = experiments(task, dataset, encode_targets(dataset, task))
    assert learned == [[dataset.texts[i] for i in run["labeled"]]]  # labeled texts only, no test text


def test_split_points_are_fitted_to_each_copys_fit_rows_and_shared_by_its_networks(monkeypatch):
    """AI4I's networks read steps at exact boosting's split points: fitted per cross-fitted copy on
    that copy's fit rows only (never its held-out fold or the test rows), once for both networks,
    and the steps reach the head as features."""
    task = replace(get_task("ai4i_machine_failure"), seeds=(0,), label_fractions=(1.0,), steps=30, eval_every=10)
    assert task.split_point_trees and task.head_hidden
    dataset = _failure_rows()
    fitted_on, feature_widths = [], []
    real_points, real_train = protocol.exact_split_points, protocol.train_head

    def points(rows, yt, trees, seed):
        fitted_on.append(rows)
        return real_points(rows, yt, trees, seed)

    monkeypatch.setattr(protocol, "exact_split_points", points)
    monkeypatch.setattr(protocol, "train_head", lambda body, x, yt, settings, **kw: feature_widths.append(
        (body.feature_dim - body.config["hidden"], body.step_value.numel())) or real_train(body, x, yt, settings, **kw))
    run_protocol(task, get_modality("tabular").build(None, 0, n_features=4), dataset, models=("pretrained", "scratch"))
    [run] = experiments(task, dataset, encode_targets(dataset, task))
    x = dataset.inputs[:, :, 0].numpy()
    assert len(fitted_on) == len(run["folds"]) == 5  # once per copy, shared by pretrained and scratch
    for rows, (fit, _) in zip(fitted_on, run["folds"]):
        np.testing.assert_array_equal(rows, x[fit])
    assert len(feature_widths) == 10
    # one threshold per mechanism at least (overheat on column 0, overload on column 1), as features
    assert all(n_steps >= 2 and width == 4 + n_steps for width, n_steps in feature_widths)
    with pytest.raises(ValueError, match="split_point_trees"):
        replace(task, head_hidden=0)
