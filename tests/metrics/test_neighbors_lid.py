"""Exact neighbours and local intrinsic dimension: ground truth and independent oracles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from isoscope.errors import InputError
from isoscope.metrics import (
    count_duplicates,
    exact_knn,
    lid_mle,
    lid_mle_from_distances,
    twonn,
    twonn_from_distances,
    unique_rows,
)


def _rotate_into(Z: np.ndarray, D: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((D, Z.shape[1])))
    return Z @ Q.T


@pytest.mark.parametrize("backend", ["symmetric", "faiss", "sklearn"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_matches_brute_force(backend: str, metric: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 16)).astype(np.float32) + 3.0
    nb = exact_knn(X, 7, metric=metric, backend=backend)
    Y = X.astype(np.float64)
    if metric == "cosine":
        Y = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    D = cdist(Y, Y)
    np.fill_diagonal(D, np.inf)
    ref_idx = np.argsort(D, axis=1)[:, :7]
    ref_d = np.take_along_axis(D, ref_idx, axis=1)
    np.testing.assert_allclose(nb.distances, ref_d, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(nb.indices, ref_idx)
    assert not (nb.indices == np.arange(300)[:, None]).any()


def test_cosine_distance_is_chordal_not_one_minus_cos() -> None:
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    nb = exact_knn(X, 1, metric="cosine")
    # angle 45 degrees: chordal distance sqrt(2 - 2 cos 45) = 0.765, not 1 - cos = 0.293
    np.testing.assert_allclose(nb.distances[0, 0], np.sqrt(2 - np.sqrt(2)), rtol=1e-6)


def test_faiss_distances_are_true_not_squared_and_precise_at_large_norm() -> None:
    rng = np.random.default_rng(1)
    base = rng.standard_normal((200, 32)) * 0.01
    X = (base + 300.0).astype(np.float32)  # GPT-scale norms, tiny spread
    nb = exact_knn(X, 5, backend="faiss")
    ref = np.sort(
        cdist(X.astype(np.float64), X.astype(np.float64)) + np.diag(np.full(200, np.inf)), 1
    )[:, :5]
    np.testing.assert_allclose(nb.distances, ref, rtol=1e-6)


def test_self_match_removed_among_duplicates() -> None:
    X = np.zeros((6, 3), dtype=np.float32)
    X[:4] = 1.0  # four identical rows
    X[4] = [5, 5, 5]
    X[5] = [9, 9, 9]
    nb = exact_knn(X, 3)
    for i in range(6):
        assert i not in nb.indices[i]
    np.testing.assert_allclose(nb.distances[:4, :3], 0.0)


def test_unique_rows_and_count() -> None:
    X = np.array([[1, 2], [3, 4], [1, 2], [0.0, -0.0], [-0.0, 0.0]])
    keep, inv = unique_rows(X)
    np.testing.assert_array_equal(keep, [0, 1, 3])
    np.testing.assert_array_equal(inv, [0, 1, 0, 2, 2])
    assert count_duplicates(X) == 2


@pytest.mark.parametrize("k_dim", [2, 5])
def test_lid_on_subspace_recovers_dimension(k_dim: int) -> None:
    rng = np.random.default_rng(k_dim)
    X = _rotate_into(rng.uniform(size=(3000, k_dim)), 384, seed=1)
    res = lid_mle(X, k=20)
    assert abs(res.mean - k_dim) / k_dim < 0.2
    assert abs(res.median - k_dim) / k_dim < 0.2
    assert abs(twonn(X) - k_dim) / k_dim < 0.15


def test_lid_on_rotated_swiss_roll_is_two() -> None:
    from sklearn.datasets import make_swiss_roll

    Z, _ = make_swiss_roll(4000, random_state=0)
    X = _rotate_into(Z, 384, seed=2)
    res = lid_mle(X, k=20)
    assert 1.7 < res.mean < 2.4
    assert 1.7 < twonn(X) < 2.4


def test_lid_matches_skdim_on_same_neighbours() -> None:
    skdim = pytest.importorskip("skdim")
    rng = np.random.default_rng(3)
    X = _rotate_into(rng.standard_normal((800, 6)), 40, seed=3)
    res = lid_mle(X, k=15)
    nb = res.neighbors
    est = skdim.id.MLE().fit(X, precomputed_knn_arrays=(nb.distances, nb.indices), comb="mean")
    # skdim is Levina-Bickel: (k-1)/sum log(d_k/d_i); Amsaleg's MLE is k/sum.
    np.testing.assert_allclose(res.values, est.dimension_pw_ * 15 / 14, rtol=1e-10)
    lb = lid_mle(X, k=15, variant="levina_bickel")
    np.testing.assert_allclose(lb.mean, est.dimension_, rtol=1e-10)


def test_lid_matches_skdim_own_neighbours() -> None:
    skdim = pytest.importorskip("skdim")
    rng = np.random.default_rng(4)
    X = rng.standard_normal((500, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = skdim.id.MLE().fit(X, n_neighbors=20, comb="mean").dimension_
    ours = lid_mle(X, k=20, variant="levina_bickel").mean
    assert abs(ours - ref) / ref < 1e-6


@pytest.mark.parametrize("method", ["linear", "mle"])
def test_twonn_matches_skdim_on_same_distances(method: str) -> None:
    skdim = pytest.importorskip("skdim")
    rng = np.random.default_rng(5)
    X = _rotate_into(rng.standard_normal((1000, 4)), 20, seed=5)
    nb = exact_knn(X, 2)
    r = nb.distances
    ref = skdim.id.TwoNN(dist=True, method=method).fit(r).dimension_
    ours = twonn_from_distances(r[:, 0], r[:, 1], method=method)
    assert ours == pytest.approx(ref, rel=1e-10)


def test_lid_duplicates_are_dropped_and_counted() -> None:
    rng = np.random.default_rng(6)
    X = rng.standard_normal((400, 5))
    Xd = np.vstack([X, X[:50], X[:10]])
    res = lid_mle(Xd, k=10)
    assert res.n_duplicates == 60
    assert res.n_points == 460
    assert res.mean == pytest.approx(lid_mle(X, k=10).mean)
    kept = lid_mle(Xd, k=10, duplicates="keep")
    assert np.isfinite(kept.mean) and kept.mean > 1.0
    assert kept.n_zero_distances >= 120


def test_zero_distance_guard_near_duplicates() -> None:
    # Near-duplicates whose difference is below the zero tolerance must not drive LID to 0.
    rng = np.random.default_rng(7)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    near = X[:100].copy()
    near[:, 0] = np.nextafter(near[:, 0], np.float32(np.inf))  # one ulp apart: not exact duplicates
    res = lid_mle(np.vstack([X, near]), k=10)
    assert res.n_duplicates == 0
    assert res.n_zero_distances >= 200
    assert res.mean > 3.0


def test_lid_from_distances_formula() -> None:
    D = np.array([[1.0, 2.0, 4.0]])
    lid, _ = lid_mle_from_distances(D)
    assert lid[0] == pytest.approx(3 / (np.log(4) + np.log(2)))
    lid, n_zero = lid_mle_from_distances(np.array([[0.0, 0.0, 0.0]]))
    assert np.isnan(lid[0]) and n_zero == 3


def test_lid_bad_inputs_are_one_sentence() -> None:
    with pytest.raises(InputError, match="NaN or Inf"):
        lid_mle(np.array([[np.nan, 1.0], [1.0, 2.0], [0.0, 1.0]]), k=1)
    with pytest.raises(InputError, match="distinct points"):
        lid_mle(np.ones((30, 4)), k=5)
    with pytest.raises(InputError, match="neighbours need at least"):
        exact_knn(np.eye(3), 3)
    with pytest.raises(InputError, match="all zero"):
        lid_mle(np.vstack([np.zeros((1, 3)), np.eye(3), np.eye(3) * 2]), k=2, metric="cosine")
    with pytest.raises(InputError, match="Unknown neighbour metric"):
        exact_knn(np.eye(3), 1, metric="manhattan")
