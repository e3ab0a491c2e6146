"""The interface every modality implements, and the generic self-supervised pretraining.

A backbone is an ``nn.Module`` whose ``forward(inputs)`` returns features ``[B, D]``. It
knows how to turn a Corpus or LabeledDataset into model-ready ``Inputs`` (``prepare``), its
own self-supervised loss (``ssl_loss``), and how to save/load itself as safetensors + JSON.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from mfg_pipeline.storage import atomic, versioned
from mfg_pipeline.storage.artifacts import Corpus, LabeledDataset
from mfg_pipeline.training.device import Runtime
from mfg_pipeline.training.loop import LoopConfig, LoopResult, batch_indices, fit
from mfg_pipeline.training.seeding import derive_seed

Inputs = torch.Tensor | dict[str, torch.Tensor]
CONFIG_JSON = "config.json"
WEIGHTS = "model.safetensors"


def resolve_dir(directory: Path) -> Path:
    """An artifact folder: the current version when ``directory`` is versioned (CURRENT.json,
    see ``storage.versioned``), else ``directory`` itself."""
    directory = Path(directory)
    if (directory / versioned.POINTER).exists():
        return versioned.current(directory)
    return directory


def take(inputs: Inputs, idx: torch.Tensor) -> Inputs:
    if isinstance(inputs, dict):
        return {k: v[idx.to(v.device)] for k, v in inputs.items()}
    return inputs[idx.to(inputs.device)]


def concat(first: Inputs, second: Inputs) -> Inputs:
    if isinstance(first, dict):
        return {k: torch.cat([v, second[k].to(v.device)]) for k, v in first.items()}
    return torch.cat([first, second.to(first.device)])


def num_samples(inputs: Inputs) -> int:
    if isinstance(inputs, dict):
        return len(next(iter(inputs.values())))
    return len(inputs)


def to_device(inputs: Inputs, device: torch.device) -> Inputs:
    if isinstance(inputs, dict):
        return {k: v.to(device) for k, v in inputs.items()}
    return inputs.to(device)


class Backbone(nn.Module):
    """Base class: subclasses set ``modality`` and implement the abstract methods."""

    modality: ClassVar[str] = ""
    feature_dim: int
    # False: the features have no weights to finetune (the heads then only fit a probe)
    finetunable: bool = True
    # False: heads fit the features as they are (a sparse bag), not standardised
    standardize_features: bool = True

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.config = dict(config)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, config: dict[str, Any], corpus: Corpus | None = None, seed: int = 0) -> "Backbone":
        """A randomly initialised backbone; ``corpus`` may fill data-derived config."""
        torch.manual_seed(derive_seed("init", cls.modality, seed))
        return cls(dict(config))

    def fresh(self, seed: int = 0) -> "Backbone":
        """Same architecture (and tokenizer), new random weights: the scratch twin."""
        torch.manual_seed(derive_seed("init", self.modality, seed))
        return type(self)(copy.deepcopy(self.config))

    def scratch_twin(self, seed: int, dataset: LabeledDataset, labeled: Any) -> "Backbone":
        """The protocol's scratch twin for a run that labels ``dataset``'s rows at positions
        ``labeled``: new random weights (``fresh``). A backbone that learns more than weights
        from its corpus (a vocabulary, tabular bins) learns that from the labeled rows instead."""
        return self.fresh(seed)

    # -- data -----------------------------------------------------------------------------
    def prepare(self, data: Corpus | LabeledDataset) -> Inputs:
        raise NotImplementedError

    def forward(self, inputs: Inputs) -> torch.Tensor:  # -> [B, feature_dim]
        raise NotImplementedError

    def ssl_loss(self, inputs: Inputs, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def views(self, inputs: Inputs, augment: str) -> list[Inputs]:
        """Every label-preserving copy of ``inputs`` under a task's ``augment``; the first is
        ``inputs`` itself."""
        raise ValueError(f"{self.modality} backbones have no {augment!r} augmentation")

    def random_view(self, inputs: Inputs, augment: str, gen: torch.Generator) -> Inputs:
        """One of those copies per sample, drawn with ``gen`` (finetuning batches)."""
        raise ValueError(f"{self.modality} backbones have no {augment!r} augmentation")

    @torch.no_grad()
    def embed(self, inputs: Inputs, runtime: Runtime | None = None, batch_size: int = 512) -> torch.Tensor:
        """Features for all inputs (eval mode, batched), returned on CPU as float32."""
        runtime = runtime or Runtime.create("cpu")
        was_training = self.training
        self.eval()
        out = []
        n = num_samples(inputs)
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(n, start + batch_size))
            batch = to_device(take(inputs, idx), runtime.device)
            with runtime.autocast():
                out.append(self(batch).float().cpu())
        self.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, self.feature_dim)

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        state = {k: v for k, v in self.state_dict().items()}
        atomic.write_tensors(directory / WEIGHTS, state)
        # config.json is written last: its presence marks a complete backbone.
        atomic.write_json(directory / CONFIG_JSON, {"modality": self.modality, "config": self.config})

    @classmethod
    def load(cls, directory: Path) -> "Backbone":
        directory = Path(directory)
        meta = atomic.read_json(directory / CONFIG_JSON)
        model = cls(meta["config"])
        model.load_state_dict(atomic.read_tensors(directory / WEIGHTS))
        model.eval()
        return model

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def pretrain(
    backbone: Backbone,
    corpus: Corpus,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.01,
    warmup_steps: int = 0,
    seed: int = 0,
    runtime: Runtime | None = None,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 0,
) -> LoopResult:
    """Self-supervised pretraining of ``backbone`` on ``corpus`` with the one training loop."""
    runtime = runtime or Runtime.create("cpu")
    inputs = to_device(backbone.prepare(corpus), runtime.device)  # small corpora stay resident
    n = num_samples(inputs)
    if n == 0:
        raise ValueError(f"{backbone.modality} corpus is empty")

    def loss_fn(model: nn.Module, step: int, gen: torch.Generator) -> torch.Tensor:
        batch = take(inputs, batch_indices(n, batch_size, gen))
        return model.ssl_loss(batch, gen)

    config = LoopConfig(steps=steps, lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps, seed=seed,
                        checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
                        checkpoint_every=checkpoint_every)
    return fit(backbone, loss_fn, config, runtime)


def clone(backbone: Backbone) -> Backbone:
    """An independent copy with the same weights (finetuning never mutates the loaded backbone)."""
    twin = backbone.fresh(0)
    twin.load_state_dict(backbone.state_dict())
    return twin
