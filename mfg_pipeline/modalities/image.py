"""Inspection images: a torchvision CNN (``weights=None``) pretrained SimCLR-style (NT-Xent), or
(``arch="patch_dictionary"``) a single layer of patch filters learnt by k-means
(``patch_dictionary``).

Measured on this 2-core CPU (batch 128, 64x64, one train step): resnet18 1.40 s,
resnet [1,1,1,1] 0.65 s, mobilenet_v3_small 0.26 s, shufflenet_v2_x0_5 0.15 s. The default is
``shufflenet_v2_x0_5`` so that pretraining fits the minute budget; ``arch`` is configuration
(``resnet18`` on a GPU). Grayscale images are repeated to three channels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from mfg_pipeline.modalities.base import Backbone, Inputs
from mfg_pipeline.modalities.patch_dictionary import PatchDictionary
from mfg_pipeline.storage.artifacts import Corpus, LabeledDataset
from mfg_pipeline.training.seeding import derive_seed

DEFAULT_CONFIG: dict[str, Any] = {
    "arch": "shufflenet_v2_x0_5",
    "image_size": 64,
    "view_size": 64,  # SSL view resolution (48 is ~1.7x cheaper but loses the small defects)
    "proj_dim": 64,
    "proj_hidden": 256,
    "temperature": 0.1,
    "crop_scale": [0.6, 1.0],  # smaller crops often cut the defect out of the view
    "max_rotation_deg": 180.0,
    "jitter": 0.3,
    "noise": 0.05,
    "standardize": "image",  # image: per-image mean/std (lighting-invariant) | fixed: (x-0.5)/0.25
    "multi_scale": True,  # features: global-average-pooled maps of every stage, concatenated
    # arch "patch_dictionary": patch size, atoms per scale, downsampling factors, the patch step
    # per scale (None: 1 at every scale), response threshold, how matches become features
    # ("pooled" | "vlad": see ``patch_dictionary``)
    "patch": 7,
    "atoms": 256,
    "scales": [2, 4],
    "strides": None,
    "alpha": 0.25,
    "encoding": "pooled",
}
DICTIONARY = "patch_dictionary"

# Per architecture: the encoder's children in order, and which of them are pooled into features.
_STAGES: dict[str, tuple[list[str], list[str]]] = {
    "shufflenet": (["conv1", "maxpool", "stage2", "stage3", "stage4", "conv5"], ["stage2", "stage3", "stage4", "conv5"]),
    "resnet": (["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"],
               ["layer1", "layer2", "layer3", "layer4"]),
}


def _stage_plan(arch: str) -> tuple[list[str], list[str]] | None:
    for prefix, plan in _STAGES.items():
        if arch.startswith(prefix):
            return plan
    return None


def _strip_head(model: nn.Module) -> nn.Module:
    for attr in ("fc", "classifier", "head", "heads"):
        if hasattr(model, attr):
            setattr(model, attr, nn.Identity())
            return model
    raise ValueError(f"don't know how to remove the head of {type(model).__name__}")


class ImageBackbone(Backbone):
    modality = "image"

    def __init__(self, config: dict[str, Any]):
        config = {**DEFAULT_CONFIG, **config}
        super().__init__(config)
        if config["arch"] == DICTIONARY:
            self.encoder = PatchDictionary(config["patch"], config["atoms"], tuple(config["scales"]), config["alpha"],
                                           config["strides"], config["encoding"])
            self.feature_dim = self.encoder.feature_dim
            return
        self.encoder = _strip_head(torchvision.models.get_model(config["arch"], weights=None))
        self.plan = _stage_plan(config["arch"]) if config["multi_scale"] else None
        with torch.no_grad():
            self.encoder.eval()
            size = config["image_size"]
            self.feature_dim = int(self._encode(torch.rand(2, 1, size, size)).shape[-1])
            self.encoder.train()
        self.projector = nn.Sequential(nn.Linear(self.feature_dim, config["proj_hidden"]), nn.ReLU(),
                                       nn.Linear(config["proj_hidden"], config["proj_dim"]))

    @property
    def dictionary(self) -> bool:
        return isinstance(self.encoder, PatchDictionary)

    @classmethod
    def build(cls, config: dict[str, Any], corpus: Corpus | None = None, seed: int = 0) -> "ImageBackbone":
        """A patch dictionary learns its atoms from the corpus here (k-means, closed form)."""
        backbone = super().build(config, corpus, seed)
        if backbone.dictionary:
            if corpus is None:
                raise ValueError("a patch-dictionary backbone learns its atoms from a corpus: pass one")
            gen = torch.Generator().manual_seed(derive_seed("dictionary", seed))
            backbone.encoder.fit(backbone._to_float(backbone.prepare(corpus)), gen)
        return backbone

    def prepare(self, data: Corpus | LabeledDataset) -> Inputs:
        if data.inputs is None:
            raise ValueError("image data has no input tensor")
        x = data.inputs
        if x.ndim == 3:
            x = x.unsqueeze(1)
        size = self.config["image_size"]
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False)
            x = x.round().clamp(0, 255).to(torch.uint8)
        return x  # uint8 stays compact; converted per batch

    @staticmethod
    def _to_float(x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        return x.float()

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.dictionary:  # normalises each patch itself
            return self.encoder(x.mean(dim=1, keepdim=True))
        if self.config["standardize"] == "image":
            mu = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mu) / (x.std(dim=(1, 2, 3), keepdim=True) + 0.02)
        else:
            x = (x - 0.5) / 0.25
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.plan is None:
            return self.encoder(x)
        order, taps = self.plan
        pooled = []
        for name in order:
            x = getattr(self.encoder, name)(x)
            if name in taps:
                pooled.append(x.mean(dim=(2, 3)))
        return torch.cat(pooled, dim=1)

    def forward(self, inputs: Inputs) -> torch.Tensor:
        return self._encode(self._to_float(inputs))

    def augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Random resized crop + rotation + flip (one affine warp), brightness/contrast, noise."""
        b = x.shape[0]
        lo, hi = self.config["crop_scale"]
        scale = torch.sqrt(lo + (hi - lo) * torch.rand(b, generator=gen))
        angle = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(self.config["max_rotation_deg"])
        flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
        shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * (1 - scale).unsqueeze(1)
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                             torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
        theta = theta.to(x.device, x.dtype)
        v = int(self.config.get("view_size") or x.shape[-1])
        grid = F.affine_grid(theta, [b, x.shape[1], v, v], align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        j = self.config["jitter"]
        bright = ((torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * j).to(x.device, x.dtype)
        contrast = (1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * j).to(x.device, x.dtype)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * contrast + mean + bright * 0.5
        noise = torch.randn(out.shape, generator=gen).to(x.device, x.dtype) * self.config["noise"]
        return (out + noise).clamp(0, 1)

    def views(self, inputs: Inputs, augment: str) -> list[Inputs]:
        _check_dihedral(augment)
        return [dihedral(inputs, k) for k in range(8)]

    def random_view(self, inputs: Inputs, augment: str, gen: torch.Generator) -> Inputs:
        which = torch.randint(0, 8, (len(inputs),), generator=gen).to(inputs.device)
        return torch.stack(self.views(inputs, augment))[which, torch.arange(len(inputs), device=inputs.device)]

    def ssl_loss(self, inputs: Inputs, gen: torch.Generator) -> torch.Tensor:
        """SimCLR: two augmented views per image, NT-Xent over the 2B projections. A patch
        dictionary: its k-means objective."""
        x = self._to_float(inputs)
        if self.dictionary:
            return self.encoder.objective(x.mean(dim=1, keepdim=True), gen)
        views = torch.cat([self.augment(x, gen), self.augment(x, gen)])
        z = F.normalize(self.projector(self._encode(views)).float(), dim=-1)
        return nt_xent(z, self.config["temperature"])


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th (0-7) of the 8 rotations by multiples of 90 degrees, then mirrored for k >= 4,
    of square images ``[..., H, W]``; k = 0 leaves them as they are."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return (torch.flip(x, dims=(-1,)) if k >= 4 else x).contiguous()


def _check_dihedral(augment: str) -> None:
    if augment != "dihedral":
        raise ValueError(f"image backbones augment with 'dihedral', not {augment!r}")


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalised-temperature cross entropy for ``z = [view1; view2]`` (unit vectors)."""
    n = z.shape[0] // 2
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)
