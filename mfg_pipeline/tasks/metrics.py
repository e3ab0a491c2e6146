"""Task metrics. ``scores`` are class probabilities [N, K] for classification, predictions [N]
for regression."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, mean_absolute_error, roc_auc_score

METRICS = {
    "accuracy": True,
    "macro_f1": True,
    "auroc": True,
    "f1": True,  # binary: F1 of the positive class at the decision threshold
    "pr_auc": True,  # binary: average precision of the positive class
    "rmse": False,
    "mae": False,
    "phm08": False,  # C-MAPSS scoring function (sum over samples; late predictions cost more)
}


def higher_is_better(metric: str) -> bool:
    return METRICS[metric]


def auroc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Binary: AUROC of the positive class; multi-class: macro one-vs-rest over present classes."""
    y_true = np.asarray(y_true)
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    if proba.shape[1] == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    values = [roc_auc_score(y_true == k, proba[:, k]) for k in present]
    return float(np.mean(values))


def best_f1_threshold(y_true: np.ndarray, positive_proba: np.ndarray) -> float:
    """The threshold on the positive-class probability that maximises F1 on (validation) data;
    0.5 when there is no positive to learn it from."""
    y_true = np.asarray(y_true).astype(bool)
    p = np.asarray(positive_proba, dtype=np.float64)
    if not y_true.any():
        return 0.5
    candidates = np.unique(p)
    best, best_t = -1.0, 0.5
    for t in candidates:
        pred = p >= t
        tp = float(np.sum(pred & y_true))
        f1 = 2 * tp / (pred.sum() + y_true.sum()) if pred.sum() + y_true.sum() else 0.0
        if f1 > best:
            best, best_t = f1, float(t)
    return best_t


def phm08_score(y_true: np.ndarray, pred: np.ndarray) -> float:
    """PHM08 challenge score: sum of exp(-d/13)-1 (early) or exp(d/10)-1 (late), d = pred - true."""
    d = np.asarray(pred, dtype=np.float64).reshape(-1) - np.asarray(y_true, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float | None = None) -> dict[str, float]:
    """``threshold`` (binary only): decision threshold on the positive-class probability for
    every thresholded metric (default: argmax, i.e. 0.5)."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    pred = proba.argmax(axis=1)
    if threshold is not None and proba.shape[1] == 2:
        pred = (proba[:, 1] >= threshold).astype(np.int64)
    labels = np.arange(proba.shape[1])
    out = {
        "accuracy": float(accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, labels=labels[np.isin(labels, np.unique(y_true))], average="macro",
                                   zero_division=0)),
        "auroc": auroc(y_true, proba),
    }
    if proba.shape[1] == 2:
        out["f1"] = float(f1_score(y_true, pred, pos_label=1, average="binary", zero_division=0))
        out["pr_auc"] = float(average_precision_score(y_true, proba[:, 1])) if (y_true == 1).any() else float("nan")
        out["threshold"] = float(0.5 if threshold is None else threshold)
    return out


def regression_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    y_true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    return {
        "rmse": float(np.sqrt(np.mean((pred - y_true) ** 2))),
        "mae": float(mean_absolute_error(y_true, pred)),
        "phm08": phm08_score(y_true, pred),
    }


def compute_metrics(kind: str, y_true: np.ndarray, scores: np.ndarray, threshold: float | None = None) -> dict[str, float]:
    if kind == "classification":
        return classification_metrics(y_true, scores, threshold)
    if kind == "regression":
        return regression_metrics(y_true, scores)
    raise ValueError(f"unknown task kind {kind!r}")
