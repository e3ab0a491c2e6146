"""The label-efficiency protocol.

For each seed and label fraction of the TRAIN split (nested per seed: the 1% subset is inside
the 5% subset, and so on; stratified with at least one sample per class), the SAME labeled
subset trains three models:

- ``pretrained``: the self-supervised backbone + a head (linear probe or full finetune),
- ``scratch``: the same architecture from random weights, every layer trained, same steps,
- ``baseline``: a classical model on hand features.

Each is scored on the held-out TEST split (machines never seen in training). With at least
``min_val_samples`` labels, a validation subset (by machine, from the labeled TRAIN subset) is
held out for early stopping of the neural models; the baseline fits the whole subset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mfg_pipeline.modalities.base import Backbone, take
from mfg_pipeline.storage.artifacts import LabeledDataset
from mfg_pipeline.tasks.baselines import Baseline, hand_features
from mfg_pipeline.tasks.heads import HeadSettings, Predictor, train_head
from mfg_pipeline.tasks.metrics import compute_metrics
from mfg_pipeline.tasks.registry import TaskSpec
from mfg_pipeline.training.device import Runtime
from mfg_pipeline.training.seeding import derive_seed

MODELS = ("pretrained", "scratch", "baseline")


def n_classes_of(dataset: LabeledDataset, y: np.ndarray) -> int:
    if dataset.meta.get("kind") == "regression":
        return 1
    classes = dataset.meta.get("classes")
    return len(classes) if classes else int(np.max(y)) + 1


def encode_targets(dataset: LabeledDataset, task: TaskSpec) -> np.ndarray:
    """Targets as float32 (regression) or int64 class ids (class names are mapped through
    ``meta["classes"]``)."""
    values = dataset.index[task.target]
    if task.kind == "regression":
        return values.to_numpy(dtype=np.float32)
    if values.dtype == object or str(values.dtype).startswith(("string", "str", "category")):
        classes = list(dataset.meta.get("classes") or sorted(values.astype(str).unique()))
        lookup = {str(c): i for i, c in enumerate(classes)}
        unknown = set(values.astype(str)) - set(lookup)
        if unknown:
            raise ValueError(f"{dataset.name}: targets {sorted(unknown)[:5]} not in meta['classes']")
        return values.astype(str).map(lookup).to_numpy(dtype=np.int64)
    return values.to_numpy(dtype=np.int64)


def label_subset(y_train: np.ndarray, fraction: float, seed: int, kind: str) -> np.ndarray:
    """Positions (into the train rows) of the labeled subset at ``fraction`` for ``seed``.

    Depends only on (labels, fraction, seed): every model sees the same subset. Nested across
    fractions for a seed. Classification is stratified with at least one sample per class.
    """
    y_train = np.asarray(y_train)
    n = len(y_train)
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(derive_seed("label_subset", seed))
    perm = rng.permutation(n)
    if fraction >= 1.0:
        return np.sort(perm)
    if kind == "classification":
        chosen = []
        ys = y_train[perm]
        for cls in np.unique(y_train):
            members = perm[ys == cls]  # this class in this seed's order
            k = max(1, int(round(fraction * len(members))))
            chosen.append(members[:k])
        return np.sort(np.concatenate(chosen))
    k = min(n, max(2, int(round(fraction * n))))
    return np.sort(perm[:k])


def validation_split(positions: np.ndarray, machine_ids: np.ndarray, seed: int, min_val_samples: int,
                     val_frac: float = 0.2) -> tuple[np.ndarray, np.ndarray | None]:
    """Split labeled positions into (fit, val) by machine; no val below ``min_val_samples``."""
    if len(positions) < max(2, min_val_samples):
        return positions, None
    machines = np.unique(machine_ids[positions])
    rng = np.random.default_rng(derive_seed("val_split", seed))
    if len(machines) >= 3:
        order = rng.permutation(machines)
        val_m, count = [], 0
        for m in order:
            if count >= val_frac * len(positions):
                break
            val_m.append(m)
            count += int(np.sum(machine_ids[positions] == m))
        is_val = np.isin(machine_ids[positions], val_m)
        if 0 < is_val.sum() < len(positions) - 1:
            return positions[~is_val], positions[is_val]
    k = max(1, int(round(val_frac * len(positions))))
    perm = rng.permutation(len(positions))
    return np.sort(positions[perm[k:]]), np.sort(positions[perm[:k]])


def _settings(task: TaskSpec, n_out: int, mode: str, seed: int, lr: float, body_lr_scale: float) -> HeadSettings:
    return HeadSettings(kind=task.kind, n_outputs=n_out, mode=mode, steps=task.steps, batch_size=task.batch_size,
                        lr=lr, body_lr_scale=body_lr_scale, weight_decay=task.weight_decay,
                        eval_every=task.eval_every, patience=task.patience, seed=seed,
                        probe=task.probe)


def run_protocol(
    task: TaskSpec,
    backbone: Backbone,
    dataset: LabeledDataset,
    runtime: Runtime | None = None,
    models: tuple[str, ...] = MODELS,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every (seed, fraction, model) and score on the TEST split. Returns a dict with
    ``results`` (one row per run), sizes and timings."""
    runtime = runtime or Runtime.create("cpu")
    started = time.perf_counter()
    split = dataset.index["split"].to_numpy()
    train_pos, test_pos = np.where(split == "train")[0], np.where(split == "test")[0]
    if len(train_pos) == 0 or len(test_pos) == 0:
        raise ValueError(f"{dataset.name}: needs both train and test rows (train={len(train_pos)}, test={len(test_pos)})")
    y = encode_targets(dataset, task)
    machine_ids = dataset.index["machine_id"].astype(str).to_numpy()
    n_out = n_classes_of(dataset, y)
    inputs = backbone.prepare(dataset)
    timings: dict[str, float] = {"pretrained": 0.0, "scratch": 0.0, "baseline": 0.0}

    t0 = time.perf_counter()
    features = backbone.embed(inputs, runtime) if task.finetune_mode == "linear_probe" else None
    timings["embed"] = time.perf_counter() - t0
    hand = hand_features(dataset) if "baseline" in models else None

    def pick(values, pos):
        return [values[i] for i in pos] if isinstance(values, list) else values[pos]

    rows: list[dict[str, Any]] = []
    for seed in task.seeds:
        for fraction in task.label_fractions:
            sub = train_pos[label_subset(y[train_pos], fraction, seed, task.kind)]
            fit_pos, val_pos = validation_split(sub, machine_ids, seed, task.min_val_samples)
            idx_fit, idx_test = torch.as_tensor(fit_pos), torch.as_tensor(test_pos)
            val = None
            for model_name in models:
                t = time.perf_counter()
                extra: dict[str, Any] = {}
                if model_name == "baseline":
                    base = Baseline(dataset.modality, task.kind, task.baseline, n_out, seed).fit(pick(hand, sub), y[sub])
                    scores = base.predict_scores(pick(hand, test_pos))
                else:
                    if model_name == "pretrained" and features is not None:
                        val = (features[val_pos], y[val_pos]) if val_pos is not None else None
                        predictor: Predictor = train_head(
                            None, features[fit_pos], y[fit_pos],
                            _settings(task, n_out, "linear_probe", seed, task.lr, 1.0), val=val, runtime=runtime)
                        scores = predictor.predict(features[test_pos], runtime)
                    else:
                        if model_name == "pretrained":
                            body, lr, scale = backbone, task.lr, task.body_lr_scale
                        else:
                            body, lr, scale = backbone.fresh(derive_seed("scratch", seed)), task.scratch_lr, 1.0
                        val = (take(inputs, torch.as_tensor(val_pos)), y[val_pos]) if val_pos is not None else None
                        predictor = train_head(body, take(inputs, idx_fit), y[fit_pos],
                                               _settings(task, n_out, "full", seed, lr, scale), val=val, runtime=runtime)
                        scores = predictor.predict(take(inputs, idx_test), runtime)
                    extra = {"steps_done": predictor.result.steps_done, "stopped_early": predictor.result.stopped_early,
                             "final_loss": predictor.result.final_loss}
                metrics = compute_metrics(task.kind, y[test_pos], scores)
                wall = time.perf_counter() - t
                timings[model_name] += wall
                rows.append({"model": model_name, "label_fraction": float(fraction), "seed": int(seed),
                             "value": float(metrics[task.metric]), "metrics": metrics, "n_labeled": int(len(sub)),
                             "n_fit": int(len(fit_pos)), "n_val": int(0 if val_pos is None else len(val_pos)),
                             "wall_s": round(wall, 3), **extra})
                if log:
                    log(f"{task.name} seed={seed} frac={fraction} {model_name}: {task.metric}={metrics[task.metric]:.4f} "
                        f"({len(sub)} labels, {wall:.1f}s)")
    timings["total"] = time.perf_counter() - started
    return {"results": rows, "n_train": int(len(train_pos)), "n_test": int(len(test_pos)),
            "n_classes": int(n_out), "timings_s": {k: round(v, 2) for k, v in timings.items()},
            "runtime": runtime.describe()}
