"""Each affine repair's ``affine_()`` (A, b) reproduces its own ``transform`` in float64."""

from __future__ import annotations

import numpy as np
import pytest

from isoscope.transforms import (
    AllButTheTop,
    ClusterIsotropy,
    Identity,
    LearnedRemoval,
    MeanCenter,
    Standardize,
    Whitening,
    ZipfianWhitening,
)
from tests.transforms.conftest import make_cone


def _pairs(X: np.ndarray, seed: int = 0):
    """Training pairs scored by the dominant direction, so the learned weights move off 1."""
    rng = np.random.default_rng(seed)
    A, B = X[rng.integers(0, len(X), 120)], X[rng.integers(0, len(X), 120)]
    top = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)[2][0]
    return A, B, -np.abs((A - B) @ top) + rng.normal(scale=0.5, size=120)


def _fitted(name: str, X: np.ndarray):
    if name == "learned":
        est = LearnedRemoval(n_components=3).fit(X, pairs=_pairs(X))
        assert est.trained_ and not np.allclose(est.weights_, 1.0)  # a real weighted removal
        return est
    if name == "zipf":
        return ZipfianWhitening().fit(X, sample_weight=np.random.default_rng(3).integers(1, 50, len(X)))
    return {
        "none": Identity(),
        "center": MeanCenter(),
        "abtt": AllButTheTop(n_components=3),
        "standardize": Standardize(),
        "whiten": Whitening(),
        "whiten_k": Whitening(n_components=5),
    }[name].fit(X)


@pytest.mark.parametrize("name", ["none", "center", "abtt", "standardize", "whiten", "whiten_k",
                                  "zipf", "learned"])
def test_affine_map_equals_transform(name):
    X, new = make_cone(300, seed=0), make_cone(50, seed=1)
    est = _fitted(name, X)
    affine = est.affine_()
    assert affine is not None
    A, b = affine
    assert A.dtype == np.float64 and b.dtype == np.float64
    want = est.transform(new)
    assert A.shape == (new.shape[1], want.shape[1]) and b.shape == (want.shape[1],)
    np.testing.assert_allclose(new @ A + b, want, atol=1e-10, rtol=0)


def test_cluster_repair_is_not_affine():
    est = ClusterIsotropy(n_clusters=3, n_components=2, random_state=0).fit(make_cone(200, seed=0))
    assert est.affine_() is None
