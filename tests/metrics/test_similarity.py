"""CKA, mutual k-NN and χ overlap against direct formulas, torch-cka and a brute-force kNN."""

from __future__ import annotations

import types

import numpy as np
import pytest

from isoscope.errors import InputError
from isoscope.metrics.similarity import (
    cka_matrix,
    consecutive_overlap,
    knn_overlap_matrix,
    knn_sets,
    linear_cka,
)


def _reps(n: int = 30, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)) + 2.0
    return [X, X @ rng.normal(size=(6, 4)) + 0.5 * rng.normal(size=(n, 4)), rng.normal(size=(n, 9))]


def _hsic_biased(X: np.ndarray, Y: np.ndarray) -> float:
    """tr(K H L H) / (n − 1)² with the centring matrix H = I − 11ᵀ/n (Gretton et al. 2005)."""
    n = X.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(X @ X.T @ H @ Y @ Y.T @ H)) / (n - 1) ** 2


def _hsic_unbiased(X: np.ndarray, Y: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, on zero-diagonal Gram matrices of the centred data."""
    n = X.shape[0]
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    K, L = Xc @ Xc.T, Yc @ Yc.T
    np.fill_diagonal(K, 0.0)
    np.fill_diagonal(L, 0.0)
    one = np.ones(n)
    return float(
        np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ K @ L @ one)
    ) / (n * (n - 3))


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_matrix_matches_the_direct_hsic_formula(debiased: bool) -> None:
    reps = _reps()
    hsic = _hsic_unbiased if debiased else _hsic_biased
    want = np.array([[hsic(a, b) / np.sqrt(hsic(a, a) * hsic(b, b)) for b in reps] for a in reps])
    got = cka_matrix(reps, debiased=debiased)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.diagonal(got), 1.0)


def test_debiased_cka_matches_torch_cka() -> None:
    torch = pytest.importorskip("torch")
    torch_cka = pytest.importorskip("torch_cka")
    reps = _reps(n=25, seed=3)
    fake_self = types.SimpleNamespace(device="cpu")
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch-cka builds its ones vector in the default dtype
    try:
        def hsic(a: np.ndarray, b: np.ndarray) -> float:
            K, L = torch.tensor(a @ a.T), torch.tensor(b @ b.T)
            K.fill_diagonal_(0.0)
            L.fill_diagonal_(0.0)
            return float(torch_cka.CKA._HSIC(fake_self, K, L))

        # torch-cka does not centre its features; the unbiased estimator is centring-invariant
        want = hsic(reps[0], reps[1]) / np.sqrt(hsic(reps[0], reps[0]) * hsic(reps[1], reps[1]))
    finally:
        torch.set_default_dtype(before)
    assert linear_cka(reps[0], reps[1], debiased=True) == pytest.approx(want, rel=1e-9)


def test_cka_is_invariant_to_rotation_and_isotropic_scaling() -> None:
    X, Y, _ = _reps()
    Q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 6)))
    assert linear_cka(X, 3.0 * X @ Q + 5.0) == pytest.approx(1.0)
    assert linear_cka(X, Y) == pytest.approx(linear_cka(X @ Q, Y * 2.0))


def _brute_knn(X: np.ndarray, k: int, metric: str) -> list[set[int]]:
    out = []
    for i in range(X.shape[0]):
        if metric == "cosine":
            u = X / np.linalg.norm(X, axis=1, keepdims=True)
            d = [(-float(u[i] @ u[j]), j) for j in range(X.shape[0]) if j != i]
        else:
            d = [(float(np.sum((X[i] - X[j]) ** 2)), j) for j in range(X.shape[0]) if j != i]
        out.append({j for _, j in sorted(d)[:k]})
    return out


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_overlap_matches_brute_force(metric: str) -> None:
    reps, k = _reps(n=40), 5
    sets = [_brute_knn(X, k, metric) for X in reps]
    want = np.array([[np.mean([len(a[i] & b[i]) / k for i in range(40)]) for b in sets] for a in sets])
    np.testing.assert_allclose(knn_overlap_matrix(reps, k, metric=metric), want)
    for X, s in zip(reps, sets, strict=True):
        assert [set(r) for r in knn_sets(X, k, metric=metric)] == s
    chi = consecutive_overlap(reps, k, metric=metric)
    np.testing.assert_allclose(chi, [want[0, 1], want[1, 2]])


def test_similarity_errors_are_one_sentence() -> None:
    X, Y, _ = _reps()
    with pytest.raises(InputError, match="same points"):
        cka_matrix([X, Y[:-1]])
    with pytest.raises(InputError, match="at least 4"):
        cka_matrix([X[:3], Y[:3]], debiased=True)
    with pytest.raises(InputError, match="k must be"):
        knn_sets(X, 30)
    Z = X.copy()
    Z[0] = 0.0
    with pytest.raises(InputError, match="non-zero"):
        knn_sets(Z, 3, metric="cosine")
