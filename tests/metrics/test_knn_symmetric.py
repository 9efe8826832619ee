"""The symmetric blocked self-kNN (default backend): exact against independent searches."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from isoscope.errors import InputError
from isoscope.metrics import exact_knn, lid_mle
from isoscope.metrics._neighbors import _symmetric_knn


def _brute(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 brute force: true distances and indices (ties by index)."""
    Y = np.asarray(X, dtype=np.float64)
    D = cdist(Y, Y)
    np.fill_diagonal(D, np.inf)
    idx = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, idx, axis=1), idx


def _assert_same(D: np.ndarray, Ix: np.ndarray, ref_d: np.ndarray, ref_i: np.ndarray) -> None:
    """Distances agree everywhere; indices agree wherever the distance has no tie in the row."""
    np.testing.assert_allclose(D, ref_d, rtol=1e-12, atol=1e-12)
    tie = np.zeros(D.shape, dtype=bool)
    close = np.isclose(ref_d[:, 1:], ref_d[:, :-1], rtol=1e-9, atol=0)
    tie[:, 1:] |= close
    tie[:, :-1] |= close
    # the k-th neighbour also ties with the (k+1)-th, which is not in the list: skip it when tied
    np.testing.assert_array_equal(Ix[~tie], ref_i[~tie])


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("n", [300, 257, 129, 64])
@pytest.mark.parametrize("block", [64, 100, 4096])
def test_matches_brute_force_odd_sizes(n: int, block: int, compiled: bool) -> None:
    rng = np.random.default_rng(n + block)
    X = (rng.standard_normal((n, 24)) * np.linspace(2, 0.1, 24) + 5.0).astype(np.float32)
    D, Ix, _ = _symmetric_knn(X, 9, block=block, compiled=compiled)
    _assert_same(D, Ix, *_brute(X, 9))
    assert not (Ix == np.arange(n)[:, None]).any()


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_agrees_with_sklearn_and_faiss(metric: str) -> None:
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((700, 48)) @ rng.standard_normal((48, 48)) + 2.0).astype(np.float32)
    nb = exact_knn(X, 12, metric=metric)
    assert nb.backend == "symmetric"
    Y = X.astype(np.float64)
    if metric == "cosine":
        Y = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    skd, ski = NearestNeighbors(n_neighbors=12, algorithm="brute").fit(Y).kneighbors()
    _assert_same(nb.distances, nb.indices, *_brute(Y.astype(np.float32), 12))
    np.testing.assert_allclose(nb.distances, skd, rtol=1e-6)
    fa = exact_knn(X, 12, metric=metric, backend="faiss")
    np.testing.assert_allclose(nb.distances, fa.distances, rtol=1e-6)
    distinct = np.diff(skd, axis=1).min(axis=1) > 1e-5 * skd[:, -1]
    np.testing.assert_array_equal(nb.indices[distinct], ski[distinct])


def test_block_size_and_kernel_do_not_change_the_result() -> None:
    rng = np.random.default_rng(2)
    X = rng.standard_normal((500, 16)).astype(np.float32)
    X[250:260] = X[0]  # exact ties: order by index, whatever the blocking
    ref = _symmetric_knn(X, 15, block=4096)
    for block, compiled in [(31, True), (128, True), (499, True), (31, False), (128, False)]:
        D, Ix, _ = _symmetric_knn(X, 15, block=block, compiled=compiled)
        np.testing.assert_array_equal(D, ref[0])
        np.testing.assert_array_equal(Ix, ref[1])


@pytest.mark.parametrize("compiled", [True, False])
def test_duplicates_kept_self_excluded(compiled: bool) -> None:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    X[:30] = X[0]  # 30 identical rows
    D, Ix, _ = _symmetric_knn(X, 5, block=64, compiled=compiled)
    assert not (Ix == np.arange(200)[:, None]).any()
    np.testing.assert_array_equal(D[:30], 0.0)
    assert np.isin(Ix[:30], np.arange(30)).all()
    # ties by index: the copies' neighbours are the lowest other copies
    np.testing.assert_array_equal(Ix[0], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(Ix[3], [0, 1, 2, 4, 5])
    _assert_same(D, Ix, *_brute(X, 5))


def test_ties_on_a_lattice_compare_distances() -> None:
    g = np.arange(7, dtype=np.float32)
    X = np.stack(np.meshgrid(g, g, g), axis=-1).reshape(-1, 3)  # 343 points, many equal distances
    D, Ix, _ = _symmetric_knn(X, 6, block=50, compiled=False)
    np.testing.assert_array_equal(D, _symmetric_knn(X, 6, block=50)[0])
    ref_d, _ = _brute(X, 6)
    np.testing.assert_allclose(D, ref_d, rtol=1e-12)
    np.testing.assert_allclose(
        np.linalg.norm(X[Ix] - X[:, None, :], axis=2), D, rtol=1e-6
    )  # the returned indices are at the returned distances


@pytest.mark.parametrize("compiled", [True, False])
def test_far_from_origin_is_certified_or_recomputed_exactly(compiled: bool) -> None:
    # Two tight clusters far apart: centring cannot make the norms small, so float32
    # candidates near the k-th neighbour cannot all be certified; those rows are searched
    # again in float64 and the result is still exact.
    rng = np.random.default_rng(4)
    a = rng.standard_normal((150, 32)) * 1e-3 + 1000.0
    b = rng.standard_normal((150, 32)) * 1e-3 - 1000.0
    X = np.vstack([a, b]).astype(np.float32)
    D, Ix, n_re = _symmetric_knn(X, 10, block=64, compiled=compiled)
    assert n_re > 0
    _assert_same(D, Ix, *_brute(X, 10))


def test_large_common_offset_is_exact() -> None:
    rng = np.random.default_rng(5)
    X = (rng.standard_normal((400, 64)) * 0.01 + 300.0).astype(np.float32)
    nb = exact_knn(X, 8)
    _assert_same(nb.distances, nb.indices, *_brute(X, 8))


def test_smallest_sizes() -> None:
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    nb = exact_knn(X, 2)  # k = n - 1: every other point
    np.testing.assert_allclose(nb.distances, [[1, 3], [1, np.sqrt(10)], [3, np.sqrt(10)]])
    np.testing.assert_array_equal(nb.indices, [[1, 2], [0, 2], [0, 1]])
    with pytest.raises(InputError, match="neighbours need at least"):
        exact_knn(X, 3)
    with pytest.raises(InputError, match="Unknown neighbour backend"):
        exact_knn(X, 1, backend="annoy")


def test_lid_same_with_every_backend() -> None:
    rng = np.random.default_rng(6)
    X = rng.standard_normal((600, 10)) @ rng.standard_normal((10, 50))
    vals = [lid_mle(X, k=20, backend=b).mean for b in ("symmetric", "faiss", "sklearn")]
    assert vals[0] == pytest.approx(vals[1], rel=1e-6)
    assert vals[0] == pytest.approx(vals[2], rel=1e-6)
