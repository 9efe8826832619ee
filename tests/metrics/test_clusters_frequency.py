"""Clusters (against sklearn's silhouette) and frequency correlations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_samples as sk_samples
from sklearn.metrics import silhouette_score

from isoscope.errors import InputError
from isoscope.metrics import (
    frequency_correlations,
    kmeans_silhouette,
    silhouette,
    silhouette_samples,
)


def test_silhouette_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((700, 6)) + 10.0
    labels = rng.integers(0, 4, 700)
    labels[0] = 9  # a singleton cluster: silhouette 0 by convention
    np.testing.assert_allclose(
        silhouette_samples(X, labels, chunk=128), sk_samples(X, labels), atol=1e-10
    )
    assert silhouette(X, labels) == pytest.approx(silhouette_score(X, labels), abs=1e-10)
    from scipy.spatial.distance import cdist

    pre = silhouette_samples(None, labels, distances=cdist(X, X), chunk=100)
    np.testing.assert_allclose(pre, sk_samples(X, labels), atol=1e-10)


def test_kmeans_finds_the_right_number_of_blobs() -> None:
    X, _ = make_blobs(n_samples=1500, centers=5, n_features=20, cluster_std=1.0, random_state=0)
    res = kmeans_silhouette(X, (2, 8), silhouette_sample=600, seed=0)
    assert res.n_clusters == 5 and res.best_k == 5
    assert res.mms > 0.5
    assert res.ks == list(range(2, 9)) and len(res.scores) == 7
    assert sum(res.sizes) == 1500
    # the curve's value at the chosen k equals sklearn's silhouette on the same subsample
    rng = np.random.default_rng(0)
    sub = np.sort(rng.choice(1500, 600, replace=False))
    assert res.mms == pytest.approx(silhouette_score(X[sub], res.labels[sub]), abs=1e-10)
    again = kmeans_silhouette(X, (2, 8), silhouette_sample=600, seed=0)
    assert again.scores == res.scores


def test_no_real_clusters_rule() -> None:
    X = np.random.default_rng(1).standard_normal((800, 30))
    res = kmeans_silhouette(X, (2, 4), silhouette_sample=400)
    assert res.mms < 0.1 and res.n_clusters == 1 and res.sizes == [800]
    off = kmeans_silhouette(X, (2, 4), silhouette_sample=400, min_mms=None)
    assert off.n_clusters == off.best_k >= 2


def test_cluster_bad_inputs() -> None:
    with pytest.raises(InputError, match="needs more than"):
        kmeans_silhouette(np.random.default_rng(0).standard_normal((10, 3)), (2, 15))
    with pytest.raises(InputError, match="distinct vectors"):
        kmeans_silhouette(np.ones((50, 3)), (2, 4))
    with pytest.raises(InputError, match="k range"):
        kmeans_silhouette(np.eye(5), (1, 3))


def test_frequency_correlation_recovers_planted_direction() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    logf = rng.normal(5, 2, n)
    X = rng.standard_normal((n, 16)) * 0.5
    X[:, 3] += -1.5 * (logf - 5)  # PC1 carries log frequency
    X *= 1 + 0.05 * logf[:, None]  # norms grow with frequency
    out = frequency_correlations(X, np.exp(logf))
    assert abs(out["freq_pc1_spearman"]) > 0.9 and abs(out["freq_pc1_pearson"]) > 0.9
    assert out["freq_norm_spearman"] is not None
    assert len(out["regions"]) == 3 and sum(r["n"] for r in out["regions"]) == n
    # regions ordered rare -> frequent, PC1 means monotone
    pcs = [r["pc1_mean"] for r in out["regions"]]
    assert pcs == sorted(pcs) or pcs == sorted(pcs, reverse=True)


def test_frequency_bad_inputs() -> None:
    with pytest.raises(InputError, match="frequencies"):
        frequency_correlations(np.ones((5, 2)), np.ones(4))
    X = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(InputError, match="single word type"):
        frequency_correlations(X, np.full(20, 7.0))
