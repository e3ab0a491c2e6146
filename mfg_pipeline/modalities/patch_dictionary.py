"""A single-layer image encoder whose filters are a dictionary of image patches learnt by
spherical k-means (Coates & Ng, "Learning feature representations with k-means", 2012).

Per scale (the image average-pooled by ``s``): every ``patch x patch`` patch is normalised
(mean 0, variance 1), whitened (ZCA of the corpus's patches), and compared with each unit-norm
atom by a dot product. Two encodings of those matches:

- ``pooled``: ``relu(response - alpha)`` keeps the strong matches; the feature vector holds each
  atom's mean and max response over the image and its mean per image quadrant (``6 * atoms``
  per scale): how often each atom occurs.
- ``vlad``: each (whitened, unit) patch is assigned to its nearest atom and the residuals
  ``patch - atom`` are summed per atom (VLAD, Jegou et al. 2010), with signed square roots and
  each atom's sum L2-normalised (Arandjelovic & Zisserman 2013), ``atoms * patch**2`` per scale:
  *how* the patches of an atom's cell differ from it, which the occurrence counts lose. On NEU
  with 11 labeled images per class it raised the probe's accuracy from 0.896 to 0.935
  (development data: ``profiles``).

Learning the dictionary is closed-form and fast on a CPU (100,000 patches, 20 Lloyd
iterations: ~6 s); ``objective`` is the same k-means objective for gradient steps. Surface
textures are what this captures well: on NEU the learnt dictionary beat a 150-step SimCLR
shufflenet by 0.04/0.09/0.09 accuracy at 100/10/5 % of the labels (see ``profiles``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VARIANCE_FLOOR = 0.01  # flat patches (variance ~0 on a 0..1 scale) are not blown up to noise
WHITEN_EPS = 0.1  # ZCA regulariser: keeps the smallest eigen-directions (pixel noise) from dominating
CHUNK = 32  # images per convolution: 256 response maps of 94x94 per image are ~9 MB
ENCODINGS = ("pooled", "vlad")
ROOT_EPS = 1e-6  # signed square root: keeps the gradient finite where an atom has no patch (scratch twin)


def _standardise(patches: torch.Tensor) -> torch.Tensor:
    """Each patch (the last dimension) at mean 0 and variance 1 (floored)."""
    patches = patches - patches.mean(dim=-1, keepdim=True)
    return patches / (patches.var(dim=-1, keepdim=True) + VARIANCE_FLOOR).sqrt()


class PatchDictionary(nn.Module):
    def __init__(self, patch: int, atoms: int, scales: tuple[int, ...], alpha: float,
                 strides: tuple[int, ...] | list[int] | None = None, encoding: str = "pooled"):
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.patch, self.scales, self.alpha = int(patch), tuple(int(s) for s in scales), float(alpha)
        self.encoding = encoding
        self.strides = tuple(int(s) for s in strides) if strides else (1,) * len(self.scales)
        if len(self.strides) != len(self.scales):
            raise ValueError(f"one stride per scale: scales {self.scales}, strides {self.strides}")
        dim = self.patch * self.patch
        # random unit atoms and no whitening: the untrained (scratch) state
        self.atoms = nn.ParameterList([nn.Parameter(F.normalize(torch.randn(atoms, dim), dim=1)) for _ in self.scales])
        for i in range(len(self.scales)):
            self.register_buffer(f"whiten{i}", torch.eye(dim))
        self.feature_dim = len(self.scales) * atoms * (6 if encoding == "pooled" else dim)

    def _whiten(self, i: int) -> torch.Tensor:
        return getattr(self, f"whiten{i}")

    def _filters(self, i: int) -> torch.Tensor:
        # atom . (W p) = (W atom) . p for the symmetric ZCA matrix W
        return (F.normalize(self.atoms[i], dim=1) @ self._whiten(i)).view(-1, 1, self.patch, self.patch)

    def _unit_whitened(self, patches: torch.Tensor, i: int) -> torch.Tensor:
        """Standardised patches (last dimension) whitened with scale ``i``'s ZCA, at unit norm:
        what the atoms are learnt on."""
        return F.normalize(patches @ self._whiten(i), dim=-1)

    def _scaled(self, x: torch.Tensor, i: int) -> torch.Tensor:
        s = self.scales[i]
        return F.avg_pool2d(x, s) if s > 1 else x

    def _responses(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Dot products of the normalised, whitened patches of ``x`` [B, 1, H, W] (every
        ``stride``-th position) with the atoms."""
        p = self.patch
        box = torch.full((1, 1, p, p), 1.0 / (p * p), device=x.device, dtype=x.dtype)
        stride = self.strides[i]
        mean = F.conv2d(x, box, stride=stride)
        var = (F.conv2d(x * x, box, stride=stride) - mean * mean).clamp_min(0) * (p * p / (p * p - 1))
        filters = self._filters(i)
        raw = F.conv2d(x, filters, stride=stride) - mean * filters.sum(dim=(1, 2, 3)).view(1, -1, 1, 1)
        return raw / (var + VARIANCE_FLOOR).sqrt()

    def _vlad(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """VLAD of the whitened unit patches of ``x`` [B, 1, H, W] (every ``stride``-th
        position): [B, atoms * patch**2], unit norm."""
        patches = F.unfold(x, self.patch, stride=self.strides[i]).transpose(1, 2)  # [B, positions, p*p]
        z = self._unit_whitened(_standardise(patches), i)
        atoms = F.normalize(self.atoms[i], dim=1)
        nearest = F.one_hot((z @ atoms.T).argmax(dim=-1), len(atoms)).to(z.dtype)  # [B, positions, atoms]
        v = nearest.transpose(1, 2) @ z - nearest.sum(dim=1).unsqueeze(-1) * atoms  # residual sums
        v = F.normalize(v.sign() * (v.abs() + ROOT_EPS).sqrt(), dim=-1)
        return F.normalize(v.flatten(1), dim=1)

    def _pooled(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Each atom's mean and max thresholded response over ``x`` [B, 1, H, W] and its mean per
        quadrant: [B, 6 * atoms]."""
        f = F.relu(self._responses(x, i) - self.alpha)
        h, w = f.shape[-2] // 2, f.shape[-1] // 2
        quadrants = (f[..., :h, :w], f[..., :h, w:], f[..., h:, :w], f[..., h:, w:])
        return torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3)), *(q.mean(dim=(2, 3)) for q in quadrants)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [B, 1, H, W] grey levels in 0..1 -> [B, feature_dim]."""
        encode = self._vlad if self.encoding == "vlad" else self._pooled
        out = []
        for start in range(0, x.shape[0], CHUNK):
            xb = x[start:start + CHUNK]
            out.append(torch.cat([encode(self._scaled(xb, i), i) for i in range(len(self.scales))], dim=1))
        return torch.cat(out)

    def _patches(self, x: torch.Tensor, i: int, n: int, gen: torch.Generator) -> torch.Tensor:
        """``n`` random patches of the scaled images, normalised, as rows [n, patch*patch]."""
        xs = self._scaled(x, i)
        p, (h, w) = self.patch, xs.shape[-2:]
        img = torch.randint(xs.shape[0], (n,), generator=gen)
        row = torch.randint(h - p + 1, (n,), generator=gen)
        col = torch.randint(w - p + 1, (n,), generator=gen)
        offsets = torch.arange(p)
        rows = (row[:, None] + offsets)[:, :, None].expand(n, p, p)
        cols = (col[:, None] + offsets)[:, None, :].expand(n, p, p)
        patches = xs[:, 0][img[:, None, None].to(xs.device), rows.to(xs.device), cols.to(xs.device)]
        return _standardise(patches.reshape(n, -1))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, gen: torch.Generator, patches: int = 100_000, iterations: int = 20) -> None:
        """Learn each scale's whitening and atoms from images ``x`` [N, 1, H, W] (0..1)."""
        for i in range(len(self.scales)):
            z = self._patches(x, i, patches, gen).double()
            eigval, eigvec = torch.linalg.eigh(torch.cov(z.T))
            whiten = eigvec @ torch.diag((eigval.clamp_min(0) + WHITEN_EPS).rsqrt()) @ eigvec.T
            z = F.normalize(z @ whiten, dim=1)
            atoms = z[torch.randperm(len(z), generator=gen)[: self.atoms[i].shape[0]]].clone()
            for _ in range(iterations):
                nearest = (z @ atoms.T).argmax(dim=1)
                sums = torch.zeros_like(atoms).index_add_(0, nearest, z)
                empty = torch.bincount(nearest, minlength=len(atoms)) == 0
                sums[empty] = z[torch.randint(len(z), (int(empty.sum()),), generator=gen)]  # reseed dead atoms
                atoms = F.normalize(sums, dim=1)
            self._whiten(i).copy_(whiten.float())
            self.atoms[i].copy_(atoms.float())

    def objective(self, x: torch.Tensor, gen: torch.Generator, patches: int = 4096) -> torch.Tensor:
        """Spherical k-means loss on random patches of ``x``: 1 - mean cosine to the nearest atom."""
        losses = []
        for i in range(len(self.scales)):
            z = self._unit_whitened(self._patches(x, i, patches, gen), i)
            losses.append(1 - (z @ F.normalize(self.atoms[i], dim=1).T).amax(dim=1).mean())
        return torch.stack(losses).mean()
