"""One sensor backbone for every plant: a univariate patch encoder shared by all channels of all corpora.

Plants differ in channel count (8 simulator channels, 24 C-MAPSS channels, 1 CWRU vibration
channel), sampling rate (one minute, one cycle, 1/12000 s), window length (64, 15-30, 2048) and
units. The design removes each difference before the encoder sees a sample:

- channels: every channel is encoded on its own by the same univariate encoder (the
  ``SensorBackbone`` with one channel) and the features of a window are its per-channel
  embeddings concatenated (or averaged: ``channel_mean``), so any channel count works and
  pretraining can pool channels of every plant;
- length and rate: each channel series becomes crops of ``crop`` samples. Shorter series are
  linearly resampled up to ``crop``; longer ones are cut into ``ceil(L / crop)`` evenly spaced
  crops (non-overlapping when ``L`` is a multiple) whose embeddings are averaged, so a 2048-sample
  vibration window keeps its native 12 kHz resolution inside each crop instead of being
  decimated 32x. A 64-sample crop of a fast signal is only a few milliseconds, shorter than the
  period of what repeats in it (a bearing fault's impacts at 12 kHz come every 70-110 samples), so
  a task can add slower views (``scales``: the series averaged over every f samples, then
  cropped the same way) and the maximum over crops beside the mean (``max_pool``: a transient
  shows in a few crops and averages away). Both are parameter-free, like the statistics below:
  they change features, not weights;
- scale: RevIN per crop (its own mean/std), so units and gains do not matter. Raw level/scale/trend
  statistics are off by default: they are per-rig shortcuts (amplitude shifts with load and
  sensor mounting) and carry no pretrained knowledge. They are parameter-free, so a caller that
  wants them for one task (C-MAPSS drift shows in levels and trends) turns them on at load time.

Pretraining pools univariate crops of every corpus, drops numerically constant channels (C-MAPSS
setting channels, fixed sensors), and samples each batch with every source equally likely, so a
one-channel corpus is not drowned by a 24-channel one. The loss is the shared encoder's masked
patch reconstruction + InfoNCE (``SensorBackbone.ssl_loss``) through the one training loop.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mfg_pipeline.modalities.base import Backbone, Inputs, resolve_dir
from mfg_pipeline.modalities.sensor import DEFAULT_CONFIG as SENSOR_DEFAULTS
from mfg_pipeline.modalities.sensor import SensorBackbone, window_trend
from mfg_pipeline.storage import atomic
from mfg_pipeline.storage.artifacts import Corpus, LabeledDataset
from mfg_pipeline.training.device import Runtime
from mfg_pipeline.training.linalg import leading_directions
from mfg_pipeline.training.loop import LoopConfig, LoopResult, fit
from mfg_pipeline.training.seeding import derive_seed

MODALITY = "universal_sensor"
# Same encoder hyperparameters as the per-dataset sensor backbone: the comparison then isolates
# what pretraining on every corpus buys, not a bigger model.
ENCODER_KEYS = ("patch_len", "stride", "d_model", "n_heads", "n_layers", "ff_dim", "dropout", "mask_ratio",
                "contrastive_weight", "temperature")
DEFAULT_CONFIG: dict[str, Any] = {
    **{k: SENSOR_DEFAULTS[k] for k in ENCODER_KEYS},
    "crop": 64,
    "channels": 1,  # only sets ``feature_dim``; any channel count works (see ``feature_dim_for``)
    # + per channel raw level, log-scale and change across the window (``sensor.window_trend``)
    "stats_features": False,
    "scales": [1],  # encode each channel at these rates: 1 = native, f = averaged over every f samples
    "max_pool": False,  # features per scale: mean over crops, + max over crops when True
    # the embeddings averaged over the window's channels (the stats stay per channel) instead of
    # one embedding per channel: see ``forward``
    "channel_mean": False,
    "min_length": 8,  # shorter windows (AI4I's single readings) have no shape to encode
    "sources": {},  # filled by pretraining: what each corpus contributed
}
# Settings that change features but not weights: a loaded backbone may override them.
FEATURE_OPTIONS = ("stats_features", "channels", "scales", "max_pool", "channel_mean")
N_WINDOW_STATS = 3  # level, log-scale, trend

DEFAULT_STEPS = 600
DEFAULT_BATCH_SIZE = 512
DEFAULT_LR = 1e-3
MAX_CROPS_PER_SOURCE = 100_000  # the default budget draws <= 300k crops in all: bounded memory, few repeats
CROP_CHUNK = 20_000
CONSTANT_RTOL = 1e-6  # a crop whose std is below this fraction of its level is a constant channel


def crop_starts(length: int, crop: int) -> list[int]:
    """Start of each crop of a series of ``length`` >= ``crop`` samples: ``ceil(length / crop)``
    evenly spaced crops covering the first and the last sample (the newest readings matter most
    for RUL)."""
    n = math.ceil(length / crop)
    if n == 1:
        return [0]
    return [round(i * (length - crop) / (n - 1)) for i in range(n)]


def to_crops(x: torch.Tensor, crop: int) -> torch.Tensor:
    """Windows ``[B, C, L]`` -> crops ``[B, C, n, crop]`` (resampled up when ``L < crop``)."""
    b, c, length = x.shape
    if length < crop:
        resized = F.interpolate(x.reshape(b * c, 1, length), size=crop, mode="linear", align_corners=True)
        return resized.reshape(b, c, 1, crop)
    if length % crop == 0:
        return x.reshape(b, c, length // crop, crop)
    idx = torch.tensor(crop_starts(length, crop), device=x.device).unsqueeze(1) + torch.arange(crop, device=x.device)
    return x[..., idx]


def _nonconstant(crops: torch.Tensor) -> torch.Tensor:
    """Mask of crops ``[..., W]`` that vary: relative to their level, so a channel recorded with
    float noise around 100.0 counts as constant and one around 0.002 does not."""
    sd = crops.std(dim=-1, unbiased=False)
    return sd > CONSTANT_RTOL * crops.abs().mean(dim=-1).clamp_min(1.0)


class UniversalSensorBackbone(Backbone):
    modality = MODALITY

    def __init__(self, config: dict[str, Any]):
        config = {**DEFAULT_CONFIG, **config}
        super().__init__(config)
        enc = {k: config[k] for k in ENCODER_KEYS}
        # stats off in the encoder: RevIN per crop; optional window stats are added here, raw.
        self.encoder = SensorBackbone({**enc, "channels": 1, "window": config["crop"], "stats_features": False})
        self.scales = [int(f) for f in config["scales"]]
        if not self.scales or min(self.scales) < 1:
            raise ValueError(f"scales must be pooling factors >= 1, got {config['scales']}")
        self.feature_dim = self.feature_dim_for(int(config["channels"]))

    @property
    def pooled_dim(self) -> int:
        return int(self.config["d_model"]) * len(self.scales) * (2 if self.config["max_pool"] else 1)

    def feature_dim_for(self, n_channels: int) -> int:
        stats = N_WINDOW_STATS if self.config["stats_features"] else 0
        if self.config["channel_mean"]:
            return self.pooled_dim + int(n_channels) * stats
        return int(n_channels) * (self.pooled_dim + stats)

    def leading_embedding_components(self, features: torch.Tensor, fit_rows: np.ndarray, k: int) -> torch.Tensor:
        """Channel-mean features ``[copies, n, pooled + stats]`` (``view_features``) with the embedding
        block projected on its ``k`` leading principal directions over the rows ``fit_rows`` of the
        first copy (inputs only: no labels); the statistics pass through."""
        if not self.config["channel_mean"]:
            raise ValueError("principal directions of the embedding need channel_mean features")
        p = self.pooled_dim
        emb = features[..., :p]
        fit = emb[0, torch.as_tensor(fit_rows)].double()
        mean = fit.mean(0)
        directions = torch.from_numpy(leading_directions((fit - mean).numpy(), k)).T
        return torch.cat([((emb.double() - mean) @ directions).to(features.dtype), features[..., p:]], dim=-1)

    # -- data -----------------------------------------------------------------------------
    def prepare(self, data: Corpus | LabeledDataset) -> Inputs:
        if data.inputs is None:
            raise ValueError("sensor data has no input tensor")
        x = data.inputs
        if x.ndim != 3:
            raise ValueError(f"sensor windows must be [N, C, L], got {tuple(x.shape)}")
        shortest = self.config["min_length"] * max(self.scales)
        if x.shape[2] < shortest:
            raise ValueError(f"sensor windows of {x.shape[2]} samples are shorter than the {shortest} the "
                             f"universal backbone encodes (min_length {self.config['min_length']} at scales "
                             f"{self.scales})")
        return torch.nan_to_num(x.float())

    def crops(self, x: torch.Tensor) -> torch.Tensor:
        return to_crops(torch.nan_to_num(x.float()), int(self.config["crop"]))

    def forward(self, inputs: Inputs) -> torch.Tensor:
        x = torch.nan_to_num(inputs.float())
        b, c, _ = x.shape
        pooled = []
        for f in self.scales:
            crops = self.crops(F.avg_pool1d(x, f, f) if f > 1 else x)  # [B, C, n, W]
            n, w = crops.shape[2], crops.shape[3]
            e = self.encoder(crops.reshape(b * c * n, 1, w)).reshape(b, c, n, -1)
            pooled += [e.mean(dim=2), e.amax(dim=2)] if self.config["max_pool"] else [e.mean(dim=2)]
        h = torch.cat(pooled, dim=-1)  # [B, C, pooled]
        stats = h[..., :0]  # [B, C, 0]: none unless stats_features
        if self.config["stats_features"]:
            # The head standardises features with its training subset's statistics, which makes
            # these raw values relative to the task's data without corpus constants.
            level = x.mean(dim=-1)
            scale = torch.log(x.std(dim=-1, unbiased=False) + 1e-5)
            stats = torch.stack([level, scale, window_trend(x)], dim=-1).to(h.dtype)  # [B, C, 3]
        # With many channels and few labels, one embedding per channel is C x pooled features that
        # a head overfits (C-MAPSS's 14 channels: measured in tasks/registry.py)
        if self.config["channel_mean"]:
            return torch.cat([h.mean(dim=1), stats.reshape(b, -1)], dim=1)
        return torch.cat([h, stats], dim=-1).reshape(b, -1)

    @torch.no_grad()
    def embed(self, inputs: Inputs, runtime: Runtime | None = None, batch_size: int = 512) -> torch.Tensor:
        # Long windows expand into many crops: keep the encoder batch near 512 crop sequences.
        crop = int(self.config["crop"])
        c = int(inputs.shape[1])
        n = sum(len(crop_starts(max(int(inputs.shape[2]) // f, crop), crop)) for f in self.scales)
        if len(inputs) == 0:
            return torch.zeros(0, self.feature_dim_for(c))
        return super().embed(inputs, runtime, max(1, min(batch_size, (512 * 8) // (c * n))))

    def ssl_loss(self, inputs: Inputs, gen: torch.Generator) -> torch.Tensor:
        """The shared encoder's loss on univariate crops: ``inputs`` are crops ``[B, 1, crop]``
        (what pretraining samples) or windows ``[B, C, L]`` (flattened into crops)."""
        x = inputs.float()
        if x.shape[1] != 1 or x.shape[2] != self.config["crop"]:
            x = self.crops(x).reshape(-1, 1, int(self.config["crop"]))
        return self.encoder.ssl_loss(x, gen)


def load_universal(directory: Path, **feature_options: Any) -> UniversalSensorBackbone:
    """Load a saved universal backbone (a plain folder, or a versioned one: its current version).
    ``feature_options`` (``FEATURE_OPTIONS``) change features, not weights."""
    unknown = set(feature_options) - set(FEATURE_OPTIONS)
    if unknown:
        raise ValueError(f"only {FEATURE_OPTIONS} can be overridden at load time, not {sorted(unknown)}")
    directory = resolve_dir(directory)
    meta = atomic.read_json(directory / "config.json")
    if meta.get("modality") != MODALITY:
        raise ValueError(f"{directory} holds a {meta.get('modality')!r} backbone, not {MODALITY!r}")
    model = UniversalSensorBackbone({**meta["config"], **feature_options})
    model.load_state_dict(atomic.read_tensors(directory / "model.safetensors"))
    return model.eval()


# ------------------------------------------------------------------------------- pretraining
def corpus_crops(corpus: Corpus, crop: int, *, max_crops: int = MAX_CROPS_PER_SOURCE,
                 seed: int = 0) -> tuple[torch.Tensor, dict[str, Any]]:
    """Univariate crops ``[M, crop]`` of a sensor corpus (constant ones dropped; at most
    ``max_crops``, a seeded random subset) and a summary for the config."""
    if corpus.inputs is None or corpus.inputs.ndim != 3:
        raise ValueError("a sensor corpus needs an input tensor [N, C, L]")
    x = corpus.inputs
    n, c, length = x.shape
    info: dict[str, Any] = {"windows": int(n), "channels": int(c), "length": int(length)}
    if n == 0 or length < 2:
        return torch.zeros(0, crop), {**info, "crops": 0, "channels_used": 0}
    starts = crop_starts(length, crop) if length >= crop else [0]
    k = len(starts)
    # Choose (window, channel, crop) triples before cutting anything, so a large corpus is never
    # copied whole; oversample to make up for constant crops dropped afterwards.
    total = n * c * k
    gen = torch.Generator().manual_seed(derive_seed("universal_crops", seed))
    if total <= 20 * max_crops:
        picks = torch.randperm(total, generator=gen)[:min(total, 2 * max_crops)]
    else:  # a permutation of a huge corpus costs more memory than the crops; repeats are rare
        picks = torch.randint(total, (2 * max_crops,), generator=gen)
    kept, kept_channels, count = [], [], 0
    for chunk in picks.split(CROP_CHUNK):  # chunks bound the gather's index tensors
        w_idx, rest = chunk // (c * k), chunk % (c * k)
        c_idx, k_idx = rest // k, rest % k
        if length >= crop:
            offsets = torch.tensor(starts)[k_idx].unsqueeze(1) + torch.arange(crop)
            crops = x[w_idx.unsqueeze(1), c_idx.unsqueeze(1), offsets]
        else:
            crops = to_crops(x[w_idx, c_idx].unsqueeze(1).float(), crop).reshape(-1, crop)
        crops = torch.nan_to_num(crops.float())
        keep = _nonconstant(crops)
        kept.append(crops[keep][:max_crops - count])
        kept_channels.append(c_idx[keep][:max_crops - count])
        count += len(kept[-1])
        if count >= max_crops:
            break
    crops, c_idx = torch.cat(kept), torch.cat(kept_channels)
    return crops.contiguous(), {**info, "crops": int(len(crops)), "channels_used": int(c_idx.unique().numel()),
                                "crops_per_window_channel": k, "resampled": length < crop}


def balanced_draw(sizes: list[int], batch_size: int, gen: torch.Generator,
                  weights: list[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` (source, row) draws: a source with probability ``weights`` (default: all
    equally likely) whatever its size, then a uniform row of it (with replacement: a small source
    repeats rather than shrinks its share)."""
    size = torch.tensor(sizes)
    if weights is None:
        source = torch.randint(len(sizes), (batch_size,), generator=gen)
    else:
        source = torch.multinomial(torch.tensor(weights, dtype=torch.float64), batch_size, replacement=True,
                                   generator=gen)
    row = (torch.rand(batch_size, generator=gen) * size[source]).long().clamp_max(size[source] - 1)
    return source, row


def pretrain_universal(
    corpora: dict[str, Corpus],
    *,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    runtime: Runtime | None = None,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 0,
    weight_decay: float = 0.01,
    warmup_steps: int | None = None,
    max_crops_per_source: int = MAX_CROPS_PER_SOURCE,
    source_weights: dict[str, float] | None = None,
    model_overrides: dict[str, Any] | None = None,
) -> tuple[UniversalSensorBackbone, LoopResult]:
    """Self-supervised pretraining on the univariate crops of every corpus, each source equally
    likely per sample unless ``source_weights`` (relative, per corpus name) say otherwise.
    Returns the backbone (CPU, eval) and the loop result."""
    runtime = runtime or Runtime.create("cpu")
    config = {**DEFAULT_CONFIG, **(model_overrides or {})}
    crop = int(config["crop"])
    pools: dict[str, torch.Tensor] = {}
    sources: dict[str, Any] = {}
    for name in sorted(corpora):  # sorted: the source order (and so the batches) ignore dict order
        crops, info = corpus_crops(corpora[name], crop, max_crops=max_crops_per_source, seed=derive_seed(seed, name))
        sources[name] = info
        if len(crops):
            pools[name] = crops
    if not pools:
        raise ValueError(f"no usable sensor crops in any corpus: {sources}")
    names = list(pools)
    raw = [float((source_weights or {}).get(k, 1.0)) for k in names]
    if any(w < 0 for w in raw) or sum(raw) <= 0:
        raise ValueError(f"source weights must be >= 0 with a positive sum: {source_weights}")
    weights = [w / sum(raw) for w in raw]
    for k, w in zip(names, weights):
        sources[k]["weight"] = round(w, 6)
    config["sources"] = sources
    torch.manual_seed(derive_seed("init", MODALITY, seed))
    backbone = UniversalSensorBackbone(config)

    pool_list = [pools[k].to(runtime.device) for k in names]
    sizes = [len(p) for p in pool_list]

    def loss_fn(model: torch.nn.Module, step: int, gen: torch.Generator) -> torch.Tensor:
        source, row = balanced_draw(sizes, batch_size, gen, weights)
        batch = torch.cat([pool_list[s][row[source == s].to(runtime.device)] for s in range(len(pool_list))])
        return model.ssl_loss(batch.unsqueeze(1), gen)

    warmup = min(20, steps // 5) if warmup_steps is None else warmup_steps
    loop = LoopConfig(steps=steps, lr=lr, weight_decay=weight_decay, warmup_steps=warmup, seed=seed,
                      checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
                      checkpoint_every=checkpoint_every)
    result = fit(backbone, loss_fn, loop, runtime)
    return backbone.cpu().eval(), result

