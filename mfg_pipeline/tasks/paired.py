"""Paired intervals for the difference between two models over the test units.

The spread over seeds says how much a score moves with the training draw, not how much it would
move on other test engines, recordings or texts: with 100 test engines (C-MAPSS FD001) or 9
recordings per load (CWRU), that second spread is the larger one. Every model of a task is scored
on the same test positions, so a difference can be resampled paired. Each draw gives every
independent test unit (``TaskSpec.independent_unit``: an engine, a recording, an image, a text;
a row where rows are independent) a Dirichlet(1, ..., 1) weight, Rubin's Bayesian bootstrap: every
unit keeps a positive weight, so no run's test set empties and no class present drops out. Every
run's metric is recomputed under those weights, averaged over the cell's seeds (and load pairs)
as the report averages them, and the draw's difference to the reference model is taken. With
equal weights the metrics are exactly ``compute_metrics``' values. With fewer than ``MIN_UNITS``
units (the default plant holds out 3 machines) the reports print the interval with that caveat.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from mfg_pipeline.tasks.metrics import higher_is_better
from mfg_pipeline.training.seeding import derive_seed

DRAWS = 2000
LEVEL = 0.95
# Below this many units a resampling interval describes how these few units disagree, not what other
# units would show (a bootstrap over 3 test machines is far too narrow): the reports say so and
# judge no gap beyond noise.
MIN_UNITS = 10
SUPPORTED = ("rmse", "mae", "accuracy", "f1", "macro_f1", "auroc")


def supports(metric: str, n_classes: int) -> bool:
    """Whether a task's metric gets paired intervals (AUROC only for a binary task)."""
    return metric in SUPPORTED and (metric != "auroc" or n_classes == 2)


def scored_values(metric: str, kind: str, scores: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """What ``metric`` reads of a run's test scores: the prediction (regression), the positive
    class's score (binary AUROC), or the decided class (argmax, or the threshold of a binary task)."""
    scores = np.asarray(scores, dtype=np.float64)
    if kind == "regression":
        return scores.reshape(-1)
    if metric == "auroc":
        if scores.shape[1] != 2:
            raise ValueError("paired AUROC intervals are for binary tasks")
        return scores[:, 1]
    if threshold is not None and scores.shape[1] == 2:
        return (scores[:, 1] >= threshold).astype(np.int64)
    return scores.argmax(axis=1)


def weighted_metric(metric: str, y: np.ndarray, values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``metric`` of one run under each row of weights ``w`` [D, n] (n = its test rows) -> [D]."""
    y = np.asarray(y)
    total = w.sum(axis=1)
    if metric in ("rmse", "mae"):
        err = values - y.astype(np.float64)
        if metric == "rmse":
            return np.sqrt(w @ err**2 / total)
        return w @ np.abs(err) / total
    if metric == "accuracy":
        return w @ (values == y).astype(np.float64) / total
    if metric in ("f1", "macro_f1"):
        classes = [1] if metric == "f1" else np.unique(y)
        per_class = []
        for k in classes:
            tp = w @ ((values == k) & (y == k)).astype(np.float64)
            wrong = w @ ((values == k) != (y == k)).astype(np.float64)  # false positives + false negatives
            denom = 2 * tp + wrong
            per_class.append(np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0))
        return np.mean(per_class, axis=0)
    if metric == "auroc":
        return _weighted_auroc(y.astype(bool), values, w)
    raise ValueError(f"no paired interval for metric {metric!r} (supported: {SUPPORTED})")


def _weighted_auroc(positive: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney statistic: the weight of (positive, negative) pairs ranked right,
    ties counted half."""
    order = np.argsort(score, kind="stable")
    s, pos = score[order], positive[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of tied scores
    ws = w[:, order]
    neg_w = np.add.reduceat(ws * ~pos, starts, axis=1)
    pos_w = np.add.reduceat(ws * pos, starts, axis=1)
    below = np.cumsum(neg_w, axis=1) - neg_w
    pairs = pos_w.sum(axis=1) * neg_w.sum(axis=1)
    return np.divide((pos_w * (below + 0.5 * neg_w)).sum(axis=1), pairs, out=np.full(len(w), np.nan), where=pairs > 0)


def paired_differences(runs: list[dict[str, Any]], units: np.ndarray, y: np.ndarray, metric: str,
                       references: tuple[str, ...] = ("pretrained",), draws: int = DRAWS, seed: int | str = 0,
                       unit_name: str = "row") -> list[dict[str, Any]]:
    """``runs``: one per (model, fraction, seed[, load pair]) with ``model``, ``label_fraction``,
    ``test`` (positions) and ``values`` (``scored_values`` at those positions); ``units`` and ``y``:
    the dataset's unit and target per position. One row per (reference, fraction, model that is
    neither it nor an earlier reference): the observed difference of the cell means (model -
    reference), its interval and the share of draws in which the reference is better."""
    codes = np.unique(np.asarray(units), return_inverse=True)[1]
    rng = np.random.default_rng(derive_seed("paired", seed))
    weights = rng.gamma(1.0, size=(draws, int(codes.max()) + 1 if len(codes) else 0))
    equal = np.ones((1, weights.shape[1]))
    cells: dict[tuple[float, str], list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    cell_units: dict[tuple[float, str], set[int]] = defaultdict(set)
    for run in runs:
        pos = np.asarray(run["test"])
        values = np.asarray(run["values"])
        cell = (float(run["label_fraction"]), run["model"])
        cell_units[cell].update(codes[pos].tolist())
        cells[cell].append((
            weighted_metric(metric, y[pos], values, weights[:, codes[pos]]),
            weighted_metric(metric, y[pos], values, equal[:, codes[pos]])))
    sign = 1.0 if higher_is_better(metric) else -1.0
    lo_q, hi_q = (1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2
    out = []
    for i, reference in enumerate(references):
        for (fraction, model), per_run in sorted(cells.items()):
            ref = cells.get((fraction, reference))
            if model in references[: i + 1] or not ref:
                continue
            diff = np.mean([d for d, _ in per_run], axis=0) - np.mean([d for d, _ in ref], axis=0)
            observed = float(np.mean([e[0] for _, e in per_run]) - np.mean([e[0] for _, e in ref]))
            out.append({"model": model, "versus": reference, "label_fraction": fraction, "difference": observed,
                        "low": float(np.nanquantile(diff, lo_q)), "high": float(np.nanquantile(diff, hi_q)),
                        "reference_better_share": float(np.mean(sign * diff < 0)), "level": LEVEL,
                        "unit": unit_name, "n_units": len(cell_units[(fraction, model)]), "draws": int(draws)})
    return out
