"""Task heads on a backbone: linear probe (frozen features) or full finetuning.

Every head trains with the one training loop. Features are standardised with statistics of
the labeled training subset (stored in the head; not for a sparse bag,
``Backbone.standardize_features``), regression targets likewise, classification
uses class-balanced cross-entropy (``class_weight="none"``: plain). Early stopping, when a
validation subset exists, watches the validation loss.

``Predictor.adapted(inputs)`` re-estimates that standardisation on other, unlabeled inputs (a
new domain): feature-level AdaBN (``TaskSpec.adapt="target_stats"``).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mfg_pipeline.modalities.base import Backbone, Inputs, clone, concat, num_samples, take, to_device
from mfg_pipeline.storage import atomic
from mfg_pipeline.tasks.registry import CLASS_WEIGHTS
from mfg_pipeline.training.device import Runtime
from mfg_pipeline.training.linalg import leading_directions
from mfg_pipeline.training.loop import LoopConfig, LoopResult, batch_indices, dedupe_shared, fit


class Head(nn.Module):
    """Standardise features, then one linear layer (``hidden > 0``: a GELU hidden layer of that
    width first). Outputs logits or a standardised value.

    Regression heads also keep the range of their training targets: predictions are clipped to
    it, because a target defined as capped (C-MAPSS RUL <= 125) or non-negative never lies
    outside what training saw, and a linear output otherwise extrapolates past the cap."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 0):
        super().__init__()
        self.register_buffer("feat_mean", torch.zeros(in_dim))
        self.register_buffer("feat_std", torch.ones(in_dim))
        self.register_buffer("target_mean", torch.zeros(1))
        self.register_buffer("target_std", torch.ones(1))
        self.register_buffer("target_min", torch.full((1,), -torch.inf))
        self.register_buffer("target_max", torch.full((1,), torch.inf))
        self.hidden = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU()) if hidden else nn.Identity()
        self.linear = nn.Linear(hidden or in_dim, out_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.hidden((features.float() - self.feat_mean) / self.feat_std))


def set_target_stats(head: Head, y: torch.Tensor) -> None:
    """Regression: the standardisation and the clipping range of the training targets."""
    y = torch.as_tensor(y, dtype=torch.float64)
    head.target_mean.fill_(float(y.mean()))
    head.target_std.fill_(max(float(y.std(unbiased=False)), 1e-3) if len(y) > 1 else 1.0)
    head.target_min.fill_(float(y.min()))
    head.target_max.fill_(float(y.max()))


def feature_stats(features: torch.Tensor, standardize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std (population, floored at 1e-4) as the head standardises with;
    zeros and ones (the identity) without ``standardize``."""
    x = features.float()
    if not standardize:
        return torch.zeros(x.shape[1]), torch.ones(x.shape[1])
    if len(x) < 2:
        return x.mean(0) if len(x) else torch.zeros(x.shape[1]), torch.ones(x.shape[1])
    return x.mean(0), x.std(0, unbiased=False).clamp_min(1e-4)


class TaskModel(nn.Module):
    """``backbone`` (None: the inputs are precomputed features) followed by a ``Head``."""

    def __init__(self, backbone: Backbone | None, head: Head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, inputs: Inputs) -> torch.Tensor:
        features = inputs if self.backbone is None else self.backbone(inputs)
        return self.head(features)


@dataclass
class HeadSettings:
    kind: str  # classification | regression
    n_outputs: int  # number of classes, or 1
    mode: str  # linear_probe | full
    steps: int
    batch_size: int = 64
    lr: float = 3e-3
    body_lr_scale: float = 1.0
    weight_decay: float = 1e-3
    eval_every: int = 0
    patience: int = 0
    seed: int = 0
    probe: str = "cv"  # linear_probe solver: cv (closed form, regularisation by internal CV) | sgd (the loop)
    # After early stopping: train again from the start on fit + validation data for the number
    # of steps validation chose. With few labeled machines the validation machines are a large
    # share of the labels (2 of 10 C-MAPSS engines at 10 %).
    refit: bool = False
    # "balanced": classes weighted by inverse frequency in the loss; "none": plain cross-entropy
    # (where a threshold chosen on validation data already corrects for imbalance).
    class_weight: str = "balanced"
    # TaskSpec.augment: the closed-form probe fits every copy of each labeled input, finetuning
    # one random copy per sample and step.
    augment: str | None = None
    # False: the head keeps the features as they are (Backbone.standardize_features)
    standardize: bool = True
    hidden: int = 0  # TaskSpec.head_hidden; trained by the loop only (the closed-form probe is linear)

    def __post_init__(self) -> None:
        if self.class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"class_weight must be one of {CLASS_WEIGHTS}, got {self.class_weight!r}")
        if self.augment is not None and (self.kind != "classification" or (self.mode != "full" and self.probe != "cv")):
            raise ValueError("augment is implemented for classification, by the closed-form probe (probe='cv') "
                             "or full finetuning")
        if self.hidden and self.mode != "full" and self.probe == "cv":
            raise ValueError("a head with a hidden layer is trained by the loop: mode 'full' or probe 'sgd'")


def _targets(kind: str, y: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(y), dtype=torch.float32 if kind == "regression" else torch.int64)


def _loss(kind: str, out: torch.Tensor, y: torch.Tensor, head: Head, class_weight: torch.Tensor | None) -> torch.Tensor:
    out = out.float()
    if kind == "regression":
        return F.mse_loss(out.squeeze(-1), (y - head.target_mean) / head.target_std)
    return F.cross_entropy(out, y, weight=class_weight)


class Predictor:
    """A trained task model plus how to turn its outputs into scores (proba / values)."""

    def __init__(self, model: TaskModel, kind: str, result: LoopResult, chosen_by: LoopResult | None = None):
        self.model = model.cpu().eval()
        self.kind = kind
        self.result = result
        self.chosen_by = chosen_by  # refit: the early-stopped run whose best step set the budget

    @torch.no_grad()
    def predict(self, inputs: Inputs, runtime: Runtime | None = None, batch_size: int = 512) -> np.ndarray:
        runtime = runtime or Runtime.create("cpu")
        model = self.model.to(runtime.device).eval()
        outs = []
        n = num_samples(inputs)
        for start in range(0, n, batch_size):
            batch = to_device(take(inputs, torch.arange(start, min(n, start + batch_size))), runtime.device)
            with runtime.autocast():
                outs.append(model(batch).float().cpu())
        self.model.cpu()
        out = torch.cat(outs) if outs else torch.zeros(0, model.head.linear.out_features)
        if self.kind == "regression":
            head = model.head.cpu()
            values = out.squeeze(-1) * head.target_std + head.target_mean
            return values.clamp(head.target_min.item(), head.target_max.item()).numpy()
        return torch.softmax(out, dim=-1).numpy()

    @torch.no_grad()
    def features(self, inputs: Inputs, runtime: Runtime | None = None) -> torch.Tensor:
        """What the head sees for ``inputs``: the (trained) backbone's features, or the inputs
        themselves for a head on precomputed features."""
        runtime = runtime or Runtime.create("cpu")
        if self.model.backbone is None:
            return torch.as_tensor(inputs).float().cpu()
        body = self.model.backbone.to(runtime.device)
        try:
            return body.embed(inputs, runtime)
        finally:
            body.cpu()

    def adapted(self, inputs: Inputs, runtime: Runtime | None = None) -> "Predictor":
        """Feature-level AdaBN: a copy whose head standardises features with the mean/std of
        ``inputs``' features instead of the training data's. ``inputs`` are unlabeled samples of
        the domain to predict on (transductive: all of them); no labels are involved, the
        backbone and the linear layer are shared unchanged. Fewer than two samples: unchanged."""
        if num_samples(inputs) < 2:
            return self
        mean, std = feature_stats(self.features(inputs, runtime))
        head = copy.deepcopy(self.model.head)
        head.feat_mean.copy_(mean)
        head.feat_std.copy_(std)
        return Predictor(TaskModel(self.model.backbone, head), self.kind, self.result)

    def save(self, directory: Path, extra: dict[str, Any] | None = None) -> None:
        """Head (and full-finetuned backbone) weights as safetensors + JSON."""
        directory = Path(directory)
        state, aliases = dedupe_shared(dict(self.model.state_dict()))  # tied text embeddings
        atomic.write_tensors(directory / "task_model.safetensors", state)
        atomic.write_json(directory / "task_model.json", {"kind": self.kind, "tied_weights": aliases, **(extra or {})})


def train_head(
    backbone: Backbone | None,
    train_inputs: Inputs,
    y_train: np.ndarray,
    settings: HeadSettings,
    *,
    val: tuple[Inputs, np.ndarray] | None = None,
    runtime: Runtime | None = None,
    checkpoint_dir: Path | None = None,
) -> Predictor:
    """Train a head. ``backbone=None``: ``train_inputs`` are features (linear probe on
    precomputed embeddings). With a backbone and mode ``full`` the (copied) body is trained too
    at ``lr * body_lr_scale``; in ``linear_probe`` mode it stays frozen. ``settings.refit``:
    see ``HeadSettings``."""
    runtime = runtime or Runtime.create("cpu")
    if settings.mode == "full" and backbone is not None and not backbone.finetunable:
        raise ValueError(f"this {backbone.modality} backbone's features have no weights to finetune: "
                         "use mode 'linear_probe'")
    if settings.mode != "full" and settings.probe == "cv":
        return fit_probe(backbone, train_inputs, y_train, settings, val=val, runtime=runtime)
    first = _train_sgd(backbone, train_inputs, y_train, settings, val, runtime, checkpoint_dir)
    if not settings.refit or val is None or first.result.best_step is None:
        return first
    again = _train_sgd(backbone, concat(train_inputs, val[0]), np.concatenate([np.asarray(y_train), np.asarray(val[1])]),
                       replace(settings, steps=first.result.best_step, eval_every=0, patience=0), None, runtime,
                       checkpoint_dir / "refit" if checkpoint_dir else None)
    return Predictor(again.model, again.kind, again.result, chosen_by=first.result)


def input_views(backbone: Backbone, inputs: Inputs, augment: str | None) -> list[Inputs]:
    """Every copy of ``inputs`` under ``augment``, the inputs as they are first (only them without
    ``augment``)."""
    return backbone.views(inputs, augment) if augment else [inputs]


def view_features(backbone: Backbone, inputs: Inputs, augment: str | None, runtime: Runtime | None = None) -> torch.Tensor:
    """Features of every copy of ``inputs`` under ``augment`` (``input_views``): ``[copies, n, dim]``."""
    return torch.stack([backbone.embed(c, runtime) for c in input_views(backbone, inputs, augment)])


def predict_views(predictor: Predictor, views: list[Inputs], runtime: Runtime | None = None) -> np.ndarray:
    """The mean prediction over copies of the same inputs (``view_features``'s order, the inputs as
    they are first): a model trained on an augmentation's copies scores every copy of a test input,
    as the self-training probe already scores its pool. One copy: the plain prediction."""
    return np.mean([predictor.predict(v, runtime) for v in views], axis=0)


def _as_views(features: torch.Tensor) -> torch.Tensor:
    return features if features.ndim == 3 else features.unsqueeze(0)


def _train_sgd(backbone: Backbone | None, train_inputs: Inputs, y_train: np.ndarray, settings: HeadSettings,
               val: tuple[Inputs, np.ndarray] | None, runtime: Runtime, checkpoint_dir: Path | None) -> Predictor:
    kind = settings.kind
    body = None
    if backbone is not None:
        body = clone(backbone) if settings.mode == "full" else backbone
        if settings.mode != "full":
            for p in body.parameters():
                p.requires_grad_(False)
    y = _targets(kind, y_train)
    n = len(y)

    # statistics for the head's standardisation
    feats = train_inputs if body is None else body.embed(train_inputs, runtime)
    head = Head(int(feats.shape[1]), settings.n_outputs, settings.hidden)
    mean, std = feature_stats(feats, settings.standardize)
    head.feat_mean.copy_(mean)
    head.feat_std.copy_(std)
    class_weight = None
    if kind == "regression":
        set_target_stats(head, y)
    elif settings.class_weight == "balanced":
        counts = torch.bincount(y, minlength=settings.n_outputs).float()
        w = torch.where(counts > 0, counts.sum() / (counts.clamp_min(1) * (counts > 0).sum()), torch.zeros_like(counts))
        class_weight = w.to(runtime.device)

    model = TaskModel(body, head).to(runtime.device)
    if body is not None and settings.mode != "full":
        # frozen body: train the head on precomputed features (identical, much cheaper)
        model = TaskModel(None, head).to(runtime.device)
        train_x = feats
        val = (body.embed(val[0], runtime), val[1]) if val is not None else None
    else:
        train_x = train_inputs
    train_x = to_device(train_x, runtime.device)
    y_dev = y.to(runtime.device)

    def loss_fn(m: nn.Module, step: int, gen: torch.Generator) -> torch.Tensor:
        idx = batch_indices(n, settings.batch_size, gen)
        batch = take(train_x, idx)
        if settings.augment:
            batch = m.backbone.random_view(batch, settings.augment, gen)
        return _loss(kind, m(batch), y_dev[idx.to(y_dev.device)], head, class_weight)

    validate = None
    if val is not None and settings.eval_every:
        val_x = to_device(val[0], runtime.device)
        val_y = _targets(kind, val[1]).to(runtime.device)
        n_val = len(val_y)

        def validate(m: nn.Module) -> float:
            total = 0.0
            for start in range(0, n_val, 512):
                idx = torch.arange(start, min(n_val, start + 512))
                total += float(_loss(kind, m(take(val_x, idx)), val_y[idx.to(val_y.device)], head, class_weight)) * len(idx)
            return total / n_val

    groups = None
    if model.backbone is not None:
        groups = [{"params": list(model.backbone.parameters()), "lr_scale": settings.body_lr_scale},
                  {"params": list(model.head.parameters()), "lr_scale": 1.0}]
    config = LoopConfig(steps=settings.steps, lr=settings.lr, weight_decay=settings.weight_decay,
                        warmup_steps=0, seed=settings.seed,
                        checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
                        eval_every=settings.eval_every if validate else 0,
                        patience=settings.patience, higher_is_better=False)
    result = fit(model, loss_fn, config, runtime, param_groups=groups, validate=validate)
    if body is not None and settings.mode != "full":
        model = TaskModel(body, head)  # the deployable model: frozen body + trained head
    return Predictor(model, kind, result)


PROBE_CS = tuple(float(c) for c in np.logspace(-3, 1, 5))
PROBE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 4, 13))
PROBE_MAX_BASIS = 384
# Self-training ends with this share of the unlabeled pool pseudo-labeled: the least confident
# fifth, whose guesses are the likeliest to be wrong, never joins.
SELF_TRAINING_SHARE = 0.8


def probe_folds(y: np.ndarray, groups: np.ndarray, seed: int, max_folds: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified CV folds of the probe's rows, as many as the rarest validated class has labeled
    inputs (at most ``max_folds``); none (the prior ``C``) when fewer than two classes have two.
    Rows of one group (the copies of one input) stay in one fold, or the CV would score inputs it
    has seen rotated. The rows of a class with a single labeled input are in every training fold
    and never validated: scored in a fold that cannot have seen its class, it would only push the
    CV to the smallest ``C`` (at 10 % of the excavator labels on development splits of the
    training texts, falling back to the prior instead cost ~0.1 macro-F1)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y, groups = np.asarray(y), np.asarray(groups)
    first_rows = np.unique(groups, return_index=True)[1]  # one row per input: its label
    classes, inputs_per_class = np.unique(y[first_rows], return_counts=True)
    validated = inputs_per_class >= 2
    if validated.sum() < 2:
        return []
    folds = int(min(max_folds, inputs_per_class[validated].min()))
    in_cv = np.isin(y, classes[validated])
    rows, always = np.where(in_cv)[0], np.where(~in_cv)[0]
    y_cv, g_cv = y[rows], groups[rows]
    if len(np.unique(g_cv)) == len(g_cv):
        split = StratifiedKFold(folds, shuffle=True, random_state=seed).split(g_cv, y_cv)
    else:
        split = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(g_cv, y_cv, g_cv)
    return [(np.concatenate([rows[train], always]), rows[test]) for train, test in split]


def fit_probe(
    backbone: Backbone | None,
    train_inputs: Inputs,
    y_train: np.ndarray,
    settings: HeadSettings,
    *,
    val: tuple[Inputs, np.ndarray] | None = None,
    runtime: Runtime | None = None,
) -> Predictor:
    """Closed-form linear probe on frozen, standardised features.

    Classification: (class-balanced) multinomial logistic regression whose inverse
    regularisation ``C`` is chosen by stratified k-fold CV (log loss) on the labeled subset;
    classes with a single label are fitted but not validated (``probe_folds``); with fewer than
    two classes of two labels there is nothing to validate on and ``C`` is the strongly
    regularising prior ``1e-2`` (one-shot: close to a nearest-class-mean classifier).
    Regression: ridge on standardised targets with ``alpha`` by exact leave-one-out (RidgeCV).
    The validation subset, if given, is merged into the fit data (CV does its job). Features
    ``[copies, n, dim]`` (``view_features``; computed here with ``settings.augment`` when a
    backbone is given) are fitted as ``copies * n`` rows; the CV keeps an input's copies in one
    fold. The solution is written into the same ``Head`` (standardisation buffers + linear layer)
    that SGD heads use, so predictions, saving and the deployable model are unchanged.
    """
    import scipy.sparse
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV

    runtime = runtime or Runtime.create("cpu")
    body = backbone
    feats = _as_views(train_inputs if body is None else view_features(body, train_inputs, settings.augment, runtime))
    y = np.asarray(y_train)
    if val is not None:
        vf = _as_views(val[0] if body is None else view_features(body, val[0], settings.augment, runtime))
        feats, y = torch.cat([feats.float(), vf.float()], dim=1), np.concatenate([y, np.asarray(val[1])])
    copies, n_inputs, d = feats.shape
    x = feats.float().cpu().reshape(copies * n_inputs, d)
    groups = np.tile(np.arange(n_inputs), copies)
    y = np.tile(y, copies)
    n = len(y)
    head = Head(d, settings.n_outputs)
    mean, std = feature_stats(x, settings.standardize)
    head.feat_mean.copy_(mean)
    head.feat_std.copy_(std)
    xs = ((x - mean) / std).double().numpy()
    info: dict[str, float] = {}
    with torch.no_grad():
        if settings.kind == "regression":
            yt = torch.as_tensor(y, dtype=torch.float64)
            set_target_stats(head, yt)
            ys = (yt.numpy() - head.target_mean.item()) / head.target_std.item()
            model = RidgeCV(alphas=PROBE_ALPHAS).fit(xs, ys) if n > 2 else RidgeCV(alphas=(1e3,)).fit(xs, ys)
            info["alpha"] = float(model.alpha_)
            head.linear.weight.zero_()
            head.linear.weight[0] = torch.as_tensor(model.coef_, dtype=torch.float32)
            head.linear.bias.fill_(float(model.intercept_))
            train_loss = float(np.mean((model.predict(xs) - ys) ** 2))
        else:
            y = y.astype(np.int64)
            classes = np.unique(y)
            balance = "balanced" if settings.class_weight == "balanced" else None
            head.linear.weight.zero_()
            head.linear.bias.fill_(-30.0)  # classes without labels are never predicted
            if len(classes) < 2:
                head.linear.bias[int(classes[0])] = 0.0
                train_loss = 0.0
            else:
                # With fewer samples than features the L2-regularised solution lies in the span
                # of the training rows: fit in that n-dimensional basis (exactly the same
                # optimum, a fraction of the cost) and map the weights back. When that span (or
                # the feature space) has more than PROBE_MAX_BASIS dimensions, only its leading
                # principal directions are kept (NEU, 1,350 x 1,360 image features: 150 s per
                # CV fit in the full span).
                # Unstandardised features are a sparse bag (text pieces): fitted sparse in their
                # own space, as fast, and truncating them to principal directions cost 0.02 F1.
                basis = None
                if not settings.standardize:
                    xf = scipy.sparse.csr_matrix(xs)
                else:
                    if min(n, d) > PROBE_MAX_BASIS:
                        basis = leading_directions(xs, PROBE_MAX_BASIS)
                    else:
                        basis = np.linalg.svd(xs, full_matrices=False)[2] if n < d else None
                    xf = xs @ basis.T if basis is not None else xs
                cv = probe_folds(y, groups, settings.seed)
                if cv:
                    with warnings.catch_warnings():  # sklearn 1.9 announces attribute/default changes
                        warnings.simplefilter("ignore", FutureWarning)
                        model = LogisticRegressionCV(
                            Cs=list(PROBE_CS), cv=cv,
                            scoring="neg_log_loss", class_weight=balance, max_iter=500, tol=1e-3).fit(xf, y)
                    c = float(np.atleast_1d(model.C_)[0])
                else:
                    c = 1e-2
                model = LogisticRegression(C=c, class_weight=balance, max_iter=1000).fit(xf, y)
                info["C"] = c
                weights = model.coef_ @ basis if basis is not None else model.coef_
                coef, icpt = torch.as_tensor(weights, dtype=torch.float32), torch.as_tensor(model.intercept_,
                                                                                            dtype=torch.float32)
                rows = torch.as_tensor(model.classes_.astype(np.int64))
                if len(model.classes_) == 2 and coef.shape[0] == 1:  # binary: softmax([-z/2, z/2]) = sigmoid(z)
                    coef, icpt = torch.cat([-coef / 2, coef / 2]), torch.cat([-icpt / 2, icpt / 2])
                head.linear.weight[rows] = coef
                head.linear.bias[rows] = icpt
                proba = model.predict_proba(xf)
                train_loss = float(-np.mean(np.log(proba[np.arange(n), np.searchsorted(model.classes_, y)] + 1e-12)))
    result = LoopResult(history=[train_loss], steps_done=0, best_value=next(iter(info.values()), None))
    return Predictor(TaskModel(body, head), settings.kind, result)


def self_trained_probe(features: torch.Tensor, y: np.ndarray, pool: torch.Tensor, settings: HeadSettings,
                       rounds: int, share: float = SELF_TRAINING_SHARE) -> tuple[Predictor, Predictor]:
    """Closed-form probe on labeled ``features`` ``[copies, n, d]``, then ``rounds`` rounds of
    self-training on the unlabeled ``pool`` ``[copies, m, d]``: each round the current probe
    scores every pool input (softmax averaged over its copies), and the most confident inputs
    of each predicted class join the labeled ones with that class as label, per class in
    proportion to its share of the labels, growing evenly to ``share`` of the pool by the last
    round. The probe is refitted from scratch each round (its CV chooses C again).
    Returns (the self-trained probe, the probe of the labels alone)."""
    y = np.asarray(y)
    labels_only = predictor = fit_probe(None, features, y, settings)
    m = pool.shape[1]
    if rounds <= 0 or m == 0:
        return predictor, labels_only
    prior = np.bincount(y, minlength=settings.n_outputs) / len(y)
    for r in range(1, rounds + 1):
        proba = predict_views(predictor, list(pool))
        confidence, guess = proba.max(1), proba.argmax(1)
        picked = []
        for c in np.flatnonzero(prior):
            members = np.flatnonzero(guess == c)
            take_n = int(round(m * prior[c] * share * r / rounds))
            picked.append(members[np.argsort(-confidence[members], kind="stable")][:take_n])
        chosen = np.concatenate(picked)
        predictor = fit_probe(None, torch.cat([features.float(), pool[:, chosen].float()], dim=1),
                              np.concatenate([y, guess[chosen]]), settings)
    return predictor, labels_only
