"""Paired intervals over the test units (``tasks/paired.py``)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mfg_pipeline.tasks.metrics import compute_metrics
from mfg_pipeline.tasks.paired import paired_differences, scored_values, weighted_metric


@pytest.mark.parametrize("metric,k,threshold", [("accuracy", 3, None), ("macro_f1", 4, None), ("f1", 2, 0.3),
                                                ("auroc", 2, None), ("rmse", 0, None), ("mae", 0, None)])
def test_equal_weights_give_the_reports_value_and_integer_weights_repeat_rows(metric, k, threshold):
    rng = np.random.default_rng(1)
    n = 150
    if k:
        y = rng.integers(0, k, n)
        # rounded scores: ties, which AUROC must count half
        scores = np.round(0.6 * np.eye(k)[y] + 0.4 * rng.dirichlet(np.ones(k), n), 1)
        scores /= scores.sum(1, keepdims=True)
        kind = "classification"
    else:
        y = rng.uniform(0, 125, n)
        scores = y + rng.normal(0, 10, n)
        kind = "regression"
    values = scored_values(metric, kind, scores, threshold)
    expected = compute_metrics(kind, y, scores, threshold)[metric]
    assert weighted_metric(metric, y, values, np.ones((1, n)))[0] == pytest.approx(expected, abs=1e-12)
    counts = rng.integers(1, 4, n)  # >= 1: every class present stays present
    repeated = np.repeat(np.arange(n), counts)
    expected = compute_metrics(kind, y[repeated], scores[repeated], threshold)[metric]
    assert weighted_metric(metric, y, values, counts[None].astype(float))[0] == pytest.approx(expected, abs=1e-12)


def test_weighted_auroc_per_draw_matches_sklearn_with_sample_weights():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 80)
    s = np.round(rng.random(80) + 0.3 * y, 1)
    w = rng.gamma(1.0, size=(5, 80))
    got = weighted_metric("auroc", y, s, w)
    assert got == pytest.approx([roc_auc_score(y, s, sample_weight=row) for row in w], abs=1e-12)


def _runs(y, predictions):
    """predictions: {(model, fraction): [per-seed predictions on every position]} -> runs."""
    test = np.arange(len(y))
    return [{"model": m, "label_fraction": f, "test": test, "values": p}
            for (m, f), per_seed in predictions.items() for p in per_seed]


def test_difference_is_that_of_the_seed_means_and_the_interval_brackets_it():
    rng = np.random.default_rng(3)
    y = rng.uniform(0, 125, 100)
    pre = [y + rng.normal(0, 12, 100) for _ in range(3)]
    scr = [y + rng.normal(0, 16, 100) for _ in range(3)]
    same = [p.copy() for p in pre]
    out = paired_differences(_runs(y, {("pretrained", 0.1): pre, ("scratch", 0.1): scr, ("twin", 0.1): same}),
                             np.arange(100), y, "rmse", unit_name="unit")
    rows = {r["model"]: r for r in out}
    assert set(rows) == {"scratch", "twin"}
    rmse = lambda p: np.sqrt(np.mean((p - y) ** 2))  # noqa: E731
    observed = np.mean([rmse(p) for p in scr]) - np.mean([rmse(p) for p in pre])
    s = rows["scratch"]
    assert s["difference"] == pytest.approx(observed) and s["low"] < observed < s["high"]
    assert s["n_units"] == 100 and s["unit"] == "unit" and s["versus"] == "pretrained"
    # errors 16 vs 12 on 100 engines: the scratch model is worse on nearly every draw
    assert s["low"] > 0 and s["reference_better_share"] > 0.97
    # identical predictions: no difference on any draw, and never "better"
    t = rows["twin"]
    assert t["difference"] == 0 and t["low"] == 0 and t["high"] == 0 and t["reference_better_share"] == 0


def test_units_that_share_their_errors_widen_the_interval():
    """Rows of one unit (windows of one recording, copies of one text) are not independent: the
    same errors resampled as 10 units of 20 rows give a wider interval than as 200 rows."""
    rng = np.random.default_rng(4)
    units = np.repeat(np.arange(10), 20)
    y = np.repeat(rng.integers(0, 3, 10), 20)
    pre = np.where(np.repeat(rng.random(10) < 0.8, 20), y, (y + 1) % 3)
    scr = np.where(np.repeat(rng.random(10) < 0.6, 20), y, (y + 1) % 3)
    runs = _runs(y, {("pretrained", 1.0): [pre], ("scratch", 1.0): [scr]})
    (by_unit,) = paired_differences(runs, units, y, "accuracy")
    (by_row,) = paired_differences(runs, np.arange(200), y, "accuracy")
    assert by_unit["difference"] == by_row["difference"]
    assert by_unit["n_units"] == 10 and by_row["n_units"] == 200
    assert by_unit["high"] - by_unit["low"] > 2 * (by_row["high"] - by_row["low"])


def test_cross_load_runs_with_different_test_sets_are_averaged_like_the_report():
    """Each load pair scores another target load: a draw reweights every run on its own units."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 60)
    units = np.repeat(np.arange(12), 5)
    loads = [np.arange(0, 30), np.arange(30, 60)]
    runs, means = [], {}
    for model, right in (("pretrained", 0.9), ("scratch", 0.7)):
        accs = []
        for test in loads:
            pred = np.where(rng.random(len(test)) < right, y[test], 1 - y[test])
            runs.append({"model": model, "label_fraction": 1.0, "test": test, "values": pred})
            accs.append(np.mean(pred == y[test]))
        means[model] = np.mean(accs)
    (row,) = paired_differences(runs, units, y, "accuracy")
    assert row["difference"] == pytest.approx(means["scratch"] - means["pretrained"])
    assert row["n_units"] == 12 and row["low"] <= row["difference"] <= row["high"]


def test_a_metric_without_a_weighted_form_is_refused():
    with pytest.raises(ValueError, match="no paired interval"):
        weighted_metric("phm08", np.zeros(3), np.zeros(3), np.ones((1, 3)))


def test_the_table_never_rounds_a_few_draws_away():
    from mfg_pipeline.tasks.reports import share_text

    assert [share_text(s) for s in (0.0, 0.001, 0.5, 0.996, 1.0)] == ["0%", "<1%", "50%", ">99%", "100%"]


def test_a_gap_is_judged_against_noise_only_with_enough_units():
    from mfg_pipeline.tasks.reports import lowest_fraction_comparison

    def report(n_units, low, high):
        return {"higher_is_better": True, "results": [
            {"model": m, "label_fraction": 0.05, "seed": 0, "value": v} for m, v in (("pretrained", 0.9), ("scratch", 0.8))],
            "paired_differences": [{"model": "scratch", "versus": "pretrained", "label_fraction": 0.05, "difference": -0.1,
                                    "low": low, "high": high, "unit": "machine_id", "n_units": n_units}]}

    assert lowest_fraction_comparison(report(40, -0.15, -0.05))["beyond_test_noise"] is True
    assert lowest_fraction_comparison(report(40, -0.15, 0.02))["beyond_test_noise"] is False
    assert lowest_fraction_comparison(report(3, -0.15, -0.05))["beyond_test_noise"] is None


def test_a_further_reference_gets_its_own_rows_without_the_mirrored_pair():
    """With the universal backbone as a second reference: universal and scratch vs pretrained, and
    scratch (and baseline) vs universal; pretrained vs universal would only mirror the first."""
    rng = np.random.default_rng(6)
    y = rng.uniform(0, 125, 50)
    preds = {(m, 0.1): [y + rng.normal(0, s, 50)] for m, s in
             (("pretrained", 10), ("universal", 12), ("scratch", 15), ("baseline", 14))}
    out = paired_differences(_runs(y, preds), np.arange(50), y, "rmse", references=("pretrained", "universal"))
    assert [(r["versus"], r["model"]) for r in out] == [
        ("pretrained", "baseline"), ("pretrained", "scratch"), ("pretrained", "universal"),
        ("universal", "baseline"), ("universal", "scratch")]
    rmse = {m: np.sqrt(np.mean((p[0] - y) ** 2)) for (m, _), p in preds.items()}
    assert out[-1]["difference"] == pytest.approx(rmse["scratch"] - rmse["universal"])
