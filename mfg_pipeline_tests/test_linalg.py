"""The linear algebra shared by the backbones and the heads."""

import numpy as np

from mfg_pipeline.training.linalg import leading_directions


def test_leading_directions_are_the_svd_directions_from_either_gram_matrix():
    rng = np.random.default_rng(3)
    for n, d in [(120, 200), (200, 120)]:  # wide (n x n Gram) and tall (d x d Gram)
        x = rng.normal(size=(n, d)) * np.linspace(4, 0.1, d)
        got = leading_directions(x, 50)
        ref = np.linalg.svd(x, full_matrices=False)[2][:50]
        assert got.shape == (50, d)
        np.testing.assert_allclose(np.abs((got * ref).sum(1)), 1, atol=1e-8)  # the same directions, up to sign
        np.testing.assert_allclose(got @ got.T, np.eye(50), atol=1e-8)
        assert got.flags.c_contiguous  # torch.from_numpy takes it as it is
