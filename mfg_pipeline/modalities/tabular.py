"""Tabular rows: independent process readings (one value per channel, no time axis).

A row ``[F]`` is standardised with the corpus mean/std and encoded by a residual MLP. The
encoder also sees the pairwise products (squares included) of the standardised readings: the
physical quantities behind failures are products of readings (power = torque * speed, tool
strain = wear * torque), and a product of two standardised readings is, up to linear terms,
the product of the raw readings, so these quantities are one linear map away instead of
having to be pieced together by a small MLP from few labels (on AI4I the products raise the
pretrained model's PR-AUC at 5% labels from ~0.40 to ~0.49).

Pretraining is masked-feature reconstruction (VIME, Yoon et al. 2020): per row a fixed number
of readings is replaced by the same reading of other rows of the batch (a draw from the
empirical marginal, so each corrupted reading is plausible on its own and only the relations
between readings give it away). The encoder is not told which readings were replaced: it has
to reconstruct the original values and tell which ones were replaced. With no mask token or
mask indicator, pretraining and downstream rows have the same form.

With ``bins`` set, the encoder also reads each reading's piecewise-linear encoding (Gorishniy
et al. 2022) over corpus-quantile bins that narrow towards the tails: component t is 0 below bin
t, 1 above it and linear inside, so a threshold at a rare value (AI4I's failures: power, strain
and temperature rise past sharp limits) is one weight away instead of a steep bend the MLP has to
learn from a few positives.

Features per row: the encoding, the standardised readings, and any further input columns
passed through unchanged (e.g. a one-hot product variant that a labeled dataset has and the
sensor corpus has not), so ``feature_dim`` is ``hidden + n_features`` plus those columns.

A task may add ``split_points`` (``with_split_points``): per input column, raw values at which a
0/1 step joins the features the head reads. They are learnt from a run's labeled rows, not the
corpus (the split points of exact boosting: ``tasks.baselines.exact_split_points``), because where
a failure begins is a fact about the labels that no unlabeled reading shows; a head with a hidden
layer combines the steps into conjunctions (AI4I's heat-dissipation rule is two thresholds at once).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mfg_pipeline.modalities.base import Backbone, Inputs
from mfg_pipeline.storage.artifacts import Corpus, LabeledDataset

DEFAULT_CONFIG: dict[str, Any] = {
    "n_features": 5,  # encoded readings (the corpus channels); further input columns pass through
    "feature_mean": None,  # filled from the corpus meta, so that loading needs no corpus
    "feature_std": None,
    "hidden": 128,
    "n_layers": 3,
    "products": True,  # pairwise products of the standardised readings as further encoder inputs
    "dropout": 0.0,
    "mask_ratio": 0.3,
    "mask_weight": 0.5,  # weight of the which-readings-were-replaced BCE next to the reconstruction MSE
    # Piecewise-linear encoding (Gorishniy et al. 2022) of each reading over this many corpus-quantile
    # bins as further encoder inputs (0: off); ``bin_edges`` are filled from the corpus
    "bins": 0,
    "bin_edges": None,
    "split_points": None,  # per input column: raw values of 0/1 steps among the features (see above)
}
BIN_TAIL = 0.002  # outermost bin edges at these quantiles; edges are evenly spaced in logit(quantile)
MIN_DISTINCT_FOR_BINS = 10  # a one-hot or a few-valued reading is not binned


def quantile_bin_edges(z: torch.Tensor, bins: int) -> list[list[float]]:
    """Per column of standardised rows ``z`` [N, n]: ``bins + 1`` increasing edges at quantiles
    evenly spaced on the logit scale (narrow bins in the tails, where rare events sit), or ``[]``
    for a column with few distinct values."""
    logits = torch.linspace(math.log(BIN_TAIL / (1 - BIN_TAIL)), -math.log(BIN_TAIL / (1 - BIN_TAIL)), bins + 1)
    q = torch.sigmoid(logits.double())
    out = []
    for col in z.double().T:
        if col.unique().numel() < MIN_DISTINCT_FOR_BINS:
            out.append([])
            continue
        # tied edges (a mass of equal readings, e.g. new tools at wear 0) make a step: see bin_width
        out.append([float(e) for e in torch.quantile(col, q)])
    return out


class _Block(nn.Module):
    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(dim, dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.net(h)


class TabularBackbone(Backbone):
    modality = "tabular"

    def __init__(self, config: dict[str, Any]):
        config = {**DEFAULT_CONFIG, **config}
        super().__init__(config)
        n, hidden = int(config["n_features"]), int(config["hidden"])
        pairs = torch.triu_indices(n, n) if config["products"] else torch.zeros(2, 0, dtype=torch.long)
        self.register_buffer("pair_i", pairs[0], persistent=False)
        self.register_buffer("pair_j", pairs[1], persistent=False)
        mean = config["feature_mean"] or [0.0] * n
        std = config["feature_std"] or [1.0] * n
        self.register_buffer("feat_mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("feat_std", torch.tensor(std, dtype=torch.float32).clamp_min(1e-6), persistent=False)
        edges = config["bin_edges"] or []
        self.binned = [f for f, e in enumerate(edges) if e]
        if self.binned:
            e = torch.tensor([edges[f] for f in self.binned], dtype=torch.float32)  # [k, bins + 1]
            self.register_buffer("bin_lo", e[:, :-1], persistent=False)
            self.register_buffer("bin_width", (e[:, 1:] - e[:, :-1]).clamp_min(1e-6), persistent=False)
        n_bins = len(self.binned) * int(config["bins"])
        self.inp = nn.Linear(n + pairs.shape[1] + n_bins, hidden)
        self.blocks = nn.Sequential(*[_Block(hidden, config["dropout"]) for _ in range(int(config["n_layers"]))])
        self.norm = nn.LayerNorm(hidden)
        self.recon = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, n))
        self.mask_head = nn.Linear(hidden, n)
        points = config["split_points"] or []
        self.register_buffer("step_column", torch.tensor([c for c, p in enumerate(points) for _ in p], dtype=torch.long),
                             persistent=False)
        self.register_buffer("step_value", torch.tensor([v for p in points for v in p], dtype=torch.float32),
                             persistent=False)
        # + the passthrough columns of inputs wider than n_features, + one per split point
        self.feature_dim = hidden + n + self.step_value.numel()

    @classmethod
    def build(cls, config: dict[str, Any], corpus: Corpus | None = None, seed: int = 0) -> "TabularBackbone":
        config = {**DEFAULT_CONFIG, **config}
        if corpus is not None and corpus.inputs is not None:
            x = _rows(corpus.inputs)
            config["n_features"] = int(x.shape[1])
            meta = corpus.meta or {}
            if meta.get("mean") is not None and len(meta["mean"]) == x.shape[1]:
                config["feature_mean"] = [float(v) for v in meta["mean"]]
                config["feature_std"] = [float(v) for v in meta["std"]]
            else:
                config["feature_mean"] = x.mean(0).tolist()
                config["feature_std"] = x.std(0).tolist() if len(x) > 1 else [1.0] * x.shape[1]
            if config["bins"]:
                std = torch.tensor(config["feature_std"]).clamp_min(1e-6)
                config["bin_edges"] = quantile_bin_edges((x - torch.tensor(config["feature_mean"])) / std,
                                                         int(config["bins"]))
        return super().build(config, None, seed)  # type: ignore[return-value]

    def scratch_twin(self, seed: int, dataset: LabeledDataset, labeled: Any) -> "TabularBackbone":
        """The standardisation and the bin edges are learnt from the corpus, and they shape what the
        encoder reads (products, bins), so the twin learns its own from the labeled rows' inputs
        alone, as a model without the unlabeled corpus would. (A sensor backbone's corpus statistics
        only shift and scale its window statistics, which the head standardises again.)"""
        rows = self.prepare(dataset)[torch.as_tensor(labeled, dtype=torch.long), : self.config["n_features"]]
        corpus = Corpus(self.modality, rows, dataset.index.iloc[list(labeled)])
        return type(self).build({**self.config, "feature_mean": None, "feature_std": None, "bin_edges": None}, corpus, seed)

    # -- data -----------------------------------------------------------------------------
    def prepare(self, data: Corpus | LabeledDataset) -> Inputs:
        if data.inputs is None:
            raise ValueError("tabular data has no input tensor")
        x = _rows(data.inputs)
        if x.shape[1] < self.config["n_features"]:
            raise ValueError(f"tabular rows have {x.shape[1]} columns, the backbone encodes "
                             f"{self.config['n_features']}")
        return x

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        n = self.config["n_features"]
        return (x[:, :n].float() - self.feat_mean) / self.feat_std

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised readings [B, n] -> encoding [B, hidden]."""
        parts = [z]
        if self.pair_i.numel():
            parts.append(z[:, self.pair_i] * z[:, self.pair_j])
        if self.binned:
            v = z[:, self.binned].unsqueeze(-1)
            parts.append(((v - self.bin_lo) / self.bin_width).clamp(0, 1).flatten(1))
        return self.norm(self.blocks(self.inp(torch.cat(parts, dim=1))))

    def forward(self, inputs: Inputs) -> torch.Tensor:
        x = inputs.float()
        z = self.standardise(x)
        h = self.encode(z)
        steps = (x[:, self.step_column] > self.step_value).to(h.dtype)
        return torch.cat([h, z.to(h.dtype), x[:, self.config["n_features"]:].to(h.dtype), steps], dim=1)

    def with_split_points(self, points: list[list[float]]) -> "TabularBackbone":
        """A copy with the same weights whose features end in a 0/1 step (reading > point) per
        point of ``points`` (per input column, raw units)."""
        out = type(self)({**self.config, "split_points": [[float(v) for v in p] for p in points]})
        out.load_state_dict(self.state_dict())
        return out

    def corrupt(self, z: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace exactly round(mask_ratio * n) readings per row by the same reading of a
        random row of the batch. Returns (corrupted rows, mask)."""
        b, n = z.shape
        n_mask = min(n, max(1, int(round(self.config["mask_ratio"] * n))))
        scores = torch.rand(b, n, generator=gen).to(z.device)
        mask = scores.argsort(dim=1).argsort(dim=1) < n_mask
        donors = torch.randint(0, b, (b, n), generator=gen).to(z.device)
        return torch.where(mask, z.gather(0, donors), z), mask

    def ssl_loss(self, inputs: Inputs, gen: torch.Generator) -> torch.Tensor:
        """MSE of the reconstructed standardised readings at the replaced positions, plus
        ``mask_weight`` * BCE of predicting which positions were replaced. A donor value can
        equal the original by chance; it still counts as masked (the target is unchanged)."""
        z = self.standardise(inputs.float())
        corrupted, mask = self.corrupt(z, gen)
        h = self.encode(corrupted)
        err = (self.recon(h).float() - z).pow(2)
        loss = (err * mask).sum() / mask.sum()
        if self.config["mask_weight"]:
            loss = loss + self.config["mask_weight"] * F.binary_cross_entropy_with_logits(
                self.mask_head(h).float(), mask.float())
        return loss


def _rows(inputs: torch.Tensor) -> torch.Tensor:
    """[N, F, 1] or [N, F] -> [N, F] float32 without NaN/inf."""
    x = inputs.float()
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[:, :, 0]
    if x.ndim != 2:
        raise ValueError(f"tabular inputs must be [N, F] or [N, F, 1] (one reading per row), got {tuple(inputs.shape)}")
    return torch.nan_to_num(x)
