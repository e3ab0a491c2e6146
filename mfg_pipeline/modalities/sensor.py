"""Sensor windows: a channel-independent patch transformer (PatchTST-style) with RevIN.

Each channel of a window ``[C, L]`` is normalised on its own (per-window mean/std, RevIN), cut
into patches and encoded by a shared transformer, so gain/offset and channel-count differences
are handled by design. Pretraining is masked patch reconstruction. Features per window are the
per-channel patch-token means plus each channel's (log-)scale and level relative to the corpus,
concatenated over channels.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mfg_pipeline.modalities.base import Backbone, Inputs
from mfg_pipeline.storage.artifacts import Corpus, LabeledDataset

DEFAULT_CONFIG: dict[str, Any] = {
    "channels": 8,
    "window": 64,
    "patch_len": 8,
    "stride": 8,
    "d_model": 64,
    "n_heads": 4,
    "n_layers": 2,
    "ff_dim": 128,
    "dropout": 0.0,  # dropout costs ~20% of a CPU step here and the budgets are short
    "mask_ratio": 0.4,
    "contrastive_weight": 1.0,  # + InfoNCE between the pooled embeddings of two masked views
    "temperature": 0.2,
    "stats_features": True,
    # + each channel's change across the window (least-squares slope x length, in channel stds).
    # RevIN keeps a trend's shape but divides its size by the window's noise; on C-MAPSS the size
    # of the drift is what says how close an engine is to failure. Off where absent from a saved
    # config: older heads were fitted without it.
    "trend_feature": False,
    # False: channel-independent (PatchTST: one token sequence per channel, any channel count).
    # True: one token per time patch over all channels (C x fewer sequences: C-MAPSS's 14
    # correlated degradation sensors train ~10x faster, and cross-channel patterns are seen).
    "channel_mixing": False,
    # True: each channel's window becomes its log-magnitude spectrum (Hann window, DC dropped,
    # window/2 bins), standardised per window, and patches run along frequency. Vibration faults
    # live in frequency bands; a gain change with load shifts the log-spectrum, not its shape.
    "spectrum": False,
    # How tokens become window features: "mean" (pooled, position-free) or "tokens" (all
    # tokens concatenated: on a spectrum, *where* energy sits is the information).
    "pool": "mean",
    # Encoder layers the window features pass through: None = all (+ final norm); 0 = the patch
    # embeddings alone. On CWRU spectra the contextual tokens are load-specific: a probe on the
    # pretrained patch embeddings transfers across loads (0.98) where the last layer does not (0.89).
    "feature_depth": None,
    "channel_mean": None,  # filled from the corpus meta
    "channel_std": None,
}


def window_trend(x: torch.Tensor) -> torch.Tensor:
    """Change across each window ``[B, C, L]`` -> ``[B, C]``: the least-squares slope times
    ``L - 1``, so the value does not depend on the sampling rate."""
    length = x.shape[-1]
    if length < 2:
        return torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    t = torch.arange(length, dtype=x.dtype, device=x.device) - (length - 1) / 2
    return (x * t).sum(dim=-1) / t.pow(2).sum() * (length - 1)


class SensorBackbone(Backbone):
    modality = "sensor"

    def __init__(self, config: dict[str, Any]):
        config = {**DEFAULT_CONFIG, **config}
        super().__init__(config)
        c = config
        self.length = c["window"] // 2 if c["spectrum"] else c["window"]
        self.n_patches = (self.length - c["patch_len"]) // c["stride"] + 1
        if c["pool"] not in ("mean", "tokens"):
            raise ValueError(f"sensor backbone pool must be 'mean' or 'tokens', got {c['pool']!r}")
        if c["feature_depth"] is not None and not 0 <= c["feature_depth"] <= c["n_layers"]:
            raise ValueError(f"sensor backbone feature_depth must be in 0..{c['n_layers']}, got {c['feature_depth']}")
        token = c["patch_len"] * (c["channels"] if c["channel_mixing"] else 1)
        self.patch_embed = nn.Linear(token, c["d_model"])
        self.pos = nn.Parameter(torch.randn(1, self.n_patches, c["d_model"]) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c["d_model"]))
        layer = nn.TransformerEncoderLayer(c["d_model"], c["n_heads"], c["ff_dim"], c["dropout"],
                                           batch_first=True, norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, c["n_layers"], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c["d_model"])
        self.recon = nn.Linear(c["d_model"], token)
        self.projector = nn.Sequential(nn.Linear(c["d_model"], c["d_model"]), nn.ReLU(), nn.Linear(c["d_model"], 32))
        mean = c["channel_mean"] or [0.0] * c["channels"]
        std = c["channel_std"] or [1.0] * c["channels"]
        self.register_buffer("chan_mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("chan_std", torch.tensor(std, dtype=torch.float32).clamp_min(1e-6), persistent=False)
        if c["spectrum"]:
            self.register_buffer("taper", torch.hann_window(c["window"], periodic=False), persistent=False)
        stats = (2 + int(c["trend_feature"])) * c["channels"] if c["stats_features"] else 0
        per_sequence = c["d_model"] * (self.n_patches if c["pool"] == "tokens" else 1)
        self.feature_dim = (per_sequence if c["channel_mixing"] else c["channels"] * per_sequence) + stats

    @classmethod
    def build(cls, config: dict[str, Any], corpus: Corpus | None = None, seed: int = 0) -> "SensorBackbone":
        config = {**DEFAULT_CONFIG, **config}
        if corpus is not None and corpus.inputs is not None:
            x = corpus.inputs.float()
            config["channels"], config["window"] = int(x.shape[1]), int(x.shape[2])
            meta = corpus.meta or {}
            if meta.get("mean") is not None and len(meta["mean"]) == x.shape[1]:
                config["channel_mean"] = [float(v) for v in meta["mean"]]
                config["channel_std"] = [float(v) for v in meta["std"]]
            else:
                config["channel_mean"] = x.mean(dim=(0, 2)).tolist()
                config["channel_std"] = x.std(dim=(0, 2)).tolist()
        return super().build(config, None, seed)  # type: ignore[return-value]

    # -- data -----------------------------------------------------------------------------
    def prepare(self, data: Corpus | LabeledDataset) -> Inputs:
        if data.inputs is None:
            raise ValueError("sensor data has no input tensor")
        x = data.inputs.float()
        if x.shape[1] != self.config["channels"] or x.shape[2] != self.config["window"]:
            raise ValueError(f"sensor windows {tuple(x.shape[1:])} do not match the backbone "
                             f"({self.config['channels']}, {self.config['window']})")
        return torch.nan_to_num(x)

    def _patches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """RevIN per window and channel, then patches [B*C, Np, P] (channel mixing: [B, Np, C*P])."""
        mu = x.mean(dim=-1, keepdim=True)
        sd = x.std(dim=-1, keepdim=True, unbiased=False) + 1e-5
        xn = (x - mu) / sd
        if self.config["spectrum"]:
            power = torch.fft.rfft(xn.float() * self.taper, dim=-1).abs()[..., 1:self.length + 1]
            xn = torch.log(power + 1e-3)
            xn = (xn - xn.mean(dim=-1, keepdim=True)) / (xn.std(dim=-1, keepdim=True, unbiased=False) + 1e-5)
        p = xn.unfold(-1, self.config["patch_len"], self.config["stride"])  # [B, C, Np, P]
        if self.config["channel_mixing"]:
            p = p.permute(0, 2, 1, 3).reshape(x.shape[0], self.n_patches, -1)
            return p, mu.squeeze(-1), sd.squeeze(-1)
        return p.reshape(-1, self.n_patches, self.config["patch_len"]), mu.squeeze(-1), sd.squeeze(-1)

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.norm(self.encoder(tokens + self.pos))

    def _features(self, tokens: torch.Tensor) -> torch.Tensor:
        depth = self.config["feature_depth"]
        if depth is None or depth == self.config["n_layers"]:
            return self._encode(tokens)
        if depth == 0:
            return tokens
        h = tokens + self.pos
        for layer in self.encoder.layers[:depth]:
            h = layer(h)
        return h

    def forward(self, inputs: Inputs) -> torch.Tensor:
        x = inputs.float()
        b, c, _ = x.shape
        patches, mu, sd = self._patches(x)
        h = self._features(self.patch_embed(patches))
        h = h.flatten(1) if self.config["pool"] == "tokens" else h.mean(dim=1)
        stats = None
        if self.config["stats_features"]:
            level = (mu - self.chan_mean) / self.chan_std
            scale = torch.log(sd / self.chan_std)
            parts = [level, scale] + ([window_trend(x) / self.chan_std] if self.config["trend_feature"] else [])
            stats = torch.stack(parts, dim=-1).to(h.dtype)  # [B, C, 2 or 3]
        if self.config["channel_mixing"]:
            return h if stats is None else torch.cat([h, stats.reshape(b, -1)], dim=-1)
        h = h.reshape(b, c, -1)
        return (h if stats is None else torch.cat([h, stats], dim=-1)).reshape(b, -1)

    def _masked_view(self, patches: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n, k, _ = patches.shape
        n_mask = max(1, int(round(self.config["mask_ratio"] * k)))
        scores = torch.rand(n, k, generator=gen).to(patches.device)
        mask = scores.argsort(dim=1).argsort(dim=1) < n_mask  # exactly n_mask per sequence
        tokens = self.patch_embed(patches)
        tokens = torch.where(mask.unsqueeze(-1), self.mask_token.to(tokens.dtype).expand_as(tokens), tokens)
        return self._encode(tokens), mask

    def ssl_loss(self, inputs: Inputs, gen: torch.Generator) -> torch.Tensor:
        """Masked patch reconstruction (MSE on the masked, normalised patches) of two masked
        views, plus InfoNCE between the views' window embeddings (contrastive_weight > 0)."""
        x = inputs.float()
        b = x.shape[0]
        patches, _, _ = self._patches(x)
        views = 2 if self.config["contrastive_weight"] > 0 else 1
        loss, pooled = 0.0, []
        for _ in range(views):
            h, mask = self._masked_view(patches, gen)
            err = (self.recon(h).float() - patches.float()).pow(2).mean(dim=-1)
            loss = loss + (err * mask).sum() / mask.sum() / views
            pooled.append(h.mean(dim=1).reshape(b, -1, h.shape[-1]).mean(dim=1))  # [B, d]
        if views == 2:
            from mfg_pipeline.modalities.image import nt_xent

            z = F.normalize(self.projector(torch.cat(pooled)).float(), dim=-1)
            loss = loss + self.config["contrastive_weight"] * nt_xent(z, self.config["temperature"])
        return loss
