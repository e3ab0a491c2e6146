"""The label-efficiency protocol.

For each seed and label fraction of the TRAIN split (nested per seed: the 1% subset is inside
the 5% subset, and so on; stratified with at least one sample per class), the SAME labeled
subset trains three models:

- ``pretrained``: the self-supervised backbone + a head (linear probe or full finetune),
- ``scratch``: the same architecture from random weights, every layer trained, same steps
  (``Backbone.scratch_twin``; a backbone whose features have no weights, the text piece bag,
  learns its vocabulary from the run's labeled texts and is fitted by the same probe),
- ``baseline``: a classical model on hand features,

plus, for sensor tasks of the public profile, ``universal``: the sensor backbone pretrained on
every plant's corpus, probed. Each is scored on the held-out TEST split. With at least
``min_val_samples`` labels, a validation subset (by machine/engine, from the labeled TRAIN
subset) is held out for early stopping of the neural models.

Variants set per TaskSpec (the public benchmarks' protocols):

- ``label_groups``: fractions label whole groups (C-MAPSS: a fraction of the training engines),
- ``label_blocks``: fractions label one contiguous time block per recording (CWRU within-load),
- ``protocol="cross_load"``: per ordered pair of loads (a, b), all labels of load a (its
  held-out time block validates), tested on every window of load b,
- ``adapt="target_stats"``: every model standardises its features with the statistics of the
  features of all scored windows (unlabeled; for ``cross_load`` every window of the target load)
  instead of those of its labeled training data: feature-level AdaBN for the heads of the neural
  models (``Predictor.adapted``), a per-domain StandardScaler for the baseline
  (``Baseline.adapted``). Target labels are only used to score. Validation predictions (source
  domain) keep the source statistics.
- ``threshold="validation"``: binary tasks choose the F1-optimal threshold on the validation
  subset (the baseline then fits without it too) and report F1 / PR-AUC at that threshold.
- ``threshold="cross_fit"``: every model is cross-fitted instead: the labeled subset is cut into
  ``cross_fit_folds`` folds stratified by class, one copy of the model trains on all folds but
  one (its early stopping on the left-out fold) per fold, the F1-optimal threshold is chosen on
  the out-of-fold scores of every labeled sample, and the test scores are the mean of the
  copies' scores (on one scale: ``common_scale``). With a rare positive class a single
  validation split leaves a fifth of the positives to choose the threshold and takes them from
  training; cross-fitting uses each of them for both.
- ``self_training_rounds``: a probed pretrained backbone's probe also learns from the TRAIN
  inputs the fraction leaves unlabeled (cross-load: from the target load's windows), by
  self-training (``heads.self_trained_probe``): the way a plant uses the inputs it has not
  labeled. With ``adapt="target_stats"`` each domain's features are standardised with their own
  statistics first (``per_domain_standardised``). The scratch twin and the baseline use labels only.
- ``augment``: the neural models train on label-preserving copies of the labeled inputs
  (NEU: the 8 rotations/reflections) and score each test (and validation) input as the mean of
  their predictions over its copies; the classical baseline fits its hand features as they are.
- ``train_target``: the neural models train on a finer class column (AI4I: each failure's mode)
  and score the binary target as 1 - P(its negative class) (``evaluated_scores``); the labeled
  rows, the thresholds and the metrics are those of the binary target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from mfg_pipeline.modalities.base import Backbone, take
from mfg_pipeline.storage.artifacts import LabeledDataset
from mfg_pipeline.tasks.baselines import Baseline, exact_split_points, hand_features
from mfg_pipeline.tasks.heads import (HeadSettings, Predictor, feature_stats, input_views, predict_views,
                                      self_trained_probe, train_head, view_features)
from mfg_pipeline.tasks.metrics import best_f1_threshold, compute_metrics
from mfg_pipeline.tasks.paired import paired_differences, scored_values, supports as paired_supports
from mfg_pipeline.tasks.registry import TaskSpec
from mfg_pipeline.training.device import Runtime
from mfg_pipeline.training.seeding import derive_seed

MODELS = ("pretrained", "scratch", "baseline")  # plus any extra pretrained backbone (``others``)


def class_names(dataset: LabeledDataset, column: str | None = None) -> list | None:
    """Class names of the target (``meta["classes"]``) or of another class column of the index
    (``meta["classes_of"][column]``)."""
    return dataset.meta.get("classes") if column is None else (dataset.meta.get("classes_of") or {}).get(column)


def n_classes_of(dataset: LabeledDataset, y: np.ndarray, column: str | None = None) -> int:
    if dataset.meta.get("kind") == "regression":
        return 1
    classes = class_names(dataset, column)
    return len(classes) if classes else int(np.max(y)) + 1


def encode_targets(dataset: LabeledDataset, task: TaskSpec, column: str | None = None) -> np.ndarray:
    """Targets (``column``: another class column of the index, e.g. ``task.train_target``) as
    float32 (regression) or int64 class ids (class names are mapped through ``meta["classes"]``,
    or ``meta["classes_of"][column]``)."""
    values = dataset.index[column or task.target]
    if task.kind == "regression":
        return values.to_numpy(dtype=np.float32)
    if values.dtype == object or str(values.dtype).startswith(("string", "str", "category")):
        classes = list(class_names(dataset, column) or sorted(values.astype(str).unique()))
        lookup = {str(c): i for i, c in enumerate(classes)}
        unknown = set(values.astype(str)) - set(lookup)
        if unknown:
            raise ValueError(f"{dataset.name}: targets {sorted(unknown)[:5]} of {column or task.target!r} "
                             "not among its classes")
        return values.astype(str).map(lookup).to_numpy(dtype=np.int64)
    return values.to_numpy(dtype=np.int64)


def label_subset(y_train: np.ndarray, fraction: float, seed: int, kind: str, groups: np.ndarray | None = None,
                 blocks: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Positions (into the train rows) of the labeled subset at ``fraction`` for ``seed``.

    Depends only on (labels, groups/blocks, fraction, seed): every model sees the same subset.

    - ``groups`` (e.g. engine ids): whole groups are labeled, ``round(fraction * n_groups)`` of
      them (>= 1), in this seed's order, so fractions are nested;
    - ``blocks`` = (recording, order within recording): from each recording one contiguous run
      of ``round(fraction * n)`` (>= 1) windows, at an offset drawn per seed and recording;
    - else per sample, nested across fractions; classification is stratified with at least one
      sample per class.
    """
    y_train = np.asarray(y_train)
    n = len(y_train)
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(derive_seed("label_subset", seed))
    if fraction >= 1.0:
        return np.arange(n)
    if groups is not None:
        names = np.unique(np.asarray(groups).astype(str))
        order = rng.permutation(names)
        chosen = order[: max(1, int(round(fraction * len(names))))]
        return np.where(np.isin(np.asarray(groups).astype(str), chosen))[0]
    if blocks is not None:
        recording, position = (np.asarray(b) for b in blocks)
        chosen = []
        for name in np.unique(recording.astype(str)):
            members = np.where(recording.astype(str) == name)[0]
            members = members[np.argsort(position[members], kind="stable")]
            k = max(1, int(round(fraction * len(members))))
            offset = int(np.floor(rng.random() * (len(members) - k + 1)))
            chosen.append(members[offset:offset + k])
        return np.sort(np.concatenate(chosen))
    perm = rng.permutation(n)
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
    """Split labeled positions into (fit, val) by machine (or any group id: engine, row);
    no validation below ``min_val_samples`` labels."""
    if len(positions) < max(2, min_val_samples):
        return positions, None
    machines, counts = np.unique(machine_ids[positions], return_counts=True)
    rng = np.random.default_rng(derive_seed("val_split", seed))
    if len(machines) >= 3:
        order = rng.permutation(len(machines))
        cumulative = np.cumsum(counts[order])
        # the fewest machines that reach val_frac of the labels
        n_val = int(np.searchsorted(cumulative, val_frac * len(positions))) + 1
        is_val = np.isin(machine_ids[positions], machines[order[:n_val]])
        if 0 < is_val.sum() < len(positions) - 1:
            return positions[~is_val], positions[is_val]
    k = max(1, int(round(val_frac * len(positions))))
    perm = rng.permutation(len(positions))
    return np.sort(positions[perm[k:]]), np.sort(positions[perm[:k]])


def stratified_validation_split(positions: np.ndarray, y: np.ndarray, seed: int, min_val_samples: int,
                                val_frac: float = 0.2) -> tuple[np.ndarray, np.ndarray | None]:
    """(fit, val) per sample, ``val_frac`` of each class (at least one of a class with two or
    more labels): for independent samples such as process runs, where a rare positive class
    must reach validation to choose a threshold."""
    if len(positions) < max(2, min_val_samples):
        return positions, None
    rng = np.random.default_rng(derive_seed("val_split", seed))
    val = []
    for cls in np.unique(y[positions]):
        members = rng.permutation(positions[y[positions] == cls])
        if len(members) >= 2:
            val.append(members[: max(1, int(round(val_frac * len(members))))])
    val = np.sort(np.concatenate(val)) if val else np.array([], dtype=int)
    return np.setdiff1d(positions, val), val


def cross_fit_folds(positions: np.ndarray, y: np.ndarray, k: int, seed: int,
                    min_val_samples: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """``k`` (fit, held-out) pairs whose held-out parts partition ``positions``, each class dealt
    round the folds in a seeded order; None below ``min_val_samples`` labels (fixed budget)."""
    if len(positions) < max(k, min_val_samples):
        return None
    rng = np.random.default_rng(derive_seed("cross_fit", seed))
    fold = np.empty(len(positions), dtype=int)
    dealt = 0
    for cls in np.unique(y[positions]):
        members = rng.permutation(np.where(y[positions] == cls)[0])
        fold[members] = (dealt + np.arange(len(members))) % k
        dealt += len(members)
    return [(positions[fold != i], positions[fold == i]) for i in range(k)]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(np.asarray(z) / 2))  # tanh form: no overflow for large |z|


def common_scale(held_scores: list[np.ndarray], test_scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Positive-class probabilities of cross-fitted copies -> (out-of-fold scores in fold order,
    test scores) on one scale: each copy's logits centred on the median of its held-out logits
    and divided by their std, the test scores averaged over copies. Copies early-stopped on a
    few positives each differ in calibration, and a threshold chosen on the pooled held-out
    scores then misses on an average of unaligned ones (AI4I development splits at 5 % labels:
    F1 0.34 averaging probabilities, 0.43 on this scale)."""
    held, test = [], []
    for h, t in zip(held_scores, test_scores):
        lh = _logit(h)
        centre, spread = np.median(lh), lh.std() + 1e-6
        held.append((lh - centre) / spread)
        test.append((_logit(t) - centre) / spread)
    return np.concatenate(held), np.mean(test, axis=0)


def per_domain_standardised(f: torch.Tensor, labeled: np.ndarray, target: np.ndarray,
                            scored: np.ndarray) -> torch.Tensor:
    """Probe features ``[copies, n, d]`` for self-training under ``adapt="target_stats"``: the
    ``target`` rows standardised with their own mean/std, every other row with the ``labeled``
    rows'. The rows scored must be the target (cross-load: the target load's windows)."""
    if not np.array_equal(np.sort(scored), np.sort(target)):
        raise ValueError("self-training with target statistics needs the scored rows to be the unlabeled target")
    d = f.shape[-1]
    mean, std = feature_stats(f[:, labeled].reshape(-1, d))
    out = (f.float() - mean) / std
    mean, std = feature_stats(f[:, target].reshape(-1, d))
    out[:, target] = (f[:, target].float() - mean) / std
    return out


def hold_out_validation(task: TaskSpec, dataset: LabeledDataset, y: np.ndarray, positions: np.ndarray,
                        seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(fit, val) of labeled ``positions`` the way the task validates: by ``validate_by``
    groups (machine, engine), or per sample stratified by class (``"row"``)."""
    if task.validate_by == "row":
        return stratified_validation_split(positions, y, seed, task.min_val_samples)
    groups = dataset.index[task.validate_by].astype(str).to_numpy()
    return validation_split(positions, groups, seed, task.min_val_samples)


def training_targets(dataset: LabeledDataset, task: TaskSpec, y: np.ndarray) -> tuple[np.ndarray, int]:
    """What the models train on: the evaluated targets ``y``, or the task's finer ``train_target``
    classes, with their number of classes."""
    if not task.train_target:
        return y, n_classes_of(dataset, y)
    y_fit = encode_targets(dataset, task, task.train_target)
    return y_fit, n_classes_of(dataset, y_fit, task.train_target)


def evaluated_scores(task: TaskSpec, scores: np.ndarray) -> np.ndarray:
    """Scores over the training classes -> scores over the evaluated (binary) classes: with a
    ``train_target``, P(positive) = 1 - P(its first, negative class)."""
    if not task.train_target:
        return scores
    negative = np.asarray(scores)[:, 0]
    return np.stack([negative, 1.0 - negative], axis=1)


def fit_split_points(task: TaskSpec, inputs: torch.Tensor, y: np.ndarray, fit_pos: np.ndarray,
                     seed: int) -> list[list[float]]:
    """Exact boosting's split points (``task.split_point_trees`` trees) on the raw tabular inputs of
    the fit rows only: the steps a tabular network reads (``TabularBackbone.with_split_points``)."""
    rows = take(inputs, torch.as_tensor(fit_pos)).numpy()
    return exact_split_points(rows, y[fit_pos], task.split_point_trees, seed)


def head_settings(task: TaskSpec, n_out: int, mode: str, seed: int, lr: float, body_lr_scale: float,
                  backbone: Backbone | None = None) -> HeadSettings:
    return HeadSettings(kind=task.kind, n_outputs=n_out, mode=mode, steps=task.steps, batch_size=task.batch_size,
                        lr=lr, body_lr_scale=body_lr_scale, weight_decay=task.weight_decay,
                        eval_every=task.eval_every, patience=task.patience, seed=seed,
                        probe=task.probe, refit=task.refit, class_weight=task.class_weight, augment=task.augment,
                        standardize=backbone is None or backbone.standardize_features, hidden=task.head_hidden)


def _groups(dataset: LabeledDataset, column: str | None) -> np.ndarray | None:
    if column is None:
        return None
    if column not in dataset.index.columns:
        raise ValueError(f"{dataset.name}: the task groups labels by {column!r}, which the dataset lacks")
    return dataset.index[column].astype(str).to_numpy()


def experiments(task: TaskSpec, dataset: LabeledDataset, y: np.ndarray) -> list[dict[str, Any]]:
    """Every (seed, fraction[, load pair]) of the task: its labeled positions, the positions it
    is scored on, and how to hold out validation data. Independent of the models."""
    split = dataset.index["split"].to_numpy()
    train_pos, test_pos = np.where(split == "train")[0], np.where(split == "test")[0]
    out = []
    if task.protocol == "cross_load":
        loads = dataset.index["load"].astype(int).to_numpy()
        pairs = dataset.meta.get("cross_load_pairs") or [[a, b] for a in np.unique(loads) for b in np.unique(loads) if a != b]
        for seed in task.seeds:
            for a, b in pairs:
                source, target = np.where(loads == a)[0], np.where(loads == b)[0]
                # all source labels; the source load's held-out time block is the validation data
                fit = source[split[source] == "train"]
                val = source[split[source] == "test"]
                out.append({"seed": seed, "fraction": 1.0, "labeled": source, "fit": fit, "val": val if len(val) else None,
                            "test": target, "unlabeled": target,  # the target load's inputs, never its labels
                            "extra": {"source_load": int(a), "target_load": int(b)}})
        return out
    if len(train_pos) == 0 or len(test_pos) == 0:
        raise ValueError(f"{dataset.name}: needs both train and test rows (train={len(train_pos)}, test={len(test_pos)})")
    groups = _groups(dataset, task.label_groups)
    blocks = None
    if task.label_blocks:
        order = dataset.index["window_in_recording"].to_numpy() if "window_in_recording" in dataset.index else np.arange(len(y))
        blocks = (_groups(dataset, task.label_blocks)[train_pos], order[train_pos])
    for seed in task.seeds:
        for fraction in task.label_fractions:
            sub = train_pos[label_subset(y[train_pos], fraction, seed, task.kind,
                                         groups=None if groups is None else groups[train_pos], blocks=blocks)]
            folds = (cross_fit_folds(sub, y, task.cross_fit_folds, seed, task.min_val_samples)
                     if task.threshold == "cross_fit" else None)
            fit, val = (sub, None) if folds else hold_out_validation(task, dataset, y, sub, seed)
            out.append({"seed": seed, "fraction": float(fraction), "labeled": sub, "fit": fit, "val": val,
                        "folds": folds, "test": test_pos, "unlabeled": np.setdiff1d(train_pos, sub), "extra": {}})
    return out


def run_protocol(
    task: TaskSpec,
    backbone: Backbone,
    dataset: LabeledDataset,
    runtime: Runtime | None = None,
    models: tuple[str, ...] = MODELS,
    log: Callable[[str], None] | None = None,
    others: dict[str, Backbone] | None = None,
) -> dict[str, Any]:
    """Run every experiment (seed x fraction, or seed x load pair) for every model and score
    its test positions. ``others`` adds pretrained backbones (e.g. ``{"universal": ...}``),
    reported under their own model name: probed (``task.probe``), or finetuned in full when the task
    sets ``shared_backbone_steps``.
    Returns ``results`` (one row per run), sizes and timings."""
    runtime = runtime or Runtime.create("cpu")
    started = time.perf_counter()
    y = encode_targets(dataset, task)
    n_out = n_classes_of(dataset, y)
    y_fit, n_fit = training_targets(dataset, task, y)
    runs = experiments(task, dataset, y)
    others = dict(others or {})
    pretrained = {"pretrained": backbone, **others}
    order = [m for m in models if m == "pretrained"] + list(others) + [m for m in models if m != "pretrained"]
    inputs = {name: b.prepare(dataset) for name, b in pretrained.items()}
    timings: dict[str, float] = {m: 0.0 for m in order}

    t0 = time.perf_counter()
    # Probed backbones: one embedding pass, then a head per run (closed form, or the loop with probe
    # "sgd"). Extra backbones are finetuned only when the task gives them a budget
    # (``shared_backbone_steps``).
    probed = [name for name in pretrained if (task.finetune_mode == "linear_probe" if name == "pretrained"
                                              else not task.shared_backbone_steps)]
    # [copies, n, dim]: the probe fits every copy of a labeled input (``task.augment``); scoring
    # reads the first, the inputs as they are
    features = {name: view_features(pretrained[name], inputs[name], task.augment, runtime) for name in probed}
    if task.shared_backbone_components:
        train_rows = np.where(dataset.index["split"].to_numpy() == "train")[0]
        for name in set(others) & set(features):
            features[name] = others[name].leading_embedding_components(features[name], train_rows,
                                                                        task.shared_backbone_components)
    timings["embed"] = time.perf_counter() - t0
    hand = hand_features(dataset) if "baseline" in models else None
    use_threshold = task.chooses_threshold(n_out)
    adapt = task.adapt == "target_stats"

    split_points: dict[tuple[int, bytes], list[list[float]]] = {}

    def split_points_of(fit_pos: np.ndarray, seed: int) -> list[list[float]]:
        """``fit_split_points`` once per run and cross-fitted copy (the networks of a run share them)."""
        key = (seed, fit_pos.tobytes())
        if key not in split_points:
            split_points[key] = fit_split_points(task, inputs["pretrained"], y, fit_pos, seed)
        return split_points[key]

    def pick(values, pos):
        return [values[i] for i in pos] if isinstance(values, list) else values[pos]

    def positive(scores: np.ndarray) -> np.ndarray:
        return scores[:, 1]

    def train_and_score(model_name: str, seed: int, sub: np.ndarray, fit_pos: np.ndarray, val_pos: np.ndarray | None,
                        test_pos: np.ndarray, pool_pos: np.ndarray | None = None,
                        ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
        """One model trained on ``fit_pos`` (validated on ``val_pos``; a probed pretrained backbone
        self-trains on the unlabeled ``pool_pos`` when the task says so): its scores of the test
        positions, of the validation positions when a threshold is chosen on them (else None), and
        what its training did."""
        scores_val = use_threshold and val_pos is not None
        if model_name == "baseline":
            # with a threshold to choose, the baseline too must leave the validation data out
            base_pos = fit_pos if scores_val else sub
            # on the evaluated target, not ``train_target``: boosting on a few examples of each rare
            # class overfits them (AI4I development splits, all labels: F1 0.59 trained on the failure modes, 0.78 on failure)
            base = Baseline(dataset.modality, task.kind, task.baseline, n_out, seed).fit(pick(hand, base_pos), y[base_pos])
            test_x = pick(hand, test_pos)
            scores = (base.adapted(test_x) if adapt else base).predict_scores(test_x)
            val_scores = base.predict_scores(pick(hand, val_pos)) if scores_val else None
            return scores, val_scores, {}
        name = model_name if model_name in pretrained else "pretrained"
        x = inputs[name]
        body = f = None
        self_trains = False
        info: dict[str, Any] = {}
        if model_name in pretrained and model_name in features:
            body, f = pretrained[model_name], features[model_name]
        elif model_name == "scratch":
            body = backbone.scratch_twin(derive_seed("scratch", seed), dataset, sub)
            if not body.finetunable:  # nothing to train but the head: the same probe
                f = view_features(body, body.prepare(dataset), task.augment, runtime)
        if f is not None:
            settings = head_settings(task, n_fit, "linear_probe", seed, task.lr, 1.0, body)
            # the closed-form probe fits every view of an input; the loop (probe "sgd") reads
            # features [n, dim], the inputs as they are
            views = f if settings.probe == "cv" else f[0]
            # the closed-form probe merges validation data into its own CV, unless it
            # must stay out to choose the threshold
            val = (views[..., val_pos, :], y_fit[val_pos]) if val_pos is not None and not use_threshold else None
            self_trains = bool(task.self_training_rounds and model_name in pretrained and pool_pos is not None
                               and len(pool_pos))
            if self_trains:
                labeled = fit_pos if val is None else np.concatenate([fit_pos, val_pos])
                if adapt:
                    # AdaBN before self-training reads the target: its features standardised with
                    # their own statistics, the rest with the labeled ones'
                    f = per_domain_standardised(f, labeled, pool_pos, test_pos)
                predictor, labels_only = self_trained_probe(f[:, labeled], y_fit[labeled], f[:, pool_pos], settings,
                                                            task.self_training_rounds)
                # what self-training added: the same probe from the labels alone, at argmax
                info[f"labels_only_{task.metric}"] = float(compute_metrics(
                    task.kind, y[test_pos], evaluated_scores(task, predict_views(labels_only, list(f[:, test_pos]),
                                                                                 runtime))
                )[task.metric])
            else:
                predictor = train_head(None, views[..., fit_pos, :], y_fit[fit_pos], settings, val=val, runtime=runtime)
            def views_at(p, f=f):
                return list(f[:, p])
        else:
            if model_name in pretrained:
                body, lr, scale = pretrained[model_name], task.lr, task.body_lr_scale
            else:
                lr, scale = task.scratch_lr, 1.0
            if task.split_point_trees:
                body = body.with_split_points(split_points_of(fit_pos, seed))
            settings = head_settings(task, n_fit, "full", seed, lr, scale, body)
            if model_name in others:
                settings = replace(settings, steps=task.shared_backbone_steps,
                                   batch_size=task.shared_backbone_batch)
            val = (take(x, torch.as_tensor(val_pos)), y_fit[val_pos]) if val_pos is not None else None
            predictor = train_head(body, take(x, torch.as_tensor(fit_pos)), y_fit[fit_pos], settings, val=val,
                                   runtime=runtime)
            def views_at(p, x=x, body=body):
                return input_views(body, take(x, torch.as_tensor(p)), task.augment)
        # a model that trained on an augmentation's copies scores each input as the mean over its copies
        test_views = views_at(test_pos)
        # the scored (target) inputs, never their labels, re-estimate the standardisation (a
        # self-trained probe's inputs already are)
        scorer = predictor.adapted(test_views[0], runtime) if adapt and not self_trains else predictor
        scores = evaluated_scores(task, predict_views(scorer, test_views, runtime))
        val_scores = (evaluated_scores(task, predict_views(predictor, views_at(val_pos), runtime)) if scores_val
                      else None)
        return scores, val_scores, {"steps_done": predictor.result.steps_done,
                                    "stopped_early": predictor.result.stopped_early,
                                    "final_loss": predictor.result.final_loss, "refit": predictor.chosen_by is not None,
                                    **info}

    rows: list[dict[str, Any]] = []
    pairable = paired_supports(task.metric, n_out)
    scored: list[dict[str, Any]] = []  # each run's test decisions, for the paired intervals
    for run in runs:
        seed, fraction, sub, fit_pos, val_pos, test_pos = (run[k] for k in ("seed", "fraction", "labeled", "fit", "val", "test"))
        pool_pos = run.get("unlabeled")
        folds = run.get("folds")
        for model_name in order:
            t = time.perf_counter()
            threshold = None
            if folds:
                copies = [train_and_score(model_name, seed, sub, fit, held, test_pos, pool_pos) for fit, held in folds]
                if use_threshold:
                    held_out = np.concatenate([held for _, held in folds])
                    oof, test_z = common_scale([positive(c[1]) for c in copies], [positive(c[0]) for c in copies])
                    # scores and threshold through the same sigmoid: the ranking and the decisions
                    # are those of the common scale
                    p = _sigmoid(test_z)
                    scores = np.stack([1 - p, p], axis=1)
                    threshold = float(_sigmoid(best_f1_threshold(y[held_out], oof)))
                else:
                    scores = np.mean([c[0] for c in copies], axis=0)
                # per copy, as a list
                extra = {k: [c[2][k] for c in copies] for k in copies[0][2]} | {"cross_fit_folds": len(folds)}
                n_val = int(round(np.mean([len(held) for _, held in folds])))  # per copy
            else:
                scores, val_scores, extra = train_and_score(model_name, seed, sub, fit_pos, val_pos, test_pos, pool_pos)
                if use_threshold and val_pos is not None:
                    threshold = best_f1_threshold(y[val_pos], positive(val_scores))
                n_val = 0 if val_pos is None else int(len(val_pos))
            metrics = compute_metrics(task.kind, y[test_pos], scores, threshold)
            if pairable:
                scored.append({"model": model_name, "label_fraction": float(fraction), "test": test_pos,
                               "values": scored_values(task.metric, task.kind, scores, threshold)})
            wall = time.perf_counter() - t
            timings[model_name] += wall
            rows.append({"model": model_name, "label_fraction": float(fraction), "seed": int(seed),
                         "value": float(metrics[task.metric]), "metrics": metrics, "n_labeled": int(len(sub)),
                         "n_fit": int(len(sub) - n_val), "n_val": n_val,
                         "n_test": int(len(test_pos)), "wall_s": round(wall, 3), **run["extra"], **extra})
            if log:
                where = "".join(f" {k}={v}" for k, v in run["extra"].items())
                log(f"{task.name} seed={seed} frac={fraction}{where} {model_name}: {task.metric}="
                    f"{metrics[task.metric]:.4f} ({len(sub)} labels, {wall:.1f}s)")
    split = dataset.index["split"].to_numpy()
    unit = task.independent_unit
    units = dataset.index[unit].astype(str).to_numpy() if unit else np.arange(len(y))
    # differences to the pretrained model, and to each further pretrained backbone (universal vs scratch)
    paired = (paired_differences(scored, units, y, task.metric, references=("pretrained", *others), seed=task.name,
                                 unit_name=unit or "row") if pairable else [])
    timings["total"] = time.perf_counter() - started
    return {"results": rows, "paired_differences": paired, "n_train": int((split == "train").sum()),
            "n_test": int((split == "test").sum()), "n_classes": int(n_out),
            "timings_s": {k: round(v, 2) for k, v in timings.items()}, "runtime": runtime.describe()}
