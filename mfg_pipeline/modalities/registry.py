"""One ``ModalitySpec`` per modality. Adding a modality = one module + one line in MODALITIES."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfg_pipeline.modalities.base import Backbone, pretrain, resolve_dir
from mfg_pipeline.modalities.image import ImageBackbone
from mfg_pipeline.modalities.sensor import SensorBackbone
from mfg_pipeline.modalities.tabular import TabularBackbone
from mfg_pipeline.modalities.text import TextBackbone
from mfg_pipeline.storage import atomic
from mfg_pipeline.storage.artifacts import Corpus
from mfg_pipeline.training.device import Runtime
from mfg_pipeline.training.loop import LoopResult


@dataclass(frozen=True)
class PretrainSettings:
    """Default self-supervised budget for the default profile (2 CPU cores, ~1 min each)."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float = 0.01
    warmup_steps: int = 10


@dataclass(frozen=True)
class ModalitySpec:
    name: str
    backbone_cls: type[Backbone]
    pretrain_defaults: PretrainSettings
    kinds: frozenset[str] = frozenset({"pytorch"})
    model_config: dict[str, Any] = field(default_factory=dict)
    # The corpus it pretrains on, when another modality's (tabular rows are sensor readings).
    corpus_modality: str | None = None

    @property
    def corpus_asset(self) -> str:
        return f"{self.corpus_modality or self.name}_corpus"

    @property
    def backbone_asset(self) -> str:
        return f"{self.name}_backbone"

    def build(self, corpus: Corpus | None = None, seed: int = 0, **overrides: Any) -> Backbone:
        return self.backbone_cls.build({**self.model_config, **overrides}, corpus, seed)

    def load(self, directory: Path) -> Backbone:
        """Load a saved backbone (a plain folder, or a versioned one: its current version)."""
        directory = resolve_dir(directory)
        meta = atomic.read_json(directory / "config.json")
        if meta.get("modality") != self.name:
            raise ValueError(f"{directory} holds a {meta.get('modality')!r} backbone, not {self.name!r}")
        return self.backbone_cls.load(directory)

    def pretrain(self, corpus: Corpus, *, steps: int | None = None, batch_size: int | None = None,
                 lr: float | None = None, seed: int = 0, runtime: Runtime | None = None,
                 checkpoint_dir: Path | None = None, checkpoint_every: int = 0,
                 model_overrides: dict[str, Any] | None = None) -> tuple[Backbone, LoopResult]:
        d = self.pretrain_defaults
        backbone = self.build(corpus, seed, **(model_overrides or {}))
        result = pretrain(backbone, corpus, steps=d.steps if steps is None else steps,
                          batch_size=batch_size or d.batch_size, lr=lr or d.lr, weight_decay=d.weight_decay,
                          warmup_steps=min(d.warmup_steps, max(0, (d.steps if steps is None else steps) // 5)),
                          seed=seed, runtime=runtime, checkpoint_dir=checkpoint_dir,
                          checkpoint_every=checkpoint_every)
        return backbone.cpu().eval(), result


MODALITIES: dict[str, ModalitySpec] = {
    "sensor": ModalitySpec("sensor", SensorBackbone, PretrainSettings(steps=200, batch_size=64, lr=1e-3)),
    "image": ModalitySpec("image", ImageBackbone, PretrainSettings(steps=150, batch_size=64, lr=5e-3)),
    "text": ModalitySpec("text", TextBackbone, PretrainSettings(steps=500, batch_size=64, lr=3e-3),
                         kinds=frozenset({"huggingface", "pytorch"})),
    "tabular": ModalitySpec("tabular", TabularBackbone, PretrainSettings(steps=1500, batch_size=256, lr=2e-3),
                            corpus_modality="sensor"),
}


def get_modality(name: str) -> ModalitySpec:
    try:
        return MODALITIES[name]
    except KeyError:
        raise KeyError(f"unknown modality {name!r}; known: {sorted(MODALITIES)}") from None
