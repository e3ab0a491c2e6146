"""Linear algebra shared by the backbones and the heads."""

from __future__ import annotations

import numpy as np


def leading_directions(x: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` leading right singular vectors of ``x`` [n, d] as rows [k, d] (``k <= min(n, d)``),
    from the eigenvectors of the smaller Gram matrix: the same subspace as an SVD's, at a fraction
    of its cost on this CPU (10,800 x 6,272 NEU rows: ~75 s against ~10 min for ``numpy.linalg.svd``,
    which also factors the directions that are then dropped)."""
    import scipy.linalg

    n, d = x.shape
    if n >= d:
        directions = scipy.linalg.eigh(x.T @ x, subset_by_index=[d - k, d - 1])[1][:, ::-1].T
    else:
        values, left = scipy.linalg.eigh(x @ x.T, subset_by_index=[n - k, n - 1])
        # v = X^T u / s for each left singular vector u
        directions = (x.T @ (left[:, ::-1] / np.sqrt(np.maximum(values[::-1], np.finfo(x.dtype).tiny)))).T
    return np.ascontiguousarray(directions)  # eigh's order reversed: negative strides, which torch refuses
