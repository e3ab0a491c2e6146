"""Task heads on a backbone: linear probe (frozen features) or full finetuning.

Every head trains with the one training loop. Features are standardised with statistics of
the labeled training subset (stored in the head), regression targets likewise, classification
uses class-balanced cross-entropy. Early stopping, when a validation subset exists, watches the
validation loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mfg_pipeline.modalities.base import Backbone, Inputs, clone, num_samples, take, to_device
from mfg_pipeline.storage import atomic
from mfg_pipeline.training.device import Runtime
from mfg_pipeline.training.loop import LoopConfig, LoopResult, batch_indices, dedupe_shared, fit


class Head(nn.Module):
    """Standardise features, then one linear layer. Outputs logits or a standardised value."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.register_buffer("feat_mean", torch.zeros(in_dim))
        self.register_buffer("feat_std", torch.ones(in_dim))
        self.register_buffer("target_mean", torch.zeros(1))
        self.register_buffer("target_std", torch.ones(1))
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features.float() - self.feat_mean) / self.feat_std)


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


def _targets(kind: str, y: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(y), dtype=torch.float32 if kind == "regression" else torch.int64)


def _loss(kind: str, out: torch.Tensor, y: torch.Tensor, head: Head, class_weight: torch.Tensor | None) -> torch.Tensor:
    out = out.float()
    if kind == "regression":
        return F.mse_loss(out.squeeze(-1), (y - head.target_mean) / head.target_std)
    return F.cross_entropy(out, y, weight=class_weight)


class Predictor:
    """A trained task model plus how to turn its outputs into scores (proba / values)."""

    def __init__(self, model: TaskModel, kind: str, result: LoopResult):
        self.model = model.cpu().eval()
        self.kind = kind
        self.result = result

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
            return (out.squeeze(-1) * model.head.target_std.cpu() + model.head.target_mean.cpu()).numpy()
        return torch.softmax(out, dim=-1).numpy()

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
    at ``lr * body_lr_scale``; in ``linear_probe`` mode it stays frozen."""
    runtime = runtime or Runtime.create("cpu")
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
    head = Head(int(feats.shape[1]), settings.n_outputs)
    head.feat_mean.copy_(feats.mean(0))
    head.feat_std.copy_(feats.std(0, unbiased=False).clamp_min(1e-4) if n > 1 else torch.ones(feats.shape[1]))
    class_weight = None
    if kind == "regression":
        head.target_mean.fill_(float(y.mean()))
        head.target_std.fill_(float(y.std(unbiased=False).clamp_min(1e-3)) if n > 1 else 1.0)
    else:
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
        return _loss(kind, m(take(train_x, idx)), y_dev[idx.to(y_dev.device)], head, class_weight)

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
