"""Task metrics. ``scores`` are class probabilities [N, K] for classification, predictions [N]
for regression."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, roc_auc_score

METRICS = {
    "accuracy": True,
    "macro_f1": True,
    "auroc": True,
    "rmse": False,
    "mae": False,
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


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    pred = proba.argmax(axis=1)
    labels = np.arange(proba.shape[1])
    return {
        "accuracy": float(accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, labels=labels[np.isin(labels, np.unique(y_true))], average="macro",
                                   zero_division=0)),
        "auroc": auroc(y_true, proba),
    }


def regression_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    y_true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    return {
        "rmse": float(np.sqrt(np.mean((pred - y_true) ** 2))),
        "mae": float(mean_absolute_error(y_true, pred)),
    }


def compute_metrics(kind: str, y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    if kind == "classification":
        return classification_metrics(y_true, scores)
    if kind == "regression":
        return regression_metrics(y_true, scores)
    raise ValueError(f"unknown task kind {kind!r}")
